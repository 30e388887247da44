"""The fake cloud's fleets, groups, launch templates and spot notices behave like AWS (as the
boto3 interpreter reports it).

moto 5.2.5 ignores `WeightedCapacity`, has no ModifyFleet, never fulfils a fleet partially,
never interrupts spot instances and never expires a Spot Fleet (see MOTO_NOTES.md). The fake
models each of these; every test that covers such a gap names it (`moto gap:`) in its docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from ohf import strategies as ohf_st
from ohf.effects import fake
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
    DescribeInstances,
    DescribeSpotSignals,
    FleetSpec,
    Intent,
    LaunchSpec,
    ModifyFleetTarget,
    Override,
    RunInstances,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.model import FleetApi, FleetInfo, FleetType, Instance

RID = "req-00000001"
NOW = 1_700_000_000
AMI = "ami-0fa1ce0000000001"
TAGS = (("ohf:request-id", RID), ("ohf:template-id", "Fleet-c5"), ("team", "hpc"))
ROLE = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"
PROPS = settings(max_examples=60, deadline=None)
Cloud = fake.FakeCloud


def do(cloud: Cloud, intent: Intent) -> tuple[Cloud, Any]:
    """One step; the answer unwrapped (a test that expects a failure uses `fake.step`)."""
    cloud, answer = fake.step(cloud, intent)
    assert isinstance(answer, Success), answer
    return cloud, answer.unwrap()


def failure_code(cloud: Cloud, intent: Intent) -> tuple[Cloud, str]:
    cloud, answer = fake.step(cloud, intent)
    assert isinstance(answer, Failure), answer
    return cloud, answer.failure().code


def lt_spec(request_id: str = RID, image_id: str | None = AMI) -> LaunchSpec:
    tags = ((k, request_id if k == "ohf:request-id" else v) for k, v in TAGS)
    return LaunchSpec(
        image_id=image_id,
        instance_type=None,
        min_count=1,
        max_count=1,
        tags=tuple(tags),
        client_token=f"{request_id}-lt",
    )


def with_lt(
    capacity: dict[str, int] | None = None, name: str = f"ohf-{RID}", request_id: str = RID
) -> tuple[Cloud, str]:
    cloud = fake.new_cloud(capacity=capacity, now=NOW)
    return do(cloud, CreateLaunchTemplate(name=name, spec=lt_spec(request_id)))


C5 = (
    Override(instance_type="c5.large", weight=1),
    Override(instance_type="c5.xlarge", weight=2),
)


def spec(
    api: FleetApi,
    lt_id: str,
    target: int,
    *,
    overrides: tuple[Override, ...] = C5,
    fleet_type: FleetType = "instant",
    on_demand: int | None = None,
    **more: Any,
) -> FleetSpec:
    return FleetSpec(
        api=api,
        name=f"ohf-{RID}",
        launch_template_id=lt_id,
        overrides=overrides,
        target_units=target,
        on_demand_units=target if on_demand is None else on_demand,
        fleet_type=fleet_type,
        client_token=f"{RID}-fleet",
        tags=TAGS[:2],
        fleet_role=ROLE if api == "SpotFleet" else None,
        **more,
    )


def describe(cloud: Cloud, api: FleetApi, fleet_id: str) -> tuple[Cloud, FleetInfo]:
    cloud, infos = do(cloud, DescribeFleets(fleets=((api, fleet_id),)))
    return cloud, infos[fleet_id]


def live(cloud: Cloud, fleet_id: str) -> dict[str, Instance]:
    return {
        i: x
        for i, x in fake.fleet_instances(cloud, fleet_id).items()
        if x.state in ("pending", "running")
    }


def units_of(cloud: Cloud, ids: Iterable[str]) -> int:
    return sum(cloud.instances[i].units for i in ids)


ASYNC: list[tuple[FleetApi, FleetType]] = [
    ("EC2Fleet", "request"),
    ("EC2Fleet", "maintain"),
    ("SpotFleet", "request"),
    ("SpotFleet", "maintain"),
    ("ASG", "maintain"),
]
# What each API reports as activity once full: groups report none.
FULL = {"EC2Fleet": "fulfilled", "SpotFleet": "fulfilled", "ASG": ""}
MAINTAINED: list[tuple[FleetApi, FleetType]] = [
    ("EC2Fleet", "maintain"),
    ("SpotFleet", "maintain"),
    ("ASG", "maintain"),
]


# Launch templates.


def test_a_taken_launch_template_name_answers_the_existing_template() -> None:
    """AWS says InvalidLaunchTemplateName.AlreadyExistsException; the boto3 interpreter takes it
    for a retry after a lost answer and looks the template up by name: one template, one id.
    """
    cloud, lt_id = with_lt()
    assert lt_id.startswith("lt-")
    again = CreateLaunchTemplate(name=f"ohf-{RID}", spec=lt_spec())
    cloud, same = do(cloud, again)
    assert same == lt_id
    assert cloud.calls[-2:] == ("CreateLaunchTemplate", "DescribeLaunchTemplates")
    assert fake.owned_resources(cloud)["LaunchTemplate"] == (lt_id,)
    cloud, other = do(cloud, CreateLaunchTemplate(name="ohf-req-2", spec=lt_spec("req-2")))
    assert other != lt_id


def test_a_launch_template_is_deleted_once_and_its_name_is_free_again() -> None:
    cloud, lt_id = with_lt()
    cloud, _ = do(cloud, DeleteLaunchTemplate(launch_template_id=lt_id))
    assert fake.owned_resources(cloud)["LaunchTemplate"] == ()
    cloud, gone_again = do(cloud, DeleteLaunchTemplate(launch_template_id=lt_id))
    assert gone_again is None  # an unknown id counts as deleted
    cloud, new_id = do(cloud, CreateLaunchTemplate(name=f"ohf-{RID}", spec=lt_spec()))
    assert new_id != lt_id
    assert fake.owned_resources(cloud)["LaunchTemplate"] == (new_id,)


def test_launch_template_tags_reach_every_fleet_instance() -> None:
    """Fleet instances are found by `ohf:request-id` with the same describe as RunInstances."""
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3)))
    cloud, found = do(cloud, DescribeInstances(request_ids=(RID,)))
    assert {i.instance_id for i in found} == {i.instance_id for i in launch.instances}
    assert {(i.request_id, i.template_id) for i in found} == {(RID, "Fleet-c5")}
    assert all(i.private_ip and i.private_dns for i in found)
    for i in found:
        tags = cloud.instances[i.instance_id].tags
        assert tags["team"] == "hpc"
        assert tags["aws:ec2:fleet-id"] == launch.fleet_id


def test_an_instant_fleet_answers_ids_types_and_lifecycles_but_no_addresses() -> None:
    """CreateFleet's answer has no addresses: those come from DescribeInstances, as in AWS."""
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 2, on_demand=1)))
    assert {(i.state, i.private_ip, i.private_dns) for i in launch.instances} == {
        ("pending", None, "")
    }
    assert sorted(i.lifecycle for i in launch.instances) == ["on-demand", "spot"]
    assert {(i.instance_type, i.request_id) for i in launch.instances} == {("c5.large", RID)}


