"""Event log compaction, pure: a snapshot of the state at a cut of the log, then the events after.

The log would otherwise grow for ever, and every reader (`ohf events`, export, `storage check`)
pays for all of it. Compaction folds a prefix of the log (the events older than the retention,
and more from the oldest while the rest is over the size cap) into a `Snapshot`: the state
those events built. `rebuild(log)` replays the tail onto the snapshot, which is exactly the state
a replay of the whole log gives, since replay is a left fold and only a prefix is ever folded.
Events are never changed, reordered or dropped from the middle.

When to compact is decided from what a store knows cheaply (`LogSize`: the tail's bytes and its
oldest event's time), so the check costs a call next to nothing; the fold itself runs at most
once per `every` seconds by age, or once per half of `max_bytes` of new events by size.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ohf.events import Event, replay
from ohf.model import State

_encoder = msgspec.json.Encoder()


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state built by every event before a cut of the log."""

    state: State
    # The time of the latest event folded in: `ohf events` reaches back to about here.
    through: int = 0
    # How many events have been folded in, over every compaction so far.
    folded: int = 0


class Log(msgspec.Struct, frozen=True, kw_only=True):
    """An event log as a store holds it: an optional snapshot, then the events after it."""

    snapshot: Snapshot | None = None
    events: tuple[Event, ...] = ()


class LogSize(msgspec.Struct, frozen=True, kw_only=True):
    """What a store knows of its log without reading it: the tail's bytes and first event's time.

    `bytes` is None when the store cannot tell (a DynamoDB table written by an older ohf): then
    a compaction is due, which records the figures.
    """

    bytes: int | None
    oldest: int | None


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """When and how far to compact: `[storage]`'s settings in seconds, at time `now`."""

    now: int
    retention: int
    max_bytes: int
    every: int


class Compacted(msgspec.Struct, frozen=True, kw_only=True):
    """What one compaction did."""

    folded: int
    kept: int
    bytes_before: int
    bytes_after: int
    through: int


def start(log: Log) -> State:
    """The state the tail replays onto: the snapshot's, else the empty state."""
    return State() if log.snapshot is None else log.snapshot.state


def rebuild(log: Log) -> State:
    """The state the log describes: its tail replayed onto its snapshot."""
    return replay(log.events, start(log))


def event_bytes(event: Event) -> int:
    """The bytes `event` takes as one line of a JSON-lines log (the measure of `max_bytes`)."""
    return len(_encoder.encode(event)) + 1


def log_bytes(events: Sequence[Event]) -> int:
    """The bytes of `events` as JSON lines."""
    return sum(event_bytes(e) for e in events)


def due(size: LogSize, policy: Policy) -> bool:
    """True when a state-changing call should compact the log before it ends.

    By size: the tail is over `max_bytes`. By age: its oldest event is older than the
    retention by more than `every` seconds (so the fold runs about once per `every`).
    """
    if size.bytes is None:
        return True
    if size.oldest is None:
        return False
    return (
        size.bytes > policy.max_bytes or size.oldest < policy.now - policy.retention - policy.every
    )


def fold_count(events: Sequence[Event], policy: Policy) -> int:
    """How many events, from the oldest, to fold: every one older than the retention (up to the
    first that is not, since commits can land slightly out of time order), then more while the
    rest is over half of `max_bytes`, so the next fold by size is half a cap of events away."""
    cutoff = policy.now - policy.retention
    count = 0
    while count < len(events) and events[count].at < cutoff:
        count += 1
    sizes = [event_bytes(e) for e in events]
    rest = sum(sizes[count:])
    while count < len(events) and rest > policy.max_bytes // 2:
        rest -= sizes[count]
        count += 1
    return count


def fold(log: Log, count: int) -> Log:
    """`log` with its first `count` events folded into the snapshot (the same log if none)."""
    if count <= 0:
        return log
    folded, tail = log.events[:count], log.events[count:]
    before = log.snapshot
    snapshot = Snapshot(
        state=replay(folded, start(log)),
        through=max((e.at for e in folded), default=0)
        if before is None
        else max(before.through, *(e.at for e in folded)),
        folded=(0 if before is None else before.folded) + len(folded),
    )
    return Log(snapshot=snapshot, events=tail)


def compact(log: Log, policy: Policy) -> Log:
    """`log` compacted: what `fold_count` says folded into the snapshot."""
    return fold(log, fold_count(log.events, policy))


def report(before: Log, after: Log) -> Compacted:
    """What turned `before` into `after`, in figures."""
    return Compacted(
        folded=len(before.events) - len(after.events),
        kept=len(after.events),
        bytes_before=log_bytes(before.events),
        bytes_after=log_bytes(after.events),
        through=0 if after.snapshot is None else after.snapshot.through,
    )


def disagreements(state: State, log: Log) -> tuple[str, ...]:
    """How `state` differs from what `log` rebuilds, one line per request or return (none when
    they agree): what `ohf storage check` reports."""
    built = rebuild(log)
    if built == state:
        return ()
    found: list[str] = []
    if built.version != state.version:
        found.append(f"state version {state.version}, the log's {built.version}")
    pairs: tuple[tuple[str, dict[str, object], dict[str, object]], ...] = (
        ("request", dict(state.requests), dict(built.requests)),
        ("return", dict(state.returns), dict(built.returns)),
    )
    for kind, have, want in pairs:
        for rid in sorted(have.keys() | want.keys()):
            if rid not in want:
                found.append(f"{kind} {rid} is in the state but not in the log")
            elif rid not in have:
                found.append(f"{kind} {rid} is in the log but not in the state")
            elif have[rid] != want[rid]:
                found.append(f"{kind} {rid} differs between the state and the log")
    return tuple(found)
