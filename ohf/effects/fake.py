"""An in-memory EC2/SSM that performs ohf's cloud intents like the boto3 interpreter does.

Public API, for tests of ohf and of tools built on it: the cloud is a frozen `FakeCloud`
value, `step(cloud, intent)` is a pure transition returning the next cloud and the answer, and
`interpreter(ref)` wraps a `CloudRef` (the one explicit mutable cell) for `ohf.program.run`.

Beyond what moto models, the fake can run out of capacity per instance type (partial and failed
launches), inject any AWS error on the next call of an operation, keep terminating instances in
`shutting-down` for one poll, interrupt spot instances, and let terminated instances vanish.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.effects.intents import (
    DescribeInstances,
    Intent,
    LaunchSpec,
    ResolveImage,
    RunInstances,
    TerminateInstances,
)
from ohf.model import REQUEST_TAG, TEMPLATE_TAG, Instance, InstanceState, OhfError

Answer = Result[Any, OhfError]
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """An AWS error to raise on the next call of `operation`."""

    operation: str
    code: str
    message: str = "injected by the fake cloud"


class FakeInstance(msgspec.Struct, frozen=True, kw_only=True):
    """An instance as the fake cloud holds it."""

    instance: Instance
    tags: dict[str, str] = {}
    spec_token: str = ""


class FakeCloud(msgspec.Struct, frozen=True, kw_only=True):
    """The whole fake cloud, as a value."""

    instances: dict[str, FakeInstance] = {}
    tokens: dict[str, tuple[str, ...]] = {}
    parameters: dict[str, str] = {}
    capacity: dict[str, int] | None = None
    faults: tuple[Fault, ...] = ()
    counter: int = 0
    now: int = 1_700_000_000
    calls: tuple[str, ...] = ()


def new_cloud(
    *,
    parameters: Mapping[str, str] | None = None,
    capacity: Mapping[str, int] | None = None,
    now: int = 1_700_000_000,
) -> FakeCloud:
    """A fresh fake cloud; `capacity` limits how many instances of each type can ever start."""
    al2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    default_params = {al2023: "ami-0fa1ce0000000001"}
    return FakeCloud(
        parameters={**default_params, **(parameters or {})},
        capacity=None if capacity is None else dict(capacity),
        now=now,
    )


def _fault(cloud: FakeCloud, operation: str) -> tuple[FakeCloud, Fault | None]:
    for index, fault in enumerate(cloud.faults):
        if fault.operation == operation:
            rest = cloud.faults[:index] + cloud.faults[index + 1 :]
            return msgspec.structs.replace(cloud, faults=rest), fault
    return cloud, None


def _error(operation: str, code: str, message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=f"{operation}: {code}: {message}", code=code))


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
        ),
        tags=tags,
        spec_token=spec.client_token,
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
    room = spec.max_count if cloud.capacity is None else cloud.capacity.get(instance_type, 0)
    if room < spec.min_count:
        return cloud, _error(
            "RunInstances",
            "InsufficientInstanceCapacity",
            f"We currently do not have sufficient {instance_type} capacity.",
        )
    count = min(spec.max_count, room)
    made = [_new_instance(cloud, spec, cloud.counter + n + 1) for n in range(count)]
    capacity = (
        None
        if cloud.capacity is None
        else {**cloud.capacity, instance_type: cloud.capacity.get(instance_type, 0) - count}
    )
    ids = tuple(m.instance.instance_id for m in made)
    return (
        msgspec.structs.replace(
            cloud,
            instances={**cloud.instances, **{m.instance.instance_id: m for m in made}},
            tokens={**cloud.tokens, spec.client_token: ids},
            capacity=capacity,
            counter=cloud.counter + count,
        ),
        Success(tuple(m.instance for m in made)),
    )


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


def _terminate(cloud: FakeCloud, intent: TerminateInstances) -> tuple[FakeCloud, Answer]:
    # EC2 fails the whole call on an unknown id; the boto3 interpreter drops such ids, retries
    # and reports them "gone", and so does the fake.
    updated = dict(cloud.instances)
    states: dict[str, InstanceState] = {
        i: "gone" for i in intent.instance_ids if i not in cloud.instances
    }
    for i in intent.instance_ids:
        if i in states:
            continue
        current = updated[i].instance.state
        new: InstanceState = "terminated" if current == "terminated" else "shutting-down"
        updated[i] = msgspec.structs.replace(
            updated[i], instance=msgspec.structs.replace(updated[i].instance, state=new)
        )
        states[i] = new
    return msgspec.structs.replace(cloud, instances=updated), Success(states)


def _resolve(cloud: FakeCloud, intent: ResolveImage) -> tuple[FakeCloud, Answer]:
    value = cloud.parameters.get(intent.parameter)
    if value is None:
        return cloud, _error("GetParameter", "ParameterNotFound", intent.parameter)
    return cloud, Success(value)


_OPERATIONS: dict[type[Any], tuple[str, Callable[[FakeCloud, Any], tuple[FakeCloud, Answer]]]] = {
    RunInstances: ("RunInstances", _run),
    DescribeInstances: ("DescribeInstances", _describe),
    TerminateInstances: ("TerminateInstances", _terminate),
    ResolveImage: ("GetParameter", _resolve),
}


def step(cloud: FakeCloud, intent: Intent) -> tuple[FakeCloud, Answer]:
    """Perform one cloud intent: the next cloud and the answer the boto3 interpreter would give."""
    entry = _OPERATIONS.get(type(intent))
    if entry is None:
        return cloud, Failure(OhfError(message=f"the fake cloud cannot perform {intent!r}"))
    operation, handler = entry
    cloud = msgspec.structs.replace(cloud, calls=(*cloud.calls, operation))
    cloud, fault = _fault(cloud, operation)
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


# Helpers for tests: what the real cloud does on its own.


def _set_state(cloud: FakeCloud, instance_id: str, state: InstanceState, reason: str) -> FakeCloud:
    item = cloud.instances[instance_id]
    updated = msgspec.structs.replace(
        item, instance=msgspec.structs.replace(item.instance, state=state, state_reason=reason)
    )
    return msgspec.structs.replace(cloud, instances={**cloud.instances, instance_id: updated})


def interrupt(cloud: FakeCloud, instance_id: str) -> FakeCloud:
    """AWS reclaims a (spot) instance: it starts shutting down."""
    return _set_state(
        cloud,
        instance_id,
        "shutting-down",
        "Server.SpotInstanceTermination: Spot instance termination",
    )


def terminate_outside(cloud: FakeCloud, instance_id: str) -> FakeCloud:
    """Someone terminates an instance from the console."""
    return _set_state(cloud, instance_id, "terminated", "Client.UserInitiatedShutdown")


def vanish(cloud: FakeCloud) -> FakeCloud:
    """An hour later: terminated instances are no longer listed at all."""
    return msgspec.structs.replace(
        cloud,
        instances={i: x for i, x in cloud.instances.items() if x.instance.state != "terminated"},
    )


def inject(cloud: FakeCloud, *faults: Fault) -> FakeCloud:
    """Queue AWS errors for the next calls of their operations."""
    return msgspec.structs.replace(cloud, faults=cloud.faults + faults)


def live_instances(cloud: FakeCloud) -> dict[str, Instance]:
    """Instances that are not terminated (what still costs money)."""
    return {
        i: x.instance
        for i, x in cloud.instances.items()
        if x.instance.state not in ("terminated", "shutting-down")
    }
