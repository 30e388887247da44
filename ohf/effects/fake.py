"""An in-memory EC2/SSM/Auto Scaling that performs ohf's cloud intents like the boto3 interpreter.

Public API, for tests of ohf and of tools built on it: the cloud is a frozen `FakeCloud`
value, `step(cloud, intent)` is a pure transition returning the next cloud and the answer, and
`interpreter(ref)` wraps a `CloudRef` (the one explicit mutable cell) for `ohf.program.run`.

Beyond what moto models, the fake can run out of capacity per instance type (partial and failed
launches), inject any AWS error on the next call of an operation, keep terminating instances in
`shutting-down` for one poll, interrupt spot instances, and let terminated instances vanish.

Fleets and groups (EC2 Fleet, Spot Fleet, Auto Scaling group), where moto falls short:
- weights: `target_units` is filled in capacity units, taking overrides by `priority` (lower
  first, none last), then in listed order; a weighted type may overshoot the target by less
  than its weight. The per-type `capacity` (and `exhaust`) limits what starts: a pool that cannot
  give all it is asked for reports "InsufficientInstanceCapacity" and the next pool is tried.
  Allocation strategies, pool counts and spot prices are not modelled.
- `on_demand_units` of the target launch on-demand, the rest spot (no fallback between them).
- an `instant` EC2 Fleet launches within CreateFleet and answers instances and pool errors; it
  does nothing afterwards. Other fleets and groups answer only their id and fill in
  `tick(cloud)`: a `request` fleet makes one attempt (activity "error" with the pool errors if
  it fell short); a `maintain` fleet or a group tops up to its target on every tick, replacing
  instances that ended. A Spot Fleet past `valid_until` is cancelled by AWS
  ("cancelled_running" while its instances live, then "cancelled"). Spot Fleet has no instant
  type: the boto3 interpreter asks for a one-time request, and so does the fake.
- DescribeFleets answers AWS's states ("gone" for an unknown id or a deleted group; a deleted
  EC2 Fleet is "deleted_running"/"deleted", a cancelled Spot Fleet "cancelled_running"/
  "cancelled"), fulfilled units as the weights of live instances, and errors where the boto3
  interpreter finds them: an instant fleet's launch errors, the history of a fleet whose
  activity is "error", the failed scaling activities of a group short of its target.
- ModifyFleetTarget never terminates (no-termination excess policy; groups are assumed to
  protect instances from scale-in) and, like AWS, refuses fleets other than `maintain` ones
  ("FleetNotInModifiableState"). TerminateInGroup lowers the group's desired capacity by each
  instance's weight; ids not in the group are terminated plainly. DeleteFleet leaves instances
  alone, except that an `instant` EC2 Fleet (TerminateInstances=True, which AWS requires) and a
  group (ForceDelete) take their remaining pending/running instances with them.
- a launch template name already in use answers the existing template, as the boto3
  interpreter does (AWS itself says InvalidLaunchTemplateName.AlreadyExistsException).
- spot interruptions: `notify_interruption` marks a spot instance for termination (AWS takes it
  120 s later, on the first tick after that); `interrupt` takes it now and records the notice
  it had 120 s before. A notice shows in DescribeSpotSignals until the instance is terminated;
  on-demand instances never get one. Rebalance recommendations are not modelled: no describe
  API shows them, so the boto3 interpreter never reports one.

Time: `tick(cloud)` runs at the start of every DescribeInstances and DescribeFleets (whether or
not the call itself fails), so fleets fill and notices land between HF polls without test code
doing anything; call `tick` directly for explicit control. Move the clock with
`msgspec.structs.replace(cloud, now=...)`.

Operation names, for `inject(Fault(operation=...))` and the `calls` record; an intent makes the
calls the boto3 interpreter makes: RunInstances, DescribeInstances, TerminateInstances,
GetParameter, CreateLaunchTemplate (+ DescribeLaunchTemplates when the name is taken),
DeleteLaunchTemplate, CreateFleet / RequestSpotFleet / CreateAutoScalingGroup, DescribeFleets /
DescribeSpotFleetRequests / DescribeAutoScalingGroups (one per API in the intent; then one
DescribeFleetHistory per fleet in "error" and one DescribeScalingActivities for short groups,
whose faults only drop the errors), ModifyFleet / ModifySpotFleetRequest /
UpdateAutoScalingGroup, TerminateInstanceInAutoScalingGroup (one per instance, then one
TerminateInstances for ids not in the group), DescribeFleets + DeleteFleets /
CancelSpotFleetRequests (+ DescribeSpotFleetRequests when already cancelled) /
DeleteAutoScalingGroup, DescribeSpotInstanceRequests. A fault fails its whole intent before any
of the intent's effects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

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
    ResolveImage,
    RunInstances,
    SpotMarket,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.model import (
    REQUEST_TAG,
    TEMPLATE_TAG,
    FleetApi,
    FleetInfo,
    FleetLaunch,
    Instance,
    InstanceState,
    OhfError,
    SpotSignal,
)

Answer = Result[Any, OhfError]
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
# A spot interruption notice comes two minutes before AWS takes the instance.
SPOT_NOTICE_SECONDS = 120
_SPOT_REASON = "Server.SpotInstanceTermination: Spot instance termination"
_LIVE: frozenset[str] = frozenset({"pending", "running"})


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """An AWS error to raise on the next call of `operation`."""

    operation: str
    code: str
    message: str = "injected by the fake cloud"


class FakeInstance(msgspec.Struct, frozen=True, kw_only=True):
    """An instance as the fake cloud holds it (with the fleet/group that launched it, if any)."""

    instance: Instance
    tags: dict[str, str] = {}
    spec_token: str = ""
    fleet_id: str | None = None
    # Capacity units it counts for in its fleet or group (the override's weight).
    units: int = 1


class FakeLaunchTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """A launch template: its name and the launch parameters (tags included) it holds."""

    launch_template_id: str
    name: str
    spec: LaunchSpec


class FakeFleet(msgspec.Struct, frozen=True, kw_only=True):
    """An EC2 Fleet, Spot Fleet request or Auto Scaling group as the fake cloud holds it."""

    fleet_id: str
    api: FleetApi
    spec: FleetSpec
    target_units: int
    on_demand_units: int
    state: str = "submitted"
    activity: str = "pending_fulfillment"
    # The pool errors of the latest launch attempt that fell short.
    errors: tuple[str, ...] = ()
    # A `request` fleet makes one launch attempt only.
    attempted: bool = False
    expired: bool = False
    deleted: bool = False
    # An `instant` fleet's CreateFleet answer, repeated for a repeated ClientToken.
    launch: FleetLaunch | None = None


class FakeCloud(msgspec.Struct, frozen=True, kw_only=True):
    """The whole fake cloud, as a value."""

    instances: dict[str, FakeInstance] = {}
    tokens: dict[str, tuple[str, ...]] = {}
    parameters: dict[str, str] = {}
    # Instances of each type that can still start (None: unlimited; a type missing: none).
    capacity: dict[str, int] | None = None
    # Types AWS has run out of for now, whatever `capacity` says.
    exhausted: tuple[str, ...] = ()
    faults: tuple[Fault, ...] = ()
    counter: int = 0
    now: int = 1_700_000_000
    calls: tuple[str, ...] = ()
    launch_templates: dict[str, FakeLaunchTemplate] = {}
    fleets: dict[str, FakeFleet] = {}
    # ClientToken of a CreateFleet / RequestSpotFleet -> the fleet it created.
    fleet_tokens: dict[str, str] = {}
    signals: dict[str, tuple[SpotSignal, ...]] = {}
    # Serial number of the last launch template or fleet id handed out.
    serial: int = 0


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


def _take_fault(cloud: FakeCloud, operation: str) -> tuple[FakeCloud, Fault | None]:
    for index, fault in enumerate(cloud.faults):
        if fault.operation == operation:
            rest = cloud.faults[:index] + cloud.faults[index + 1 :]
            return msgspec.structs.replace(cloud, faults=rest), fault
    return cloud, None


def _error(operation: str, code: str, message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=f"{operation}: {code}: {message}", code=code))


# Instances and capacity.


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


# Launch templates.


def _next_serial(cloud: FakeCloud) -> tuple[FakeCloud, int]:
    return msgspec.structs.replace(cloud, serial=cloud.serial + 1), cloud.serial + 1


def _named_template(cloud: FakeCloud, name: str) -> str | None:
    return next((i for i, lt in cloud.launch_templates.items() if lt.name == name), None)


def _create_launch_template(
    cloud: FakeCloud, intent: CreateLaunchTemplate
) -> tuple[FakeCloud, Answer]:
    named = _named_template(cloud, intent.name)
    if named is not None:
        # AWS: InvalidLaunchTemplateName.AlreadyExistsException; the boto3 interpreter takes
        # it for a retry after a lost answer (the name is ohf's) and looks the template up.
        return cloud, Success(named)
    cloud, serial = _next_serial(cloud)
    lt_id = f"lt-{serial:017x}"
    made = FakeLaunchTemplate(launch_template_id=lt_id, name=intent.name, spec=intent.spec)
    return (
        msgspec.structs.replace(cloud, launch_templates={**cloud.launch_templates, lt_id: made}),
        Success(lt_id),
    )


def _delete_launch_template(
    cloud: FakeCloud, intent: DeleteLaunchTemplate
) -> tuple[FakeCloud, Answer]:
    kept = {i: lt for i, lt in cloud.launch_templates.items() if i != intent.launch_template_id}
    return msgspec.structs.replace(cloud, launch_templates=kept), Success(None)


# Fleets and groups: filling a target in weighted units.

_FLEET_TAG: dict[str, str] = {
    "EC2Fleet": "aws:ec2:fleet-id",
    "SpotFleet": "aws:ec2spot:fleet-request-id",
    "ASG": "aws:autoscaling:groupName",
}
_NOT_FOUND: dict[str, tuple[str, str]] = {
    "EC2Fleet": ("InvalidFleetId.NotFound", "The fleet ID '{}' does not exist"),
    "SpotFleet": (
        "InvalidSpotFleetRequestId.NotFound",
        "The Spot Fleet request '{}' does not exist",
    ),
    "ASG": ("ValidationError", "AutoScalingGroup name not found - {}"),
}


def _maintains(fleet: FakeFleet) -> bool:
    """A group, or a `maintain` fleet: tops up to its target whenever instances end."""
    return fleet.api == "ASG" or fleet.spec.fleet_type == "maintain"


def _members(cloud: FakeCloud, fleet_id: str, states: frozenset[str] = _LIVE) -> list[FakeInstance]:
    return [
        x for x in cloud.instances.values() if x.fleet_id == fleet_id and x.instance.state in states
    ]


def _units(items: Iterable[FakeInstance], lifecycle: str | None = None) -> int:
    return sum(x.units for x in items if lifecycle in (None, x.instance.lifecycle))


def _pools(fleet: FakeFleet, lt: FakeLaunchTemplate) -> list[Override]:
    """The fleet's overrides, best first: by priority (lower first, none last), then listed."""
    overrides = fleet.spec.overrides or (
        Override(instance_type=lt.spec.instance_type or "t3.micro"),
    )
    ranked = sorted(
        enumerate(overrides),
        key=lambda pair: (pair[1].priority is None, pair[1].priority or 0, pair[0]),
    )
    return [override for _, override in ranked]


