"""A request over several providers, pure: placing it in parts, moving shortfalls, the HF view.

HF knows one request id. With several providers ohf may place it in parts: the first provider
the policy chooses takes what it has room for, and what it could not take (capacity, quota,
throttling, an open circuit) goes to the next as a part of its own (`<id>.2`, ...) whose
`parent` is the id HF got. A fleet part that stops short at a later poll spills its shortfall
over the same way. HF sees one status over all parts (`combined_status`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping

import msgspec
from returns.result import Failure, Result, Success

from ohf.acquire import launch_part, with_request
from ohf.codes import fails_over, leading_code
from ohf.fleets import fleet_type
from ohf.intents import Intent
from ohf.messages import (
    ErrorOut,
    RequestAccepted,
    RequestMachinesIn,
)
from ohf.model import OhfError, Request, RequestStatus, State, Template
from ohf.outcome import Done
from ohf.placement import (
    ONE_PROVIDER,
    SHORTHAND,
    Placement,
    candidates,
    effective,
    find_provider,
    label,
    resolve_template,
    rooms,
)
from ohf.program import Answer, on
from ohf.room import over, shown, takes, total
from ohf.status import (
    TERMINAL,
    acquire_status,
    restatus,
)
from ohf.templates import check_template, find_template, live_units, provider_api, room_left


def check_room(
    template: Template, placement: Placement, state: State, count: int, shown_id: str
) -> Result[Template, OhfError]:
    """Refuse a `machineCount` over what the enabled providers together have free."""
    if not placement.providers[0].name:
        room = room_left(template, state)
        free = f"{shown(room)} of maxNumber {template.max_number} units free"
    else:
        per = rooms(template, placement.providers, state)
        room = total(per.values())
        free = f"{shown(room)} units free: " + ", ".join(
            f"{name} {shown(n)}" for name, n in per.items()
        )
    if over(room, count):
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
    reachable = total(per[name] for name in order)
    if over(reachable, count):
        # Room on providers placement may not use now (open circuit) was counted above: refuse
        # rather than place part of the ask and drop the rest.
        return Failure(
            OhfError(
                message=(
                    f"template {ask.template.template_id!r}: machineCount {count} is over what "
                    f"can be placed now ({shown(reachable)} units on "
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
        take = takes(room_left(view.unwrap(), state, name), remaining)
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


def parts_index(state: State) -> dict[str, list[Request]]:
    """The parts placed on other providers, by the HF request id they belong to, in order."""
    out: dict[str, list[Request]] = {}
    for request in state.requests.values():
        if request.parent is not None:
            out.setdefault(request.parent, []).append(request)
    for parts in out.values():
        parts.sort(key=lambda r: (r.created_at, len(r.request_id), r.request_id))
    return out


def hf_parts(state: State, request_id: str, index: Mapping[str, list[Request]]) -> list[Request]:
    """The HF request and every part of it, first part first."""
    return [state.requests[request_id], *index.get(request_id, [])]


def combined_status(parts: list[Request]) -> tuple[RequestStatus, str]:
    """One HF status over a request's parts: running while any runs, complete if all are."""
    if len(parts) == 1:
        return acquire_status(parts[0])
    statuses = [acquire_status(p) for p in parts]
    status: RequestStatus = (
        "running"
        if any(s == "running" for s, _ in statuses)
        else "complete"
        if all(s == "complete" for s, _ in statuses)
        else "complete_with_error"
    )
    message = "; ".join(
        f"{label(p.provider)}: {m}" for p, (_, m) in zip(parts, statuses, strict=True) if m
    )
    return status, message


def spill_over(
    before: State,
    state: State,
    request_ids: list[str],
    templates: tuple[Template, ...],
    placement: Placement,
    now: int,
) -> Generator[Intent, Answer, State]:
    """Place what a fleet that stopped short (capacity, quota) could not, on the next provider.

    A fleet fills after requestMachines answered, so its shortfall is only known at a poll:
    the rest becomes a new part of the same HF request on a provider it does not use yet.
    `before` is the state the poll started from: only a part that ended in this poll spills.
    """
    index = parts_index(state)
    for rid in request_ids:
        root = state.requests[rid]
        if root.parent is not None or root.pinned:
            continue
        parts = hf_parts(state, rid, index)
        last = parts[-1]
        short = last.machine_count - live_units(last)
        was = before.requests.get(last.request_id)
        if (
            # Only at the poll that finds the fleet stopped short: once HF has been told the
            # request ended, it must not start again (nowhere to go then means never).
            was is None
            or was.status in TERMINAL
            or last.provider_api == "RunInstances"
            or not last.fleet_done
            or last.status != "complete_with_error"
            or short <= 0
            or not fails_over(OhfError(message=last.message, code=leading_code(last.error_codes)))
        ):
            continue
        template = find_template(templates, root.template_id)
        if template is None:
            continue
        used = {p.provider for p in parts}
        order = tuple(
            name
            for name in candidates(
                template, placement.providers, state, placement.open_circuits, placement.policy
            )
            if name not in used
        )
        if not order:
            continue
        placed = yield from place(
            template,
            state,
            placement,
            order,
            request_id=rid,
            count=short,
            now=now,
            parent=rid,
            first_part=len(parts) + 1,
            previous=last,
        )
        if isinstance(placed, Success):
            state = placed.unwrap()[0]
            state = restatus(
                state, [p.request_id for p in hf_parts(state, rid, parts_index(state))]
            )
    return state
