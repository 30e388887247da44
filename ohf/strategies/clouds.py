"""What the cloud does on its own between HF calls: events to draw and apply to the fake cloud."""

from __future__ import annotations

from typing import Literal

import msgspec
from hypothesis import strategies as st

from ohf.codes import CAPACITY_CODES
from ohf.effects import fake
from ohf.strategies.values import INSTANCE_TYPES

# Fake-cloud events: what the real cloud does on its own, between HF calls.

EventKind = Literal["interrupt", "terminate_outside", "vanish", "capacity_fault", "throttle"]


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something the cloud does by itself; `pick` chooses the live instance it happens to."""

    kind: EventKind
    pick: int = 0
    code: str = "InsufficientInstanceCapacity"
    operation: str = "RunInstances"


def cloud_events() -> st.SearchStrategy[CloudEvent]:
    """Interruptions, console terminations, vanishing, capacity faults and throttling."""
    pick = st.integers(min_value=0, max_value=1000)
    return st.one_of(
        st.builds(CloudEvent, kind=st.just("interrupt"), pick=pick),
        st.builds(CloudEvent, kind=st.just("terminate_outside"), pick=pick),
        st.just(CloudEvent(kind="vanish")),
        st.builds(
            CloudEvent, kind=st.just("capacity_fault"), code=st.sampled_from(sorted(CAPACITY_CODES))
        ),
        st.builds(
            CloudEvent,
            kind=st.just("throttle"),
            code=st.just("RequestLimitExceeded"),
            operation=st.sampled_from(("DescribeInstances", "TerminateInstances", "RunInstances")),
        ),
    )


def event_target(cloud: fake.FakeCloud, event: CloudEvent) -> str | None:
    """The live instance an interrupt/terminate event hits (None when nothing is live)."""
    live = sorted(fake.live_instances(cloud))
    return live[event.pick % len(live)] if live else None


def apply_event(cloud: fake.FakeCloud, event: CloudEvent) -> fake.FakeCloud:
    """The fake cloud after `event` (a no-op when it needs a live instance and there is none)."""
    if event.kind == "vanish":
        return fake.vanish(cloud)
    if event.kind in ("capacity_fault", "throttle"):
        return fake.inject(cloud, fake.Fault(operation=event.operation, code=event.code))
    target = event_target(cloud, event)
    if target is None:
        return cloud
    if event.kind == "interrupt":
        return fake.interrupt(cloud, target)
    return fake.terminate_outside(cloud, target)


# Fleet events: what AWS does to fleets, groups and spot instances on its own.

FleetEventKind = Literal["notify_interruption", "exhaust", "fleet_fault"]
# The AWS operations behind ohf's fleet intents, as the fake cloud names them.
FLEET_OPERATIONS: tuple[str, ...] = (
    "CreateLaunchTemplate",
    "DeleteLaunchTemplate",
    "CreateFleet",
    "RequestSpotFleet",
    "CreateAutoScalingGroup",
    "DescribeFleets",
    "DescribeSpotFleetRequests",
    "DescribeAutoScalingGroups",
    "ModifyFleet",
    "ModifySpotFleetRequest",
    "UpdateAutoScalingGroup",
    "TerminateInstanceInAutoScalingGroup",
    "DeleteFleets",
    "CancelSpotFleetRequests",
    "DeleteAutoScalingGroup",
    "DescribeSpotInstanceRequests",
    "DescribeLaunchTemplates",
    "DescribeFleetHistory",
    "DescribeScalingActivities",
)


class FleetEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something AWS does to fleets by itself; `pick` chooses the live spot instance it hits."""

    kind: FleetEventKind
    pick: int = 0
    instance_type: str = "c5.large"
    operation: str = "CreateFleet"
    code: str = "RequestLimitExceeded"


def fleet_events() -> st.SearchStrategy[FleetEvent]:
    """Spot interruption notices, capacity running out, fleet API faults."""
    pick = st.integers(min_value=0, max_value=1000)
    return st.one_of(
        st.builds(FleetEvent, kind=st.just("notify_interruption"), pick=pick),
        st.builds(
            FleetEvent, kind=st.just("exhaust"), instance_type=st.sampled_from(INSTANCE_TYPES)
        ),
        st.builds(
            FleetEvent,
            kind=st.just("fleet_fault"),
            operation=st.sampled_from(FLEET_OPERATIONS),
            code=st.sampled_from(("RequestLimitExceeded", "InternalError")),
        ),
    )


def spot_target(cloud: fake.FakeCloud, event: FleetEvent) -> str | None:
    """The live spot instance a notice hits (None when no spot instance is live)."""
    spot = sorted(i for i, x in fake.live_instances(cloud).items() if x.lifecycle == "spot")
    return spot[event.pick % len(spot)] if spot else None


def apply_fleet_event(cloud: fake.FakeCloud, event: FleetEvent) -> fake.FakeCloud:
    """The fake cloud after `event` (a notice is a no-op when no spot instance is live)."""
    if event.kind == "exhaust":
        return fake.exhaust(cloud, event.instance_type)
    if event.kind == "fleet_fault":
        return fake.inject(cloud, fake.Fault(operation=event.operation, code=event.code))
    target = spot_target(cloud, event)
    if target is None:
        return cloud
    return fake.notify_interruption(cloud, target)