# Creating fleets and groups.


@pytest.mark.parametrize(
    ("api", "code"),
    [
        ("EC2Fleet", "InvalidLaunchTemplateId.NotFound"),
        ("SpotFleet", "InvalidLaunchTemplateId.NotFound"),
        ("ASG", "ValidationError"),
    ],
)
def test_a_fleet_needs_an_existing_launch_template(api: FleetApi, code: str) -> None:
    cloud, lt_id = with_lt()
    cloud, _ = do(cloud, DeleteLaunchTemplate(launch_template_id=lt_id))
    fleet_type: FleetType = "instant" if api == "EC2Fleet" else "request"
    cloud, got = failure_code(cloud, CreateFleet(spec=spec(api, lt_id, 2, fleet_type=fleet_type)))
    assert got == code
    assert not any(fake.owned_resources(cloud).values())
    assert cloud.instances == {}


def test_a_spot_fleet_needs_a_fleet_role_and_makes_no_call_without_one() -> None:
    cloud, lt_id = with_lt()
    no_role = msgspec.structs.replace(spec("SpotFleet", lt_id, 2), fleet_role=None)
    calls = cloud.calls
    cloud, code = failure_code(cloud, CreateFleet(spec=no_role))
    assert code == "config"
    assert cloud.calls == calls


def test_a_spot_fleet_asked_for_instant_is_a_one_time_request() -> None:
    """Spot Fleet has no instant type; the boto3 interpreter asks for `request` instead."""
    cloud, lt_id = with_lt(capacity={"c5.large": 1, "c5.xlarge": 0})
    cloud, launch = do(cloud, CreateFleet(spec=spec("SpotFleet", lt_id, 2)))
    assert launch.instances == ()
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert (info.activity, info.fulfilled_units) == ("error", 1.0)
    cloud = msgspec.structs.replace(cloud, capacity=None)
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.fulfilled_units == 1.0


@pytest.mark.parametrize(("api", "fleet_type"), [("EC2Fleet", "instant"), *ASYNC])
def test_a_repeated_client_token_or_group_name_answers_the_same_fleet(
    api: FleetApi, fleet_type: FleetType
) -> None:
    """A retried create (lost answer) neither makes a second fleet nor launches again."""
    cloud, lt_id = with_lt()
    ask = CreateFleet(spec=spec(api, lt_id, 3, fleet_type=fleet_type))
    cloud, first = do(cloud, ask)
    cloud, _ = do(cloud, DescribeInstances(request_ids=(RID,)))
    count = len(cloud.instances)
    cloud, second = do(cloud, ask)
    assert second == first
    cloud, _ = do(cloud, DescribeInstances(request_ids=(RID,)))
    assert len(cloud.instances) == count == 3
    assert fake.owned_resources(cloud)[api] == (first.fleet_id,)


def test_a_client_token_reused_with_other_parameters_is_refused() -> None:
    cloud, lt_id = with_lt()
    cloud, _ = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3)))
    cloud, code = failure_code(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 4)))
    assert code == "IdempotentParameterMismatch"


def test_fleet_and_group_tags_are_kept_and_found() -> None:
    cloud, lt_id = with_lt()
    ids: dict[str, str] = {}
    kinds: list[tuple[FleetApi, FleetType]] = [
        ("EC2Fleet", "request"),
        ("SpotFleet", "request"),
        ("ASG", "maintain"),
    ]
    for api, fleet_type in kinds:
        made = msgspec.structs.replace(
            spec(api, lt_id, 1, fleet_type=fleet_type), client_token=f"{api}-token", name=f"g-{api}"
        )
        cloud, launch = do(cloud, CreateFleet(spec=made))
        ids[api] = launch.fleet_id
    owned = fake.owned_resources(cloud)
    assert {api: owned[api] for api in ids} == {api: (i,) for api, i in ids.items()}
    assert ids["ASG"] == "g-ASG"
    untagged = fake.owned_resources(cloud, tag="no-such-tag")
    assert untagged == {"LaunchTemplate": (), "EC2Fleet": (), "SpotFleet": (), "ASG": ()}
    assert fake.owned_resources(cloud, tag=None) == owned


# Weights, priorities, partial fulfilment.


def test_moto_gap_weights_fill_units_not_instances() -> None:
    """moto gap: moto ignores WeightedCapacity and fills the target with the first override.

    The fake fills units by priority: 7 units of c5.xlarge (weight 2) is 4 instances, 8 units,
    overshooting by less than one weight, as AWS does.
    """
    prefer_big = (
        Override(instance_type="c5.large", weight=1, priority=5),
        Override(instance_type="c5.xlarge", weight=2, priority=1),
    )
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 7, overrides=prefer_big)))
    assert [i.instance_type for i in launch.instances] == ["c5.xlarge"] * 4
    assert launch.errors == ()
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert (info.target_units, info.fulfilled_units, info.activity) == (7, 8.0, "fulfilled")


def test_overrides_without_priority_come_last_in_listed_order() -> None:
    pools = (
        Override(instance_type="m5.large"),
        Override(instance_type="c5.large", priority=2),
        Override(instance_type="c5.xlarge"),
        Override(instance_type="m5.xlarge", priority=1),
    )
    cloud, lt_id = with_lt(capacity={"m5.xlarge": 1, "c5.large": 1, "m5.large": 1, "c5.xlarge": 9})
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 5, overrides=pools)))
    assert [i.instance_type for i in launch.instances] == [
        "m5.xlarge",
        "c5.large",
        "m5.large",
        "c5.xlarge",
        "c5.xlarge",
    ]


