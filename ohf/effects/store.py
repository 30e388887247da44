"""The state store interface, chosen by `[storage] type`: json (default), sqlite or dynamodb.

Every store offers the same few functions, so `ohf.hf` and the CLI never know which one runs:
- `read(settings)`: the state, for calls that change nothing (no lock; never half a write);
- `transaction(settings, owner=...)`: a context manager giving a `Txn` whose `state` was loaded
  under the store's exclusive lock (or DynamoDB lease) and whose `commit(state, events)` makes a
  new state and its events durable before it returns. A call may commit several times (the core
  checkpoints a request before calling AWS); the lock is held until the context ends;
- `read_events` (the log's tail: the events after its snapshot, if it was compacted),
  `read_log` (snapshot and tail), `init`, `check`, `compact`, and `export_lines` /
  `import_lines` (JSON lines, round trip exact).

A `Txn` also tells, without reading the log, how big it is (`log_size`), and compacts it under
the same lock (`compact`): every store makes the new snapshot durable before it lets go of the
events it folds, so a kill at any step leaves either the old log or the new one, both whole.

The backends are imported on first use, so a json site never imports sqlite3 or botocore.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import msgspec
from returns.result import Failure, Result

from ohf.effects.files import Settings
from ohf.model import OhfError, State

if TYPE_CHECKING:
    # Imported lazily at run time: getAvailableTemplates needs no event machinery.
    from ohf.compaction import Compacted, Log, LogSize, Policy
    from ohf.events import Event

    Commit = Callable[[State, tuple[Event, ...]], Result[None, OhfError]]
    Dump = tuple[State, Log]


class Txn(msgspec.Struct, frozen=True, kw_only=True):
    """An open write transaction: the state as loaded under the lock, and how to commit.

    `log_size` is what the store knows of its log without reading it (after the last commit);
    `compact` folds the log's old events into its snapshot as `policy` says, atomically.
    """

    state: State
    commit: Commit
    log_size: Callable[[], Result[LogSize, OhfError]]
    compact: Callable[[Policy], Result[Compacted, OhfError]]


class Handle(Protocol):
    """What each store's open transaction offers, for `txn`."""

    def commit(self, state: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
        """Make `state` and its events durable."""

    def log_size(self) -> Result[LogSize, OhfError]:
        """What the store knows of its log without reading it."""

    def compact(self, policy: Policy) -> Result[Compacted, OhfError]:
        """Fold the log as `policy` says."""


def txn(state: State, handle: Handle) -> Txn:
    """The `Txn` over a store's open transaction, `state` as it loaded it."""
    return Txn(state=state, commit=handle.commit, log_size=handle.log_size, compact=handle.compact)


class Imported(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did: lines read, and where an unreadable store was kept aside."""

    lines: int
    kept_aside: str | None = None


class Backend(Protocol):
    """What each `store_*` module provides."""

    def read(self, settings: Settings) -> Result[State, OhfError]:
        """The committed state."""

    def transaction(
        self, settings: Settings, *, owner: str
    ) -> AbstractContextManager[Result[Txn, OhfError]]:
        """Hold the store exclusively for one call."""

    def read_events(
        self, settings: Settings, request_id: str | None
    ) -> Result[tuple[Event, ...], OhfError]:
        """The event log in commit order, optionally of one request only."""

    def init(self, settings: Settings) -> Result[str, OhfError]:
        """Create what the store needs (schema, table); a sentence saying what was done."""

    def dump(self, settings: Settings) -> Result[Dump, OhfError]:
        """The state and the whole event log (snapshot and tail), as of one moment."""

    def restore(
        self, settings: Settings, state: State, log: Log, *, force: bool
    ) -> Result[str | None, OhfError]:
        """Replace the store's content; refuse a non-empty store unless `force`. With `force`,
        an unreadable store is kept aside first: where it went, or None."""


_MODULES = {
    "json": "ohf.effects.store_json",
    "sqlite": "ohf.effects.store_sqlite",
    "dynamodb": "ohf.effects.store_dynamodb",
}


def backend(settings: Settings) -> Backend:
    """The store module for `[storage] type`."""
    module = importlib.import_module(_MODULES[settings.config.storage.type])
    return cast(Backend, module)


def describe(settings: Settings) -> str:
    """Where the state lives, for humans."""
    storage = settings.config.storage
    if storage.type == "dynamodb":
        where = storage.region or settings.config.aws.region or "the default region"
        endpoint = storage.endpoint_url or settings.config.aws.endpoint_url
        return f"dynamodb table {storage.table} in {where}" + (
            f" at {endpoint}" if endpoint else ""
        )
    return f"{storage.type} {settings.state_path}"


def read(settings: Settings) -> Result[State, OhfError]:
    """The committed state, without taking the lock."""
    return backend(settings).read(settings)


def transaction(settings: Settings, *, owner: str) -> AbstractContextManager[Result[Txn, OhfError]]:
    """The store held exclusively by `owner` (a call's correlation id) until the block ends."""
    return backend(settings).transaction(settings, owner=owner)


def read_events(
    settings: Settings, request_id: str | None = None
) -> Result[tuple[Event, ...], OhfError]:
    """The event log's tail in commit order, of every request or of `request_id` only."""
    return backend(settings).read_events(settings, request_id)


def read_log(settings: Settings) -> Result[Log, OhfError]:
    """The event log: its snapshot (if it was ever compacted) and the events after it."""
    return backend(settings).dump(settings).map(lambda dump: dump[1])


def policy(settings: Settings, now: int) -> Policy:
    """The compaction policy `[storage]` sets, at time `now`."""
    from ohf.compaction import Policy

    storage = settings.config.storage
    return Policy(
        now=now,
        retention=int(storage.retention_days * 86_400),
        max_bytes=storage.compact_bytes,
        every=int(storage.compact_days * 86_400),
    )


def compact(settings: Settings, now: int, *, owner: str) -> Result[Compacted, OhfError]:
    """Compact the log now (`ohf storage compact`), under the store's lock, whatever its size."""
    with transaction(settings, owner=owner) as opened:
        if isinstance(opened, Failure):
            return opened
        return opened.unwrap().compact(policy(settings, now))


def init(settings: Settings) -> Result[str, OhfError]:
    """Create the store's schema or table (idempotent); says what it did."""
    return backend(settings).init(settings)


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """What `ohf storage check` found: whether store and log read, and agree, and their sizes."""

    store: str
    problems: tuple[str, ...] = ()
    requests: int = 0
    returns: int = 0
    events: int = 0
    log_bytes: int = 0
    oldest: int | None = None
    snapshot_through: int | None = None
    folded: int = 0

    @property
    def ok(self) -> bool:
        """True when the store and its log are readable and agree."""
        return not self.problems


def check(settings: Settings) -> Check:
    """Read the store and its log as an export would, and compare the state with the log's
    rebuild (snapshot + tail); changes nothing."""
    from ohf.compaction import disagreements, log_bytes

    where = describe(settings)
    dumped = backend(settings).dump(settings)
    if isinstance(dumped, Failure):
        return Check(store=where, problems=(dumped.failure().message,))
    state, log = dumped.unwrap()
    return Check(
        store=where,
        problems=disagreements(state, log),
        requests=len(state.requests),
        returns=len(state.returns),
        events=len(log.events),
        log_bytes=log_bytes(log.events),
        oldest=log.events[0].at if log.events else None,
        snapshot_through=None if log.snapshot is None else log.snapshot.through,
        folded=0 if log.snapshot is None else log.snapshot.folded,
    )


def export_lines(settings: Settings) -> Result[list[bytes], OhfError]:
    """The whole store as JSON lines (a header, requests, returns, the log's snapshot if it
    has one, then events in order)."""
    from ohf.effects.store_lines import encode_lines

    return (
        backend(settings)
        .dump(settings)
        .map(lambda dump: encode_lines(dump[0], dump[1].events, dump[1].snapshot))
    )


def import_lines(
    settings: Settings, lines: Iterable[bytes], *, force: bool = False
) -> Result[Imported, OhfError]:
    """Load JSON lines made by `export_lines` into the store: lines read, and (with `force`)
    where an unreadable store was kept aside."""
    from ohf.effects.store_lines import decode_lines

    raw = list(lines)
    return decode_lines(raw).bind(
        lambda dump: (
            backend(settings)
            .restore(settings, dump[0], dump[1], force=force)
            .map(
                lambda aside: Imported(
                    lines=len([line for line in raw if line.strip()]), kept_aside=aside
                )
            )
        )
    )


def keep_aside(first: Path, *others: Path) -> str:
    """Rename each of these files that exists to `<name>.unreadable-<UTC time>`, so an import
    with `--force` never destroys what it replaces; the new name of `first`."""
    suffix = time.strftime(".unreadable-%Y%m%dT%H%M%SZ", time.gmtime())
    for each in (first, *others):
        if each.exists():
            os.replace(each, each.with_name(each.name + suffix))
    return str(first.with_name(first.name + suffix))


def is_empty(state: State, has_events: bool) -> bool:
    """True when a store holds nothing worth keeping."""
    return not state.requests and not state.returns and not has_events


def not_empty_error(where: str) -> OhfError:
    """Why an import was refused."""
    return OhfError(
        message=f"{where} is not empty; import refuses to replace it (pass --force to do so)",
        code="input",
    )
