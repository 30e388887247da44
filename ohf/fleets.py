"""Pure logic of fleet-backed requests: overrides, on-demand split, fleet spec and clean-up."""

from __future__ import annotations

from collections.abc import Generator

import msgspec
from returns.result import Failure

from ohf.intents import (
    DeleteFleet,
    DeleteLaunchTemplate,
    FleetSpec,
    Intent,
    ModifyFleetTarget,
    Override,
)
from ohf.model import (
    ENDED_STATES,
    REQUEST_TAG,
    TEMPLATE_TAG,
    FleetApi,
    FleetType,
    Request,
    Template,
)
from ohf.program import Answer
from ohf.templates import instance_types, subnets

# On-demand types listed in vmTypesOnDemand go first under the "prioritized" strategy.
_ON_DEMAND_PRIORITY = 0
_DEFAULT_PRIORITY = 100


def fleet_type(template: Template, api: FleetApi) -> FleetType:
    """The fleet type: the template's `fleetType`, else `instant` (EC2 Fleet) or `request`.

    `instant` is the default for EC2 Fleet because it answers with the instances at once and
    never launches behind HF's back; an ASG always maintains its desired capacity.
    """
    if api == "ASG":
        return "maintain"
    if template.fleet_type is not None:
        return template.fleet_type
    return "instant" if api == "EC2Fleet" else "request"


def on_demand_units(template: Template, target: int) -> int:
    """Units of `target` to launch on-demand: all, none, or `percentOnDemand` % (rounded up)."""
    if template.price_type == "ondemand":
        return target
    if template.price_type == "spot":
        return 0
    percent = template.percent_on_demand or 0
    return -(-target * percent // 100)


def unit_weights(template: Template) -> dict[str, int]:
    """Capacity units per instance type: `vmTypes` weights plus any `vmTypesOnDemand` types."""
    weights = dict(instance_types(template))
    for name, weight in (template.vm_types_on_demand or {}).items():
        weights.setdefault(name, max(weight, 1))
    return weights


def fitting(template: Template, count: int, room: int) -> Template:
    """The template with only the types whose whole instances cannot overshoot `room`.

    AWS fills a fleet with whole instances, so a request of `count` units may end up to one
    weight short of a unit over it; a type is kept only if that still fits in `room` (the
    template's free units before this request; -1 = unlimited).
    """
    if room < 0:
        return template
    limit = room - count + 1

    def keep(types: dict[str, int] | None) -> dict[str, int] | None:
        return None if types is None else {t: w for t, w in types.items() if w <= limit}

    vm_types = keep(dict(instance_types(template)))
    return msgspec.structs.replace(
        template,
        vm_type=None,
        vm_types=vm_types,
        vm_types_on_demand=keep(template.vm_types_on_demand),
    )


def overrides(template: Template, image_id: str | None) -> tuple[Override, ...]:
    """One override per (instance type x subnet), with weights and priorities.

    Types in `vmTypesOnDemand` are added if missing and put first (priority 0), so the
    `prioritized` on-demand strategy launches the on-demand part on them.
    """
    weights = unit_weights(template)
    on_demand = template.vm_types_on_demand or {}
    priority = template.vm_types_priority or {}
    places: tuple[str | None, ...] = subnets(template) or (None,)
    return tuple(
        Override(
            instance_type=name,
            subnet_id=subnet,
            weight=weight,
            priority=_ON_DEMAND_PRIORITY
            if name in on_demand
            else priority.get(name, _DEFAULT_PRIORITY),
            image_id=image_id,
        )
        for name, weight in weights.items()
        for subnet in places
    )


def fleet_name(request_id: str) -> str:
    """The name of the launch template / group ohf creates for a request (AWS: <= 128)."""
    return f"ohf-{request_id}"[:128]


def fleet_spec(
    template: Template,
    api: FleetApi,
    *,
    request_id: str,
    launch_template_id: str,
    launch_template_version: str,
    image_override: str | None,
    target: int,
    now: int,
) -> FleetSpec:
    """The CreateFleet / RequestSpotFleet / CreateAutoScalingGroup parameters for a request."""
    strategy_on_demand = template.allocation_strategy_on_demand or (
        "prioritized" if template.vm_types_on_demand else None
    )
    expiry = template.spot_fleet_request_expiry
    price = template.max_spot_price
    return FleetSpec(
        api=api,
        name=fleet_name(request_id),
        launch_template_id=launch_template_id,
        launch_template_version=launch_template_version,
        overrides=overrides(template, image_override if api == "EC2Fleet" else None),
        target_units=target,
        on_demand_units=on_demand_units(template, target),
        fleet_type=fleet_type(template, api),
        allocation_strategy=template.allocation_strategy,
        allocation_strategy_on_demand=strategy_on_demand,
        max_spot_price=None if price is None else str(price),
        pools_count=template.pools_count,
        fleet_role=template.fleet_role,
        # IBM's spotFleetRequestExpiry is in minutes.
        valid_until=None if expiry is None else now + expiry * 60,
        client_token=f"{request_id}-fleet"[:64],
        tags=((REQUEST_TAG, request_id), (TEMPLATE_TAG, template.template_id)),
        subnets=subnets(template),
    )


def set_target(request: Request, target: int) -> tuple[ModifyFleetTarget, Request]:
    """The intent setting a request's fleet to `target` units, and the request once it has.

    The on-demand part never stays above the new target.
    """
    on_demand = min(request.fleet_on_demand, target)
    api = request.provider_api
    assert api != "RunInstances" and request.fleet_id is not None, "not a fleet request"
    intent = ModifyFleetTarget(
        api=api, fleet_id=request.fleet_id, target_units=target, on_demand_units=on_demand
    )
    done = msgspec.structs.replace(
        request,
        fleet_target=target,
        fleet_on_demand=on_demand,
        fleet_done=request.fleet_done or target == 0,
    )
    return intent, done


def cleanup_due(request: Request) -> bool:
    """True when ohf's fleet/group or launch template of a request can go: nothing is left.

    Every machine is returned or ended, and the fleet will launch no more (instant, stopped, or
    lowered to zero), so deleting it cannot strand or replace a machine HF holds.
    """
    if request.cleaned_up or not (request.fleet_id or request.launch_template_id):
        return False
    if request.phase == "launching":
        return False
    if request.fleet_id and not (request.fleet_done or request.fleet_target == 0):
        return False
    return all(m.returned_by is not None or m.state in ENDED_STATES for m in request.machines)


def clean_up(request: Request) -> Generator[Intent, Answer, Request]:
    """Delete the request's fleet/group, then ohf's launch template; `cleaned_up` if both went."""
    if request.fleet_id and request.provider_api != "RunInstances":
        gone = yield DeleteFleet(api=request.provider_api, fleet_id=request.fleet_id)
        if isinstance(gone, Failure):
            return _noted(request, f"deleting {request.fleet_id} failed: {gone.failure().message}")
    if request.launch_template_id:
        lt_gone = yield DeleteLaunchTemplate(launch_template_id=request.launch_template_id)
        if isinstance(lt_gone, Failure):
            return _noted(
                request,
                f"deleting launch template {request.launch_template_id} failed: "
                f"{lt_gone.failure().message}",
            )
    return msgspec.structs.replace(request, cleaned_up=True)


def _noted(request: Request, note: str) -> Request:
    return msgspec.structs.replace(
        request, message="; ".join(x for x in (request.message, note) if x)
    )
