"""Host Factory calling ohf with several providers, each its own fake cloud, with invariants.

The stateful HF model of tests/test_stateful.py (and, in a second machine, of
tests/test_stateful_fleets.py) on a config with two or three `[[providers]]`: a random
`[placement]` policy (failover on or off, per-provider listing on or off), providers with their
own capacities, defaults and per-template `maxNumber` overrides, templates restricted to some
providers, and, between HF's calls, providers being disabled and enabled again, circuits opening
and every cloud's own events (interruptions, capacity running out, throttling, permission
errors). After every step:

- every live instance in each provider's cloud belongs to exactly one request of the state, one
  whose `provider` is that provider (no lost machine, none counted twice, none in the wrong
  account);
- for each (template, provider) the units held never exceed that provider's `maxNumber` for the
  template (its view, `placement.effective`), and nothing is held where the template may not go;
- no request or part is placed on a provider while it is disabled, and its cloud gets no
  instance that is not a fleet's (placed before) filling up;
- a failed call (exit 1) left the state file byte-identical, but for the documented cases (a
  requestMachines that reached AWS and launched nothing keeps its request and parts, failed and
  empty; see tests/test_stateful.py).

Rules check their own laws: getRequestStatus of an HF request id reports exactly the machines of
the request and its parts, with the combined status (running while any part runs, complete when
all are) that never leaves complete/complete_with_error; a return terminates exactly the named
machines, each in its own cloud; getAvailableTemplates' `availableNumber` is the room summed over
the enabled providers the template may use (-1 if one is unlimited); HF returning everything
leaves no live instance (and no fleet or launch template) in any cloud.

The tests at the end are the minimal examples of the core bugs the machines found (all fixed).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from returns.result import Success

from ohf import strategies as ohf_st
from ohf.breaker import Breaker
from ohf.config import PlacementConfig, ProviderConfig
from ohf.effects import fake, store_json
from ohf.effects.circuit import BREAKER_FILE, BreakerFile, open_circuits
from ohf.messages import OUTPUTS, ErrorOut
from ohf.model import Machine, Request, State, Template
from ohf.placement import PROVIDER_SEPARATOR, effective
from ohf.release import LOST_STATES
from ohf.status import VISIBILITY_GRACE_SECONDS, acquire_status, settled
from ohf.templates import live_units, units_held
from ohf.testing import FakeProviders, advance, call_all, fake_providers
from tests.test_stateful import (
    ENDED,
    TERMINAL,
    HostFactory,
    returned,
    sometimes,
    subsets,
)
from tests.test_stateful_fleets import FLEET_ROLE

NAMES = ("east", "west", "north")
POLICIES = ("first_available", "priority", "round_robin", "weighted", "least_used")
# Instance serials each further fake cloud starts from: ids and addresses (the fake's 10.0.x.y
# cycle every 62,500 serials) never collide between three accounts. (`fake_providers`'s own
# stride, 31,250, gives a third cloud the first one's addresses and host names.)
STRIDE = 20_000
# maxNumbers, of templates and of providers' overrides: mostly small, so providers fill up and
# the rest goes to the next; sometimes none, sometimes unlimited.
MAX_NUMBERS = st.sampled_from((4, 2, 6, 3, 10, -1, 0))


def capacities(most: int = 6) -> st.SearchStrategy[dict[str, int] | None]:
    """A cloud without limits, or one that can start only a few instances of each type."""
    limited = st.fixed_dictionaries({t: st.integers(0, most) for t in ohf_st.INSTANCE_TYPES})
    return st.one_of(st.none(), limited)


# How long a circuit the `provider_changes` rule opens stays open (the default cooldown).
COOLDOWN = 60


@st.composite
def provider_setups(draw: st.DrawFn, template_ids: list[str]) -> tuple[ProviderConfig, ...]:
    """Two or three providers: enabled or not, priority, weight, defaults, maxNumber overrides."""
    count = draw(st.integers(2, 3), label="providers")
    out = []
    for name in NAMES[:count]:
        overrides = {
            tid: {"maxNumber": draw(MAX_NUMBERS)} for tid in template_ids if draw(sometimes(3))
        }
        out.append(
            ProviderConfig(
                name=name,
                region=draw(st.sampled_from(ohf_st.REGIONS)),
                enabled=draw(st.sampled_from((True, True, True, False))),
                priority=draw(st.integers(0, 3)),
                weight=draw(st.integers(1, 4)),
                defaults=dict(draw(st.sampled_from(ohf_st.PROVIDER_DEFAULTS))),
                templates=overrides,
            )
        )
    return tuple(out)


def placements() -> st.SearchStrategy[PlacementConfig]:
    """A `[placement]` section: any policy, failover mostly on, per-provider listing or not."""
    return st.builds(
        PlacementConfig,
        policy=st.sampled_from(POLICIES),
        failover=st.sampled_from((True, True, True, False)),
        list_per_provider=st.booleans(),
    )


def restricted(template: Template, names: list[str] | None) -> Template:
    """The template with a `providers` list (None: every provider)."""
    return msgspec.structs.replace(template, providers=names)


def cloud_faults() -> st.SearchStrategy[ohf_st.CloudEvent]:
    """The cloud's own events, and AWS refusing RunInstances for want of permission."""
    return st.one_of(
        ohf_st.cloud_events(),
        st.just(ohf_st.CloudEvent(kind="capacity_fault", code="UnauthorizedOperation")),
    )


def limit(template: Template, provider: ProviderConfig) -> int:
    """The template's maxNumber on the provider (its view: defaults and overrides applied)."""
    return effective(template, provider).unwrap().max_number


def may_use(template: Template, provider: ProviderConfig) -> bool:
    """Whether the template's `providers` list (if any) lets it run on the provider."""
    return template.providers is None or provider.name in template.providers


