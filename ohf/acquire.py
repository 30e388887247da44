"""requestMachines, pure: check the ask, record the request, plan and follow the launches."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.codes import (
    CAPACITY_CODES,
    INDETERMINATE_CODES,
    MAX_NUMBER_CODE,
    fails_over,
    leading_code,
)
from ohf.fleets import fitting, fleet_name, fleet_spec, unit_weights
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    Intent,
    LaunchSpec,
    ReadText,
    ResolveImage,
    RootVolume,
    RunInstances,
    SaveState,
    SpotMarket,
)
from ohf.messages import ErrorOut, RequestAccepted
from ohf.model import (
    REQUEST_TAG,
    TEMPLATE_TAG,
    FleetApi,
    FleetLaunch,
    Instance,
    Machine,
    OhfError,
    Request,
    State,
    Template,
)
from ohf.native import placeholders, substituted
from ohf.outcome import Done
from ohf.program import Answer
from ohf.room import UNLIMITED, Room, after, shown, whole
from ohf.templates import (
    instance_types,
    is_ssm_parameter,
    parse_tags,
    provider_api,
    room_left,
    security_groups,
    ssm_parameter_name,
    subnets,
)


def first_per_key(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`pairs` less those whose key an earlier pair has: the first value of each key wins."""
    kept: dict[str, str] = {}
    for key, value in pairs:
        kept.setdefault(key, value)
    return tuple(kept.items())


def client_token(request_id: str, attempt: int, partial: bool) -> str:
    """The idempotency token of one RunInstances attempt (<= 64 ASCII characters)."""
    return f"{request_id}-{attempt}{'p' if partial else 'a'}"[:64]


def ordered_types(template: Template) -> tuple[tuple[str | None, int], ...]:
    """Instance types to try, by `vmTypesPriority` (lower first) where given, else as listed."""
    types = instance_types(template)
    if not types:
        return ((None, 1),)
    priority = template.vm_types_priority or {}
    return tuple(sorted(types, key=lambda tw: priority.get(tw[0], 1_000_000)))


def base_spec(
    template: Template,
    request_id: str,
    image_id: str | None,
    user_data: str | None,
    machine_count: int = 1,
) -> LaunchSpec:
    """The launch parameters shared by every attempt of one request (`machine_count`: its size,
    for the `${machine_count}` of native fragments)."""
    tags = (
        (REQUEST_TAG, request_id),
        (TEMPLATE_TAG, template.template_id),
        *parse_tags(template.instance_tags).value_or(()),
    )
    api = provider_api(template)
    spot = template.price_type == "spot" and api == "RunInstances"
    version = template.launch_template_version
    values = placeholders(request_id, template.template_id, machine_count)
    return LaunchSpec(
        image_id=image_id,
        instance_type=None,
        min_count=1,
        max_count=1,
        security_group_ids=security_groups(template),
        key_name=template.key_name,
        tags=first_per_key(tags),
        client_token=request_id,
        user_data=user_data,
        instance_profile=template.instance_profile,
        spot=SpotMarket(max_price=_price(template.max_spot_price)) if spot else None,
        root_volume=root_volume(template),
        ebs_optimized=template.ebs_optimized,
        placement_group=template.placement_group_name,
        tenancy=template.tenancy,
        launch_template_id=template.launch_template_id,
        launch_template_version=None if version is None else str(version),
        interface_type=template.interface_type,
        efa_count=template.efa_count,
        metadata_options=template.metadata_options,
        native_run_instances=substituted(template.run_instances or {}, values),
        native_launch_template_data=substituted(template.launch_template_data or {}, values),
    )


