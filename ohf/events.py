"""The event log, pure: state changes as events (`diff`), rebuilt by `replay`, and pruning.

Every HF call that changes the state also appends the events that take the old state to the new
one, stamped with the time and the call's correlation id. Replaying the log from the empty state
gives the state back exactly, so the log is both an audit trail and a way to rebuild a store.
`mark_ended` stamps requests as they settle and `prune` drops the ones that ended long ago, so the
state stays small at a site that has run for years.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from ohf.model import ENDED_STATES, Machine, Request, ReturnRequest, State

EventKind = Literal[
    "request_created",
    "instances_launched",
    "machine_changed",
    "request_updated",
    "return_requested",
    "return_updated",
    "resources_deleted",
    "request_pruned",
    "return_pruned",
]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the state, with when it happened and which HF call made it.

    Payload by kind:
    - `request_created`: `request` (its header, `machines=()`) and its `machines`;
    - `instances_launched`: the new `machines`, appended to the request's;
    - `machine_changed`: the changed `machines`, replacing those of the same id;
    - `request_updated`, `resources_deleted`: the request's new header in `request`; when the
      request's machines were dropped or reordered, `machine_ids` gives their order after it;
    - `return_requested`, `return_updated`: the return request in `ret`;
    - `request_pruned`, `return_pruned`: nothing but `request_id`.
    """

    at: int
    correlation: str
    call: str
    kind: EventKind
    request_id: str
    request: Request | None = None
    machines: tuple[Machine, ...] = ()
    machine_ids: tuple[str, ...] | None = None
    ret: ReturnRequest | None = None


class Stamp(msgspec.Struct, frozen=True, kw_only=True):
    """When, and by which HF call, a batch of events happened."""

    at: int
    correlation: str
    call: str


def _event(stamp: Stamp, kind: EventKind, request_id: str, **payload: Any) -> Event:
    return Event(
        at=stamp.at,
        correlation=stamp.correlation,
        call=stamp.call,
        kind=kind,
        request_id=request_id,
        **payload,
    )


def header(request: Request) -> Request:
    """The request without its machines (those travel as their own events)."""
    return msgspec.structs.replace(request, machines=())


def _request_events(
    rid: str, before: Request | None, after: Request | None, stamp: Stamp
) -> list[Event]:
    if after is None:
        return [_event(stamp, "request_pruned", rid)]
    if before is None:
        return [
            _event(stamp, "request_created", rid, request=header(after), machines=after.machines)
        ]
    events: list[Event] = []
    old = {m.machine_id: m for m in before.machines}
    new = tuple(m for m in after.machines if m.machine_id not in old)
    if new:
        events.append(_event(stamp, "instances_launched", rid, machines=new))
    changed = tuple(m for m in after.machines if m.machine_id in old and old[m.machine_id] != m)
    if changed:
        events.append(_event(stamp, "machine_changed", rid, machines=changed))
    # After appending the new machines, the ids are in this order; anything else (a machine
    # dropped or moved) is stated outright so that replay is exact.
    order = tuple(m.machine_id for m in before.machines) + tuple(m.machine_id for m in new)
    wanted = tuple(m.machine_id for m in after.machines)
    machine_ids = None if order == wanted else wanted
    if header(before) != header(after) or machine_ids is not None:
        kind: EventKind = (
            "resources_deleted" if after.cleaned_up and not before.cleaned_up else "request_updated"
        )
        events.append(_event(stamp, kind, rid, request=header(after), machine_ids=machine_ids))
    return events


def _return_events(
    rid: str, before: ReturnRequest | None, after: ReturnRequest | None, stamp: Stamp
) -> list[Event]:
    if after is None:
        return [_event(stamp, "return_pruned", rid)]
    if before is None:
        kind: EventKind = "return_requested"
    elif before != after:
        kind = "return_updated"
    else:
        return []
    return [_event(stamp, kind, rid, ret=after)]


def diff(before: State, after: State, *, at: int, correlation: str, call: str) -> tuple[Event, ...]:
    """The events that take `before` to `after`: requests by id, then returns by id."""
    stamp = Stamp(at=at, correlation=correlation, call=call)
    events: list[Event] = []
    for rid in sorted(before.requests.keys() | after.requests.keys()):
        old, new = before.requests.get(rid), after.requests.get(rid)
        if old != new:
            events.extend(_request_events(rid, old, new, stamp))
    for rid in sorted(before.returns.keys() | after.returns.keys()):
        events.extend(_return_events(rid, before.returns.get(rid), after.returns.get(rid), stamp))
    return tuple(events)


def _replace_machines(request: Request, machines: Iterable[Machine]) -> Request:
    by_id = {m.machine_id: m for m in machines}
    return msgspec.structs.replace(
        request, machines=tuple(by_id.get(m.machine_id, m) for m in request.machines)
    )


