"""requestMachines, pure: check the ask, record the request, plan and follow the launches."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import msgspec
from returns.result import Failure, Result, Success
from toolz import unique

from ohf.effects.intents import (
    Intent,
    LaunchSpec,
    ReadText,
    ResolveImage,
    RootVolume,
    RunInstances,
    SaveState,
    SpotMarket,
)
from ohf.messages import ErrorOut, RequestAccepted, RequestMachinesIn
from ohf.model import (
    REQUEST_TAG,
    TEMPLATE_TAG,
    Instance,
    Machine,
    OhfError,
    Request,
    State,
    Template,
)
from ohf.outcome import Done
from ohf.program import Answer
from ohf.templates import (
    available,
    check_template,
    find_template,
    instance_types,
    is_ssm_parameter,
    parse_tags,
    security_groups,
    ssm_parameter_name,
    subnets,
)

# Errors that mean "not here, not now": try the next instance type / subnet, then report.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "MaxSpotInstanceCountExceeded",
        "SpotMaxPriceTooLow",
        "VcpuLimitExceeded",
        "InstanceLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",
    }
)


# Errors after which AWS may or may not have launched: the request stays open and status polls
# look for its tagged instances instead of declaring it failed.
INDETERMINATE_CODES = frozenset(
    {
        "connection",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def client_token(request_id: str, attempt: int, partial: bool) -> str:
    """The idempotency token of one RunInstances attempt (<= 64 ASCII characters)."""
    return f"{request_id}-{attempt}{'p' if partial else 'a'}"[:64]


def check_ask(
    templates: tuple[Template, ...], state: State, ask: RequestMachinesIn
) -> Result[Template, OhfError]:
    """The template asked for, if it exists, is usable and has room for `machineCount` units."""
    template_id = ask.template.template_id
    template = find_template(templates, template_id)
    if template is None:
        known = ", ".join(t.template_id for t in templates) or "none configured"
        return Failure(
            OhfError(message=f"unknown templateId {template_id!r} (known: {known})", code="input")
        )
    room = available(template, state)
    count = ask.template.machine_count
    if room != -1 and count > room:
        return Failure(
            OhfError(
                message=(
                    f"template {template_id!r}: machineCount {count} is over what is available "
                    f"({room} of maxNumber {template.max_number} units free)"
                ),
                code="input",
            )
        )
    return check_template(template).bind(supported_here)


def supported_here(template: Template) -> Result[Template, OhfError]:
    """Templates this release can launch: RunInstances, on-demand or spot."""
    where = f"template {template.template_id!r}"
    if template.provider_api not in (None, "RunInstances"):
        return Failure(
            OhfError(message=f"{where}: providerApi {template.provider_api} is not supported yet")
        )
    if template.price_type == "heterogeneous":
        return Failure(
            OhfError(message=f"{where}: priceType heterogeneous needs a fleet API (not yet)")
        )
    return Success(template)


def ordered_types(template: Template) -> tuple[tuple[str | None, int], ...]:
    """Instance types to try, by `vmTypesPriority` (lower first) where given, else as listed."""
    types = instance_types(template)
    if not types:
        return ((None, 1),)
    priority = template.vm_types_priority or {}
    return tuple(sorted(types, key=lambda tw: priority.get(tw[0], 1_000_000)))


def base_spec(
    template: Template, request_id: str, image_id: str | None, user_data: str | None
) -> LaunchSpec:
    """The launch parameters shared by every attempt of one request."""
    tags = (
        (REQUEST_TAG, request_id),
        (TEMPLATE_TAG, template.template_id),
        *parse_tags(template.instance_tags).value_or(()),
    )
    spot = template.price_type == "spot" and template.provider_api in (None, "RunInstances")
    root = (
        RootVolume(
            size_gib=template.root_device_volume_size,
            volume_type=template.volume_type,
            iops=template.iops,
        )
        if template.root_device_volume_size or template.volume_type or template.iops
        else None
    )
    version = template.launch_template_version
    return LaunchSpec(
        image_id=image_id,
        instance_type=None,
        min_count=1,
        max_count=1,
        security_group_ids=security_groups(template),
        key_name=template.key_name,
        tags=tuple(unique(tags, key=lambda kv: kv[0])),
        client_token=request_id,
        user_data=user_data,
        instance_profile=template.instance_profile,
        spot=SpotMarket(max_price=_price(template.max_spot_price)) if spot else None,
        root_volume=root,
        ebs_optimized=template.ebs_optimized,
        placement_group=template.placement_group_name,
        tenancy=template.tenancy,
        launch_template_id=template.launch_template_id,
        launch_template_version=None if version is None else str(version),
        interface_type=template.interface_type,
        efa_count=template.efa_count,
    )


def _price(value: float | str | None) -> str | None:
    return None if value is None else str(value)


def machine_of(instance: Instance, units: int) -> Machine:
    """A new machine record from what RunInstances answered."""
    return Machine(
        machine_id=instance.instance_id,
        name=instance.private_dns,
        instance_type=instance.instance_type,
        units=units,
        state=instance.state,
        private_ip=instance.private_ip,
        public_ip=instance.public_ip,
        launch_time=instance.launch_time,
        lifecycle=instance.lifecycle,
    )


def launch(
    template: Template,
    base: LaunchSpec,
    units_wanted: int,
    request_id: str,
    room: int = -1,
) -> Generator[Intent, Answer, tuple[tuple[Machine, ...], OhfError | None]]:
    """Launch `units_wanted` units over (type x subnet), all-or-nothing first, then partial.

    Each (type, subnet) gets at most two RunInstances calls: one for everything left (so a
    healthy pool costs one call), then, on a capacity error, one that accepts fewer. A weighted
    type may round up past `units_wanted`, but never past `room` (the template's free units;
    -1 = unlimited), so a request never takes capacity that maxNumber does not have.
    """
    machines: list[Machine] = []
    last_error: OhfError | None = None
    places = subnets(template) or (None,)
    attempt = 0
    for instance_type, weight in ordered_types(template):
        for subnet in places:
            remaining = units_wanted - sum(m.units for m in machines)
            if remaining <= 0:
                return tuple(machines), None
            count = -(-remaining // weight)
            if room >= 0:
                count = min(count, (room - (units_wanted - remaining)) // weight)
            if count <= 0:
                last_error = OhfError(
                    message=(
                        f"{instance_type} (weight {weight}) does not fit in the "
                        f"{room - (units_wanted - remaining)} unit(s) left under maxNumber"
                    ),
                    code="maxNumber",
                )
                continue
            for partial in (False, True):
                spec = msgspec.structs.replace(
                    base,
                    instance_type=instance_type,
                    subnet_id=subnet,
                    min_count=1 if partial else count,
                    max_count=count,
                    client_token=client_token(request_id, attempt, partial),
                )
                answer = yield RunInstances(spec=spec)
                if isinstance(answer, Success):
                    launched: tuple[Instance, ...] = answer.unwrap()
                    machines.extend(machine_of(i, weight) for i in launched)
                    break
                last_error = answer.failure()
                if last_error.code not in CAPACITY_CODES:
                    return tuple(machines), last_error
            attempt += 1
    got = sum(m.units for m in machines)
    if got >= units_wanted:
        return tuple(machines), None
    # Without an AWS error, only maxNumber can have stopped a weighted type from filling up.
    return tuple(machines), last_error or OhfError(
        message=f"no instance type's weight fits the {room - got} unit(s) left under maxNumber",
        code="maxNumber",
    )


def with_request(state: State, request: Request) -> State:
    """The state with `request` added or replaced."""
    return msgspec.structs.replace(state, requests={**state.requests, request.request_id: request})


def request_machines(
    templates: tuple[Template, ...],
    state: State,
    ask: RequestMachinesIn,
    *,
    request_id: str,
    now: int,
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The requestMachines program: record first, then resolve the image and launch."""
    checked = check_ask(templates, state, ask)
    if isinstance(checked, Failure):
        return checked
    template = checked.unwrap()
    count = ask.template.machine_count
    request = Request(
        request_id=request_id,
        template_id=template.template_id,
        machine_count=count,
        client_token=request_id,
        created_at=now,
        provider_api="RunInstances",
    )
    # Recorded before any AWS call: if this process dies mid-launch, the next status poll
    # finds the instances by their ohf:request-id tag and adopts them.
    saved = yield SaveState(state=with_request(state, request))
    if isinstance(saved, Failure):
        return Failure(saved.failure())

    image_id = template.image_id
    user_data = template.user_data
    prep_error: OhfError | None = None
    if image_id and is_ssm_parameter(image_id):
        resolved = yield ResolveImage(parameter=ssm_parameter_name(image_id))
        image_id, prep_error = _value(resolved, image_id)
    if prep_error is None and template.user_data_script:
        script = yield ReadText(path=template.user_data_script)
        user_data, prep_error = _value(script, user_data)

    if prep_error is not None:
        machines: tuple[Machine, ...] = ()
        # Nothing was launched whatever the cause, so the request fails now (never "maybe").
        error: OhfError | None = msgspec.structs.replace(prep_error, code="prepare")
    else:
        base = base_spec(template, request_id, image_id, user_data)
        room = available(template, state)
        machines, error = yield from launch(template, base, count, request_id, room)
    return Success(finish(state, request, image_id, machines, error))