def test_moto_gap_an_instant_fleet_fills_partially_and_reports_each_short_pool() -> None:
    """moto gap: moto never fulfils partially; AWS answers instances plus per-pool errors."""
    pools = (
        Override(instance_type="c5.xlarge", subnet_id="subnet-a", weight=2),
        Override(instance_type="c5.xlarge", subnet_id="subnet-b", weight=2),
        Override(instance_type="c5.large", weight=1),
    )
    cloud, lt_id = with_lt(capacity={"c5.xlarge": 2, "c5.large": 1})
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 8, overrides=pools)))
    assert sorted(i.instance_type for i in launch.instances) == ["c5.large"] + ["c5.xlarge"] * 2
    assert [e.split(": ")[0] for e in launch.errors] == ["InsufficientInstanceCapacity"] * 3
    assert [e.rsplit("(", 1)[1] for e in launch.errors] == [
        "c5.xlarge/subnet-a)",
        "c5.xlarge/subnet-b)",
        "c5.large)",
    ]
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert (info.fulfilled_units, info.activity, info.errors) == (5.0, "error", launch.errors)


def test_an_instant_fleet_reports_a_failed_pool_even_when_others_made_up_the_target() -> None:
    cloud, lt_id = with_lt()
    cloud = fake.exhaust(cloud, "c5.large")
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3)))
    assert [i.instance_type for i in launch.instances] == ["c5.xlarge", "c5.xlarge"]
    assert len(launch.errors) == 1 and "(c5.large)" in launch.errors[0]
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert (info.activity, info.fulfilled_units) == ("fulfilled", 4.0)


def test_an_exhausted_type_starts_no_more_instances_at_all() -> None:
    cloud = fake.exhaust(fake.new_cloud(now=NOW), "c5.large")
    ask = RunInstances(spec=msgspec.structs.replace(lt_spec(), instance_type="c5.large"))
    cloud, code = failure_code(cloud, ask)
    assert code == "InsufficientInstanceCapacity"
    assert fake.exhaust(cloud, "c5.large") == cloud


def test_on_demand_units_launch_on_demand_and_the_rest_spot() -> None:
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    cloud, launch = do(
        cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 5, on_demand=2, overrides=ones))
    )
    kinds = sorted(i.lifecycle for i in launch.instances)
    assert kinds == ["on-demand"] * 2 + ["spot"] * 3


def test_an_on_demand_shortfall_is_not_made_up_with_spot() -> None:
    cloud, lt_id = with_lt(capacity={"c5.large": 3})
    ones = (Override(instance_type="c5.large"),)
    cloud, launch = do(
        cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 6, on_demand=4, overrides=ones))
    )
    assert sorted(i.lifecycle for i in launch.instances) == ["on-demand"] * 3
    assert len(launch.errors) == 2  # the pool fell short for on-demand, then for spot


def test_a_malformed_image_fails_its_pools_not_the_call() -> None:
    cloud = fake.new_cloud(now=NOW)
    cloud, lt_id = do(cloud, CreateLaunchTemplate(name="x", spec=lt_spec(image_id="bad")))
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 2)))
    assert launch.instances == ()
    assert len(launch.errors) == 2
    assert all(e.startswith("InvalidAMIID.Malformed") for e in launch.errors)


# Asynchronous fleets and groups.


@pytest.mark.parametrize(("api", "fleet_type"), ASYNC)
def test_request_and_maintain_fleets_fill_between_polls(
    api: FleetApi, fleet_type: FleetType
) -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 3, fleet_type=fleet_type)))
    assert launch.instances == () and launch.errors == ()
    assert cloud.instances == {}
    cloud, found = do(cloud, DescribeInstances(request_ids=(RID,)))
    assert sorted(i.instance_type for i in found) == ["c5.large"] * 3
    assert {i.state for i in found} == {"running"}
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert (info.state, info.activity, info.fulfilled_units) == ("active", FULL[api], 3.0)
    created = {"EC2Fleet": "CreateFleet", "SpotFleet": "RequestSpotFleet"}
    described = {"EC2Fleet": "DescribeFleets", "SpotFleet": "DescribeSpotFleetRequests"}
    assert cloud.calls[-3:] == (
        created.get(api, "CreateAutoScalingGroup"),
        "DescribeInstances",
        described.get(api, "DescribeAutoScalingGroups"),
    )


def test_tick_can_be_driven_explicitly_and_is_idempotent_when_full() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 4, fleet_type="maintain")))
    once = fake.tick(cloud)
    assert units_of(once, live(once, launch.fleet_id)) == 4
    assert fake.tick(once) == once
    assert once.calls == cloud.calls  # the cloud's own work is no API call


@pytest.mark.parametrize("api", ["EC2Fleet", "SpotFleet"])
def test_moto_gap_a_request_fleet_that_falls_short_reports_error_and_stops(api: FleetApi) -> None:
    """moto gap: no partial fulfilment; a `request` fleet tries once, then says why it stopped
    (the boto3 interpreter reads the reasons from the fleet's history).
    """
    cloud, lt_id = with_lt(capacity={"c5.large": 1, "c5.xlarge": 1})
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 6, fleet_type="request")))
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert (info.activity, info.fulfilled_units) == ("error", 3.0)
    assert len(info.errors) == 2
    assert all(e.startswith("InsufficientInstanceCapacity") for e in info.errors)
    assert cloud.calls[-1] == "DescribeFleetHistory"
    cloud = msgspec.structs.replace(cloud, capacity=None)
    cloud, again = describe(cloud, api, launch.fleet_id)
    assert (again.activity, again.fulfilled_units) == ("error", 3.0)


def test_a_failed_history_call_answers_the_fleets_without_reasons() -> None:
    """The boto3 interpreter logs a failed DescribeFleetHistory and answers without reasons."""
    cloud, lt_id = with_lt(capacity={"c5.large": 1, "c5.xlarge": 0})
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3, fleet_type="request")))
    cloud = fake.inject(cloud, fake.Fault(operation="DescribeFleetHistory", code="Throttling"))
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert (info.activity, info.errors) == ("error", ())
    assert cloud.faults == ()
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert len(info.errors) == 2


