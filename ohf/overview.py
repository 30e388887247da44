"""What the status page shows, pure: providers, templates, open requests, machines, recent events.

Built from what the caller read (the state, the event log, the breakers), the config, the
catalogue and the clock: nothing here asks AWS or reads a file. A provider's "last AWS error"
is the last AWS error ohf recorded on a request placed there (an event changed the request's
message to name it), so it is as old as the event log and says nothing of errors no request
kept (a failed status poll counts only towards the provider's breaker).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

import msgspec

from ohf.breaker import Breaker
from ohf.catalogue import Catalogue
from ohf.config import Config
from ohf.events import Event, EventKind
from ohf.explain import Explanation, explain
from ohf.listings import MachineRow, RequestRow, TemplateRow, machine_rows, request_rows
from ohf.listings import template_rows as listed_templates
from ohf.model import LOST_STATES, InstanceState, Request, State
from ohf.parts import hf_parts, parts_index
from ohf.placement import label, providers_of
from ohf.status import machines_by_id
from ohf.templates import request_units

# EC2's states in the order a machine goes through them (the chart's order), then "gone".
MACHINE_STATES: tuple[InstanceState, ...] = get_args(InstanceState)
# How far back the events panel looks, and how many rows a panel shows at most.
EVENT_WINDOW_SECONDS = 3600
MAX_EVENTS = 100
MAX_MACHINES = 500
MAX_REQUESTS = 300

# An AWS API error as ohf's interpreters word it: "Operation: Code: text" (`(HTTP n)` after
# the code for an unknown 5xx); a fleet's pool error: "Code: text (type/subnet)".
_API_ERROR = re.compile(
    r"\b[A-Z][a-z][A-Za-z0-9]*: [A-Z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*(?: \(HTTP \d{3}\))?: \S"
)
_POOL_ERROR = re.compile(r"^[A-Z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*: .*\([^()/]+/[^()]+\)$")

BreakerState = Literal["closed", "open", "half-open"]


class LastError(msgspec.Struct, frozen=True, kw_only=True):
    """An AWS error recorded on a request: when the event log saw it, on which request, what."""

    at: int
    request_id: str
    message: str


class ProviderRow(msgspec.Struct, frozen=True, kw_only=True):
    """One provider: whether ohf places there, its breaker, its units and its last AWS error."""

    name: str
    enabled: bool
    region: str | None
    breaker: BreakerState
    open_until: int | None
    failures: int
    in_use: int
    room: int | None
    last_error: LastError | None = None


class OpenRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request that has not ended, and why it stands where it does."""

    request: RequestRow
    explanation: Explanation | None


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event in words."""

    at: int
    request_id: str
    call: str
    kind: EventKind
    words: str


class MachineFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which machines to list (None: any)."""

    state: str | None = None
    provider: str | None = None
    request: str | None = None


ANY_MACHINE = MachineFilter()


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the status page shows, as of `now`."""

    now: int
    providers: list[ProviderRow]
    templates: list[TemplateRow]
    requests: list[OpenRequest]
    requests_hidden: int
    machines: list[MachineRow]
    # Machines matching the filter, by state (the chart), and how many the table leaves out.
    by_state: dict[str, int]
    machines_hidden: int
    events: list[EventRow]
    events_hidden: int
    filters: MachineFilter = ANY_MACHINE


def aws_errors(message: str) -> list[str]:
    """The AWS errors a request's message names, each from its operation (or code) on."""
    found = []
    for clause in (c.strip() for c in message.split("; ")):
        api = _API_ERROR.search(clause)
        if api:
            found.append(clause[api.start() :])
        elif _POOL_ERROR.match(clause):
            found.append(clause)
    return found


def _new_clauses(before: str, after: str) -> list[str]:
    old = set(before.split("; "))
    return [c for c in after.split("; ") if c and c not in old]


def last_errors(events: Iterable[Event]) -> dict[str, LastError]:
    """The last AWS error recorded on a request, by provider name ("" for `[aws]`)."""
    seen: dict[str, set[str]] = {}
    last: dict[str, LastError] = {}
    for event in events:
        request = event.request
        if request is None:
            continue
        errors = aws_errors(request.message)
        known = seen.setdefault(event.request_id, set())
        fresh = [e for e in errors if e not in known]
        known.update(errors)
        if fresh:
            last[request.provider] = LastError(
                at=event.at, request_id=request.parent or request.request_id, message=fresh[-1]
            )
    return last


def breaker_state(breaker: Breaker | None, now: int) -> BreakerState:
    """Closed; open until its cool-down ends; then half-open (the next call is a probe)."""
    if breaker is None or breaker.open_until is None:
        return "closed"
    return "open" if now < breaker.open_until else "half-open"


def provider_rows(
    config: Config,
    state: State,
    templates: list[TemplateRow],
    breakers: Mapping[str, Breaker],
    errors: Mapping[str, LastError],
    now: int,
) -> list[ProviderRow]:
    """Every provider of the config, in its order ("aws" for the `[aws]` shorthand)."""
    rows = []
    for provider in providers_of(config):
        name = label(provider.name)
        rooms = [t.rooms[name] for t in templates if name in t.rooms]
        breaker = breakers.get(provider.name)
        rows.append(
            ProviderRow(
                name=name,
                enabled=provider.enabled,
                region=provider.region or config.aws.region,
                breaker=breaker_state(breaker, now),
                open_until=breaker.open_until if breaker else None,
                failures=breaker.failures if breaker else 0,
                in_use=sum(
                    request_units(r) for r in state.requests.values() if r.provider == provider.name
                ),
                room=None if None in rooms else sum(r for r in rooms if r is not None),
                last_error=errors.get(provider.name),
            )
        )
    return rows


