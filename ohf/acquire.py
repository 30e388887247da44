"""requestMachines, pure: check the ask, record the request, plan and follow the launches."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import msgspec
from returns.result import Failure, Result, Success
from toolz import unique

from ohf.codes import CAPACITY_CODES, FAILOVER_CODES, INDETERMINATE_CODES, MAX_NUMBER_CODE
from ohf.config import Policy, ProviderConfig
from ohf.fleets import fitting, fleet_name, fleet_spec, fleet_type, unit_weights
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
from ohf.messages import ErrorOut, RequestAccepted, RequestMachinesIn
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
from ohf.outcome import Done
from ohf.placement import (
    SHORTHAND,
    allowed,
    candidates,
    effective,
    find_provider,
    label,
    pinned,
    room_for,
    rooms,
    split_template_id,
    total_room,
)
from ohf.program import Answer, on
from ohf.templates import (
    available,
    check_template,
    find_template,
    instance_types,
    is_ssm_parameter,
    live_units,
    parse_tags,
    provider_api,
    security_groups,
    ssm_parameter_name,
    subnets,
)


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
    template: Template, request_id: str, image_id: str | None, user_data: str | None
) -> LaunchSpec:
    """The launch parameters shared by every attempt of one request."""
    tags = (
        (REQUEST_TAG, request_id),
        (TEMPLATE_TAG, template.template_id),
        *parse_tags(template.instance_tags).value_or(()),
    )
    spot = template.price_type == "spot" and provider_api(template) == "RunInstances"
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
        message=f"no instance type's weight fits the {room - got} unit(s) left under maxNumber",
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
    room = room_for(template, request.provider, state)
    template = fitting(template, request.machine_count, room)
    weights = unit_weights(template)
    if not weights:
        return (
            request,
            (),
            OhfError(
                message=(
                    f"no instance type's weight fits: {room} unit(s) are free under maxNumber "
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
    if instant and not machines:
        # Nothing came of an instant fleet: delete it and ohf's launch template now.
        gone = yield DeleteFleet(api=api, fleet_id=launched.fleet_id)
        lt_gone: Answer = Success(None)
        if own_lt is not None:
            lt_gone = yield DeleteLaunchTemplate(launch_template_id=own_lt)
        request = msgspec.structs.replace(
            request, cleaned_up=isinstance(gone, Success) and isinstance(lt_gone, Success)
        )
        return request, (), OhfError(message=errors or "the fleet launched nothing", code="fleet")
    if instant and errors:
        return request, machines, OhfError(message=errors, code="fleet")
    return request, machines, None


def with_request(state: State, request: Request) -> State:
    """The state with `request` added or replaced."""
    return msgspec.structs.replace(state, requests={**state.requests, request.request_id: request})


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where new requests may go: the providers, the policy, and whose circuits are open now."""

    providers: tuple[ProviderConfig, ...] = (SHORTHAND,)
    policy: Policy = "first_available"
    failover: bool = True
    open_circuits: frozenset[str] = frozenset()


# The placement of a config without `[[providers]]`: `[aws]` only.
ONE_PROVIDER = Placement()


def fails_over(error: OhfError | None) -> bool:
    """True if `error` means "not here, not now" (capacity, quota, throttled, circuit open).

    A fleet's errors arrive as AWS's "CODE: message" texts, so the codes are looked for there.
    Never true for an error after which AWS may have launched: that request stays open.
    """
    if error is None or error.code in INDETERMINATE_CODES:
        return False
    return error.code in FAILOVER_CODES or any(code in error.message for code in CAPACITY_CODES)


def resolve_template(
    templates: tuple[Template, ...], placement: Placement, template_id: str
) -> Result[Template, OhfError]:
    """The template HF names: an id, or `<id>.<provider>` from a per-provider listing."""
    base, provider = split_template_id(template_id, templates, placement.providers)
    template = find_template(templates, base)
    if template is None:
        known = ", ".join(t.template_id for t in templates) or "none configured"
        return Failure(
            OhfError(message=f"unknown templateId {template_id!r} (known: {known})", code="input")
        )
    if provider is None:
        return Success(template)
    if not allowed(template, find_provider(placement.providers, provider) or SHORTHAND):
        return Failure(
            OhfError(
                message=f"template {base!r} may not run on provider {provider!r}", code="input"
            )
        )
    return Success(pinned(template, provider))


def check_room(
    template: Template, placement: Placement, state: State, count: int, shown_id: str
) -> Result[Template, OhfError]:
    """Refuse a `machineCount` over what the enabled providers together have free."""
    if not placement.providers[0].name:
        room = available(template, state)
        free = f"{room} of maxNumber {template.max_number} units free"
    else:
        room = total_room(template, placement.providers, state)
        per = rooms(template, placement.providers, state)
        free = f"{room} units free: " + ", ".join(
            f"{name} {'unlimited' if n < 0 else n}" for name, n in per.items()
        )
    if room != -1 and count > room:
        return Failure(
            OhfError(
                message=(
                    f"template {shown_id!r}: machineCount {count} is over what is available "
                    f"({free})"
                ),
                code="input",
            )
        )
    # With several providers each one's view of the template is checked once chosen.
    return check_template(template) if not placement.providers[0].name else Success(template)