@pytest.mark.parametrize(("api", "fleet_type"), MAINTAINED)
def test_moto_gap_maintain_fleets_and_groups_replace_ended_instances(
    api: FleetApi, fleet_type: FleetType
) -> None:
    """moto gap: moto never interrupts spot; a maintain fleet/group replaces what AWS took."""
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    made = spec(api, lt_id, 3, on_demand=0, fleet_type=fleet_type, overrides=ones)
    cloud, launch = do(cloud, CreateFleet(spec=made))
    cloud = fake.tick(cloud)
    first, second, _ = sorted(live(cloud, launch.fleet_id))
    cloud = fake.interrupt(cloud, first)
    cloud = fake.terminate_outside(cloud, second)
    cloud, info = describe(cloud, api, launch.fleet_id)
    now_live = live(cloud, launch.fleet_id)
    assert len(now_live) == 3 and first not in now_live and second not in now_live
    assert (info.fulfilled_units, info.activity) == (3.0, FULL[api])


@pytest.mark.parametrize(("api", "fleet_type"), MAINTAINED)
def test_moto_gap_a_short_maintain_fleet_keeps_trying_and_recovers(
    api: FleetApi, fleet_type: FleetType
) -> None:
    """moto gap: no partial fulfilment. A maintain fleet or group short of capacity says why on
    every poll (history, or the group's failed scaling activities) and fills once capacity is
    back; then it reports no error any more.
    """
    cloud, lt_id = with_lt(capacity={"c5.large": 1, "c5.xlarge": 0})
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 3, fleet_type=fleet_type)))
    follow_up = "DescribeScalingActivities" if api == "ASG" else "DescribeFleetHistory"
    for _ in range(2):
        cloud, info = describe(cloud, api, launch.fleet_id)
        assert info.fulfilled_units == 1.0
        assert info.activity == ("" if api == "ASG" else "error")
        assert len(info.errors) == 2
        assert cloud.calls[-1] == follow_up
    cloud = msgspec.structs.replace(cloud, capacity={"c5.large": 0, "c5.xlarge": 5})
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert (info.activity, info.fulfilled_units, info.errors) == (FULL[api], 3.0, ())
    assert cloud.calls[-1] != follow_up


@pytest.mark.parametrize("api", ["EC2Fleet", "SpotFleet"])
def test_request_fleets_do_not_replace(api: FleetApi) -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 3, fleet_type="request")))
    cloud = fake.tick(cloud)
    victim = sorted(live(cloud, launch.fleet_id))[0]
    cloud = fake.interrupt(cloud, victim)
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert victim not in live(cloud, launch.fleet_id)
    assert info.fulfilled_units == 2.0
    assert len(fake.fleet_instances(cloud, launch.fleet_id)) == 3  # none launched since


def test_an_instant_fleet_never_launches_after_creation() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3)))
    cloud = fake.terminate_outside(cloud, launch.instances[0].instance_id)
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert len(fake.fleet_instances(cloud, launch.fleet_id)) == len(launch.instances) == 3
    assert info.fulfilled_units == 2.0


def test_moto_gap_a_spot_fleet_expires_at_valid_until() -> None:
    """moto gap: moto never expires a Spot Fleet; AWS cancels it at ValidUntil and it launches
    nothing more ("cancelled_running" while its instances live, then "cancelled").
    """
    cloud, lt_id = with_lt()
    made = spec("SpotFleet", lt_id, 3, on_demand=0, fleet_type="maintain", valid_until=NOW + 600)
    cloud, launch = do(cloud, CreateFleet(spec=made))
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.state == "active"
    cloud = msgspec.structs.replace(cloud, now=NOW + 599)
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.state == "active"
    cloud = msgspec.structs.replace(cloud, now=NOW + 600)
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.state == "cancelled_running"
    for instance_id in sorted(live(cloud, launch.fleet_id)):
        cloud = fake.terminate_outside(cloud, instance_id)
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.state == "cancelled"
    assert live(cloud, launch.fleet_id) == {}
    lower = ModifyFleetTarget(api="SpotFleet", fleet_id=launch.fleet_id, target_units=5)
    cloud, code = failure_code(cloud, lower)
    assert code == "FleetNotInModifiableState"


def test_a_group_whose_launch_template_went_reports_the_error() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("ASG", lt_id, 2, fleet_type="maintain")))
    cloud, _ = do(cloud, DeleteLaunchTemplate(launch_template_id=lt_id))
    cloud, info = describe(cloud, "ASG", launch.fleet_id)
    assert info.fulfilled_units == 0
    assert [e.split(":")[0] for e in info.errors] == ["InvalidLaunchTemplateId.NotFound"]


# Describing.


def test_unknown_fleets_are_gone_and_each_api_is_described_once() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 1, fleet_type="request")))
    asked = DescribeFleets(
        fleets=(
            ("EC2Fleet", "fleet-nope"),
            ("SpotFleet", "sfr-nope"),
            ("ASG", "no-such-group"),
            ("EC2Fleet", launch.fleet_id),
        )
    )
    cloud, infos = do(cloud, asked)
    assert {i: info.state for i, info in infos.items()} == {
        "fleet-nope": "gone",
        "sfr-nope": "gone",
        "no-such-group": "gone",
        launch.fleet_id: "active",
    }
    assert cloud.calls[-3:] == (
        "DescribeFleets",
        "DescribeSpotFleetRequests",
        "DescribeAutoScalingGroups",
    )


def test_a_fleet_id_asked_under_another_api_is_gone() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 1, fleet_type="request")))
    cloud, info = describe(cloud, "SpotFleet", launch.fleet_id)
    assert info.state == "gone"
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert info.state == "active"


# ModifyFleetTarget.