def _pool_error(override: Override, code: str, message: str) -> str:
    """A pool's launch error as the boto3 interpreter words it: "CODE: message (type/subnet)"."""
    place = "/".join(x for x in (override.instance_type, override.subnet_id) if x)
    return f"{code}: {message} ({place})"


def _launch_units(
    cloud: FakeCloud, fleet: FakeFleet, lt: FakeLaunchTemplate, need: int, spot: bool
) -> tuple[FakeCloud, tuple[FakeInstance, ...], tuple[str, ...]]:
    """Launch at least `need` units (whole instances) from the fleet's pools, best first."""
    made: list[FakeInstance] = []
    errors: list[str] = []
    for override in _pools(fleet, lt):
        if need <= 0:
            break
        image = override.image_id or lt.spec.image_id
        if image is not None and not _AMI.match(image):
            errors.append(_pool_error(override, "InvalidAMIID.Malformed", f"Invalid id: {image!r}"))
            continue
        weight = max(override.weight, 1)
        want = -(-need // weight)
        room = _room(cloud, override.instance_type)
        count = want if room is None else min(want, room)
        if count < want:
            errors.append(
                _pool_error(
                    override,
                    "InsufficientInstanceCapacity",
                    f"We currently do not have sufficient {override.instance_type} capacity.",
                )
            )
        if count <= 0:
            continue
        spec = msgspec.structs.replace(
            lt.spec,
            instance_type=override.instance_type,
            subnet_id=override.subnet_id or lt.spec.subnet_id,
            image_id=image,
            min_count=count,
            max_count=count,
            tags=(*lt.spec.tags, (_FLEET_TAG[fleet.api], fleet.fleet_id)),
            client_token="",
            spot=SpotMarket(max_price=fleet.spec.max_spot_price) if spot else None,
        )
        cloud, batch = _start(cloud, spec, count, fleet.fleet_id, weight)
        made.extend(batch)
        need -= count * weight
    return cloud, tuple(made), tuple(errors)


def _fill(
    cloud: FakeCloud, fleet: FakeFleet
) -> tuple[FakeCloud, tuple[FakeInstance, ...], tuple[str, ...]]:
    """Launch toward the fleet's target: on-demand part first, then spot; no fallback.

    The total target caps both parts: what is missing overall is launched (as AWS launches
    the difference when a target is raised), each part up to its own target, so instances kept
    above a lowered target (no-termination) are not topped up by the other part.
    """
    lt = cloud.launch_templates.get(fleet.spec.launch_template_id)
    if lt is None:
        lt_id = fleet.spec.launch_template_id
        return (
            cloud,
            (),
            (
                "InvalidLaunchTemplateId.NotFound: The specified launch template, with template "
                f"ID {lt_id}, does not exist.",
            ),
        )
    live = _members(cloud, fleet.fleet_id)
    on_demand_target = min(fleet.on_demand_units, fleet.target_units)
    on_demand_have = _units(live, "on-demand")
    spot_have = _units(live, "spot")
    missing = fleet.target_units - on_demand_have - spot_have
    cloud, on_demand, errors = _launch_units(
        cloud, fleet, lt, min(on_demand_target - on_demand_have, missing), spot=False
    )
    # An on-demand overshoot leaves less for spot: the whole overshoot stays below one weight.
    spot_need = min(fleet.target_units - on_demand_target - spot_have, missing - _units(on_demand))
    cloud, spot, spot_errors = _launch_units(cloud, fleet, lt, spot_need, spot=True)
    return cloud, on_demand + spot, errors + spot_errors


def _with_fleet(cloud: FakeCloud, fleet: FakeFleet) -> FakeCloud:
    return msgspec.structs.replace(cloud, fleets={**cloud.fleets, fleet.fleet_id: fleet})


def _attempt(
    cloud: FakeCloud, fleet: FakeFleet
) -> tuple[FakeCloud, FakeFleet, tuple[FakeInstance, ...], tuple[str, ...]]:
    """One launch attempt toward the target: the fleet's activity after it, what it launched,
    and every pool error (the fleet keeps them only while it is short).
    """
    cloud, made, errors = _fill(cloud, fleet)
    full = _units(_members(cloud, fleet.fleet_id)) >= fleet.target_units
    fleet = msgspec.structs.replace(
        fleet,
        state="active",
        attempted=True,
        activity="fulfilled" if full else ("error" if errors else "pending_fulfillment"),
        errors=() if full else errors,
    )
    return _with_fleet(cloud, fleet), fleet, made, errors


def _fleet_id(spec: FleetSpec, serial: int) -> str:
    if spec.api == "ASG":
        return spec.name
    prefix = "fleet" if spec.api == "EC2Fleet" else "sfr"
    return f"{prefix}-{serial:08x}-0000-4000-8000-{serial:012x}"


def _instant_answer(item: FakeInstance, spec: FleetSpec) -> Instance:
    """An instance as CreateFleet answers it: id, type and lifecycle only (no address yet)."""
    tags = dict(spec.tags)
    return Instance(
        instance_id=item.instance.instance_id,
        state="pending",
        instance_type=item.instance.instance_type,
        lifecycle=item.instance.lifecycle,
        request_id=tags.get(REQUEST_TAG),
        template_id=tags.get(TEMPLATE_TAG),
    )


def _create_fleet(cloud: FakeCloud, intent: CreateFleet) -> tuple[FakeCloud, Answer]:
    spec = intent.spec
    operation = _CREATE_OP[spec.api]
    if spec.api == "SpotFleet" and not spec.fleet_role:
        return cloud, Failure(
            OhfError(
                message="RequestSpotFleet: a SpotFleet template needs fleetRole (an IAM role ARN)",
                code="config",
            )
        )
    if spec.api == "ASG":
        group = cloud.fleets.get(spec.name)
        if group is not None and not group.deleted:
            # AWS says AlreadyExists; the boto3 interpreter answers with that group.
            return cloud, Success(FleetLaunch(fleet_id=spec.name))
    elif spec.client_token in cloud.fleet_tokens:
        known = cloud.fleets[cloud.fleet_tokens[spec.client_token]]
        if known.spec != spec:
            return cloud, _error(
                operation,
                "IdempotentParameterMismatch",
                "The client token was already used with different parameters.",
            )
        return cloud, Success(known.launch or FleetLaunch(fleet_id=known.fleet_id))
    if spec.launch_template_id not in cloud.launch_templates:
        code = "ValidationError" if spec.api == "ASG" else "InvalidLaunchTemplateId.NotFound"
        return cloud, _error(
            operation,
            code,
            f"The specified launch template, with template ID {spec.launch_template_id}, "
            "does not exist.",
        )
    if spec.target_units < 0 or not 0 <= spec.on_demand_units <= spec.target_units:
        return cloud, _error(operation, "InvalidParameterValue", "bad target capacity")
    cloud, serial = _next_serial(cloud)
    fleet = FakeFleet(
        fleet_id=_fleet_id(spec, serial),
        api=spec.api,
        spec=spec,
        target_units=spec.target_units,
        on_demand_units=spec.on_demand_units,
    )
    if spec.api != "ASG":
        cloud = msgspec.structs.replace(
            cloud, fleet_tokens={**cloud.fleet_tokens, spec.client_token: fleet.fleet_id}
        )
    if not _instant(fleet):
        return _with_fleet(cloud, fleet), Success(FleetLaunch(fleet_id=fleet.fleet_id))
    cloud, fleet, made, errors = _attempt(cloud, fleet)
    # An instant fleet reports every pool that failed, even when others made up the target.
    instances = tuple(_instant_answer(m, spec) for m in made)
    launch = FleetLaunch(fleet_id=fleet.fleet_id, instances=instances, errors=errors)
    fleet = msgspec.structs.replace(fleet, launch=launch, errors=errors)
    return _with_fleet(cloud, fleet), Success(launch)


def _instant(fleet: FakeFleet) -> bool:
    # Spot Fleet has no instant type: the boto3 interpreter asks for a one-time request.
    return fleet.api == "EC2Fleet" and fleet.spec.fleet_type == "instant"


def _tick_fleet(cloud: FakeCloud, fleet: FakeFleet) -> FakeCloud:
    if fleet.deleted or fleet.expired or _instant(fleet):
        return cloud
    until = fleet.spec.valid_until
    if fleet.api == "SpotFleet" and until is not None and cloud.now >= until:
        return _with_fleet(cloud, msgspec.structs.replace(fleet, expired=True))
    if fleet.attempted and not _maintains(fleet):
        return cloud
    cloud, _, _, _ = _attempt(cloud, fleet)
    return cloud


def _land_interruptions(cloud: FakeCloud) -> FakeCloud:
    """Spot instances whose interruption notice is 120 s old are taken back."""
    for instance_id, signals in cloud.signals.items():
        due = any(
            s.kind == "interruption" and s.at + SPOT_NOTICE_SECONDS <= cloud.now for s in signals
        )
        item = cloud.instances.get(instance_id)
        if due and item is not None and item.instance.state in _LIVE:
            cloud = _set_state(cloud, instance_id, "shutting-down", _SPOT_REASON)
    return cloud


def tick(cloud: FakeCloud) -> FakeCloud:
    """What AWS does on its own until `cloud.now`: notices land, fleets and groups fill/expire."""
    cloud = _land_interruptions(cloud)
    for fleet_id in list(cloud.fleets):
        cloud = _tick_fleet(cloud, cloud.fleets[fleet_id])
    return cloud


# What a describe shows of a fleet that was cancelled or deleted: (instances left, none left).
_ENDED_STATES: dict[str, tuple[str, str]] = {
    "EC2Fleet": ("deleted_running", "deleted"),
    "SpotFleet": ("cancelled_running", "cancelled"),
}


def _info(cloud: FakeCloud, api: FleetApi, fleet_id: str) -> FleetInfo:
    """What AWS's describe call shows (the error history is added by the caller)."""
    fleet = cloud.fleets.get(fleet_id)
    if fleet is None or fleet.api != api or (fleet.deleted and api == "ASG"):
        return FleetInfo(fleet_id=fleet_id, api=api, state="gone")
    live = _members(cloud, fleet_id)
    state = fleet.state
    if fleet.deleted or fleet.expired:
        state = _ENDED_STATES[api][0 if live else 1]
    return FleetInfo(
        fleet_id=fleet_id,
        api=api,
        state=state,
        # Groups have no activity status.
        activity="" if api == "ASG" else fleet.activity,
        target_units=fleet.target_units,
        fulfilled_units=float(_units(live)),
        # DescribeFleets carries an instant fleet's launch errors; the rest is history.
        errors=fleet.errors if _instant(fleet) else (),
    )


def _history_calls(cloud: FakeCloud, intent: DescribeFleets) -> list[tuple[str, str | None]]:
    """The follow-up calls the boto3 interpreter makes for errors: one per fleet in "error",
    one for all groups short of their target. (operation, fleet id or None for all groups)
    """
    infos = [_info(cloud, api, fid) for api, fid in dict.fromkeys(intent.fleets)]
    calls: list[tuple[str, str | None]] = [
        ("DescribeFleetHistory", i.fleet_id)
        for i in infos
        if i.api != "ASG" and i.activity == "error"
    ]
    if any(
        i.api == "ASG" and i.state != "gone" and i.fulfilled_units < i.target_units for i in infos
    ):
        calls.append(("DescribeScalingActivities", None))
    return calls


def _describe_fleets(cloud: FakeCloud, intent: DescribeFleets) -> tuple[FakeCloud, Answer]:
    infos = {fid: _info(cloud, api, fid) for api, fid in intent.fleets}
    for operation, fleet_id in _history_calls(cloud, intent):
        cloud = msgspec.structs.replace(cloud, calls=(*cloud.calls, operation))
        cloud, fault = _take_fault(cloud, operation)
        if fault is not None:
            # The boto3 interpreter logs a failed history call and answers without reasons.
            continue
        for fid, info in infos.items():
            fleet = cloud.fleets.get(fid)
            wanted = fleet_id == fid or (fleet_id is None and info.api == "ASG")
            if wanted and fleet is not None and not _instant(fleet) and info.state != "gone":
                infos[fid] = msgspec.structs.replace(info, errors=fleet.errors)
    return cloud, Success(infos)


def _live_fleet(cloud: FakeCloud, api: FleetApi, fleet_id: str) -> FakeFleet | None:
    fleet = cloud.fleets.get(fleet_id)
    return None if fleet is None or fleet.deleted or fleet.api != api else fleet


def _modify_fleet(cloud: FakeCloud, intent: ModifyFleetTarget) -> tuple[FakeCloud, Answer]:
    operation = _MODIFY_OP[intent.api]
    fleet = _live_fleet(cloud, intent.api, intent.fleet_id)
    if fleet is None:
        code, message = _NOT_FOUND[intent.api]
        return cloud, _error(operation, code, message.format(intent.fleet_id))
    if fleet.api != "ASG" and (fleet.spec.fleet_type != "maintain" or fleet.expired):
        return cloud, _error(
            operation,
            "FleetNotInModifiableState",
            f"Fleet Request: {fleet.fleet_id} is not a modifiable fleet request type.",
        )
    # Excess capacity is kept (no-termination): lowering only stops replacements.
    total = max(intent.target_units, 0)
    fleet = msgspec.structs.replace(
        fleet, target_units=total, on_demand_units=min(max(intent.on_demand_units, 0), total)
    )
    return _with_fleet(cloud, fleet), Success(None)


def _in_group(cloud: FakeCloud, group: str, instance_id: str) -> bool:
    item = cloud.instances.get(instance_id)
    fleet = _live_fleet(cloud, "ASG", group)
    return (
        fleet is not None
        and item is not None
        and item.fleet_id == group
        and item.instance.state in _LIVE
    )


def _terminate_in_group(cloud: FakeCloud, intent: TerminateInGroup) -> tuple[FakeCloud, Answer]:
    asked = tuple(dict.fromkeys(intent.instance_ids))
    members = [i for i in asked if _in_group(cloud, intent.group, i)]
    group = cloud.fleets.get(intent.group)
    if group is not None and members:
        lowered = max(group.target_units - sum(cloud.instances[i].units for i in members), 0)
        group = msgspec.structs.replace(
            group,
            target_units=lowered,
            on_demand_units=min(group.on_demand_units, lowered),
        )
        cloud = _with_fleet(cloud, group)
    cloud, states = _terminated(cloud, asked)
    return cloud, Success(states)


def _delete_fleet(cloud: FakeCloud, intent: DeleteFleet) -> tuple[FakeCloud, Answer]:
    fleet = _live_fleet(cloud, intent.api, intent.fleet_id)
    if fleet is None:
        return cloud, Success(None)
    if _instant(fleet) or fleet.api == "ASG":
        # TerminateInstances=True for an instant fleet (AWS insists); ForceDelete for a group.
        ids = [x.instance.instance_id for x in _members(cloud, fleet.fleet_id)]
        cloud, _ = _terminated(cloud, ids)
    return _with_fleet(cloud, msgspec.structs.replace(fleet, deleted=True)), Success(None)


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


# Dispatch: which AWS operations an intent makes, and what it does.

_CREATE_OP: dict[str, str] = {
    "EC2Fleet": "CreateFleet",
    "SpotFleet": "RequestSpotFleet",
    "ASG": "CreateAutoScalingGroup",
}
_DESCRIBE_OP: dict[str, str] = {
    "EC2Fleet": "DescribeFleets",
    "SpotFleet": "DescribeSpotFleetRequests",
    "ASG": "DescribeAutoScalingGroups",
}
_MODIFY_OP: dict[str, str] = {
    "EC2Fleet": "ModifyFleet",
    "SpotFleet": "ModifySpotFleetRequest",
    "ASG": "UpdateAutoScalingGroup",
}


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


# Helpers for tests: what the real cloud does on its own.


def _set_state(cloud: FakeCloud, instance_id: str, state: InstanceState, reason: str) -> FakeCloud:
    item = cloud.instances[instance_id]
    updated = msgspec.structs.replace(
        item, instance=msgspec.structs.replace(item.instance, state=state, state_reason=reason)
    )
    return msgspec.structs.replace(cloud, instances={**cloud.instances, instance_id: updated})


def notify_interruption(cloud: FakeCloud, instance_id: str, at: int | None = None) -> FakeCloud:
    """AWS marks a spot instance for termination at `at` (default now); it runs 120 s more.

    A no-op for an on-demand, ended or already marked instance. (Rebalance recommendations are
    not modelled: no describe API shows them, so the boto3 interpreter never reports one.)
    """
    item = cloud.instances.get(instance_id)
    if item is None or item.instance.lifecycle != "spot" or item.instance.state not in _LIVE:
        return cloud
    if cloud.signals.get(instance_id):
        return cloud
    when = cloud.now if at is None else at
    signal = SpotSignal(
        instance_id=instance_id, kind="interruption", at=when, reason="marked-for-termination"
    )
    return msgspec.structs.replace(cloud, signals={**cloud.signals, instance_id: (signal,)})


def interrupt(cloud: FakeCloud, instance_id: str) -> FakeCloud:
    """AWS reclaims an instance: it starts shutting down (a spot one had its notice 120 s ago)."""
    cloud = notify_interruption(cloud, instance_id, at=cloud.now - SPOT_NOTICE_SECONDS)
    return _set_state(cloud, instance_id, "shutting-down", _SPOT_REASON)


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


def exhaust(cloud: FakeCloud, instance_type: str) -> FakeCloud:
    """AWS runs out of an instance type: nothing more of it starts (fleets fall short)."""
    if instance_type in cloud.exhausted:
        return cloud
    return msgspec.structs.replace(cloud, exhausted=(*cloud.exhausted, instance_type))


def live_instances(cloud: FakeCloud) -> dict[str, Instance]:
    """Instances that are not terminated (what still costs money)."""
    return {
        i: x.instance
        for i, x in cloud.instances.items()
        if x.instance.state not in ("terminated", "shutting-down")
    }


def fleet_instances(cloud: FakeCloud, fleet_id: str) -> dict[str, Instance]:
    """Every instance a fleet or group launched, whatever its state now."""
    return {i: x.instance for i, x in cloud.instances.items() if x.fleet_id == fleet_id}


def owned_resources(
    cloud: FakeCloud, *, tag: str | None = REQUEST_TAG
) -> dict[str, tuple[str, ...]]:
    """Launch templates, fleets and groups still present, by kind, that carry `tag` (None: all).

    Kinds: "LaunchTemplate", "EC2Fleet", "SpotFleet", "ASG". ohf tags what it creates with
    `ohf:request-id`, so by default this is what ohf created and has not deleted.
    """

    def tagged(tags: Iterable[tuple[str, str]]) -> bool:
        return tag is None or any(key == tag for key, _ in tags)

    found: dict[str, tuple[str, ...]] = {
        "LaunchTemplate": tuple(
            i for i, lt in cloud.launch_templates.items() if tagged(lt.spec.tags)
        )
    }
    for api in ("EC2Fleet", "SpotFleet", "ASG"):
        found[api] = tuple(
            i
            for i, f in cloud.fleets.items()
            if f.api == api and not f.deleted and tagged(f.spec.tags)
        )
    return found