def root_volume(template: Template) -> RootVolume | None:
    """The root volume settings the template asks for, None when it leaves the AMI's alone."""
    # A KMS key means encryption: AWS refuses a key for a volume it does not encrypt.
    encrypted = True if template.encrypted or template.kms_key_id else None
    root = RootVolume(
        size_gib=template.root_device_volume_size,
        volume_type=template.volume_type,
        iops=template.iops,
        encrypted=encrypted,
        kms_key_id=template.kms_key_id,
    )
    return root if root != RootVolume() else None


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
    room: Room = UNLIMITED,
) -> Generator[Intent, Answer, tuple[tuple[Machine, ...], OhfError | None]]:
    """Launch `units_wanted` units over (type x subnet), all-or-nothing first, then partial.

    Each (type, subnet) gets at most two RunInstances calls: one for everything left (so a
    healthy pool costs one call), then, on a capacity error, one that accepts fewer. A weighted
    type may round up past `units_wanted`, but never past `room` (the template's free units),
    so a request never takes capacity that maxNumber does not have.
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
            free = after(room, units_wanted - remaining)
            count = whole(free, weight, -(-remaining // weight))
            if count <= 0:
                last_error = OhfError(
                    message=(
                        f"{instance_type} (weight {weight}) does not fit in the "
                        f"{shown(free)} unit(s) left under maxNumber"
                    ),
                    code=MAX_NUMBER_CODE,
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
        message=(
            f"no instance type's weight fits the {shown(after(room, got))} unit(s) left under "
            "maxNumber"
        ),
        code=MAX_NUMBER_CODE,
    )


def launch_fleet(
    template: Template,
    api: FleetApi,
    base: LaunchSpec,
    request: Request,
    state: State,
    now: int,
) -> Generator[Intent, Answer, tuple[Request, tuple[Machine, ...], OhfError | None]]:
    """Create the launch template (unless the template names one) and the fleet or group.

    The launch template carries the request's tags to every instance, so status polls find the
    fleet's instances with the same one DescribeInstances pass as RunInstances machines. An
    `instant` EC2 Fleet answers with its instances; the others fill while HF polls.
    """
    request_id = request.request_id
    room = room_left(template, state, request.provider)
    template = fitting(template, request.machine_count, room)
    weights = unit_weights(template)
    if not weights:
        return (
            request,
            (),
            OhfError(
                message=(
                    f"no instance type's weight fits: {shown(room)} unit(s) are free under "
                    "maxNumber "
                    f"and AWS fills {request.machine_count} unit(s) with whole instances"
                ),
                code=MAX_NUMBER_CODE,
            ),
        )
    if template.launch_template_id:
        lt_id = template.launch_template_id
        version = str(template.launch_template_version or "$Default")
        own_lt = None
    else:
        created = yield CreateLaunchTemplate(name=fleet_name(request_id), spec=base)
        if isinstance(created, Failure):
            # Whatever became of the launch template, no instance can have started.
            return request, (), msgspec.structs.replace(created.failure(), code="prepare")
        lt_id, version, own_lt = created.unwrap(), "$Latest", created.unwrap()
        request = msgspec.structs.replace(request, launch_template_id=own_lt)
        # Checkpoint: the launch template exists now, so a crash still lets ohf delete it.
        saved = yield SaveState(state=with_request(state, request))
        if isinstance(saved, Failure):
            return request, (), saved.failure()
    spec = fleet_spec(
        template,
        api,
        request_id=request_id,
        launch_template_id=lt_id,
        launch_template_version=version,
        image_override=base.image_id if own_lt is None else None,
        target=request.machine_count,
        now=now,
    )
    answer = yield CreateFleet(spec=spec)
    if isinstance(answer, Failure) and answer.failure().code in INDETERMINATE_CODES:
        # Same ClientToken (and, for groups, the same name): AWS answers with the same fleet.
        answer = yield CreateFleet(spec=spec)
    if isinstance(answer, Failure):
        if own_lt is not None and answer.failure().code not in INDETERMINATE_CODES:
            deleted = yield DeleteLaunchTemplate(launch_template_id=own_lt)
            request = msgspec.structs.replace(request, cleaned_up=isinstance(deleted, Success))
        return request, (), answer.failure()
    launched: FleetLaunch = answer.unwrap()
    machines = tuple(machine_of(i, weights.get(i.instance_type, 1)) for i in launched.instances)
    instant = spec.fleet_type == "instant"
    request = msgspec.structs.replace(
        request,
        fleet_id=launched.fleet_id,
        fleet_target=spec.target_units,
        fleet_on_demand=spec.on_demand_units,
        fleet_headroom=max(weights.values()) - 1,
        fleet_done=instant,
        phase="launched",
    )
    errors = "; ".join(launched.errors)
    # The error's code is AWS's (the first that fails over): requestMachines decides by it.
    code = leading_code(launched.codes)
    if instant and not machines:
        # Nothing came of an instant fleet: delete it and ohf's launch template now.
        gone = yield DeleteFleet(api=api, fleet_id=launched.fleet_id)
        lt_gone: Answer = Success(None)
        if own_lt is not None:
            lt_gone = yield DeleteLaunchTemplate(launch_template_id=own_lt)
        request = msgspec.structs.replace(
            request, cleaned_up=isinstance(gone, Success) and isinstance(lt_gone, Success)
        )
        return request, (), OhfError(message=errors or "the fleet launched nothing", code=code)
    if instant and errors:
        return request, machines, OhfError(message=errors, code=code)
    return request, machines, None


def with_request(state: State, request: Request) -> State:
    """The state with `request` added or replaced."""
    return msgspec.structs.replace(state, requests={**state.requests, request.request_id: request})


def launch_part(
    template: Template, state: State, request: Request, now: int
) -> Generator[Intent, Answer, Result[tuple[Done, OhfError | None], OhfError]]:
    """Record one request (or part) before any AWS call, resolve its image, launch, finish."""
    # Recorded before any AWS call: if this process dies mid-launch, the next status poll
    # finds the instances by their ohf:request-id tag and adopts them.
    saved = yield SaveState(state=with_request(state, request))
    if isinstance(saved, Failure):
        return Failure(saved.failure())
    request_id = request.request_id
    api = request.provider_api
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
        error: OhfError | None = msgspec.structs.replace(
            prep_error, code=prep_error.code if fails_over(prep_error) else "prepare"
        )
    elif api != "RunInstances":
        base = base_spec(template, request_id, image_id, user_data, request.machine_count)
        request, machines, error = yield from launch_fleet(template, api, base, request, state, now)
    else:
        base = base_spec(template, request_id, image_id, user_data, request.machine_count)
        room = room_left(template, state, request.provider)
        machines, error = yield from launch(template, base, request.machine_count, request_id, room)
    return Success((finish(state, request, image_id, machines, error), error))


def _over(got: int, request: Request) -> str:
    """Say so when whole weighted instances took more units than HF asked for."""
    extra = got - request.machine_count
    if extra <= 0:
        return ""
    return f" ({extra} over the {request.machine_count} asked: whole instances)"


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
    request = msgspec.structs.replace(request, answered=True)
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
    if request.fleet_id is not None and not request.fleet_done and error is None:
        message = (
            f"{request.provider_api} {request.fleet_id} asked for {request.machine_count} "
            "unit(s); machines appear as it fills"
        )
        filling = msgspec.structs.replace(request, image_id=image_id, machines=machines)
        return Done(
            reply=RequestAccepted(request_id=request.request_id, message=message),
            state=with_request(state, filling),
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
        else f"launched {len(machines)} instance(s) for {got} unit(s)" + _over(got, request)
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