@pytest.mark.parametrize(("api", "fleet_type"), MAINTAINED)
def test_moto_gap_lowering_the_target_never_terminates_and_stops_replacement(
    api: FleetApi, fleet_type: FleetType
) -> None:
    """moto gap: ModifyFleet is NotImplemented in moto. Lowering a maintain fleet's or a group's
    target terminates nothing (excess capacity is kept), and what ends afterwards is not
    replaced beyond the new target; raising it launches again.
    """
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    made = spec(api, lt_id, 4, on_demand=0, fleet_type=fleet_type, overrides=ones)
    cloud, launch = do(cloud, CreateFleet(spec=made))
    cloud = fake.tick(cloud)
    held = sorted(live(cloud, launch.fleet_id))
    lower = ModifyFleetTarget(api=api, fleet_id=launch.fleet_id, target_units=2)
    cloud, _ = do(cloud, lower)
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert sorted(live(cloud, launch.fleet_id)) == held
    assert (info.target_units, info.fulfilled_units) == (2, 4.0)
    cloud, _ = do(cloud, TerminateInstances(instance_ids=tuple(held[:2])))
    cloud, info = describe(cloud, api, launch.fleet_id)
    cloud = fake.tick(cloud)
    assert sorted(live(cloud, launch.fleet_id)) == held[2:]
    assert (info.fulfilled_units, info.activity) == (2.0, FULL[api])
    cloud, _ = do(cloud, msgspec.structs.replace(lower, target_units=3))
    cloud = fake.tick(cloud)
    assert len(live(cloud, launch.fleet_id)) == 3


def test_a_raised_target_launches_the_difference_within_the_on_demand_part() -> None:
    """Two spot instances held, target raised to 4 all on-demand: two on-demand join them."""
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    made = spec("EC2Fleet", lt_id, 2, on_demand=0, fleet_type="maintain", overrides=ones)
    cloud, launch = do(cloud, CreateFleet(spec=made))
    cloud = fake.tick(cloud)
    raise_ = ModifyFleetTarget(
        api="EC2Fleet", fleet_id=launch.fleet_id, target_units=4, on_demand_units=9
    )
    cloud, _ = do(cloud, raise_)
    cloud = fake.tick(cloud)
    kinds = sorted(x.lifecycle for x in live(cloud, launch.fleet_id).values())
    assert kinds == ["on-demand"] * 2 + ["spot"] * 2


@pytest.mark.parametrize(
    ("api", "fleet_type"),
    [("EC2Fleet", "instant"), ("EC2Fleet", "request"), ("SpotFleet", "request")],
)
def test_only_maintain_fleets_can_be_modified(api: FleetApi, fleet_type: FleetType) -> None:
    """AWS: "You can only modify an EC2 Fleet (Spot Fleet request) of type maintain"."""
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 2, fleet_type=fleet_type)))
    lower = ModifyFleetTarget(api=api, fleet_id=launch.fleet_id, target_units=1)
    cloud, code = failure_code(cloud, lower)
    assert code == "FleetNotInModifiableState"
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert info.target_units == 2


@pytest.mark.parametrize(
    ("api", "code"),
    [
        ("EC2Fleet", "InvalidFleetId.NotFound"),
        ("SpotFleet", "InvalidSpotFleetRequestId.NotFound"),
        ("ASG", "ValidationError"),
    ],
)
def test_modifying_an_unknown_fleet_fails_like_aws(api: FleetApi, code: str) -> None:
    cloud = fake.new_cloud(now=NOW)
    cloud, got = failure_code(cloud, ModifyFleetTarget(api=api, fleet_id="x", target_units=0))
    assert got == code


# TerminateInGroup.


def test_terminate_in_group_lowers_desired_capacity_by_each_weight() -> None:
    cloud, lt_id = with_lt(capacity={"c5.large": 1, "c5.xlarge": 9})
    cloud, launch = do(cloud, CreateFleet(spec=spec("ASG", lt_id, 5, fleet_type="maintain")))
    group = launch.fleet_id
    cloud = fake.tick(cloud)
    assert units_of(cloud, live(cloud, group)) == 5
    big = next(i for i, x in live(cloud, group).items() if x.instance_type == "c5.xlarge")
    stranger_spec = msgspec.structs.replace(
        lt_spec("req-other"), instance_type="c5.xlarge", client_token="other"
    )
    cloud, (stranger,) = do(cloud, RunInstances(spec=stranger_spec))
    unknown = "i-0123456789abcdef0"
    calls_before = len(cloud.calls)
    ask = TerminateInGroup(group=group, instance_ids=(big, stranger.instance_id, unknown))
    cloud, states = do(cloud, ask)
    assert states == {big: "shutting-down", stranger.instance_id: "shutting-down", unknown: "gone"}
    assert cloud.calls[calls_before:] == (
        *("TerminateInstanceInAutoScalingGroup",) * 3,
        "TerminateInstances",
    )
    cloud, info = describe(cloud, "ASG", group)
    assert info.target_units == 3
    cloud = fake.tick(cloud)
    assert units_of(cloud, live(cloud, group)) == 3  # no replacement for the big one
    assert big not in live(cloud, group)
    small = next(i for i, x in live(cloud, group).items() if x.instance_type == "c5.large")
    calls_before = len(cloud.calls)
    cloud, states = do(cloud, TerminateInGroup(group=group, instance_ids=(small,)))
    assert states == {small: "shutting-down"}
    assert cloud.calls[calls_before:] == ("TerminateInstanceInAutoScalingGroup",)
    cloud, info = describe(cloud, "ASG", group)
    assert (info.target_units, info.fulfilled_units) == (2, 2.0)


def test_terminating_an_already_ended_group_member_does_not_lower_the_group() -> None:
    """AWS took it already (and the group replaced it): there is nothing to decrement."""
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    cloud, launch = do(
        cloud, CreateFleet(spec=spec("ASG", lt_id, 2, fleet_type="maintain", overrides=ones))
    )
    cloud = fake.tick(cloud)
    gone = sorted(live(cloud, launch.fleet_id))[0]
    cloud = fake.terminate_outside(cloud, gone)
    cloud, states = do(cloud, TerminateInGroup(group=launch.fleet_id, instance_ids=(gone,)))
    assert states == {gone: "terminated"}
    cloud, info = describe(cloud, "ASG", launch.fleet_id)
    assert info.target_units == 2 and info.fulfilled_units == 2.0


# DeleteFleet.


