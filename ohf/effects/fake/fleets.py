"""Fleets and groups in the fake cloud: filling a target in weighted units, creating, ticking."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from returns.result import Failure, Success

from ohf.effects.fake.cloud import (
    _AMI,
    _LIVE,
    _SPOT_REASON,
    SPOT_NOTICE_SECONDS,
    Answer,
    FakeCloud,
    FakeFleet,
    FakeInstance,
    FakeLaunchTemplate,
    _error,
    _next_serial,
    error_codes,
)
from ohf.effects.fake.instances import _room, _set_state, _start
from ohf.intents import CreateFleet, FleetSpec, Override, SpotMarket
from ohf.model import REQUEST_TAG, TEMPLATE_TAG, FleetLaunch, Instance, OhfError

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
    launch = FleetLaunch(
        fleet_id=fleet.fleet_id, instances=instances, errors=errors, codes=error_codes(errors)
    )
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
