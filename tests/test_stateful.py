"""Host Factory calling ohf in any order, against the fake cloud, with invariants after each step.

A hypothesis `RuleBasedStateMachine` drives the five HF calls through `ohf.testing` (the real
`ohf.hf.handle`, the JSON file store in a temp dir, the in-memory cloud), mixed with what the
cloud does by itself (interruptions, console terminations, vanishing, capacity faults, throttling)
and the clock moving on. After every step:

- every live instance in the cloud belongs to exactly one ohf request (no lost machine, never
  double-counted);
- no template holds more units than its maxNumber;
- a failed call (exit 1) left the state file byte-identical (the one exception: a requestMachines
  that reached AWS and launched nothing records its request as failed, by design);
- stdout was one JSON document of HF's shape for that call.

Rules check their own laws too: a return only touches the machines it named; statuses never
leave `complete`; decided machine results never change.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ohf import strategies as ohf_st
from ohf.effects import fake, store_json
from ohf.messages import OUTPUTS, ErrorOut
from ohf.model import Request, State, Template
from ohf.release import LOST_STATES
from ohf.status import VISIBILITY_GRACE_SECONDS, settled
from ohf.templates import units_held
from ohf.testing import FakeProvider, call, fake_provider

TERMINAL = ("complete", "complete_with_error")
ENDED = ("terminated", "gone")
# Instance states in which a machine still exists and is not on its way out: it holds its units.
HOLDING = ("pending", "running", "stopping", "stopped")
# Mostly room to launch into; sometimes none, sometimes unlimited.
MAX_NUMBERS = st.sampled_from((6, 3, 12, 1, -1, 0, 30))


def capacities() -> st.SearchStrategy[dict[str, int] | None]:
    """No limit, or how many instances of each catalogue type the cloud can ever start."""
    return st.one_of(
        st.none(),
        st.fixed_dictionaries({t: st.integers(0, 12) for t in ohf_st.INSTANCE_TYPES}),
    )


def sometimes(one_in: int) -> st.SearchStrategy[bool]:
    """True about once in `one_in` draws (hypothesis favours small integers, so not `== 0`)."""
    return st.integers(1, one_in).map(lambda n: n == one_in)


def subsets(items: list[str], max_size: int, min_size: int = 0) -> st.SearchStrategy[list[str]]:
    """Distinct picks from `items` (empty when there is nothing to pick)."""
    if not items:
        return st.just([])
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=max_size, unique=True)


def returned(state: State) -> dict[str, str]:
    """Machine id -> the return that took it, for every returned machine."""
    return {
        m.machine_id: m.returned_by
        for r in state.requests.values()
        for m in r.machines
        if m.returned_by is not None
    }


class HostFactory(RuleBasedStateMachine):
    """HF and the cloud acting on one ohf provider."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="ohf-stateful-")
        self.provider: FakeProvider | None = None
        self.templates: dict[str, Template] = {}
        self.final_status: dict[str, str] = {}  # request id -> terminal status once seen
        self.decided: dict[str, str] = {}  # machine id -> decided result in its acquire request
        self.unknown_counter = 0
        self.has_machines = False  # whether the state holds any machine to return
        # HF's own bookkeeping, for availableNumber: the requests it made (-> template), each
        # one's machines with the status ohf last reported or launched them in, their types,
        # and the machines HF gave back.
        self.made: dict[str, str] = {}
        self.asks: dict[str, int] = {}  # request id -> the units HF asked for
        self.known: dict[str, dict[str, str]] = {}
        self.types: dict[str, str] = {}
        self.given_back: set[str] = set()
        self.returns_made: dict[str, set[str]] = {}  # return id -> the machines it named
        # Every instance the cloud ever showed after a call, by the request id it is tagged with.
        self.tagged: dict[str, dict[str, str]] = {}

    # --- plumbing -----------------------------------------------------------------------

    @property
    def fake(self) -> FakeProvider:
        assert self.provider is not None
        return self.provider

    @property
    def state_path(self) -> Path:
        return Path(self.dir) / "ohf-state.json"

    def state_bytes(self) -> bytes | None:
        return self.state_path.read_bytes() if self.state_path.exists() else None

    def state(self) -> State:
        return store_json.load(self.state_path).unwrap()

    def hf(self, name: str, body: Any) -> tuple[int, Any, State, State]:
        """Run one HF call; check its stdout shape and the failed-call law."""
        before_bytes = self.state_bytes()
        before = self.state()
        cloud_before = dict(self.fake.ref.cloud.instances)
        code, reply = call(self.fake, name, body)
        self.learn(name, body, code, reply, cloud_before)
        after = self.state()
        self.has_machines = any(r.machines for r in after.requests.values())
        event(f"{name} exit {code}")  # coverage, in --hypothesis-show-statistics
        assert code in (0, 1), code
        if code == 0:
            msgspec.convert(reply, OUTPUTS[name])
        else:
            assert set(reply) == {"message"}, reply
            msgspec.convert(reply, ErrorOut)
            if name == "requestMachines" and reply["message"].startswith("request req-"):
                # It reached AWS and launched nothing: the request is kept, failed, empty.
                (new_id,) = set(after.requests) - set(before.requests)
                failed = after.requests[new_id]
                assert (failed.phase, failed.status, failed.machines) == (
                    "failed",
                    "complete_with_error",
                    (),
                )
                rest = {k: v for k, v in after.requests.items() if k != new_id}
                assert msgspec.structs.replace(after, requests=rest) == before
            elif name == "requestReturnMachines" and "nothing was terminated" in reply["message"]:
                # AWS lowered some fleets before it refused another: that much is recorded,
                # and no machine is marked returned.
                assert returned(after) == returned(before), reply
                assert after.returns == before.returns
            elif name == "requestReturnMachines" and "started, then" in reply["message"]:
                # Part of the machines terminated before AWS failed: the return records them.
                (new_id,) = set(after.returns) - set(before.returns)
                took = after.returns[new_id].machine_ids
                assert took and all(returned(after)[i] == new_id for i in took), reply
            else:
                assert self.state_bytes() == before_bytes, f"{name} failed but changed state"
        return code, reply, before, after

    def learn(
        self, name: str, body: Any, code: int, reply: Any, cloud_before: dict[str, Any]
    ) -> None:
        """Keep HF's own record of what it asked for, was told and gave back."""
        cloud = self.fake.ref.cloud.instances
        for iid, item in cloud.items():
            self.tagged.setdefault(item.instance.request_id or "", {})[iid] = (
                item.instance.instance_type
            )
        if name == "requestMachines" and code == 0:
            rid = reply["requestId"]
            self.made[rid] = body["template"]["templateId"]
            self.asks[rid] = body["template"]["machineCount"]
            # What the launch started: the instances tagged with the new request's id.
            started = {i: x.instance for i, x in cloud.items() if x.instance.request_id == rid}
            self.known[rid] = {i: x.state for i, x in started.items()}
            self.types.update({i: x.instance_type for i, x in started.items()})
        elif name == "getRequestStatus":
            fresh = not reply["message"]
            for out in reply["requests"]:
                rid = out["requestId"]
                if rid in self.made:
                    for machine in out["machines"]:
                        mid = machine["machineId"]
                        self.known[rid][mid] = machine["status"]
                        if mid in cloud:
                            self.types.setdefault(mid, cloud[mid].instance.instance_type)
                elif fresh and rid in self.returns_made:
                    # Polling a return has ohf describe the requests whose machines it took.
                    self.observe_owners(self.returns_made[rid])
        elif name == "requestReturnMachines":
            named = {m["machineId"] for m in body["machines"]}
            if code == 0:
                self.returns_made[reply["requestId"]] = named
                self.given_back |= named
            elif "started, then" in reply["message"]:
                # Recorded as returned: the named machines this call did terminate.
                self.given_back |= {
                    i
                    for i in named
                    if i in cloud
                    and i in cloud_before
                    and cloud[i].instance.state != cloud_before[i].instance.state
                }

    def observe_owners(self, machine_ids: set[str]) -> None:
        """ohf saw the requests holding `machine_ids` as the cloud is now."""
        cloud = self.fake.ref.cloud.instances
        for machines in self.known.values():
            if machine_ids.isdisjoint(machines):
                continue
            for mid in machines:
                # Only terminated instances ever vanish from the fake cloud.
                machines[mid] = cloud[mid].instance.state if mid in cloud else "terminated"

    def held_units(self, tid: str) -> int:
        """Units of template `tid` HF's record says its machines hold: weights of the live ones."""
        template = self.templates[tid]
        weights = template.vm_types or {template.vm_type: 1}
        return sum(
            weights[self.types[mid]]
            for rid, machines in self.known.items()
            if self.made[rid] == tid
            for mid, status in machines.items()
            if mid not in self.given_back and status in HOLDING
        )

    def check_available(self, tid: str, shown: int, before: State) -> None:
        """getAvailableTemplates' availableNumber for `tid`, against HF's own record."""
        del before
        expected = self.expected_available(tid)
        assert shown == expected, (tid, shown, expected, self.known, sorted(self.given_back))

    def expected_available(self, tid: str) -> int:
        """availableNumber from HF's record alone: maxNumber less the units it holds."""
        most = self.templates[tid].max_number
        return -1 if most < 0 else max(most - self.held_units(tid), 0)

    def unknown_id(self, prefix: str) -> str:
        self.unknown_counter += 1
        return f"{prefix}-{0xDEAD0000 + self.unknown_counter:017x}"

    # --- set-up -------------------------------------------------------------------------

    @initialize(
        templates=ohf_st.template_lists(
            min_size=1, max_size=3, with_extras=False, max_numbers=MAX_NUMBERS
        ),
        capacity=capacities(),
    )
    def start(self, templates: list[Template], capacity: dict[str, int] | None) -> None:
        cloud = fake.new_cloud(parameters=ohf_st.SSM_IMAGES, capacity=capacity)
        self.provider = fake_provider(templates, self.dir, cloud=cloud)
        self.templates = {t.template_id: t for t in templates}

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- HF's calls ---------------------------------------------------------------------

    # `data` is unused: hypothesis orders rules by argument count first and favours the first,
    # so an argument-less rule would crowd the others out.
    @rule(data=st.data())
    def check_templates(self, data: st.DataObject) -> None:
        code, reply, before, _ = self.hf("getAvailableTemplates", {})
        assert code == 0, reply
        listed = {t["templateId"]: t for t in reply["templates"]}
        assert set(listed) == set(self.templates)
        for tid, out in listed.items():
            self.check_available(tid, out["availableNumber"], before)
            assert {"type", "ncpus", "nram"} <= set(out["attributes"])

    @rule(data=st.data())
    def acquire_machines(self, data: st.DataObject) -> None:
        ids = sorted(self.templates)
        unknown = data.draw(sometimes(10), label="unknown template")
        tid = "NoSuchTemplate" if unknown else data.draw(st.sampled_from(ids), label="tid")
        room = self.expected_available(tid) if tid in self.templates else 0
        over = data.draw(sometimes(5), label="over the limit")
        fits = st.integers(1, room if room > 0 else 5)
        count = data.draw(
            st.integers(max(room, 0) + 1, max(room, 0) + 3) if over else fits, label="count"
        )
        body = {"template": {"templateId": tid, "machineCount": count}}
        code, reply, _, after = self.hf("requestMachines", body)
        over = tid not in self.templates or (room != -1 and count > room)
        if over:
            assert code == 1, reply
            return
        if code == 0:
            request = after.requests[reply["requestId"]]
            assert request.phase == "launched"
            assert request.machines
            got = sum(m.units for m in request.machines)
            if got < count:
                assert f"launched {got} of {count}" in reply["message"], reply

    @rule(data=st.data())
    def poll_request_status(self, data: st.DataObject) -> None:
        state = self.state()
        known = sorted(state.requests) + sorted(state.returns)
        pool = st.one_of(st.sampled_from(known), st.just("unknown")) if known else st.just("x")
        picks = data.draw(st.lists(pool, min_size=1, max_size=4), label="ids")
        rids = [self.unknown_id("req") if p in ("unknown", "x") else p for p in picks]
        code, reply, before, after = self.hf(
            "getRequestStatus", {"requests": [{"requestId": r} for r in rids]}
        )
        assert code == 0, reply
        cloud = self.fake.ref.cloud
        fresh = not reply["message"]  # empty unless DescribeInstances failed (last known shown)
        for out in reply["requests"]:
            rid = out["requestId"]
            if rid not in after.requests and rid not in after.returns:
                assert out["status"] == "complete_with_error"
                assert out["machines"] == []
                continue
            if rid in self.final_status:
                assert out["status"] == self.final_status[rid], (rid, out)
            elif out["status"] in TERMINAL:
                self.final_status[rid] = out["status"]
            if rid in after.requests:
                # Final requests whose machines all ended are not described again.
                observed = fresh and not settled(before.requests[rid])
                for machine in out["machines"]:
                    mid = machine["machineId"]
                    if mid in self.decided:
                        assert machine["result"] == self.decided[mid], (mid, machine)
                    elif machine["result"] != "executing":
                        self.decided[mid] = machine["result"]
                    if observed and mid in cloud.instances:
                        # The fake shows shutting-down once, then moves on to terminated.
                        now_state = cloud.instances[mid].instance.state
                        shown = (
                            {now_state, "shutting-down"}
                            if now_state == "terminated"
                            else {now_state}
                        )
                        assert machine["status"] in shown, (machine, now_state)
                    elif observed:
                        young = cloud.now - machine["launchtime"] < VISIBILITY_GRACE_SECONDS
                        gone = ("gone", "terminated")  # HF's name for "no longer listed"
                        assert machine["status"] in ((*gone, "pending") if young else gone)
                self.check_acquire_status(after.requests[rid], out)
            else:
                ret = after.returns[rid]
                assert {m["machineId"] for m in out["machines"]} <= set(ret.machine_ids)
                for machine in out["machines"]:
                    ended = machine["status"] in ENDED
                    assert machine["result"] == ("succeed" if ended else "executing"), machine
                if out["status"] == "complete":
                    assert all(m["status"] in ENDED for m in out["machines"]), out

    @staticmethod
    def check_acquire_status(request: Request, out: dict[str, Any]) -> None:
        """HF's meaning of an acquire request's status, against its machines' results."""
        results = {m["machineId"]: m["result"] for m in out["machines"]}
        good = sum(m.units for m in request.machines if results[m.machine_id] == "succeed")
        if out["status"] == "complete":
            assert good >= request.machine_count, out
        elif out["status"] == "complete_with_error":
            assert good < request.machine_count, out
        else:
            assert "executing" in results.values() or request.phase == "launching", out

    @precondition(lambda self: self.has_machines)
    @rule(data=st.data())
    def return_machines(self, data: st.DataObject) -> None:
        state = self.state()
        ohf_ids = sorted(m.machine_id for r in state.requests.values() for m in r.machines)
        held = [
            m.machine_id for r in state.requests.values() for m in r.machines if not m.returned_by
        ]
        named = data.draw(subsets(held or ohf_ids, 4, min_size=1), label="named")
        if data.draw(sometimes(10), label="foreign"):
            named = [*named, self.unknown_id("i")]
        self.check_return(named, set(ohf_ids))

    @precondition(lambda self: self.has_machines)
    @rule(data=st.data())
    def return_a_whole_request(self, data: st.DataObject) -> None:
        """HF scales in: every machine of one request that it has not returned yet."""
        state = self.state()
        full = sorted(r for r, req in state.requests.items() if req.machines)
        rid = data.draw(st.sampled_from(full), label="request")
        machines = state.requests[rid].machines
        named = [m.machine_id for m in machines if not m.returned_by] or [machines[0].machine_id]
        ohf_ids = {m.machine_id for r in state.requests.values() for m in r.machines}
        self.check_return(named, ohf_ids)

    def check_return(self, named: list[str], ohf_ids: set[str]) -> None:
        """requestReturnMachines of `named`: it touches exactly those machines, or nothing."""
        cloud_before = dict(self.fake.ref.cloud.instances)
        body = {"machines": [{"name": "", "machineId": i} for i in named]}
        code, reply, before, after = self.hf("requestReturnMachines", body)
        cloud_after = self.fake.ref.cloud.instances
        # A return only ever touches the machines it named, in the cloud and in the state.
        changed = {
            i
            for i, x in cloud_after.items()
            if i in cloud_before and x.instance.state != cloud_before[i].instance.state
        }
        assert changed <= self.may_change(set(named), before), (changed, named)
        returned_by_before = {
            m.machine_id: m.returned_by for r in before.requests.values() for m in r.machines
        }
        returned_by_after = {
            m.machine_id: m.returned_by for r in after.requests.values() for m in r.machines
        }
        moved = {i for i in returned_by_after if returned_by_after[i] != returned_by_before.get(i)}
        assert moved <= set(named), (moved, named)
        if not set(named) <= ohf_ids:
            assert code == 1, reply  # not ohf's: rejected, nothing terminated
            assert "not ohf's" in reply["message"]
            assert not changed
            return
        if code == 1:
            # Throttled, or (fake bug, see test_fake_cloud) one of them vanished from the cloud.
            vanished = [i for i in named if i not in cloud_before]
            assert vanished or any(c in reply["message"] for c in self.FAULT_CODES), reply
            if "started, then" not in reply["message"]:
                assert not changed  # else: what did terminate is recorded (see `hf`)
            return
        rid = reply["requestId"]
        assert set(after.returns[rid].machine_ids) == set(named)
        assert moved == set(named)
        assert all(returned_by_after[i] == rid for i in named)

    @rule(data=st.data())
    def poll_return_requests(self, data: st.DataObject) -> None:
        state = self.state()
        machines = {m.machine_id: m for r in state.requests.values() for m in r.machines}
        named = data.draw(subsets(sorted(machines), 5), label="hosts")
        if data.draw(sometimes(4), label="foreign"):
            named.append(self.unknown_id("i"))
        by_name = data.draw(st.booleans(), label="by_name")
        refs = [
            {"name": machines[i].name, "machineId": ""}
            if by_name and i in machines and machines[i].name
            else {"name": "", "machineId": i}
            for i in named
        ]
        code, reply, _, _ = self.hf("getReturnRequests", {"machines": refs})
        if code == 1:
            return  # DescribeInstances was throttled
        listed = {r["machineId"] for r in reply["requests"]}
        lost = self.reclaimed

        if named:
            candidates = {i for i in named if i not in machines or not machines[i].returned_by}
            # Exactly the hosts the cloud took: never a healthy one, nor one HF returned itself.
            assert listed == lost(candidates), (listed, lost(candidates))
        else:
            # No list: ohf checks every machine HF holds (README): reported `succeed` and not
            # returned by HF, including ones an earlier poll already saw ending.
            held = {i for i, m in machines.items() if not m.returned_by and m.result == "succeed"}
            assert listed == lost(held), (listed, lost(held))

    # AWS errors the cloud rules inject into calls a return makes.
    FAULT_CODES: tuple[str, ...] = ("RequestLimitExceeded",)

    def may_change(self, named: set[str], before: State) -> set[str]:
        """The instances a return of `named` may touch in the cloud: exactly those."""
        del before
        return named

    def reclaimed(self, ids: set[str]) -> set[str]:
        """The machines among `ids` that the cloud is taking or has taken."""
        cloud = self.fake.ref.cloud.instances
        return {i for i in ids if i not in cloud or cloud[i].instance.state in LOST_STATES}

    # --- what the cloud does by itself, and time --------------------------------------------

    @rule(cloud_event=ohf_st.cloud_events())
    def cloud_acts(self, cloud_event: ohf_st.CloudEvent) -> None:
        event(f"cloud: {cloud_event.kind}")
        self.fake.ref.cloud = ohf_st.apply_event(self.fake.ref.cloud, cloud_event)

    @rule(seconds=st.sampled_from((30, 200, 400)))
    def time_passes(self, seconds: int) -> None:
        cloud = self.fake.ref.cloud
        self.fake.ref.cloud = msgspec.structs.replace(cloud, now=cloud.now + seconds)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def every_live_instance_is_in_exactly_one_request(self) -> None:
        if self.provider is None:
            return
        state = self.state()
        owners: dict[str, list[str]] = {}
        for rid, request in state.requests.items():
            for machine in request.machines:
                owners.setdefault(machine.machine_id, []).append(rid)
        assert all(len(r) == 1 for r in owners.values()), owners
        for iid, instance in fake.live_instances(self.fake.ref.cloud).items():
            if iid not in owners and self.reachable(instance, state):
                continue
            assert iid in owners, f"lost machine {iid}"
            assert owners[iid] == [instance.request_id]

    def reachable(self, instance: Any, state: State) -> bool:
        """Whether an instance the state lacks is still ohf's to find: never, for RunInstances."""
        del instance, state
        return False

    @invariant()
    def no_template_holds_more_than_its_max_number(self) -> None:
        if self.provider is None:
            return
        state = self.state()
        live = fake.live_instances(self.fake.ref.cloud).values()
        for tid, template in self.templates.items():
            if template.max_number < 0:
                continue
            assert units_held(state, tid) <= template.max_number, tid
            # What really runs: the weights of the template's live instances in the cloud.
            weights = template.vm_types or {template.vm_type: 1}
            running = sum(weights[i.instance_type] for i in live if i.template_id == tid)
            assert running <= template.max_number, (tid, running)


TestHostFactory = HostFactory.TestCase
TestHostFactory.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_weighted_request_never_exceeds_max_number(tmp_path: Path) -> None:
    weighted = Template(
        template_id="Weighted",
        max_number=3,
        image_id=ohf_st.AMI_IDS[0],
        vm_types={"c5.xlarge": 2},
    )
    provider = fake_provider([weighted], tmp_path)
    code, reply = call(
        provider, "requestMachines", {"template": {"templateId": "Weighted", "machineCount": 3}}
    )
    state = store_json.load(tmp_path / "ohf-state.json").unwrap()
    assert units_held(state, "Weighted") <= 3, (code, reply)
