"""The fake cloud's interpreter: which AWS calls an intent makes (faults strike), then `step`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from returns.result import Failure

from ohf.effects.fake.change_fleets import (
    _delete_fleet,
    _in_group,
    _modify_fleet,
    _terminate_in_group,
)
from ohf.effects.fake.cloud import Answer, FakeCloud, _error, _take_fault
from ohf.effects.fake.describe_fleets import _describe_fleets
from ohf.effects.fake.fleets import _CREATE_OP, _DESCRIBE_OP, _MODIFY_OP, _create_fleet, tick
from ohf.effects.fake.instances import (
    _describe,
    _resolve,
    _run,
    _spot_signals,
    _tag_instance_ids,
    _terminate,
)
from ohf.effects.fake.launch_templates import (
    _create_launch_template,
    _delete_launch_template,
    _named_template,
)
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
    ResolveImage,
    RunInstances,
    TagInstanceIds,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.model import OhfError


def _template_calls(cloud: FakeCloud, intent: CreateLaunchTemplate) -> tuple[str, ...]:
    if _named_template(cloud, intent.name) is None:
        return ("CreateLaunchTemplate",)
    return ("CreateLaunchTemplate", "DescribeLaunchTemplates")


def _create_calls(cloud: FakeCloud, intent: CreateFleet) -> tuple[str, ...]:
    if intent.spec.api == "SpotFleet" and not intent.spec.fleet_role:
        return ()
    return (_CREATE_OP[intent.spec.api],)


def _describe_calls(cloud: FakeCloud, intent: DescribeFleets) -> tuple[str, ...]:
    apis = {api for api, _ in intent.fleets}
    return tuple(_DESCRIBE_OP[api] for api in ("EC2Fleet", "SpotFleet", "ASG") if api in apis)


def _group_calls(cloud: FakeCloud, intent: TerminateInGroup) -> tuple[str, ...]:
    """One call per instance; the ids the group refuses are then terminated in one call."""
    asked = tuple(dict.fromkeys(intent.instance_ids))
    per_instance = ("TerminateInstanceInAutoScalingGroup",) * len(asked)
    if all(_in_group(cloud, intent.group, i) for i in asked):
        return per_instance
    return (*per_instance, "TerminateInstances")


def _delete_calls(cloud: FakeCloud, intent: DeleteFleet) -> tuple[str, ...]:
    fleet = cloud.fleets.get(intent.fleet_id)
    known = fleet is not None and fleet.api == intent.api
    if intent.api == "EC2Fleet":
        # The interpreter looks the fleet up first: only an instant one is deleted with its
        # instances, and one already deleted is left as it is.
        live = known and fleet is not None and not fleet.deleted
        return ("DescribeFleets", "DeleteFleets") if live else ("DescribeFleets",)
    if intent.api == "SpotFleet":
        # Cancelling a cancelled (or expired) request is refused, so the interpreter checks.
        ended = known and fleet is not None and (fleet.deleted or fleet.expired)
        return (
            ("CancelSpotFleetRequests", "DescribeSpotFleetRequests")
            if ended
            else ("CancelSpotFleetRequests",)
        )
    return ("DeleteAutoScalingGroup",)


_Handler = Callable[[FakeCloud, Any], tuple[FakeCloud, Answer]]
_Calls = Callable[[FakeCloud, Any], tuple[str, ...]]

_OPERATIONS: dict[type[Any], tuple[_Calls, _Handler]] = {
    RunInstances: (lambda c, i: ("RunInstances",), _run),
    DescribeInstances: (lambda c, i: ("DescribeInstances",), _describe),
    TerminateInstances: (lambda c, i: ("TerminateInstances",), _terminate),
    ResolveImage: (lambda c, i: ("GetParameter",), _resolve),
    CreateLaunchTemplate: (_template_calls, _create_launch_template),
    DeleteLaunchTemplate: (lambda c, i: ("DeleteLaunchTemplate",), _delete_launch_template),
    CreateFleet: (_create_calls, _create_fleet),
    DescribeFleets: (_describe_calls, _describe_fleets),
    ModifyFleetTarget: (lambda c, i: (_MODIFY_OP[i.api],), _modify_fleet),
    TerminateInGroup: (_group_calls, _terminate_in_group),
    DeleteFleet: (_delete_calls, _delete_fleet),
    DescribeSpotSignals: (lambda c, i: ("DescribeSpotInstanceRequests",), _spot_signals),
    # One CreateTags per instance, as the boto3 interpreter makes them.
    TagInstanceIds: (lambda c, i: ("CreateTags",) * len(i.instances), _tag_instance_ids),
}
# The cloud moves on between polls: these calls first let AWS do its own work.
_TICKING: tuple[type[Any], ...] = (DescribeInstances, DescribeFleets)


def step(cloud: FakeCloud, intent: Intent) -> tuple[FakeCloud, Answer]:
    """Perform one cloud intent: the next cloud and the answer the boto3 interpreter would give."""
    entry = _OPERATIONS.get(type(intent))
    if entry is None:
        return cloud, Failure(OhfError(message=f"the fake cloud cannot perform {intent!r}"))
    calls, handler = entry
    if isinstance(intent, _TICKING):
        cloud = tick(cloud)
    for operation in calls(cloud, intent):
        cloud = msgspec.structs.replace(cloud, calls=(*cloud.calls, operation))
        cloud, fault = _take_fault(cloud, operation)
        if fault is not None:
            return cloud, _error(operation, fault.code, fault.message)
    return handler(cloud, intent)


class CloudRef(msgspec.Struct, kw_only=True):
    """The one mutable cell holding the current fake cloud (explicit, owned by the caller)."""

    cloud: FakeCloud


def interpreter(ref: CloudRef) -> Callable[[Intent], Answer]:
    """An interpreter that performs cloud intents on `ref.cloud`, replacing it after each."""

    def interpret(intent: Intent) -> Answer:
        ref.cloud, answer = step(ref.cloud, intent)
        return answer

    return interpret