def room(template: Template, provider: ProviderConfig, state: State) -> int:
    """Units of the template the provider can still take (-1: unlimited)."""
    most = limit(template, provider)
    if most < 0:
        return -1
    return max(most - units_held(state, template.template_id, provider.name), 0)


def summed_room(template: Template, providers: tuple[ProviderConfig, ...], state: State) -> int:
    """HF's availableNumber: room over the enabled providers it may use; -1 if one is unlimited."""
    rooms = [room(template, p, state) for p in providers if p.enabled and may_use(template, p)]
    return -1 if any(r < 0 for r in rooms) else sum(rooms)


# HF's one status for a request placed in parts, by which statuses its parts have (a truth
# table, stated as data): running while any part runs; complete only when every part is.
COMBINED: dict[frozenset[str], str] = {
    frozenset({"running"}): "running",
    frozenset({"complete"}): "complete",
    frozenset({"complete_with_error"}): "complete_with_error",
    frozenset({"running", "complete"}): "running",
    frozenset({"running", "complete_with_error"}): "running",
    frozenset({"complete", "complete_with_error"}): "complete_with_error",
    frozenset({"running", "complete", "complete_with_error"}): "running",
}
PART_STATUSES = ("running", "complete", "complete_with_error")


def parts_of(state: State, rid: str) -> list[Request]:
    """The HF request and every part placed for it on other providers."""
    return [state.requests[rid], *(r for r in state.requests.values() if r.parent == rid)]


def described(parts: list[Request]) -> list[tuple[str, str, int, str, str]]:
    """The parts of a request, for failure messages."""
    return [(p.request_id, p.provider, p.machine_count, p.status, p.message) for p in parts]


def good_units(request: Request, results: dict[str, str]) -> int:
    """Units of the request's machines that HF's reply shows `succeed`."""
    return sum(m.units for m in request.machines if results[m.machine_id] == "succeed")


