"""Unit tests of the pure core for fleet-backed requests (EC2 Fleet, Spot Fleet, ASG).

Programs are driven by hand with answers scripted per intent type, so each test states the
exact AWS conversation ohf must have: what it creates, in which order it lowers and terminates,
and what it deletes (never a resource it did not create).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from returns.result import Failure, Success

from ohf.fleets import cleanup_due, fleet_spec, on_demand_units, overrides
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
    DescribeInstances,
    DescribeSpotSignals,
    Intent,
    ModifyFleetTarget,
    SaveState,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.messages import (
    ErrorOut,
    MachineRef,
    RequestAccepted,
    RequestRef,
    RequestStatusIn,
    ReturnMachinesIn,
    ReturnRequestsIn,
)
from ohf.model import (
    REQUEST_TAG,
    FleetInfo,
    FleetLaunch,
    Instance,
    Machine,
    OhfError,
    Request,
    SpotSignal,
    State,
    Template,
)
from ohf.parts import request_machines
from ohf.poll import request_status
from ohf.release import return_machines, return_requests
from ohf.templates import check_template, provider_api, room_left
from tests.test_core_units import AMI, NOW, RID, Answer, ask, drive

LT = "lt-0123456789abcdef0"
FLEET = "fleet-11111111-2222-3333-4444-555555555555"
WEIGHTS = {"c5.large": 1, "c5.xlarge": 2, "c5.2xlarge": 4}


def fleet_template(**fields: Any) -> Template:
    base: dict[str, Any] = {
        "template_id": "OnDemand-c5",
        "max_number": 40,
        "image_id": AMI,
        "vm_types": WEIGHTS,
        "subnet_id": "subnet-a,subnet-b",
        "provider_api": "EC2Fleet",
    }
    return Template(**{**base, **fields})


def by_type(table: dict[type, list[Answer]]) -> Callable[[Intent], Answer]:
    """Answer each intent with the next scripted answer for its type; SaveState succeeds."""
    queues = {k: list(v) for k, v in table.items()}

    def respond(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return Success(None)
        queue = queues.get(type(intent))
        assert queue, f"unscripted intent {intent!r}"
        return queue.pop(0)

    return respond


def instance(n: int, itype: str, *, state: str = "running", lifecycle: str = "on-demand") -> Any:
    return Instance(
        instance_id=f"i-{n:017x}",
        state=state,  # type: ignore[arg-type]
        instance_type=itype,
        private_ip=f"10.0.0.{n}",
        private_dns=f"ip-10-0-0-{n}.ec2.internal",
        launch_time=NOW,
        request_id=RID,
        lifecycle=lifecycle,  # type: ignore[arg-type]
    )


def fleet_request(api: str = "EC2Fleet", fleet_type: str = "maintain", **fields: Any) -> Request:
    base: dict[str, Any] = {
        "request_id": RID,
        "template_id": "OnDemand-c5",
        "machine_count": 6,
        "client_token": RID,
        "created_at": NOW,
        "provider_api": api,
        "phase": "launched",
        "fleet_id": FLEET,
        "fleet_type": fleet_type,
        "launch_template_id": LT,
        "fleet_target": 6,
    }
    return Request(**{**base, **fields})


def machine(n: int, itype: str, units: int, **fields: Any) -> Machine:
    base: dict[str, Any] = {
        "machine_id": f"i-{n:017x}",
        "name": f"ip-10-0-0-{n}.ec2.internal",
        "instance_type": itype,
        "units": units,
        "state": "running",
        "private_ip": f"10.0.0.{n}",
        "launch_time": NOW,
        "result": "succeed",
    }
    return Machine(**{**base, **fields})


# --- which API, and what a fleet template must say -----------------------------------------


@pytest.mark.parametrize(
    ("fields", "api"),
    [
        ({"provider_api": None, "price_type": "ondemand"}, "RunInstances"),
        ({"provider_api": None, "price_type": "spot"}, "EC2Fleet"),
        ({"provider_api": None, "price_type": "heterogeneous"}, "EC2Fleet"),
        (
            {"provider_api": None, "price_type": "spot", "fleet_role": "arn:aws:iam::1:role/f"},
            "SpotFleet",
        ),
        (
            {"provider_api": None, "price_type": "spot", "vm_types": None, "vm_type": "c5.large"},
            "RunInstances",
        ),
        ({"provider_api": "ASG"}, "ASG"),
    ],
)
def test_provider_api_defaults_to_a_fleet_for_spot_over_several_types(
    fields: dict[str, Any], api: str
) -> None:
    assert provider_api(fleet_template(**fields)) == api


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"provider_api": "SpotFleet"}, "needs fleetRole"),
        (
            {"provider_api": "SpotFleet", "fleet_role": "r", "fleet_type": "instant"},
            "instant is not available",
        ),
        ({"provider_api": "ASG", "subnet_id": None}, "needs subnetId"),
        ({"provider_api": "ASG", "launch_template_id": LT}, "cannot override the AMI"),
        ({"provider_api": "RunInstances", "price_type": "heterogeneous"}, "needs providerApi"),
    ],
)
def test_fleet_templates_that_cannot_work_are_refused_with_the_reason(
    fields: dict[str, Any], words: str
) -> None:
    checked = check_template(fleet_template(**fields))
    assert isinstance(checked, Failure)
    assert words in checked.failure().message


# --- planning -----------------------------------------------------------------------------


def test_overrides_cover_every_type_and_subnet_with_its_weight() -> None:
    result = overrides(fleet_template(), None)
    assert {(o.instance_type, o.subnet_id, o.weight) for o in result} == {
        (t, s, w) for t, w in WEIGHTS.items() for s in ("subnet-a", "subnet-b")
    }


def test_on_demand_types_come_first_and_use_the_prioritized_strategy() -> None:
    t = fleet_template(price_type="heterogeneous", vm_types_on_demand={"m5.large": 1})
    spec = fleet_spec(
        t,
        "EC2Fleet",
        request_id=RID,
        launch_template_id=LT,
        launch_template_version="$Latest",
        image_override=None,
        target=10,
        now=NOW,
    )
    first = min(spec.overrides, key=lambda o: o.priority or 0)
    assert first.instance_type == "m5.large"
    assert spec.allocation_strategy_on_demand == "prioritized"


@pytest.mark.parametrize(
    ("price", "percent", "target", "expected"),
    [("ondemand", None, 7, 7), ("spot", None, 7, 0), ("heterogeneous", 30, 7, 3)],
)
def test_on_demand_units_follow_price_type_and_percent(
    price: str, percent: int | None, target: int, expected: int
) -> None:
    t = fleet_template(price_type=price, percent_on_demand=percent)
    assert on_demand_units(t, target) == expected


def test_spot_fleet_expiry_is_minutes_from_now() -> None:
    t = fleet_template(provider_api="SpotFleet", fleet_role="r", spot_fleet_request_expiry=30)
    spec = fleet_spec(
        t,
        "SpotFleet",
        request_id=RID,
        launch_template_id=LT,
        launch_template_version="$Latest",
        image_override=None,
        target=4,
        now=NOW,
    )
    assert spec.valid_until == NOW + 1800
    assert spec.fleet_type == "request"


# --- requestMachines ------------------------------------------------------------------------


def test_instant_fleet_records_first_creates_launch_template_then_fleet_in_units() -> None:
    t = fleet_template()
    launch = FleetLaunch(
        fleet_id=FLEET,
        instances=(instance(1, "c5.2xlarge", state="pending"), instance(2, "c5.xlarge")),
    )
    intents, result = drive(
        request_machines((t,), State(), ask(6), request_id=RID, now=NOW),
        by_type({CreateLaunchTemplate: [Success(LT)], CreateFleet: [Success(launch)]}),
    )
    assert [type(i) for i in intents] == [SaveState, CreateLaunchTemplate, SaveState, CreateFleet]
    created = intents[1]
    assert isinstance(created, CreateLaunchTemplate)
    assert (REQUEST_TAG, RID) in created.spec.tags and created.spec.image_id == AMI
    spec = intents[3].spec  # type: ignore[union-attr]
    assert spec.target_units == 6 and spec.fleet_type == "instant"
    assert spec.launch_template_id == LT
    done = result.unwrap()
    request = done.state.requests[RID]
    assert [m.units for m in request.machines] == [4, 2]
    assert request.fleet_done and request.fleet_id == FLEET and request.launch_template_id == LT
    assert isinstance(done.reply, RequestAccepted)


def test_instant_fleet_that_launches_nothing_is_deleted_with_its_launch_template() -> None:
    launch = FleetLaunch(fleet_id=FLEET, errors=("InsufficientInstanceCapacity: none (c5)",))
    intents, result = drive(
        request_machines((fleet_template(),), State(), ask(6), request_id=RID, now=NOW),
        by_type(
            {
                CreateLaunchTemplate: [Success(LT)],
                CreateFleet: [Success(launch)],
                DeleteFleet: [Success(None)],
                DeleteLaunchTemplate: [Success(None)],
            }
        ),
    )
    assert [type(i) for i in intents][-2:] == [DeleteFleet, DeleteLaunchTemplate]
    done = result.unwrap()
    assert done.exit_code == 1 and isinstance(done.reply, ErrorOut)
    assert "InsufficientInstanceCapacity" in done.reply.message
    request = done.state.requests[RID]
    assert request.cleaned_up and request.status == "complete_with_error"


def test_only_types_that_cannot_overshoot_max_number_go_into_the_fleet() -> None:
    t = fleet_template(max_number=8)
    launch = FleetLaunch(fleet_id=FLEET, instances=(instance(1, "c5.xlarge"),) * 3)
    intents, _ = drive(
        request_machines((t,), State(), ask(6), request_id=RID, now=NOW),
        by_type({CreateLaunchTemplate: [Success(LT)], CreateFleet: [Success(launch)]}),
    )
    spec = intents[-1].spec  # type: ignore[union-attr]
    # 6 of 8 units asked: a weight-4 instance could end at 9 units, so only weights <= 3.
    assert {o.instance_type for o in spec.overrides} == {"c5.large", "c5.xlarge"}


def test_a_fleet_no_type_of_which_fits_fails_before_creating_anything() -> None:
    t = fleet_template(max_number=6, vm_types={"c5.2xlarge": 4})
    intents, result = drive(
        request_machines((t,), State(), ask(4), request_id=RID, now=NOW), by_type({})
    )
    assert [type(i) for i in intents] == [SaveState]
    done = result.unwrap()
    assert done.exit_code == 1 and "whole instances" in done.reply.message


def test_a_templates_own_launch_template_is_used_and_never_created() -> None:
    t = fleet_template(launch_template_id="lt-users", launch_template_version=3)
    launch = FleetLaunch(fleet_id=FLEET, instances=(instance(1, "c5.2xlarge"),))
    intents, result = drive(
        request_machines((t,), State(), ask(4), request_id=RID, now=NOW),
        by_type({CreateFleet: [Success(launch)]}),
    )
    assert not any(isinstance(i, CreateLaunchTemplate) for i in intents)
    spec = intents[-1].spec  # type: ignore[union-attr]
    assert (spec.launch_template_id, spec.launch_template_version) == ("lt-users", "3")
    assert all(o.image_id == AMI for o in spec.overrides)
    assert result.unwrap().state.requests[RID].launch_template_id is None


def test_lost_create_fleet_answer_is_retried_with_the_same_client_token() -> None:
    lost = Failure(OhfError(message="timeout", code="connection"))
    launch = FleetLaunch(fleet_id=FLEET)
    t = fleet_template(fleet_type="request")
    intents, result = drive(
        request_machines((t,), State(), ask(6), request_id=RID, now=NOW),
        by_type({CreateLaunchTemplate: [Success(LT)], CreateFleet: [lost, Success(launch)]}),
    )
    fleets = [i for i in intents if isinstance(i, CreateFleet)]
    assert len(fleets) == 2 and fleets[0].spec.client_token == fleets[1].spec.client_token
    assert result.unwrap().state.requests[RID].fleet_id == FLEET


def test_async_fleet_is_accepted_and_fills_as_status_polls_see_it() -> None:
    t = fleet_template(fleet_type="request")
    _, result = drive(
        request_machines((t,), State(), ask(6), request_id=RID, now=NOW),
        by_type(
            {
                CreateLaunchTemplate: [Success(LT)],
                CreateFleet: [Success(FleetLaunch(fleet_id=FLEET))],
            }
        ),
    )
    state = result.unwrap().state
    assert state.requests[RID].machines == () and not state.requests[RID].fleet_done
    # The whole ask is held while the fleet fills, plus what whole c5.2xlarge (4) may overshoot.
    assert room_left(t, state) == 40 - 6 - 3

    poll = RequestStatusIn(requests=[RequestRef(request_id=RID)])
    pending = FleetInfo(
        fleet_id=FLEET,
        api="EC2Fleet",
        state="active",
        activity="pending_fulfillment",
        target_units=6,
    )
    intents, first = drive(
        request_status(state, poll, weights={"OnDemand-c5": WEIGHTS}, now=NOW + 10),
        by_type(
            {
                DescribeInstances: [Success((instance(1, "c5.2xlarge"),))],
                DescribeFleets: [Success({FLEET: pending})],
            }
        ),
    )
    assert [type(i) for i in intents] == [DescribeInstances, DescribeFleets]
    out = first.unwrap()
    assert out.reply.requests[0].status == "running"
    assert "adopted" not in out.reply.requests[0].machines[0].message

    fulfilled = msgspec.structs.replace(pending, activity="fulfilled", fulfilled_units=6)
    _, second = drive(
        request_status(out.state, poll, weights={"OnDemand-c5": WEIGHTS}, now=NOW + 20),
        by_type(
            {
                DescribeInstances: [Success((instance(1, "c5.2xlarge"), instance(2, "c5.xlarge")))],
                DescribeFleets: [Success({FLEET: fulfilled})],
            }
        ),
    )
    final = second.unwrap()
    assert final.reply.requests[0].status == "complete"
    assert final.state.requests[RID].fleet_done


def test_fleet_that_stops_short_is_held_and_ends_with_awss_reason() -> None:
    state = State(
        requests={RID: fleet_request(fleet_type="maintain", machines=(machine(1, "c5.xlarge", 2),))}
    )
    poll = RequestStatusIn(requests=[RequestRef(request_id=RID)])
    error = FleetInfo(
        fleet_id=FLEET,
        api="EC2Fleet",
        state="active",
        activity="error",
        target_units=6,
        errors=("InsufficientInstanceCapacity: no c5.2xlarge in us-east-1a",),
    )
    intents, result = drive(
        request_status(state, poll, weights={"OnDemand-c5": WEIGHTS}, now=NOW + 10),
        by_type(
            {
                DescribeInstances: [Success((instance(1, "c5.xlarge"),))],
                DescribeFleets: [Success({FLEET: error})],
                ModifyFleetTarget: [Success(None)],
            }
        ),
    )
    hold = intents[2]
    assert isinstance(hold, ModifyFleetTarget) and hold.target_units == 2
    out = result.unwrap().reply.requests[0]
    assert out.status == "complete_with_error"
    assert "InsufficientInstanceCapacity" in out.message


# --- returns --------------------------------------------------------------------------------


def test_return_lowers_fleet_capacity_before_terminating() -> None:
    machines = (machine(1, "c5.xlarge", 2), machine(2, "c5.2xlarge", 4))
    state = State(requests={RID: fleet_request(machines=machines)})
    refs = [MachineRef(machine_id=machines[1].machine_id, name=machines[1].name)]
    intents, result = drive(
        return_machines(state, ReturnMachinesIn(machines=refs), return_id="ret-1", now=NOW),
        by_type(
            {
                ModifyFleetTarget: [Success(None)],
                TerminateInstances: [Success({machines[1].machine_id: "shutting-down"})],
            }
        ),
    )
    assert [type(i) for i in intents] == [ModifyFleetTarget, TerminateInstances]
    assert intents[0].target_units == 2  # type: ignore[union-attr]
    request = result.unwrap().state.requests[RID]
    assert request.fleet_target == 2 and not request.cleaned_up


def test_returning_the_last_machines_deletes_fleet_and_ohfs_launch_template() -> None:
    machines = (machine(1, "c5.xlarge", 2), machine(2, "c5.2xlarge", 4))
    state = State(requests={RID: fleet_request(machines=machines, status="complete")})
    refs = [MachineRef(machine_id=m.machine_id, name=m.name) for m in machines]
    intents, result = drive(
        return_machines(state, ReturnMachinesIn(machines=refs), return_id="ret-1", now=NOW),
        by_type(
            {
                ModifyFleetTarget: [Success(None)],
                TerminateInstances: [Success({m.machine_id: "shutting-down" for m in machines})],
                DeleteFleet: [Success(None)],
                DeleteLaunchTemplate: [Success(None)],
            }
        ),
    )
    assert [type(i) for i in intents] == [
        ModifyFleetTarget,
        TerminateInstances,
        DeleteFleet,
        DeleteLaunchTemplate,
    ]
    assert intents[0].target_units == 0  # type: ignore[union-attr]
    assert result.unwrap().state.requests[RID].cleaned_up


def test_group_machines_are_terminated_in_the_group_without_a_separate_lowering() -> None:
    machines = (machine(1, "c5.xlarge", 2), machine(2, "c5.2xlarge", 4))
    state = State(
        requests={RID: fleet_request(api="ASG", fleet_id="ohf-" + RID, machines=machines)}
    )
    refs = [MachineRef(machine_id=machines[0].machine_id, name="")]
    intents, result = drive(
        return_machines(state, ReturnMachinesIn(machines=refs), return_id="ret-1", now=NOW),
        by_type({TerminateInGroup: [Success({machines[0].machine_id: "shutting-down"})]}),
    )
    assert [type(i) for i in intents] == [TerminateInGroup]
    assert intents[0].group == "ohf-" + RID  # type: ignore[union-attr]
    assert result.unwrap().state.requests[RID].fleet_target == 4


def test_when_the_fleet_cannot_be_lowered_nothing_is_terminated() -> None:
    machines = (machine(1, "c5.xlarge", 2),)
    state = State(requests={RID: fleet_request(machines=machines)})
    refs = [MachineRef(machine_id=machines[0].machine_id, name="")]
    intents, result = drive(
        return_machines(state, ReturnMachinesIn(machines=refs), return_id="ret-1", now=NOW),
        by_type(
            {ModifyFleetTarget: [Failure(OhfError(message="denied", code="UnauthorizedOperation"))]}
        ),
    )
    assert not any(isinstance(i, TerminateInstances) for i in intents)
    assert isinstance(result, Failure) and "nothing was terminated" in result.failure().message


def test_a_users_launch_template_is_never_deleted() -> None:
    request = fleet_request(
        fleet_type="instant", launch_template_id=None, fleet_done=True, status="complete"
    )
    done = msgspec.structs.replace(
        request, machines=(machine(1, "c5.large", 1, state="terminated"),)
    )
    assert cleanup_due(done)
    state = State(requests={RID: done})
    poll = RequestStatusIn(requests=[RequestRef(request_id=RID)])
    intents, _ = drive(
        request_status(state, poll, weights={}, now=NOW),
        by_type({DescribeInstances: [Success(())], DeleteFleet: [Success(None)]}),
    )
    assert not any(isinstance(i, DeleteLaunchTemplate) for i in intents)


# --- spot reclaim ------------------------------------------------------------------------


def test_spot_interruption_notice_is_reported_with_the_time_left() -> None:
    spot = machine(1, "c5.large", 1, lifecycle="spot")
    steady = machine(2, "c5.large", 1, lifecycle="spot")
    state = State(requests={RID: fleet_request(machines=(spot, steady))})
    signal = SpotSignal(instance_id=spot.machine_id, kind="interruption", at=NOW - 30)
    intents, result = drive(
        return_requests(state, ReturnRequestsIn(), now=NOW),
        by_type(
            {
                DescribeInstances: [
                    Success(
                        (
                            instance(1, "c5.large", lifecycle="spot"),
                            instance(2, "c5.large", lifecycle="spot"),
                        )
                    )
                ],
                DescribeSpotSignals: [Success((signal,))],
            }
        ),
    )
    assert isinstance(intents[1], DescribeSpotSignals)
    reply = result.unwrap().reply
    assert [(r.machine_id, r.grace_period) for r in reply.requests] == [(spot.machine_id, 90)]
