"""Pure logic of fleet-backed requests: overrides, on-demand split, fleet spec, AWS's verdict on
a fleet at each poll, holding and lowering its target, and clean-up."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping

import msgspec
from returns.result import Failure

from ohf.intents import (
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
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
    FleetInfo,
    FleetType,
    Request,
    State,
    Template,
)
from ohf.native import placeholders, substituted
from ohf.program import Answer
from ohf.room import Room, Unlimited
from ohf.templates import instance_types, live_units, subnets

# On-demand types listed in vmTypesOnDemand go first under the "prioritized" strategy.
_ON_DEMAND_PRIORITY = 0
_DEFAULT_PRIORITY = 100
# Fleet/Spot Fleet states after which AWS launches nothing more for the fleet.
FLEET_OVER_STATES = frozenset(
    {
        "gone",
        "failed",
        "expired",
        "cancelled",
        "cancelled_running",
        "cancelled_terminating",
        "deleted",
        "deleted_running",
        "deleted_terminating",
    }
)


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


def fitting(template: Template, count: int, room: Room) -> Template:
    """The template with only the types whose whole instances cannot overshoot `room`.

    AWS fills a fleet with whole instances, so a request of `count` units may end up to one
    weight short of a unit over it; a type is kept only if that still fits in `room` (the
    template's free units before this request).
    """
    if isinstance(room, Unlimited):
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
        native_fleet=substituted(
            template.fleet or {}, placeholders(request_id, template.template_id, target)
        ),
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


def fleet_watch(request: Request) -> bool:
    """True when AWS's view of the request's fleet or group can still change what HF sees."""
    return request.fleet_id is not None and not request.fleet_done and not request.cleaned_up


def fleet_verdict(request: Request, info: FleetInfo) -> tuple[Request, bool]:
    """Fold AWS's view of a fleet into its request; True if the fleet must be held where it is.

    A fleet that stopped short (capacity, price, expiry, cancelled) will launch no more: the
    request ends with AWS's reason. An active `maintain` fleet or group that reports errors is
    lowered to what it holds, so it cannot add machines after HF got its answer.
    """
    live = live_units(request)
    reasons = "; ".join(info.errors)
    short = live < request.machine_count
    codes = info.codes if short else ()
    if info.state in FLEET_OVER_STATES:
        why = reasons or f"the {request.provider_api} is {info.state}"
        return _fleet_done(request, why if short else "", codes), False
    if info.activity == "error" or (info.errors and live < request.machine_count):
        why = reasons or f"the {request.provider_api} reported an error"
        # Only maintaining fleets and groups would go on launching (and only they can be
        # modified); a `request` fleet that erred has made its one attempt.
        maintains = request.fleet_type == "maintain" or request.provider_api == "ASG"
        return _fleet_done(request, why if short else "", codes), maintains
    if request.fleet_type == "request" and (
        info.activity == "fulfilled" or live >= request.machine_count
    ):
        return msgspec.structs.replace(request, fleet_done=True), False
    return request, False


def _fleet_done(request: Request, why: str, codes: tuple[str, ...] = ()) -> Request:
    note = f"{request.fleet_id} stopped short: {why}" if why else ""
    return msgspec.structs.replace(
        request,
        fleet_done=True,
        message="; ".join(x for x in (request.message, note) if x),
        error_codes=tuple(dict.fromkeys((*request.error_codes, *codes))),
    )


def follow_fleets(
    state: State, request_ids: Iterable[str]
) -> Generator[Intent, Answer, tuple[State, str]]:
    """One DescribeFleets for every watched fleet; stop short fleets; note what failed."""
    watched = [state.requests[r] for r in request_ids if fleet_watch(state.requests[r])]
    pairs = tuple(
        (r.provider_api, r.fleet_id)
        for r in watched
        if r.provider_api != "RunInstances" and r.fleet_id is not None
    )
    if not pairs:
        return state, ""
    answer = yield DescribeFleets(fleets=pairs)
    if isinstance(answer, Failure):
        return state, f"fleets not described ({answer.failure().message})"
    infos: Mapping[str, FleetInfo] = answer.unwrap()
    updated = dict(state.requests)
    for request in watched:
        info = infos.get(request.fleet_id or "")
        if info is not None:
            updated[request.request_id] = yield from judge_fleet(request, info)
    return msgspec.structs.replace(state, requests=updated), ""


def judge_fleet(request: Request, info: FleetInfo) -> Generator[Intent, Answer, Request]:
    """Apply AWS's view of a fleet to its request, holding the fleet where the verdict says so."""
    judged, hold = fleet_verdict(request, info)
    if not hold or judged.provider_api == "RunInstances" or judged.fleet_id is None:
        return judged
    intent, held_request = set_target(judged, live_units(judged))
    held = yield intent
    if isinstance(held, Failure):
        # Keep watching: the next poll tries again to hold the fleet.
        return msgspec.structs.replace(judged, fleet_done=False)
    return held_request