class ProvidersHostFactory(HostFactory):
    """HF and two or three clouds acting on one ohf config with several providers."""

    def __init__(self) -> None:
        super().__init__()
        self.fp: FakeProviders | None = None
        # Provider -> the requests in the state, and the instances in its cloud, when disabled.
        self.disabled_at: dict[str, tuple[set[str], set[str]]] = {}
        self.asked: dict[str, int] = {}  # HF request id -> the units HF asked for

    # --- plumbing -----------------------------------------------------------------------

    @property
    def providers(self) -> FakeProviders:
        assert self.fp is not None
        return self.fp

    @property
    def config_providers(self) -> tuple[ProviderConfig, ...]:
        return self.providers.shell.settings.config.providers

    @property
    def placement(self) -> PlacementConfig:
        return self.providers.shell.settings.config.placement

    def clouds(self) -> dict[str, fake.FakeCloud]:
        return {name: ref.cloud for name, ref in self.providers.refs.items()}

    def instances(self) -> dict[str, tuple[str, fake.FakeInstance]]:
        """Every instance in every cloud, by id, with the provider whose cloud holds it."""
        return {
            i: (name, x)
            for name, cloud in self.clouds().items()
            for i, x in cloud.instances.items()
        }

    def now(self) -> int:
        return self.providers.shell.now()

    def open_now(self) -> frozenset[str]:
        return open_circuits(self.providers.shell.settings, self.now())

    def hf(self, name: str, body: Any) -> tuple[int, Any, State, State]:
        """Run one HF call; check its stdout shape and the failed-call law."""
        before_bytes = self.state_bytes()
        before = self.state()
        code, reply = call_all(self.providers, name, body)
        after = self.state()
        self.has_machines = any(r.machines for r in after.requests.values())
        event(f"{name} exit {code}")
        assert code in (0, 1), code
        if code == 0:
            msgspec.convert(reply, OUTPUTS[name])
            return code, reply, before, after
        assert set(reply) == {"message"}, reply
        msgspec.convert(reply, ErrorOut)
        message = reply["message"]
        if name == "requestMachines":
            event(f"requestMachines failed: {' '.join(message.split()[2:5])}")
        if name == "requestMachines" and message.startswith("request req-"):
            self.check_failed_placement(message.split()[1].rstrip(":"), before, after)
        elif name == "requestReturnMachines" and "nothing was terminated" in message:
            assert returned(after) == returned(before), reply
            assert after.returns == before.returns
        elif name == "requestReturnMachines" and "started, then" in message:
            (new_id,) = set(after.returns) - set(before.returns)
            took = after.returns[new_id].machine_ids
            assert took and all(returned(after)[i] == new_id for i in took), reply
        else:
            assert self.state_bytes() == before_bytes, f"{name} failed but changed state"
        return code, reply, before, after

    def check_failed_placement(self, hf_id: str, before: State, after: State) -> None:
        """It reached AWS and launched nothing: the request and its parts are kept, empty."""
        new = set(after.requests) - set(before.requests)
        assert hf_id in new, (hf_id, sorted(new))
        assert all(i == hf_id or after.requests[i].parent == hf_id for i in new), sorted(new)
        assert all(not after.requests[i].machines for i in new), sorted(new)
        # The last part failed; any before it failed too, or were cut down to nothing.
        *earlier, last = sorted(new, key=lambda i: (len(i), i))
        assert (after.requests[last].phase, after.requests[last].status) == (
            "failed",
            "complete_with_error",
        )
        assert all(
            after.requests[i].phase == "failed" or after.requests[i].machine_count == 0
            for i in earlier
        ), described([after.requests[i] for i in sorted(new)])
        rest = {k: v for k, v in after.requests.items() if k not in new}
        assert msgspec.structs.replace(after, requests=rest) == before
        tagged = {i for i, (_, x) in self.instances().items() if x.instance.request_id in new}
        assert not tagged, f"a failed requestMachines left instances: {sorted(tagged)}"

    def rebuild(self, providers: tuple[ProviderConfig, ...]) -> None:
        """The same clouds and state under a changed `[[providers]]` list (an edited config)."""
        shell = self.providers.shell
        config = msgspec.structs.replace(shell.settings.config, providers=providers)
        settings_ = msgspec.structs.replace(shell.settings, config=config)
        self.fp = FakeProviders(
            shell=msgspec.structs.replace(shell, settings=settings_), refs=self.providers.refs
        )

    # --- set-up -------------------------------------------------------------------------

    @staticmethod
    def capacities() -> st.SearchStrategy[dict[str, int] | None]:
        return capacities()

    def make_templates(self, data: st.DataObject) -> list[Template]:
        return data.draw(
            ohf_st.template_lists(
                min_size=1, max_size=3, with_extras=False, max_numbers=MAX_NUMBERS
            ),
            label="templates",
        )

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        templates = self.make_templates(data)
        providers = data.draw(provider_setups([t.template_id for t in templates]))
        names = [p.name for p in providers]
        templates = [
            restricted(t, data.draw(st.none() | subsets(names, 2, min_size=1), label="allowed"))
            for t in templates
        ]
        clouds = {
            p.name: msgspec.structs.replace(
                fake.new_cloud(
                    parameters=ohf_st.SSM_IMAGES,
                    capacity=data.draw(self.capacities(), label="capacity"),
                ),
                counter=STRIDE * i,
            )
            for i, p in enumerate(providers)
        }
        placement = data.draw(placements(), label="placement")
        self.fp = fake_providers(templates, self.dir, providers, placement=placement, clouds=clouds)
        self.templates = {t.template_id: t for t in templates}
        self.disabled_at = {
            p.name: self.disabled_snapshot(p.name) for p in providers if not p.enabled
        }
        event(f"policy {placement.policy}, failover {placement.failover}")
        event(f"{len(providers)} providers, {sum(not p.enabled for p in providers)} disabled")

    def disabled_snapshot(self, name: str) -> tuple[set[str], set[str]]:
        state = self.state() if self.state_path.exists() else State()
        return set(state.requests), set(self.providers.refs[name].cloud.instances)

    # --- HF's calls ---------------------------------------------------------------------

    @rule(data=st.data())
    def check_templates(self, data: st.DataObject) -> None:
        code, reply, before, _ = self.hf("getAvailableTemplates", {})
        assert code == 0, reply
        listed = {t["templateId"]: t["availableNumber"] for t in reply["templates"]}
        expected = {
            tid: summed_room(t, self.config_providers, before) for tid, t in self.templates.items()
        }
        if self.placement.list_per_provider:
            expected.update(
                {
                    f"{tid}{PROVIDER_SEPARATOR}{p.name}": room(t, p, before)
                    for tid, t in self.templates.items()
                    for p in self.config_providers
                    if p.enabled and may_use(t, p)
                }
            )
        assert listed == expected

    def expected_first(self, template: Template, state: State) -> str | None:
        """Where first_available / priority put a request first (None: another policy)."""
        policy = self.placement.policy
        if policy not in ("first_available", "priority"):
            return None
        shut = self.open_now()
        usable = [
            (p.priority if policy == "priority" else 0, i, p.name)
            for i, p in enumerate(self.config_providers)
            if p.enabled
            and may_use(template, p)
            and room(template, p, state) != 0
            and p.name not in shut
        ]
        return min(usable)[2] if usable else None

    def draw_ask(
        self, data: st.DataObject, state: State
    ) -> tuple[Template | None, str, str | None, int, int]:
        """HF's ask: (template, the id HF names, pinned provider, units free for it, count)."""
        tid = data.draw(st.sampled_from(sorted(self.templates)), label="tid")
        template: Template | None = self.templates[tid]
        shown, pin = tid, None
        if data.draw(sometimes(10), label="unknown template"):
            template, shown = None, "NoSuchTemplate"
        elif self.placement.list_per_provider and data.draw(sometimes(3), label="pinned"):
            pin = data.draw(st.sampled_from([p.name for p in self.config_providers]), label="pin")
            shown = f"{tid}{PROVIDER_SEPARATOR}{pin}"
            event("HF asks for a template on one provider")
        if template is None:
            free = 0
        elif pin is None:
            free = summed_room(template, self.config_providers, state)
        else:
            chosen = next(p for p in self.config_providers if p.name == pin)
            usable = chosen.enabled and may_use(template, chosen)
            free = room(template, chosen, state) if usable else 0
        over = data.draw(sometimes(5), label="over the limit")
        count = data.draw(
            st.integers(max(free, 0) + 1, max(free, 0) + 3)
            if over
            else st.integers(1, free if free > 0 else 5),
            label="count",
        )
        return template, shown, pin, free, count

    def check_asked(self, hf_id: str, parts: list[Request]) -> None:
        """What HF asked for is asked of the parts together, however it was split or spilled."""
        placed = sum(p.machine_count for p in parts)
        assert placed == self.asked[hf_id], (self.asked[hf_id], described(parts))

    @rule(data=st.data())
    def acquire_machines(self, data: st.DataObject) -> None:
        state = self.state()
        template, shown, pin, free, count = self.draw_ask(data, state)
        first = self.expected_first(template, state) if template and pin is None else None
        shut = self.open_now()
        enabled = {p.name for p in self.config_providers if p.enabled}
        body = {"template": {"templateId": shown, "machineCount": count}}
        code, reply, before, after = self.hf("requestMachines", body)
        if template is None or (free != -1 and count > free):
            assert code == 1, reply
            assert after.requests == before.requests
            return
        new = sorted(set(after.requests) - set(before.requests), key=lambda i: (len(i), i))
        if not new:
            # Refused before anything was recorded: the providers with room whose circuit is
            # closed cannot take it all (or there are none).
            assert code == 1, reply
            usable = [
                room(template, p, before)
                for p in self.config_providers
                if p.enabled
                and may_use(template, p)
                and p.name not in shut
                and (pin is None or p.name == pin)
            ]
            assert all(u >= 0 for u in usable) and count > sum(usable), (reply, usable)
            return
        hf_id = new[0]
        parts = [after.requests[i] for i in new]
        event(f"requestMachines placed in {len(parts)} part(s)")
        self.asked[hf_id] = count
        self.check_asked(hf_id, parts)
        assert all(p.parent == (None if p.request_id == hf_id else hf_id) for p in parts)
        assert all(p.answered and p.template_id == template.template_id for p in parts)
        used = [p.provider for p in parts]
        assert len(set(used)) == len(used), used
        assert set(used) <= enabled, (used, enabled)
        assert not set(used) & shut, (used, shut)
        by_name = {p.name: p for p in self.config_providers}
        assert all(may_use(template, by_name[n]) for n in used), used
        assert pin is None or used == [pin], (used, pin)
        # Every part but the last took all the room its provider had: the rest is placed on
        # the next. Only with `failover` does a provider that came short hand on the rest.
        rooms = [room(template, by_name[p.provider], before) for p in parts]
        shares = [p.machine_count for p in parts]
        if not self.placement.failover:
            assert shares[:-1] == rooms[:-1], (shares, rooms)
        assert first is None or used[0] == first, (used, first)
        if code == 0:
            assert reply["requestId"] == hf_id
            assert any(
                p.machines or (p.fleet_id and not p.fleet_done) or p.phase == "launching"
                for p in parts
            ), parts

    # Asking for machines is what the providers are for: twice the weight of other rules.
    @rule(data=st.data())
    def acquire_more_machines(self, data: st.DataObject) -> None:
        self.acquire_machines(data)

    @rule(data=st.data())
    def poll_request_status(self, data: st.DataObject) -> None:
        state = self.state()
        roots = sorted(r for r, req in state.requests.items() if req.parent is None)
        known = roots + sorted(state.returns)
        pool = st.one_of(st.sampled_from(known), st.just("unknown")) if known else st.just("x")
        picks = data.draw(st.lists(pool, min_size=1, max_size=4), label="ids")
        rids = [self.unknown_id("req") if p in ("unknown", "x") else p for p in picks]
        self.check_status(rids)

    def check_status(self, rids: list[str]) -> list[str]:
        """getRequestStatus of `rids`, held to HF's meaning of each request's status."""
        code, reply, before, after = self.hf(
            "getRequestStatus", {"requests": [{"requestId": r} for r in rids]}
        )
        assert code == 0, reply
        # Empty unless some provider's describe failed (its last known state is shown).
        fresh = not reply["message"]
        clouds = self.clouds()
        for out in reply["requests"]:
            rid = out["requestId"]
            if rid not in after.requests and rid not in after.returns:
                assert out["status"] == "complete_with_error"
                assert out["machines"] == []
                continue
            if rid in after.requests:
                # Once every part has ended, nothing more is placed for the request.
                assert not self.reopened(rid, before, after), described(parts_of(after, rid))
            if rid in self.final_status:
                assert out["status"] == self.final_status[rid], (
                    rid,
                    out,
                    described(parts_of(after, rid)),
                )
            elif out["status"] in TERMINAL:
                self.final_status[rid] = out["status"]
            if rid in after.requests:
                parts = parts_of(after, rid)
                self.check_parts_status(parts, out)
                new_parts = [p.request_id for p in parts if p.request_id not in before.requests]
                if new_parts:
                    event("getRequestStatus placed the rest of a fleet on another provider")
                self.check_spilled(parts, before)
                if rid in self.asked:
                    self.check_asked(rid, parts)
                if out["status"] == "complete" and rid in self.asked:
                    results = {m["machineId"]: m["result"] for m in out["machines"]}
                    got = sum(good_units(p, results) for p in parts)
                    assert got >= self.asked[rid], (rid, got, self.asked[rid], out)
                for part in parts:
                    observed = (
                        fresh
                        and part.request_id in before.requests
                        and not settled(before.requests[part.request_id])
                    )
                    self.check_machines(part, out, clouds[part.provider], observed)
            else:
                ret = after.returns[rid]
                assert {m["machineId"] for m in out["machines"]} <= set(ret.machine_ids)
                for machine in out["machines"]:
                    ended = machine["status"] in ENDED
                    assert machine["result"] == ("succeed" if ended else "executing"), machine
                if out["status"] == "complete":
                    assert all(m["status"] in ENDED for m in out["machines"]), out
        return [out["status"] for out in reply["requests"] if out["requestId"] in after.requests]

    @staticmethod
    def check_spilled(parts: list[Request], before: State) -> None:
        """A part whose rest went elsewhere keeps the units it delivered, returned ones too.

        Only what it never delivered moves to the next provider: a machine HF gave back is not
        replaced on another.
        """
        for part in parts:
            old = before.requests.get(part.request_id)
            if old is None or part.machine_count >= old.machine_count:
                continue
            given_back = sum(
                m.units
                for m in part.machines
                if m.returned_by is not None and m.returned_by != "cut-off"
            )
            assert part.machine_count >= given_back + live_units(part), (
                "units HF returned were placed again",
                described([old, part]),
            )

    def check_parts_status(self, parts: list[Request], out: dict[str, Any]) -> None:
        """The machines of every part, and one status over them: running while any part runs."""
        shown = sorted(m["machineId"] for m in out["machines"])
        assert shown == sorted(m.machine_id for p in parts for m in p.machines), out
        statuses = tuple(acquire_status(p)[0] for p in parts)
        assert out["status"] == COMBINED[frozenset(statuses)], (out["status"], statuses)
        results = {m["machineId"]: m["result"] for m in out["machines"]}
        if out["status"] == "complete":
            assert all(good_units(p, results) >= p.machine_count for p in parts), out
        elif out["status"] == "complete_with_error":
            assert any(good_units(p, results) < p.machine_count for p in parts), out
        else:
            assert any(
                "executing" in (results[m.machine_id] for m in p.machines)
                or p.phase == "launching"
                or (p.fleet_id is not None and not p.fleet_done)
                for p in parts
            ), out

    def check_machines(
        self, part: Request, out: dict[str, Any], cloud: fake.FakeCloud, observed: bool
    ) -> None:
        """Decided results stay; a described machine shows what its own cloud says."""
        ids = {m.machine_id for m in part.machines}
        for machine in out["machines"]:
            mid = machine["machineId"]
            if mid not in ids:
                continue
            if mid in self.decided:
                assert machine["result"] == self.decided[mid], (mid, machine)
            elif machine["result"] != "executing":
                self.decided[mid] = machine["result"]
            if observed and mid in cloud.instances:
                now_state = cloud.instances[mid].instance.state
                shown = {now_state, "shutting-down"} if now_state == "terminated" else {now_state}
                assert machine["status"] in shown, (part.provider, machine, now_state)
            elif observed:
                young = cloud.now - machine["launchtime"] < VISIBILITY_GRACE_SECONDS
                gone = ("gone", "terminated")
                assert machine["status"] in ((*gone, "pending") if young else gone), machine

    @precondition(lambda self: self.has_machines)
    @rule(data=st.data())
    def return_a_whole_request(self, data: st.DataObject) -> None:
        """HF scales in: every machine of one HF request (all its parts) not returned yet."""
        state = self.state()
        full = sorted(
            r
            for r, req in state.requests.items()
            if req.parent is None and any(p.machines for p in parts_of(state, r))
        )
        rid = data.draw(st.sampled_from(full), label="request")
        machines = [m for p in parts_of(state, rid) for m in p.machines]
        named = [m.machine_id for m in machines if not m.returned_by] or [machines[0].machine_id]
        ohf_ids = {m.machine_id for r in state.requests.values() for m in r.machines}
        self.check_return(named, ohf_ids)

    FAULT_CODES: tuple[str, ...] = ("RequestLimitExceeded", "circuit open")

    def check_return(self, named: list[str], ohf_ids: set[str]) -> None:
        """requestReturnMachines of `named`: exactly those, each in its own cloud, or nothing."""
        before_clouds = self.instances()
        body = {"machines": [{"name": "", "machineId": i} for i in named]}
        code, reply, before, after = self.hf("requestReturnMachines", body)
        after_clouds = self.instances()
        owner = {m.machine_id: r for r in before.requests.values() for m in r.machines}
        changed = {
            i
            for i, (_, x) in after_clouds.items()
            if i in before_clouds and x.instance.state != before_clouds[i][1].instance.state
        }
        assert changed <= self.may_change(set(named), before), (changed, named)
        for i in changed & set(owner):
            # Every termination happened in the account of the request that holds the machine.
            assert after_clouds[i][0] == owner[i].provider, (i, after_clouds[i][0], owner[i])
        moved = {i for i in returned(after) if returned(after)[i] != returned(before).get(i)}
        assert moved <= set(named), (moved, named)
        if not set(named) <= ohf_ids:
            assert code == 1, reply
            assert "not ohf's" in reply["message"]
            assert not changed
            return
        if code == 1:
            vanished = [i for i in named if i not in before_clouds]
            assert vanished or any(c in reply["message"] for c in self.FAULT_CODES), reply
            if "started, then" not in reply["message"]:
                assert not changed
            return
        rid = reply["requestId"]
        assert set(after.returns[rid].machine_ids) == set(named)
        assert moved == set(named)
        assert all(returned(after)[i] == rid for i in named)
        live_before = {
            i
            for i in named
            if i in before_clouds and before_clouds[i][1].instance.state in ("pending", "running")
        }
        still = {
            i for i in live_before if after_clouds[i][1].instance.state in ("pending", "running")
        }
        assert not still, f"returned but still running in its own cloud: {sorted(still)}"

    def reclaimed(self, ids: set[str]) -> set[str]:
        """The machines among `ids` that their cloud is taking or has taken."""
        known = self.instances()
        return {i for i in ids if i not in known or known[i][1].instance.state in LOST_STATES}

    # --- what the clouds do by themselves, config edits, time -------------------------------

    @rule(data=st.data())
    def cloud_acts(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.providers.refs)), label="provider")
        cloud_event = data.draw(cloud_faults(), label="event")
        event(f"cloud: {cloud_event.kind} {cloud_event.code}")
        ref = self.providers.refs[name]
        ref.cloud = ohf_st.apply_event(ref.cloud, cloud_event)

    @rule(seconds=st.sampled_from((30, 200, 400)))
    def time_passes(self, seconds: int) -> None:
        advance(self.providers.refs, seconds)

    @rule(data=st.data())
    def provider_changes(self, data: st.DataObject) -> None:
        """A provider's circuit opens, or the administrator disables (or enables) it."""
        providers = self.config_providers
        index = data.draw(st.integers(0, len(providers) - 1), label="provider")
        if data.draw(st.booleans(), label="circuit opens"):
            self.open_circuit(providers[index].name)
            return
        flipped = msgspec.structs.replace(providers[index], enabled=not providers[index].enabled)
        self.rebuild((*providers[:index], flipped, *providers[index + 1 :]))
        if flipped.enabled:
            self.disabled_at.pop(flipped.name, None)
        else:
            self.disabled_at[flipped.name] = self.disabled_snapshot(flipped.name)
        event(f"provider {'enabled' if flipped.enabled else 'disabled'}")

    def open_circuit(self, name: str) -> None:
        """The provider's breaker opens (its AWS failed five times in a row, say)."""
        path = Path(self.dir) / BREAKER_FILE
        held = (
            msgspec.json.decode(path.read_bytes(), type=BreakerFile).breakers
            if path.exists()
            else {}
        )
        now = self.now()
        opened = Breaker(failures=5, first_failure_at=now - 10, open_until=now + COOLDOWN)
        path.write_bytes(
            msgspec.json.encode(BreakerFile(breakers={**held, f"provider:{name}": opened}))
        )
        event("circuit opens")

    @precondition(lambda self: self.fp is not None and self.state_path.exists())
    @rule(data=st.data())
    def hf_returns_everything(self, data: st.DataObject) -> None:
        """HF drains: polls, returns every machine it holds, polls until nothing is left."""
        for ref in self.providers.refs.values():
            # Injected faults would fail the drain's calls: AWS has recovered by now.
            ref.cloud = msgspec.structs.replace(ref.cloud, faults=())
        (Path(self.dir) / BREAKER_FILE).unlink(missing_ok=True)
        for _ in range(8):
            # HF waits for its requests to finish (a part placed at a poll fills at the next),
            # then gives back every machine it got.
            for _ in range(4):
                if self.poll_all():
                    break
            state = self.state()
            held = [
                m.machine_id
                for r in state.requests.values()
                for m in r.machines
                if m.returned_by is None
            ]
            if not held:
                break
            body = {"machines": [{"name": "", "machineId": i} for i in held]}
            code, reply, _, _ = self.hf("requestReturnMachines", body)
            assert code == 0, reply
        else:
            raise AssertionError(f"HF still gets machines after eight rounds of returns: {held}")
        for _ in range(3):
            self.poll_all()
        state = self.state()
        for name, cloud in self.clouds().items():
            live = fake.live_instances(cloud)
            assert not live, self.drain_report(name, sorted(live), state)
            left = {k: v for k, v in fake.owned_resources(cloud).items() if v}
            assert not left, f"{name}: ohf-created resources left behind: {left}"

    def drain_report(self, name: str, live: list[str], state: State) -> str:
        cloud = self.providers.refs[name].cloud
        owners = {cloud.instances[i].instance.request_id for i in live}
        return (
            f"still running in {name} after HF returned everything: {live}; requests: "
            + "; ".join(
                f"{r.request_id} on {r.provider} parent={r.parent} count={r.machine_count} "
                f"status={r.status} msg={r.message!r}"
                for r in state.requests.values()
                if r.request_id in owners or (r.parent and r.parent in owners)
            )
        )

    def poll_all(self) -> bool:
        """HF polls every request it made: True when all of them have finished."""
        state = self.state()
        ids = sorted(r for r, req in state.requests.items() if req.parent is None)
        ids += sorted(state.returns)
        return all(s in TERMINAL for s in self.check_status(ids)) if ids else True

    def reopened(self, rid: str, before: State, after: State) -> bool:
        """A part was added (spilled over) to a request whose parts had all ended before."""
        if rid not in before.requests:
            return False
        added = len(parts_of(after, rid)) > len(parts_of(before, rid))
        return added and all(p.status in TERMINAL for p in parts_of(before, rid))

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def every_live_instance_is_in_exactly_one_request(self) -> None:
        if self.fp is None:
            return
        state = self.state()
        owners: dict[str, list[str]] = {}
        for rid, request in state.requests.items():
            for machine in request.machines:
                owners.setdefault(machine.machine_id, []).append(rid)
        assert all(len(r) == 1 for r in owners.values()), owners
        for name, cloud in self.clouds().items():
            for iid, instance in fake.live_instances(cloud).items():
                if iid not in owners and self.reachable_in(instance, state, name):
                    continue
                assert iid in owners, f"lost machine {iid} in {name}"
                assert owners[iid] == [instance.request_id], (iid, owners[iid])
                holder = state.requests[owners[iid][0]]
                assert holder.provider == name, (
                    f"{iid} lives in {name}, its request on {holder.provider}"
                )

    def reachable_in(self, instance: Any, state: State, name: str) -> bool:
        """Whether an instance the state lacks is still ohf's to find: never, for RunInstances."""
        del instance, state, name
        return False

    @invariant()
    def no_template_holds_more_than_its_max_number(self) -> None:
        if self.fp is None:
            return
        state = self.state()
        for tid, template in self.templates.items():
            for provider in self.config_providers:
                held = units_held(state, tid, provider.name)
                if not may_use(template, provider):
                    assert held == 0, (tid, provider.name, held)
                most = limit(template, provider)
                assert most < 0 or held <= most, (tid, provider.name, held, most)

    @invariant()
    def nothing_new_goes_to_a_disabled_provider(self) -> None:
        if self.fp is None:
            return
        state = self.state()
        for name, (requests, instances) in self.disabled_at.items():
            placed = {r for r, req in state.requests.items() if req.provider == name} - requests
            assert not placed, f"placed on disabled provider {name}: {sorted(placed)}"
            cloud = self.providers.refs[name].cloud
            for iid, item in cloud.instances.items():
                if iid in instances:
                    continue
                # Only a fleet placed before the provider was disabled may still fill up.
                holder = state.requests.get(item.instance.request_id or "")
                assert holder is not None and holder.request_id in requests, (name, iid)
                assert holder.fleet_id is not None, f"new instance {iid} in disabled {name}"