@pytest.mark.parametrize(
    ("api", "fleet_type", "ended"),
    [
        ("EC2Fleet", "request", "deleted_running"),
        ("EC2Fleet", "maintain", "deleted_running"),
        ("SpotFleet", "request", "cancelled_running"),
        ("SpotFleet", "maintain", "cancelled_running"),
    ],
)
def test_deleting_a_fleet_leaves_its_instances_alone(
    api: FleetApi, fleet_type: FleetType, ended: str
) -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec(api, lt_id, 3, fleet_type=fleet_type)))
    cloud = fake.tick(cloud)
    held = sorted(live(cloud, launch.fleet_id))
    cloud, _ = do(cloud, DeleteFleet(api=api, fleet_id=launch.fleet_id))
    cloud, info = describe(cloud, api, launch.fleet_id)
    assert info.state == ended
    assert sorted(live(cloud, launch.fleet_id)) == held
    assert fake.owned_resources(cloud)[api] == ()
    cloud, again = do(cloud, DeleteFleet(api=api, fleet_id=launch.fleet_id))
    assert again is None
    cloud = fake.terminate_outside(cloud, held[0])
    cloud = fake.tick(cloud)
    assert held[0] not in live(cloud, launch.fleet_id)
    assert len(fake.fleet_instances(cloud, launch.fleet_id)) == len(held)  # no replacement


def test_a_second_delete_is_looked_up_first_and_changes_nothing() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 1, fleet_type="request")))
    ask = DeleteFleet(api="EC2Fleet", fleet_id=launch.fleet_id)
    cloud, _ = do(cloud, ask)
    assert cloud.calls[-2:] == ("DescribeFleets", "DeleteFleets")
    cloud, _ = do(cloud, ask)
    assert cloud.calls[-2:] == ("DeleteFleets", "DescribeFleets")


def test_deleting_an_instant_fleet_terminates_what_it_launched() -> None:
    """AWS deletes an instant fleet only with TerminateInstances=True."""
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 3)))
    cloud, _ = do(cloud, DeleteFleet(api="EC2Fleet", fleet_id=launch.fleet_id))
    assert live(cloud, launch.fleet_id) == {}
    assert fake.owned_resources(cloud)["EC2Fleet"] == ()
    cloud, info = describe(cloud, "EC2Fleet", launch.fleet_id)
    assert info.state == "deleted"


def test_deleting_a_group_takes_its_remaining_instances_with_it() -> None:
    """The boto3 interpreter deletes groups with ForceDelete, so a group member ohf has not
    seen yet is not orphaned; the group is gone at once.
    """
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    cloud, launch = do(
        cloud, CreateFleet(spec=spec("ASG", lt_id, 3, fleet_type="maintain", overrides=ones))
    )
    group = launch.fleet_id
    cloud = fake.tick(cloud)
    first, *rest = sorted(live(cloud, group))
    cloud, _ = do(cloud, TerminateInGroup(group=group, instance_ids=(first,)))
    cloud, _ = do(cloud, DeleteFleet(api="ASG", fleet_id=group))
    assert live(cloud, group) == {}
    assert {cloud.instances[i].instance.state for i in rest} == {"shutting-down"}
    cloud, info = describe(cloud, "ASG", group)
    assert info.state == "gone"
    cloud, _ = do(cloud, DeleteLaunchTemplate(launch_template_id=lt_id))
    assert not any(fake.owned_resources(cloud).values())


# Spot interruption notices.


def spot_and_on_demand() -> tuple[Cloud, str, str]:
    cloud, lt_id = with_lt()
    ones = (Override(instance_type="c5.large"),)
    cloud, launch = do(
        cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 2, on_demand=1, overrides=ones))
    )
    by_kind = {i.lifecycle: i.instance_id for i in launch.instances}
    return cloud, by_kind["spot"], by_kind["on-demand"]


def test_moto_gap_an_interruption_notice_comes_120_s_before_the_instance_goes() -> None:
    """moto gap: no spot interruptions at all. AWS marks the spot request for termination, the
    instance runs on for two minutes, then it is taken back.
    """
    cloud, spot, on_demand = spot_and_on_demand()
    cloud = fake.notify_interruption(cloud, spot)
    cloud = fake.notify_interruption(cloud, on_demand)
    cloud, signals = do(cloud, DescribeSpotSignals(instance_ids=(spot, on_demand)))
    assert [(s.instance_id, s.kind, s.at) for s in signals] == [(spot, "interruption", NOW)]
    assert cloud.calls[-1] == "DescribeSpotInstanceRequests"
    cloud = msgspec.structs.replace(cloud, now=NOW + 119)
    cloud, found = do(cloud, DescribeInstances(instance_ids=(spot,)))
    assert found[0].state == "running"
    cloud = msgspec.structs.replace(cloud, now=NOW + 120)
    cloud, found = do(cloud, DescribeInstances(instance_ids=(spot, on_demand)))
    states = {i.instance_id: (i.state, i.state_reason) for i in found}
    assert states[spot][0] == "shutting-down"
    assert "SpotInstanceTermination" in states[spot][1]
    assert states[on_demand][0] == "running"


def test_a_notice_shows_until_the_instance_is_terminated() -> None:
    cloud, spot, _ = spot_and_on_demand()
    cloud = fake.notify_interruption(cloud, spot, at=NOW - 100)
    cloud = fake.notify_interruption(cloud, spot, at=NOW - 10)  # marked once
    cloud, (signal,) = do(cloud, DescribeSpotSignals(instance_ids=(spot, spot)))
    assert signal.at == NOW - 100
    cloud = msgspec.structs.replace(cloud, now=NOW + 20)
    cloud, (shown,) = do(cloud, DescribeInstances(instance_ids=(spot,)))
    assert shown.state == "shutting-down"  # and terminated from then on
    cloud, signals = do(cloud, DescribeSpotSignals(instance_ids=(spot,)))
    assert signals == ()


def test_interrupt_records_the_notice_it_would_have_had() -> None:
    cloud, spot, on_demand = spot_and_on_demand()
    cloud = fake.interrupt(cloud, spot)
    cloud = fake.interrupt(cloud, on_demand)
    cloud, signals = do(cloud, DescribeSpotSignals(instance_ids=(spot, on_demand)))
    assert [(s.instance_id, s.kind, s.at) for s in signals] == [
        (spot, "interruption", NOW - fake.SPOT_NOTICE_SECONDS)
    ]


# Faults and calls.