def request_machines(
    templates: tuple[Template, ...],
    state: State,
    ask: RequestMachinesIn,
    *,
    request_id: str,
    now: int,
    placement: Placement = ONE_PROVIDER,
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The requestMachines program: choose providers, then record and launch on each in turn.

    The first provider the policy chooses gets what it has room for; whatever it could not
    take for capacity, quota or circuit reasons goes to the next candidate, as a part with its
    own request id (`<id>.2`, ...) and `parent` = the id HF gets. HF sees one request.
    """
    count = ask.template.machine_count
    checked = resolve_template(templates, placement, ask.template.template_id).bind(
        lambda t: check_room(t, placement, state, count, ask.template.template_id)
    )
    if isinstance(checked, Failure):
        return checked
    template = checked.unwrap()
    order = candidates(
        template, placement.providers, state, placement.open_circuits, placement.policy
    )
    if not order:
        return Failure(OhfError(message=_nowhere(template, placement, state), code="capacity"))
    per = rooms(template, placement.providers, state)
    reachable = [per[name] for name in order]
    if all(r >= 0 for r in reachable) and count > sum(reachable):
        # Room on providers placement may not use now (open circuit) was counted above: refuse
        # rather than place part of the ask and drop the rest.
        return Failure(
            OhfError(
                message=(
                    f"template {ask.template.template_id!r}: machineCount {count} is over what "
                    f"can be placed now ({sum(reachable)} units on "
                    f"{', '.join(label(n) for n in order)}; "
                    f"{'; '.join(_unusable(template, placement, state))})"
                ),
                code="capacity",
            )
        )
    for name in order:
        # Every provider's view is checked before anything is launched anywhere.
        view = effective(template, find_provider(placement.providers, name) or SHORTHAND)
        usable = view.bind(check_template)
        if isinstance(usable, Failure):
            error = usable.failure()
            where = f" on provider {name!r}" if name else ""
            return Failure(msgspec.structs.replace(error, message=f"{error.message}{where}"))
    placed = yield from place(
        template, state, placement, order, request_id=request_id, count=count, now=now
    )
    if isinstance(placed, Failure):
        return placed
    new_state, parts, replies = placed.unwrap()
    if len(parts) == 1:
        # The part's own reply, with the state as placement left it (units owed included).
        return Success(msgspec.structs.replace(replies[0], state=new_state))
    return Success(combined(new_state, request_id, parts))


def _nowhere(template: Template, placement: Placement, state: State) -> str:
    why = "; ".join(_unusable(template, placement, state))
    return f"template {template.template_id!r}: no provider can take it now ({why})"


def _unusable(template: Template, placement: Placement, state: State) -> list[str]:
    """Why each provider placement skips is skipped: "east disabled", "west circuit open"..."""
    per = rooms(template, placement.providers, state)
    why = []
    for provider in placement.providers:
        name = label(provider.name)
        if not provider.enabled:
            why.append(f"{name} disabled")
        elif provider.name not in per:
            why.append(f"{name} not allowed by the template")
        elif provider.name in placement.open_circuits:
            why.append(f"{name} circuit open")
        elif per[provider.name] == 0:
            why.append(f"{name} full")
    return why


def place(
    template: Template,
    state: State,
    placement: Placement,
    order: tuple[str, ...],
    *,
    request_id: str,
    count: int,
    now: int,
    parent: str | None = None,
    first_part: int = 1,
    previous: Request | None = None,
) -> Generator[Intent, Answer, Result[tuple[State, list[Request], list[Done]], OhfError]]:
    """Place `count` units on the providers in `order`, failing over while that is allowed.

    With `parent` unset the first part is the HF request itself (`request_id`); later parts,
    and all parts when `parent` is set, are `<hf id>.<n>` with `parent` = the HF request id.
    Parts stay unanswered until the last one is placed, so a process killed in between leaves
    nothing that looks as if HF knew of it (see `status.end_cut_off`).
    """
    hf_id = parent or request_id
    remaining = count
    parts: list[Request] = []
    replies: list[Done] = []
    # Parts that came short and failed over, with the units of theirs no provider took yet:
    # each is cut down by what the next providers take, so what nobody takes stays with it.
    shorts: list[tuple[str, int]] = [] if previous is None else [(previous.request_id, count)]
    last_short = None if previous is None else previous.request_id
    # What HF is owed over the parts (with `previous`, its ask includes the `count` to place).
    owed = count if previous is None else previous.machine_count
    for name in order:
        if remaining <= 0:
            break
        provider = find_provider(placement.providers, name) or SHORTHAND
        view = effective(template, provider)
        if isinstance(view, Failure):
            return view
        room = room_for(view.unwrap(), name, state)
        take = remaining if room < 0 else min(remaining, room)
        if take <= 0:
            continue
        state, shorts = _move_shortfalls(state, shorts, take, name)
        number = first_part + len(parts)
        part_id = hf_id if parent is None and number == 1 else f"{hf_id}.{number}"
        api = provider_api(view.unwrap())
        request = Request(
            request_id=part_id,
            template_id=template.template_id,
            machine_count=take,
            client_token=part_id,
            created_at=now,
            provider_api=api,
            fleet_type=None if api == "RunInstances" else fleet_type(view.unwrap(), api),
            answered=parent is not None,
            provider=name,
            parent=None if part_id == hf_id else hf_id,
            pinned=template.providers is not None and len(template.providers) == 1,
        )
        launched = yield from on(name, launch_part(view.unwrap(), state, request, now))
        if isinstance(launched, Failure):
            return launched
        done, error = launched.unwrap()
        part = done.state.requests[part_id]
        if parent is None:
            # Unanswered until the whole call answers (finish marks each part answered).
            part = msgspec.structs.replace(part, answered=False)
        state = with_request(done.state, part)
        parts.append(part)
        replies.append(done)
        pending = _pending(part, error)
        got = sum(m.units for m in part.machines)
        remaining -= take if pending else got
        if not pending and got < take:
            # This provider came short of its share: the rest moves on only for a reason
            # another provider may not share (capacity, quota, throttling, open circuit).
            last_short = part.request_id
            if not (placement.failover and fails_over(error)):
                break
            shorts.append((part.request_id, take - got))
        # Otherwise it took its share; what is over its room goes to the next provider.
    involved = [p.request_id for p in parts] + ([] if previous is None else [previous.request_id])
    unplaced = owed - sum(state.requests[i].machine_count for i in involved)
    if unplaced > 0 and involved:
        # Units no provider could take stay owed by the part that came short (else the last):
        # HF's request then ends complete_with_error instead of complete with fewer machines.
        debtor = state.requests[last_short or involved[-1]]
        state = with_request(
            state, msgspec.structs.replace(debtor, machine_count=debtor.machine_count + unplaced)
        )
    if parent is None:
        state = msgspec.structs.replace(
            state,
            requests={
                **state.requests,
                **{
                    p.request_id: msgspec.structs.replace(
                        state.requests[p.request_id], answered=True
                    )
                    for p in parts
                },
            },
        )
    return Success((state, [state.requests[p.request_id] for p in parts], replies))


def _pending(part: Request, error: OhfError | None) -> bool:
    """True when the part may still get all it asked for (a filling fleet, an unsure launch)."""
    if part.phase == "launching" or (part.fleet_id is not None and not part.fleet_done):
        return error is None or not part.machines
    return False


def _move_shortfalls(
    state: State, shorts: list[tuple[str, int]], take: int, successor: str
) -> tuple[State, list[tuple[str, int]]]:
    """Cut the short parts' asks (earliest first) by the `take` units `successor` now takes."""
    left: list[tuple[str, int]] = []
    for part_id, short in shorts:
        moved = min(short, take)
        take -= moved
        if moved:
            state = _shrink(state, state.requests[part_id], successor, moved)
        if short > moved:
            left.append((part_id, short - moved))
    return state, left


def _shrink(state: State, part: Request, successor: str, moved: int) -> State:
    """The part's ask cut by `moved` units: provider `successor` takes them instead."""
    count = part.machine_count - moved
    got = live_units(part)
    note = f"{moved} unit(s) placed on provider {label(successor)} instead"
    shrunk = msgspec.structs.replace(
        part,
        machine_count=count,
        # A part that got nothing and owes nothing more is over: it holds nothing.
        phase="launched" if part.phase == "failed" and got >= count else part.phase,
        # Recomputed from the machines and the new ask by the next status.
        status="running" if part.phase != "failed" or got >= count else part.status,
        message="; ".join(x for x in (part.message, note) if x),
    )
    return with_request(state, shrunk)


def combined(state: State, request_id: str, parts: list[Request]) -> Done:
    """HF's reply for a request placed in parts: one id, what each provider took."""
    summary = ", ".join(
        f"{label(p.provider)} {sum(m.units for m in p.machines)}/{p.machine_count}"
        + (f" ({p.message})" if p.message else "")
        for p in parts
    )
    launched_any = any(p.machines or _pending(p, None) for p in parts)
    message = f"placed on {len(parts)} providers: {summary}"
    if not launched_any:
        return Done(
            reply=ErrorOut(message=f"request {request_id}: no machine launched: {message}"),
            state=state,
            exit_code=1,
        )
    return Done(reply=RequestAccepted(request_id=request_id, message=message), state=state)


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
        base = base_spec(template, request_id, image_id, user_data)
        request, machines, error = yield from launch_fleet(template, api, base, request, state, now)
    else:
        base = base_spec(template, request_id, image_id, user_data)
        room = room_for(template, request.provider, state)
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