TestProvidersHostFactory = ProvidersHostFactory.TestCase
TestProvidersHostFactory.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# EC2 Fleet templates, mostly filling asynchronously (and RunInstances ones, for the mix).
FLEET_APIS = (
    ("EC2Fleet", "request"),
    ("EC2Fleet", "maintain"),
    ("EC2Fleet", "request"),
    ("EC2Fleet", "instant"),
    ("RunInstances", None),
)


@st.composite
def ec2_fleet_templates(draw: st.DrawFn, template_id: str) -> Template:
    """A template on EC2 Fleet (request/maintain/instant) or RunInstances, weights 1 or 2."""
    api, fleet_type = draw(st.sampled_from(FLEET_APIS))
    price = draw(st.sampled_from(("ondemand", "spot", "heterogeneous")))
    if api == "RunInstances" and price == "heterogeneous":
        price = "spot"
    weights = st.dictionaries(
        st.sampled_from(ohf_st.INSTANCE_TYPES), st.sampled_from((1, 1, 2)), min_size=1, max_size=2
    )
    return Template(
        template_id=template_id,
        max_number=draw(MAX_NUMBERS),
        image_id=draw(ohf_st.image_ids()),
        vm_types=draw(weights),
        subnet_id=draw(st.sampled_from(("subnet-0aaa", "subnet-0aaa,subnet-0bbb"))),
        price_type=price,  # type: ignore[arg-type]
        percent_on_demand=draw(st.sampled_from((None, 0, 50, 100))),
        provider_api=api,  # type: ignore[arg-type]
        fleet_type=fleet_type,  # type: ignore[arg-type]
        fleet_role=None if api == "RunInstances" else FLEET_ROLE,
    )