def fleets_cloud() -> tuple[Cloud, dict[str, str]]:
    """A cloud with a launch template, maintain EC2 and Spot Fleets and a group, all full."""
    cloud, lt_id = with_lt()
    ids = {"LT": lt_id}
    kinds: list[tuple[FleetApi, FleetType]] = [
        ("EC2Fleet", "maintain"),
        ("SpotFleet", "maintain"),
        ("ASG", "maintain"),
    ]
    for api, fleet_type in kinds:
        made = msgspec.structs.replace(
            spec(api, lt_id, 2, fleet_type=fleet_type), client_token=api, name=f"g-{api}"
        )
        cloud, launch = do(cloud, CreateFleet(spec=made))
        ids[api] = launch.fleet_id
    return fake.tick(cloud), ids


def fault_cases(ids: dict[str, str], member: str) -> list[tuple[str, Intent]]:
    lt, ec2, sfr, group = ids["LT"], ids["EC2Fleet"], ids["SpotFleet"], ids["ASG"]
    return [
        ("CreateLaunchTemplate", CreateLaunchTemplate(name="other", spec=lt_spec())),
        ("DescribeLaunchTemplates", CreateLaunchTemplate(name=f"ohf-{RID}", spec=lt_spec())),
        ("DeleteLaunchTemplate", DeleteLaunchTemplate(launch_template_id=lt)),
        ("CreateFleet", CreateFleet(spec=spec("EC2Fleet", lt, 2))),
        ("RequestSpotFleet", CreateFleet(spec=spec("SpotFleet", lt, 2, fleet_type="request"))),
        ("CreateAutoScalingGroup", CreateFleet(spec=spec("ASG", lt, 2, fleet_type="maintain"))),
        ("DescribeFleets", DescribeFleets(fleets=(("EC2Fleet", ec2),))),
        ("DescribeSpotFleetRequests", DescribeFleets(fleets=(("SpotFleet", sfr),))),
        ("DescribeAutoScalingGroups", DescribeFleets(fleets=(("ASG", group),))),
        ("ModifyFleet", ModifyFleetTarget(api="EC2Fleet", fleet_id=ec2, target_units=1)),
        (
            "ModifySpotFleetRequest",
            ModifyFleetTarget(api="SpotFleet", fleet_id=sfr, target_units=1),
        ),
        ("UpdateAutoScalingGroup", ModifyFleetTarget(api="ASG", fleet_id=group, target_units=1)),
        (
            "TerminateInstanceInAutoScalingGroup",
            TerminateInGroup(group=group, instance_ids=(member,)),
        ),
        ("TerminateInstances", TerminateInGroup(group=group, instance_ids=(member, "i-1"))),
        ("DescribeFleets", DeleteFleet(api="EC2Fleet", fleet_id=ec2)),
        ("DeleteFleets", DeleteFleet(api="EC2Fleet", fleet_id=ec2)),
        ("CancelSpotFleetRequests", DeleteFleet(api="SpotFleet", fleet_id=sfr)),
        ("DeleteAutoScalingGroup", DeleteFleet(api="ASG", fleet_id=group)),
        ("DescribeSpotInstanceRequests", DescribeSpotSignals(instance_ids=(member,))),
    ]


@pytest.mark.parametrize("case", range(19))
def test_moto_gap_faults_hit_fleet_operations_by_their_aws_names(case: int) -> None:
    """moto gap: no throttling or capacity errors; the fake injects them per AWS operation,
    and a failed call changes nothing but the record of calls.
    """
    cloud, ids = fleets_cloud()
    member = sorted(live(cloud, ids["ASG"]))[0]
    cases = fault_cases(ids, member)
    assert len(cases) == 19
    operation, intent = cases[case]
    faulty = fake.inject(cloud, fake.Fault(operation=operation, code="RequestLimitExceeded"))
    after, code = failure_code(faulty, intent)
    assert code == "RequestLimitExceeded"
    assert after.calls[len(cloud.calls) :][-1] == operation
    assert msgspec.structs.replace(after, calls=()) == msgspec.structs.replace(cloud, calls=())
    again, answer = fake.step(after, intent)
    assert isinstance(answer, Success), answer
    assert operation in again.calls[len(after.calls) :]


def test_a_throttled_describe_still_lets_the_cloud_move_on() -> None:
    cloud, lt_id = with_lt()
    cloud, launch = do(cloud, CreateFleet(spec=spec("EC2Fleet", lt_id, 2, fleet_type="request")))
    cloud = fake.inject(cloud, fake.Fault(operation="DescribeFleets", code="RequestLimitExceeded"))
    cloud, code = failure_code(cloud, DescribeFleets(fleets=(("EC2Fleet", launch.fleet_id),)))
    assert code == "RequestLimitExceeded"
    assert units_of(cloud, live(cloud, launch.fleet_id)) == 2


# Properties.

TYPES = ("c5.large", "c5.xlarge", "m5.large", "m5.xlarge")


@st.composite
def fleet_cases(draw: st.DrawFn, apis: list[tuple[FleetApi, FleetType]] | None = None) -> Any:
    """A cloud with a launch template and a capacity, and a fleet spec over some weighted types."""
    chosen = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4, unique=True))
    overrides = tuple(
        Override(
            instance_type=t,
            weight=draw(st.integers(1, 4)),
            priority=draw(st.none() | st.integers(0, 3)),
            subnet_id=draw(st.sampled_from((None, "subnet-a"))),
        )
        for t in chosen
    )
    capacity = draw(st.none() | st.fixed_dictionaries({t: st.integers(0, 6) for t in TYPES}))
    api, fleet_type = draw(st.sampled_from(apis or [("EC2Fleet", "instant"), *ASYNC]))
    target = draw(st.integers(0, 24))
    on_demand = draw(st.integers(0, target))
    cloud, lt_id = with_lt(capacity=capacity)
    made = spec(api, lt_id, target, overrides=overrides, fleet_type=fleet_type, on_demand=on_demand)
    return cloud, made


