"""Instances in the fake cloud: capacity, RunInstances, describe, terminate, images, notices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
from returns.result import Success

from ohf.effects.fake.cloud import _AMI, Answer, FakeCloud, FakeInstance, _error
from ohf.intents import (
    DescribeInstances,
    DescribeSpotSignals,
    LaunchSpec,
    ResolveImage,
    RunInstances,
    TagInstanceIds,
    TerminateInstances,
)
from ohf.model import (
    INSTANCE_ID_TAG,
    REQUEST_TAG,
    TEMPLATE_TAG,
    Instance,
    InstanceState,
    SpotSignal,
)


def _room(cloud: FakeCloud, instance_type: str) -> int | None:
    """How many more instances of a type can start (None: no limit)."""
    if instance_type in cloud.exhausted:
        return 0
    if cloud.capacity is None:
        return None
    return max(cloud.capacity.get(instance_type, 0), 0)


def _spend(cloud: FakeCloud, instance_type: str, count: int) -> FakeCloud:
    if cloud.capacity is None:
        return cloud
    left = cloud.capacity.get(instance_type, 0) - count
    return msgspec.structs.replace(cloud, capacity={**cloud.capacity, instance_type: left})


def _new_instance(cloud: FakeCloud, spec: LaunchSpec, serial: int) -> FakeInstance:
    third, fourth = divmod(serial, 250)
    ip = f"10.0.{third % 250}.{fourth + 4}"
    tags = dict(spec.tags)
    return FakeInstance(
        instance=Instance(
            instance_id=f"i-{serial:017x}",
            state="pending",
            instance_type=spec.instance_type or "t3.micro",
            private_ip=ip,
            private_dns=f"ip-{ip.replace('.', '-')}.ec2.internal",
            launch_time=cloud.now,
            request_id=tags.get(REQUEST_TAG),
            template_id=tags.get(TEMPLATE_TAG),
            lifecycle="spot" if spec.spot is not None else "on-demand",
            volume_ids=(f"vol-{serial:017x}",),
        ),
        tags=tags,
        spec_token=spec.client_token,
    )


def _start(
    cloud: FakeCloud, spec: LaunchSpec, count: int, fleet_id: str | None = None, units: int = 1
) -> tuple[FakeCloud, tuple[FakeInstance, ...]]:
    """Start `count` instances of `spec` (capacity already checked), spending capacity."""
    made = tuple(
        msgspec.structs.replace(
            _new_instance(cloud, spec, cloud.counter + n + 1), fleet_id=fleet_id, units=units
        )
        for n in range(count)
    )
    cloud = _spend(cloud, spec.instance_type or "t3.micro", count)
    return (
        msgspec.structs.replace(
            cloud,
            instances={**cloud.instances, **{m.instance.instance_id: m for m in made}},
            counter=cloud.counter + count,
        ),
        made,
    )


def _run(cloud: FakeCloud, intent: RunInstances) -> tuple[FakeCloud, Answer]:
    spec = intent.spec
    if spec.client_token in cloud.tokens:
        ids = cloud.tokens[spec.client_token]
        return cloud, Success(tuple(cloud.instances[i].instance for i in ids))
    if spec.image_id is not None and not _AMI.match(spec.image_id):
        return cloud, _error(
            "RunInstances", "InvalidAMIID.Malformed", f"Invalid id: {spec.image_id!r}"
        )
    if spec.min_count < 1 or spec.max_count < spec.min_count:
        return cloud, _error("RunInstances", "InvalidParameterValue", "bad MinCount/MaxCount")
    instance_type = spec.instance_type or "t3.micro"
    room = _room(cloud, instance_type)
    if room is not None and room < spec.min_count:
        return cloud, _error(
            "RunInstances",
            "InsufficientInstanceCapacity",
            f"We currently do not have sufficient {instance_type} capacity.",
        )
    count = spec.max_count if room is None else min(spec.max_count, room)
    cloud, made = _start(cloud, spec, count)
    ids = tuple(m.instance.instance_id for m in made)
    cloud = msgspec.structs.replace(cloud, tokens={**cloud.tokens, spec.client_token: ids})
    return cloud, Success(tuple(m.instance for m in made))


def _advance(item: FakeInstance, moves: Mapping[str, InstanceState]) -> FakeInstance:
    state = item.instance.state
    if state not in moves:
        return item
    return msgspec.structs.replace(
        item, instance=msgspec.structs.replace(item.instance, state=moves[state])
    )


# Like moto, a describe already shows a new instance running; unlike moto (which terminates
# at once), an instance being terminated is shown shutting-down once, then terminated.
_BEFORE_ANSWER: dict[str, InstanceState] = {"pending": "running"}
_AFTER_ANSWER: dict[str, InstanceState] = {"shutting-down": "terminated"}


def _describe(cloud: FakeCloud, intent: DescribeInstances) -> tuple[FakeCloud, Answer]:
    shown = {i: _advance(x, _BEFORE_ANSWER) for i, x in cloud.instances.items()}
    wanted_requests = set(intent.request_ids)
    wanted_ids = set(intent.instance_ids)
    found = tuple(
        x.instance
        for i, x in shown.items()
        if i in wanted_ids or x.tags.get(REQUEST_TAG) in wanted_requests
    )
    later = {i: _advance(x, _AFTER_ANSWER) for i, x in shown.items()}
    return msgspec.structs.replace(cloud, instances=later), Success(found)


def _terminated(cloud: FakeCloud, ids: Iterable[str]) -> tuple[FakeCloud, dict[str, InstanceState]]:
    """Terminate known ids (shutting-down unless already terminated); unknown ids are "gone"."""
    updated = dict(cloud.instances)
    states: dict[str, InstanceState] = {}
    for i in ids:
        if i not in updated:
            states[i] = "gone"
            continue
        new: InstanceState = (
            "terminated" if updated[i].instance.state == "terminated" else "shutting-down"
        )
        updated[i] = msgspec.structs.replace(
            updated[i], instance=msgspec.structs.replace(updated[i].instance, state=new)
        )
        states[i] = new
    return msgspec.structs.replace(cloud, instances=updated), states


def _terminate(cloud: FakeCloud, intent: TerminateInstances) -> tuple[FakeCloud, Answer]:
    # EC2 fails the whole call on an unknown id; the boto3 interpreter drops such ids, retries
    # and reports them "gone", and so does the fake.
    cloud, states = _terminated(cloud, intent.instance_ids)
    return cloud, Success(states)


def _resolve(cloud: FakeCloud, intent: ResolveImage) -> tuple[FakeCloud, Answer]:
    value = cloud.parameters.get(intent.parameter)
    if value is None:
        return cloud, _error("GetParameter", "ParameterNotFound", intent.parameter)
    return cloud, Success(value)


def _set_state(cloud: FakeCloud, instance_id: str, state: InstanceState, reason: str) -> FakeCloud:
    item = cloud.instances[instance_id]
    updated = msgspec.structs.replace(
        item, instance=msgspec.structs.replace(item.instance, state=state, state_reason=reason)
    )
    return msgspec.structs.replace(cloud, instances={**cloud.instances, instance_id: updated})


def _visible_signal(cloud: FakeCloud, signal: SpotSignal) -> bool:
    """A notice shows on the spot request until the instance is terminated."""
    item = cloud.instances.get(signal.instance_id)
    return (
        item is not None
        and item.instance.lifecycle == "spot"
        and item.instance.state not in ("terminated", "gone")
    )


def _spot_signals(cloud: FakeCloud, intent: DescribeSpotSignals) -> tuple[FakeCloud, Answer]:
    found = tuple(
        signal
        for i in dict.fromkeys(intent.instance_ids)
        for signal in cloud.signals.get(i, ())
        if _visible_signal(cloud, signal)
    )
    return cloud, Success(found)


def _tag_instance_ids(cloud: FakeCloud, intent: TagInstanceIds) -> tuple[FakeCloud, Answer]:
    """`InstanceID=<id>` on each instance and its volumes; an unknown id refuses that one only."""
    done: dict[str, str] = {}
    instances = dict(cloud.instances)
    volume_tags = dict(cloud.volume_tags)
    for instance_id, volume_ids in intent.instances:
        item = instances.get(instance_id)
        if item is None:
            done[instance_id] = (
                f"CreateTags: InvalidInstanceID.NotFound: The instance ID '{instance_id}' "
                "does not exist"
            )
            continue
        unknown = [v for v in volume_ids if v not in item.instance.volume_ids]
        if unknown:
            done[instance_id] = (
                f"CreateTags: InvalidVolume.NotFound: The volume '{unknown[0]}' does not exist."
            )
            continue
        instances[instance_id] = msgspec.structs.replace(
            item, tags={**item.tags, INSTANCE_ID_TAG: instance_id}
        )
        for volume in volume_ids:
            volume_tags[volume] = {**volume_tags.get(volume, {}), INSTANCE_ID_TAG: instance_id}
        done[instance_id] = ""
    updated = msgspec.structs.replace(cloud, instances=instances, volume_tags=volume_tags)
    return updated, Success(done)