class FleetProvidersHostFactory(ProvidersHostFactory):
    """The same, with EC2 Fleet templates filling asynchronously and spilling over at polls."""

    def make_templates(self, data: st.DataObject) -> list[Template]:
        ids = data.draw(
            st.lists(st.sampled_from(("F1", "F2", "F3")), min_size=1, max_size=3, unique=True),
            label="template ids",
        )
        templates = [data.draw(ec2_fleet_templates(i), label=i) for i in ids]
        for t in templates:
            event(f"template {t.provider_api}/{t.fleet_type}")
        return templates

    @staticmethod
    def capacities() -> st.SearchStrategy[dict[str, int] | None]:
        # Fleets that stop short are the ones that spill over: clouds are mostly small.
        return st.one_of(capacities(3), capacities(3).filter(lambda c: c is not None))

    @rule(data=st.data())
    def fleets_act(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.providers.refs)), label="provider")
        fleet_event = data.draw(ohf_st.fleet_events(), label="event")
        event(f"fleet: {fleet_event.kind}")
        ref = self.providers.refs[name]
        ref.cloud = ohf_st.apply_fleet_event(ref.cloud, fleet_event)

    FAULT_CODES = ("RequestLimitExceeded", "InternalError", "circuit open")

    def reclaimed(self, ids: set[str]) -> set[str]:
        """Taken or being taken: also running spot machines with a notice from AWS."""
        signalled = {
            i for cloud in self.clouds().values() for i, sigs in cloud.signals.items() if sigs
        }
        return super().reclaimed(ids) | (ids & signalled)

    def reachable_in(self, instance: Any, state: State, name: str) -> bool:
        """Launched by a fleet of this provider since the last poll: the next one adopts it."""
        request = state.requests.get(instance.request_id or "")
        return request is not None and request.fleet_id is not None and request.provider == name