@PROPS
@given(fleet_cases())
def test_property_a_fleet_reaches_its_target_or_says_why_and_overshoots_less_than_a_weight(
    case: tuple[Cloud, FleetSpec],
) -> None:
    """moto gap (weights, partial fulfilment): units, not instances, and errors when short."""
    cloud, made = case
    cloud, launch = do(cloud, CreateFleet(spec=made))
    cloud, info = describe(cloud, made.api, launch.fleet_id)
    held = live(cloud, launch.fleet_id)
    heaviest = max(o.weight for o in made.overrides)
    assert info.fulfilled_units == units_of(cloud, held)
    assert info.fulfilled_units >= made.target_units or info.errors
    assert info.fulfilled_units - made.target_units < heaviest
    if made.api != "ASG":
        full = info.fulfilled_units >= made.target_units
        assert info.activity == ("fulfilled" if full else "error")
    on_demand = units_of(cloud, (i for i, x in held.items() if x.lifecycle == "on-demand"))
    assert on_demand < made.on_demand_units + heaviest
    if made.on_demand_units == 0:
        assert on_demand == 0
    if made.fleet_type == "instant" and made.api == "EC2Fleet":
        assert {i.instance_id for i in launch.instances} == set(held)


@PROPS
@given(fleet_cases(MAINTAINED), st.data())
def test_property_lowering_the_target_then_terminating_never_yields_a_replacement(
    case: tuple[Cloud, FleetSpec], data: st.DataObject
) -> None:
    """moto gap (ModifyFleet, maintain replacement): what ohf returns is never launched again."""
    cloud, made = case
    cloud, launch = do(cloud, CreateFleet(spec=made))
    fid = launch.fleet_id
    cloud = fake.tick(cloud)
    # Give capacity back, so only the lowered target can stop a replacement.
    cloud = msgspec.structs.replace(cloud, capacity=None)
    held = sorted(live(cloud, fid))
    returned = data.draw(st.lists(st.sampled_from(held), unique=True) if held else st.just([]))
    target = min(made.target_units, units_of(cloud, held))
    ever = set(fake.fleet_instances(cloud, fid))
    if made.api == "ASG":
        cloud, _ = do(cloud, ModifyFleetTarget(api="ASG", fleet_id=fid, target_units=target))
        cloud, _ = do(cloud, TerminateInGroup(group=fid, instance_ids=tuple(returned)))
    else:
        lowered = max(target - units_of(cloud, returned), 0)
        cloud, _ = do(cloud, ModifyFleetTarget(api=made.api, fleet_id=fid, target_units=lowered))
        cloud, _ = do(cloud, TerminateInstances(instance_ids=tuple(returned)))
    for later in (1, 60, 3600):
        cloud = fake.tick(msgspec.structs.replace(cloud, now=NOW + later))
        cloud, _ = do(cloud, DescribeInstances(request_ids=(RID,)))
    assert set(fake.fleet_instances(cloud, fid)) == ever
    assert set(live(cloud, fid)) == set(held) - set(returned)


def any_intent(lt_id: str, fleets: list[tuple[FleetApi, str]], ids: list[str]) -> Any:
    instance = st.sampled_from(ids) if ids else st.just("i-0123456789abcdef0")
    some = st.lists(instance, max_size=3).map(tuple)
    fleet = st.sampled_from(fleets)
    return st.one_of(
        st.just(DescribeInstances(request_ids=(RID,))),
        fleet.map(lambda f: DescribeFleets(fleets=(f,))),
        fleet.map(lambda f: ModifyFleetTarget(api=f[0], fleet_id=f[1], target_units=1)),
        fleet.map(lambda f: DeleteFleet(api=f[0], fleet_id=f[1])),
        some.map(lambda i: TerminateInstances(instance_ids=i)),
        some.map(lambda i: TerminateInGroup(group="ohf-g", instance_ids=i)),
        some.map(lambda i: DescribeSpotSignals(instance_ids=i)),
        st.just(DeleteLaunchTemplate(launch_template_id=lt_id)),
        st.just(CreateLaunchTemplate(name="again", spec=lt_spec())),
    )


@PROPS
@given(fleet_cases(), st.data())
def test_property_step_is_pure(case: tuple[Cloud, FleetSpec], data: st.DataObject) -> None:
    """`step` never changes the cloud value it is given; the same step gives the same result."""
    cloud, made = case
    cloud, launch = do(cloud, CreateFleet(spec=made))
    group = msgspec.structs.replace(
        spec("ASG", made.launch_template_id, 3, fleet_type="maintain"), name="ohf-g"
    )
    cloud, _ = do(cloud, CreateFleet(spec=group))
    cloud = fake.tick(cloud)
    ids = sorted(cloud.instances)
    for instance_id in ids[:2]:
        cloud = fake.notify_interruption(cloud, instance_id)
    fleets = [(made.api, launch.fleet_id), ("ASG", "ohf-g")]
    intents = data.draw(st.lists(any_intent(made.launch_template_id, fleets, ids), max_size=6))
    for intent in intents:
        frozen = msgspec.msgpack.encode(cloud)
        first = fake.step(cloud, intent)
        assert msgspec.msgpack.encode(cloud) == frozen
        assert fake.step(cloud, intent) == first
        cloud = first[0]


@PROPS
@given(fleet_cases(), st.lists(ohf_st.fleet_events(), max_size=6))
def test_property_fleet_events_notify_spot_only_exhaust_types_and_queue_faults(
    case: tuple[Cloud, FleetSpec], events: list[ohf_st.FleetEvent]
) -> None:
    """moto gap (interruption notices, capacity shortfalls): the public fleet events do what
    they say, and only to what they may touch.
    """
    cloud, made = case
    cloud, _ = do(cloud, CreateFleet(spec=made))
    cloud = fake.tick(cloud)
    for event in events:
        cloud = ohf_st.apply_fleet_event(cloud, event)
    faults = [e.operation for e in events if e.kind == "fleet_fault"]
    assert [f.operation for f in cloud.faults] == faults
    clean = msgspec.structs.replace(cloud, faults=())
    clean, signals = do(clean, DescribeSpotSignals(instance_ids=tuple(clean.instances)))
    assert {s.instance_id for s in signals} == set(clean.signals)
    assert all(clean.instances[s.instance_id].instance.lifecycle == "spot" for s in signals)
    spot_live = any(x.lifecycle == "spot" for x in fake.live_instances(cloud).values())
    if spot_live and any(e.kind == "notify_interruption" for e in events):
        assert signals
    exhausted = {e.instance_type for e in events if e.kind == "exhaust"}
    before = set(clean.instances)
    later = fake.tick(msgspec.structs.replace(clean, capacity=None))
    started = {later.instances[i].instance.instance_type for i in set(later.instances) - before}
    assert not started & exhausted