def _reorder(request: Request, machine_ids: tuple[str, ...]) -> Request:
    by_id = {m.machine_id: m for m in request.machines}
    return msgspec.structs.replace(
        request, machines=tuple(by_id[i] for i in machine_ids if i in by_id)
    )


def _apply_request(request: Request | None, event: Event) -> Request | None:
    if event.kind == "request_created" and event.request is not None:
        return msgspec.structs.replace(event.request, machines=event.machines)
    if request is None:
        # An event for a request the state does not hold (a log cut short): nothing to change.
        return None
    if event.kind == "instances_launched":
        return msgspec.structs.replace(request, machines=request.machines + event.machines)
    if event.kind == "machine_changed":
        return _replace_machines(request, event.machines)
    if event.request is not None:
        updated = msgspec.structs.replace(event.request, machines=request.machines)
        return updated if event.machine_ids is None else _reorder(updated, event.machine_ids)
    return request


def apply(state: State, event: Event) -> State:
    """The state after one event."""
    if event.kind == "return_pruned":
        returns = {k: v for k, v in state.returns.items() if k != event.request_id}
        return msgspec.structs.replace(state, returns=returns)
    if event.kind in ("return_requested", "return_updated"):
        if event.ret is None:
            return state
        return msgspec.structs.replace(
            state, returns={**state.returns, event.request_id: event.ret}
        )
    if event.kind == "request_pruned":
        requests = {k: v for k, v in state.requests.items() if k != event.request_id}
        return msgspec.structs.replace(state, requests=requests)
    request = _apply_request(state.requests.get(event.request_id), event)
    if request is None:
        return state
    return msgspec.structs.replace(state, requests={**state.requests, event.request_id: request})


def replay(events: Iterable[Event], start: State | None = None) -> State:
    """The state after all `events`, in order, starting from `start` (the empty state)."""
    state = State() if start is None else start
    for event in events:
        state = apply(state, event)
    return state


def _complete(ret: ReturnRequest, ended: frozenset[str]) -> bool:
    """A return is over once complete, or once all its machines ended (HF may never poll it)."""
    return ret.status == "complete" or all(m in ended for m in ret.machine_ids)


def _ended_machines(state: State) -> frozenset[str]:
    known = {m.machine_id: m for r in state.requests.values() for m in r.machines}
    return frozenset(
        mid
        for ret in state.returns.values()
        for mid in ret.machine_ids
        if mid not in known or known[mid].state in ENDED_STATES
    )


def mark_ended(before: State, after: State, now: int) -> State:
    """`after` with `ended_at=now` on the requests and returns that have just ended.

    A request has ended once it is settled (final, every machine ended, fleet resources
    deleted); a return once it is complete or all its machines ended. Ones already stamped
    keep their time. `before` is the state the call started from: anything it had already
    stamped is stamped in `after` too.
    """
    # Here rather than at the top: the stores decode events on every read (getAvailableTemplates
    # included), and `ohf.status` brings the programs and the fleets with it.
    from ohf.status import settled

    requests = {
        rid: msgspec.structs.replace(r, ended_at=_end(before.requests.get(rid), now))
        if r.ended_at is None and settled(r)
        else r
        for rid, r in after.requests.items()
    }
    ended = _ended_machines(after)
    returns = {
        rid: msgspec.structs.replace(r, ended_at=_end(before.returns.get(rid), now))
        if r.ended_at is None and _complete(r, ended)
        else r
        for rid, r in after.returns.items()
    }
    if requests == after.requests and returns == after.returns:
        return after
    return msgspec.structs.replace(after, requests=requests, returns=returns)


def _end(before: Request | ReturnRequest | None, now: int) -> int:
    return before.ended_at if before is not None and before.ended_at is not None else now


def _expired(ended_at: int | None, now: int, retention: int) -> bool:
    return ended_at is not None and now - ended_at > retention


def prunable(request: Request, now: int, retention: int) -> bool:
    """True when the request ended more than `retention` seconds ago and nothing can change.

    `settled` is asked again rather than trusting `ended_at` alone: a request stamped by hand
    (or by an older ohf) while a machine still runs is kept.
    """
    from ohf.status import settled

    return _expired(request.ended_at, now, retention) and settled(request)


def prune(state: State, *, now: int, retention: int) -> State:
    """The state without requests and returns that ended more than `retention` seconds ago.

    A return is kept while any of its machines belongs to a request that is kept, so HF can
    still ask about it; a request with a machine that has not ended is never dropped.
    """
    requests = {rid: r for rid, r in state.requests.items() if not prunable(r, now, retention)}
    kept_machines = {m.machine_id for r in requests.values() for m in r.machines}
    ended = _ended_machines(state)
    returns = {
        rid: r
        for rid, r in state.returns.items()
        if not (
            _expired(r.ended_at, now, retention)
            and _complete(r, ended)
            and kept_machines.isdisjoint(r.machine_ids)
        )
    }
    if len(requests) == len(state.requests) and len(returns) == len(state.returns):
        return state
    return msgspec.structs.replace(state, requests=requests, returns=returns)
