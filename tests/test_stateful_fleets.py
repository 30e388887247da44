"""The stateful HF model of tests/test_stateful.py, on fleet templates and weights.

Same rules and invariants (no lost machine, never over maxNumber, failed calls change nothing,
returns touch only what they name), with templates on EC2 Fleet (instant/request/maintain),
Spot Fleet (request/maintain) and Auto Scaling groups, weighted `vmTypes`, and fleet events
(interruption notices, rebalance recommendations, capacity running out, fleet API faults).
Added laws:

- units in use never exceed `maxNumber`, even as fleets fill asynchronously and overshoot;
- a fleet instance not yet in the state belongs to a request the state holds (the next status
  poll adopts it): nothing is launched that ohf cannot reach;
- after HF returns everything and polls, no fleet, group or launch template ohf created is left
  in the fake cloud.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from ohf import strategies as ohf_st
from ohf.effects import fake
from ohf.model import Request, State, Template
from ohf.room import hf_number
from ohf.templates import room_left
from ohf.testing import fake_provider
from tests.test_stateful import MAX_NUMBERS, HostFactory, capacities

FLEET_ROLE = "arn:aws:iam::123456789012:role/fleet"
# (providerApi, fleetType) pairs a template can have.
APIS = (
    ("EC2Fleet", "instant"),
    ("EC2Fleet", "request"),
    ("EC2Fleet", "maintain"),
    ("SpotFleet", "request"),
    ("SpotFleet", "maintain"),
    ("ASG", None),
    ("RunInstances", None),
)


@st.composite
def fleet_templates(draw: st.DrawFn, template_id: str) -> Template:
    """A weighted template on one of the fleet APIs (or RunInstances, for the mix)."""
    api, fleet_type = draw(st.sampled_from(APIS))
    price = draw(st.sampled_from(("ondemand", "spot", "heterogeneous")))
    if api == "RunInstances" and price == "heterogeneous":
        price = "spot"
    return Template(
        template_id=template_id,
        max_number=draw(MAX_NUMBERS),
        image_id=draw(ohf_st.image_ids()),
        vm_types=draw(ohf_st.vm_types()),
        subnet_id=draw(st.sampled_from(("subnet-0aaa", "subnet-0aaa,subnet-0bbb"))),
        price_type=price,
        percent_on_demand=draw(st.sampled_from((None, 0, 50, 100))),
        provider_api=api,  # type: ignore[arg-type]
        fleet_type=fleet_type,  # type: ignore[arg-type]
        fleet_role=FLEET_ROLE if api == "SpotFleet" else None,
    )


class FleetHostFactory(HostFactory):
    """HF, the cloud and fleets acting on one ohf provider."""

    @initialize(
        templates=st.lists(st.sampled_from(("F1", "F2", "F3")), min_size=1, max_size=3, unique=True)
        .flatmap(lambda ids: st.tuples(*(fleet_templates(i) for i in ids)))
        .map(list),
        capacity=capacities(),
    )
    def start(self, templates: list[Template], capacity: dict[str, int] | None) -> None:  # type: ignore[override]
        cloud = fake.new_cloud(parameters=ohf_st.SSM_IMAGES, capacity=capacity)
        self.provider = fake_provider(templates, self.dir, cloud=cloud)
        self.templates = {t.template_id: t for t in templates}
        for t in templates:
            event(f"template {t.provider_api}/{t.fleet_type}")

    @rule(data=st.data())
    def acquire_machines(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.templates)), label="tid")
        room = self.room(tid)
        count = data.draw(st.integers(1, room if room > 0 else 5), label="count")
        body = {"template": {"templateId": tid, "machineCount": count}}
        code, reply, _, after = self.hf("requestMachines", body)
        if room != -1 and count > room:
            assert code == 1, reply
            return
        if code == 0:
            request = after.requests[reply["requestId"]]
            assert request.phase == "launched"
            assert request.machines or (request.fleet_id and not request.fleet_done), request

    def room(self, tid: str) -> int:
        return hf_number(room_left(self.templates[tid], self.state()))

    def check_available(self, tid: str, shown: int, before: State) -> None:
        """Bounded by HF's record; exactly ohf's own accounting of what fleets may still add.

        Whether a fleet may still launch is ohf's verdict on what AWS said (which HF never
        sees), so HF's record gives bounds: at least the units of the machines HF was told of
        that still run (and it did not give back), at most, per request, the larger of every
        machine ever tagged with it and its ask plus the template's headroom.
        """
        template = self.templates[tid]
        assert shown == hf_number(room_left(template, before))
        if template.max_number < 0:
            assert shown == -1
            return
        weights = template.vm_types or {}
        headroom = max(weights.values(), default=1) - 1
        live = fake.live_instances(self.fake.ref.cloud)
        low = sum(
            weights[live[mid].instance_type]
            for rid, machines in self.known.items()
            if self.made[rid] == tid
            for mid in machines
            if mid in live and mid not in self.given_back
        )
        high = sum(
            max(
                sum(
                    weights[t]
                    for i, t in self.tagged.get(rid, {}).items()
                    if i not in self.given_back
                ),
                self.asks[rid] + headroom,
            )
            for rid, made_for in self.made.items()
            if made_for == tid
        )
        assert max(template.max_number - high, 0) <= shown <= max(template.max_number - low, 0), (
            tid,
            shown,
            low,
            high,
        )

    @staticmethod
    def check_acquire_status(request: Request, out: dict[str, Any]) -> None:
        results = {m["machineId"]: m["result"] for m in out["machines"]}
        good = sum(m.units for m in request.machines if results[m.machine_id] == "succeed")
        if out["status"] == "complete":
            assert good >= request.machine_count, out
        elif out["status"] == "complete_with_error":
            assert good < request.machine_count, out
        else:
            filling = request.fleet_id is not None and not request.fleet_done
            assert "executing" in results.values() or request.phase == "launching" or filling

    @rule(fleet_event=ohf_st.fleet_events())
    def fleets_act(self, fleet_event: ohf_st.FleetEvent) -> None:
        event(f"fleet: {fleet_event.kind}")
        self.fake.ref.cloud = ohf_st.apply_fleet_event(self.fake.ref.cloud, fleet_event)

    @rule(data=st.data())
    def hf_returns_everything(self, data: st.DataObject) -> None:
        """HF drains: polls every request, returns every machine it holds, polls until quiet."""
        # Faults injected earlier would fail the drain's calls: AWS has recovered by now.
        self.fake.ref.cloud = msgspec.structs.replace(self.fake.ref.cloud, faults=())
        self.poll_all()
        state = self.state()
        held = [
            m.machine_id
            for r in state.requests.values()
            for m in r.machines
            if m.returned_by is None
        ]
        if held:
            body = {"machines": [{"name": "", "machineId": i} for i in held]}
            code, reply, _, _ = self.hf("requestReturnMachines", body)
            assert code == 0, reply
        for _ in range(3):
            self.poll_all()
        state = self.state()
        live = fake.live_instances(self.fake.ref.cloud)
        assert not live, f"still running after HF returned everything: {sorted(live)}"
        left = {k: v for k, v in fake.owned_resources(self.fake.ref.cloud).items() if v}
        assert not left, f"ohf-created resources left behind: {left}"
        assert all(
            r.cleaned_up or not (r.fleet_id or r.launch_template_id)
            for r in state.requests.values()
        )

    def poll_all(self) -> None:
        state = self.state()
        ids = sorted(state.requests) + sorted(state.returns)
        if ids:
            code, reply, _, _ = self.hf(
                "getRequestStatus", {"requests": [{"requestId": r} for r in ids]}
            )
            assert code == 0, reply

    FAULT_CODES = ("RequestLimitExceeded", "InternalError")

    def may_change(self, named: set[str], before: State) -> set[str]:
        """Also: what a returned request's group launched that HF never got (its strays).

        A group replaces a machine lost outside ohf; if HF then returns every machine it holds
        of that request, ohf deletes the group (ForceDelete), taking the unseen replacement with
        it: it was never HF's, and would otherwise run for nothing.
        """
        owners = {
            r.request_id
            for r in before.requests.values()
            for m in r.machines
            if m.machine_id in named
        }
        known = {m.machine_id for r in before.requests.values() for m in r.machines}
        strays = {
            i
            for i, x in self.fake.ref.cloud.instances.items()
            if x.instance.request_id in owners and i not in known
        }
        return named | strays

    def reclaimed(self, ids: set[str]) -> set[str]:
        """Taken or being taken: also running spot machines with a notice from AWS."""
        signalled = {i for i, sigs in self.fake.ref.cloud.signals.items() if sigs}
        return super().reclaimed(ids) | (ids & signalled)

    def reachable(self, instance: Any, state: State) -> bool:
        """Launched by a fleet since the last poll: found through its request by the next one."""
        request = state.requests.get(instance.request_id or "")
        return request is not None and request.fleet_id is not None


TestFleetHostFactory = FleetHostFactory.TestCase
TestFleetHostFactory.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