TestFleetProvidersHostFactory = FleetProvidersHostFactory.TestCase
TestFleetProvidersHostFactory.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_rest_over_one_providers_room_goes_to_the_next(tmp_path: Path) -> None:
    """Found by the machine above: two providers, maxNumber 6 each, HF asks for 7."""
    t = Template(template_id="t", max_number=6, image_id=ohf_st.AMI_IDS[0], vm_type="c5.large")
    fp = fake_providers([t], tmp_path, [ProviderConfig(name="east"), ProviderConfig(name="west")])
    code, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "t", "machineCount": 7}}
    )
    assert code == 0, out
    advance(fp.refs, 30)
    _, status = call_all(fp, "getRequestStatus", {"requests": [{"requestId": out["requestId"]}]})
    (request,) = status["requests"]
    launched = {n: len(fake.live_instances(r.cloud)) for n, r in fp.refs.items()}
    assert launched == {"east": 6, "west": 1}, (launched, out, request)
    assert request["status"] == "complete" and len(request["machines"]) == 7


def test_a_request_hf_saw_end_gets_no_more_machines(tmp_path: Path) -> None:
    """Found by the machine above: a short fleet with nowhere to go, then room elsewhere.

    HF was told the request ended (complete_with_error); it must not start again later.
    """
    fleet = Template(
        template_id="F1",
        max_number=1,
        image_id=ohf_st.AMI_IDS[0],
        vm_types={"c5.large": 1},
        subnet_id="subnet-0aaa",
        provider_api="EC2Fleet",
        fleet_type="request",
    )
    west = msgspec.structs.replace(fake.new_cloud(capacity={"c5.large": 0}), counter=STRIDE)
    fp = fake_providers(
        [fleet],
        tmp_path,
        [ProviderConfig(name="east"), ProviderConfig(name="west")],
        clouds={"west": west},
    )

    def ask() -> str:
        code, out = call_all(
            fp, "requestMachines", {"template": {"templateId": "F1", "machineCount": 1}}
        )
        assert code == 0, out
        return str(out["requestId"])

    def poll(rid: str) -> dict[str, Any]:
        advance(fp.refs, 30)
        code, out = call_all(fp, "getRequestStatus", {"requests": [{"requestId": rid}]})
        assert code == 0, out
        return out["requests"][0]  # type: ignore[no-any-return]

    first = ask()  # east: its one unit
    (machine,) = poll(first)["machines"]
    second = ask()  # west, whose fleet stops short with nowhere else to go
    assert poll(second)["status"] == "complete_with_error"
    code, _ = call_all(
        fp, "requestReturnMachines", {"machines": [{"name": "", "machineId": machine["machineId"]}]}
    )
    assert code == 0
    later = [poll(second) for _ in range(2)]
    assert [s["status"] for s in later] == ["complete_with_error"] * 2, later
    assert fake.live_instances(fp.refs["east"].cloud) == {}