def is_lost(machine: MachineRow) -> bool:
    """Whether AWS took the machine (or it stopped) before HF gave it back: a reclaim."""
    return machine.state in LOST_STATES and machine.returned_by is None


def _own_state(
    state: State, row: RequestRow, parts: list[Request], owners: Mapping[str, str]
) -> State:
    """Just what explaining `row` needs: its parts, or its return and the machines' requests
    (so that explaining every open request stays linear in the size of the state)."""
    if row.kind == "acquire":
        return State(requests={p.request_id: p for p in parts})
    ret = state.returns[row.request_id]
    held = {owners[m] for m in ret.machine_ids if m in owners}
    return State(requests={rid: state.requests[rid] for rid in held}, returns={ret.request_id: ret})


def open_requests(
    state: State,
    events: Mapping[str, list[Event]],
    breakers: Mapping[str, Breaker],
    now: int,
) -> list[OpenRequest]:
    """The requests (acquire and return) that have not ended, each explained: the running ones
    first, then the others, oldest first within each.

    `events` are the event log's events by request id (of parts too).
    """
    index = parts_index(state)
    owners = {m: rid for m, (rid, _) in machines_by_id(state).items()}
    out = []
    for row in request_rows(state, now):
        if row.kind == "return":
            parts: list[Request] = []
            if state.returns[row.request_id].ended_at is not None:
                continue
        else:
            parts = hf_parts(state, row.request_id, index)
            if all(p.ended_at is not None for p in parts):
                continue
        ids = [p.request_id for p in parts] or [row.request_id]
        own = [e for rid in ids for e in events.get(rid, ())]
        mine = _own_state(state, row, parts, owners)
        why = explain(mine, row.request_id, now, events=own, breakers=breakers)
        out.append(OpenRequest(request=row, explanation=why))
    return sorted(out, key=lambda r: r.request.status != "running")


def _ids(machines: Iterable[str]) -> str:
    listed = list(machines)
    more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
    return ", ".join(listed[:5]) + more


def _machine_words(event: Event) -> str:
    changes = [
        f"{m.machine_id} {m.state}" + (f" ({m.message})" if m.message else "")
        for m in event.machines
    ]
    more = f"; and {len(changes) - 5} more" if len(changes) > 5 else ""
    return "; ".join(changes[:5]) + more


def _request_words(event: Event, request: Request, before: str) -> str:
    if event.kind == "request_created":
        part = f" (part of {request.parent})" if request.parent else ""
        return (
            f"asked for {request.machine_count} unit(s) of {request.template_id} on provider "
            f"{label(request.provider)}{part}"
        )
    if event.kind == "resources_deleted":
        return "its fleet or launch template deleted in AWS"
    news = "; ".join(_new_clauses(before, request.message))
    return f"{request.status} ({request.phase})" + (f": {news}" if news else "")


def event_words(event: Event, before: str = "") -> str:
    """What one event did, in a line (`before`: the request's message before it)."""
    if event.kind == "instances_launched":
        launched = [m.machine_id for m in event.machines]
        return f"{len(launched)} machine(s) launched: {_ids(launched)}"
    if event.kind == "machine_changed":
        return _machine_words(event)
    if event.kind in ("request_pruned", "return_pruned"):
        return "dropped from the state: it ended longer ago than the retention"
    if event.ret is not None:
        if event.kind == "return_requested":
            return (
                f"HF returns {len(event.ret.machine_ids)} machine(s): {_ids(event.ret.machine_ids)}"
            )
        return f"return {event.ret.status}" + (
            f": {event.ret.message}" if event.ret.message else ""
        )
    if event.request is not None:
        return _request_words(event, event.request, before)
    return event.kind.replace("_", " ")


def event_rows(events: Iterable[Event], since: int, limit: int) -> tuple[list[EventRow], int]:
    """The events at or after `since` in words, newest first, at most `limit`; and how many
    more there were."""
    messages: dict[str, str] = {}
    rows = []
    for event in events:
        before = messages.get(event.request_id, "")
        if event.request is not None:
            messages[event.request_id] = event.request.message
        if event.at >= since:
            rows.append(
                EventRow(
                    at=event.at,
                    request_id=event.request_id,
                    call=event.call,
                    kind=event.kind,
                    words=event_words(event, before),
                )
            )
    rows.reverse()
    return rows[:limit], max(len(rows) - limit, 0)


def overview(
    config: Config,
    state: State,
    events: tuple[Event, ...],
    breakers: Mapping[str, Breaker],
    catalogue: Catalogue,
    now: int,
    filters: MachineFilter = ANY_MACHINE,
) -> Overview:
    """The status page's facts, as of `now`."""
    templates = listed_templates(config, state, catalogue)
    by_request: dict[str, list[Event]] = {}
    for event in events:
        by_request.setdefault(event.request_id, []).append(event)
    machines = machine_rows(
        state,
        now,
        request=filters.request,
        machine_state=filters.state,
        provider=filters.provider,
    )
    listed, hidden = event_rows(events, now - EVENT_WINDOW_SECONDS, MAX_EVENTS)
    counts = Counter(m.state for m in machines)
    unended = open_requests(state, by_request, breakers, now)
    return Overview(
        now=now,
        providers=provider_rows(config, state, templates, breakers, last_errors(events), now),
        templates=templates,
        requests=unended[:MAX_REQUESTS],
        requests_hidden=max(len(unended) - MAX_REQUESTS, 0),
        machines=machines[:MAX_MACHINES],
        by_state={s: counts[s] for s in MACHINE_STATES if counts[s]},
        machines_hidden=max(len(machines) - MAX_MACHINES, 0),
        events=listed,
        events_hidden=hidden,
        filters=filters,
    )