def _value(answer: Answer, fallback: Any) -> tuple[Any, OhfError | None]:
    if isinstance(answer, Success):
        return answer.unwrap(), None
    return fallback, answer.failure()


def finish(
    state: State,
    request: Request,
    image_id: str | None,
    machines: tuple[Machine, ...],
    error: OhfError | None,
) -> Done:
    """Fold the launch outcome into the request, the state and HF's reply."""
    got = sum(m.units for m in machines)
    if not machines and error is not None and error.code in INDETERMINATE_CODES:
        # AWS may have launched before the answer was lost: keep the request (and its
        # reservation) open; status polls adopt its tagged instances or fail it after a grace.
        message = f"AWS did not confirm the launch ({error.message}); status will tell"
        pending = msgspec.structs.replace(request, image_id=image_id, message=message)
        return Done(
            reply=RequestAccepted(request_id=request.request_id, message=message),
            state=with_request(state, pending),
        )
    if not machines:
        message = f"no machine launched: {error.message if error else 'unknown error'}"
        failed = msgspec.structs.replace(
            request,
            phase="failed",
            image_id=image_id,
            status="complete_with_error",
            message=message,
        )
        return Done(
            reply=ErrorOut(message=f"request {request.request_id}: {message}"),
            state=with_request(state, failed),
            exit_code=1,
        )
    short = got < request.machine_count
    message = (
        f"launched {got} of {request.machine_count} units: "
        f"{error.message if error else 'capacity exhausted'}"
        if short
        else f"launched {len(machines)} instance(s) for {got} unit(s)"
    )
    launched = msgspec.structs.replace(
        request,
        phase="launched",
        image_id=image_id,
        machines=machines,
        message=message if short else "",
    )
    return Done(
        reply=RequestAccepted(request_id=request.request_id, message=message),
        state=with_request(state, launched),
    )