@pytest.mark.parametrize("why", ["capacity", "circuit"])
def test_units_no_provider_takes_stay_with_the_request(tmp_path: Path, why: str) -> None:
    """Found by the machine above. Three providers, maxNumber 4 each, HF asks for 9:
    - capacity: west has no capacity, so east takes 4, north 4 (west's), and 1 is left;
    - circuit: west's circuit is open, so east and north can take 4 each (refused).
    test_a_short_fleets_rest_is_not_dropped is the same at a poll.
    """
    t = Template(template_id="t", max_number=4, image_id=ohf_st.AMI_IDS[0], vm_type="c5.large")
    names = ("east", "west", "north")
    clouds = {
        name: msgspec.structs.replace(
            fake.new_cloud(
                capacity={"c5.large": 0} if name == "west" and why == "capacity" else None
            ),
            counter=STRIDE * i,
        )
        for i, name in enumerate(names)
    }
    fp = fake_providers([t], tmp_path, [ProviderConfig(name=n) for n in names], clouds=clouds)
    if why == "circuit":
        now = fp.refs["east"].cloud.now
        opened = Breaker(failures=5, first_failure_at=now - 10, open_until=now + COOLDOWN)
        (tmp_path / BREAKER_FILE).write_bytes(
            msgspec.json.encode(BreakerFile(breakers={"provider:west": opened}))
        )
    code, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "t", "machineCount": 9}}
    )
    if why == "circuit":
        assert code == 1 and "over what can be placed now" in out["message"], out
        return
    assert code == 0, out
    advance(fp.refs, 30)
    _, status = call_all(fp, "getRequestStatus", {"requests": [{"requestId": out["requestId"]}]})
    (request,) = status["requests"]
    # Eight machines for an ask of nine: the request ends complete_with_error.
    assert len(request["machines"]) == 8 and request["status"] == "complete_with_error", request


def test_a_short_fleets_rest_is_not_dropped(tmp_path: Path) -> None:
    """Found by the fleet machine: east's fleet gets nothing of 5, west has room for 4 only."""
    fleet = Template(
        template_id="F1",
        max_number=6,
        image_id=ohf_st.AMI_IDS[0],
        vm_types={"c5.large": 1},
        subnet_id="subnet-0aaa",
        provider_api="EC2Fleet",
        fleet_type="request",
    )
    east = fake.new_cloud(capacity={"c5.large": 0})
    west = ProviderConfig(name="west", templates={"F1": {"maxNumber": 4}})
    fp = fake_providers(
        [fleet], tmp_path, [ProviderConfig(name="east"), west], clouds={"east": east}
    )
    code, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "F1", "machineCount": 5}}
    )
    assert code == 0, out
    statuses = []
    for _ in range(3):
        advance(fp.refs, 30)
        _, status = call_all(
            fp, "getRequestStatus", {"requests": [{"requestId": out["requestId"]}]}
        )
        statuses.append(status["requests"][0])
    # Four machines for an ask of five: the request ends complete_with_error.
    assert len(statuses[-1]["machines"]) == 4, statuses
    assert statuses[-1]["status"] == "complete_with_error", statuses


def test_what_one_part_could_not_take_stays_owed(tmp_path: Path) -> None:
    """Found by the machine above: failover off, east (room 4) can start 2, HF asks for 5."""
    t = Template(template_id="t", max_number=4, image_id=ohf_st.AMI_IDS[0], vm_type="c5.large")
    fp = fake_providers(
        [t],
        tmp_path,
        [ProviderConfig(name="east"), ProviderConfig(name="west")],
        placement=PlacementConfig(failover=False),
        clouds={"east": fake.new_cloud(capacity={"c5.large": 2})},
    )
    code, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "t", "machineCount": 5}}
    )
    assert code == 0, out
    state = msgspec.json.decode((tmp_path / "ohf-state.json").read_bytes(), type=State)
    (request,) = state.requests.values()
    assert (request.provider, len(request.machines)) == ("east", 2)
    # HF asked for 5: east owes the 3 it did not start (2 of its share, 1 over its room).
    assert request.machine_count == 5, (request.machine_count, out)


def _part(status: str, number: int, provider: str, now: int) -> Request:
    """Part `number` of req-00000001 on `provider`, whose own status stays `status` at a poll.

    running: recorded just now, its launch not confirmed yet (it runs through the grace);
    complete: its one unit delivered, then returned and gone; complete_with_error: a launch
    that started nothing.
    """
    hf_id = "req-00000001"
    rid = hf_id if number == 1 else f"{hf_id}.{number}"
    part = Request(
        request_id=rid,
        template_id="t",
        machine_count=1,
        client_token=rid,
        created_at=now,
        provider=provider,
        parent=None if number == 1 else hf_id,
    )
    if status == "running":
        return part
    if status == "complete":
        machine = Machine(
            machine_id=f"i-{number:017x}",
            state="terminated",
            result="succeed",
            returned_by="ret-00000001",
        )
        return msgspec.structs.replace(
            part, phase="launched", status="complete", machines=(machine,)
        )
    return msgspec.structs.replace(part, phase="failed", status="complete_with_error")


@pytest.mark.parametrize(
    "statuses",
    [combo for count in (1, 2, 3) for combo in itertools.product(PART_STATUSES, repeat=count)],
    ids="-".join,
)
def test_one_status_over_the_parts_follows_the_table(
    tmp_path: Path, statuses: tuple[str, ...]
) -> None:
    """getRequestStatus of a request in one to three parts: the table, for every combination."""
    t = Template(template_id="t", max_number=4, image_id=ohf_st.AMI_IDS[0], vm_type="c5.large")
    fp = fake_providers([t], tmp_path, [ProviderConfig(name=n) for n in NAMES])
    now = fp.refs[NAMES[0]].cloud.now
    parts = [_part(s, i + 1, NAMES[i], now) for i, s in enumerate(statuses)]
    assert store_json.save(
        tmp_path / "ohf-state.json", State(requests={p.request_id: p for p in parts})
    ) == Success(None)
    code, out = call_all(fp, "getRequestStatus", {"requests": [{"requestId": "req-00000001"}]})
    assert code == 0, out
    (reply,) = out["requests"]
    assert reply["status"] == COMBINED[frozenset(statuses)], (statuses, reply)
    # The premise: the poll left every part's own status as it was set up.
    after = store_json.load(tmp_path / "ohf-state.json").unwrap()
    assert tuple(after.requests[p.request_id].status for p in parts) == statuses
