"""The DynamoDB state store, for HA pairs of HF masters that share one state.

One table (`[storage] table`, created by `ohf storage init`, on-demand billing), keyed by
`pk` (partition) and `sk` (sort):
- `state` / `!head`: the commit counter `ver` (plus who committed last, when, and `partial`);
- `state` / `!lease`: who holds the store (`owner` = the call's correlation id) until `expires`;
- `state` / `req#<id>`, `ret#<id>`: one item per request or return, zlib-compressed msgspec JSON,
  so a 1,000-machine request fits DynamoDB's 400 KB item limit;
- `events` / `<version>#<part>`: the events of one commit, compressed, in commit order; after
  a compaction also the snapshot's parts and the `!log` pointer (`store_dynamodb_log`).

Two masters never interleave calls: a call first takes the lease with a conditional put (free,
expired, or already its own), waiting up to `lock_timeout`. Every commit is then one
`TransactWriteItems` conditioned on the lease still being the caller's (which renews it) and on
`ver` being the version the caller read (which it bumps), so even a caller that outlived its
lease cannot overwrite what another wrote: the commit is refused whole. A commit of more items
than one transaction takes (100 actions, 4 MB) is written in several transactions, the head
marked `partial` until the last; readers wait for it while the writer's lease is live.

Readers take no lease: they query the `state` partition and read the head again, retrying
until both agree on the version, so they never see half a commit. botocore is imported lazily, on
the first use of this store; with it, even getAvailableTemplates reads the table (it needs the
state for `availableNumber`) and so imports botocore.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from returns.result import Failure, Result, Success

from ohf.compaction import Compacted, Log, LogSize, Policy
from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, not_empty_error, txn
from ohf.effects.store_dynamodb_commit import LogCount, _commit
from ohf.effects.store_dynamodb_items import EVENTS, View, _Unreadable, decode_log
from ohf.effects.store_dynamodb_log import compact, exact_size, fresh, keep_aside, log_actions
from ohf.effects.store_dynamodb_table import (
    _acquire,
    _aws_errors,
    _client,
    _code,
    _error,
    _guarded,
    _query,
    _release,
    _snapshot,
    _table,
)
from ohf.events import Event
from ohf.model import OhfError, State

Dump = tuple[State, Log]


def read(settings: Settings) -> Result[State, OhfError]:
    """The committed state, from a consistent snapshot (no lease)."""
    return _guarded(settings, "read", lambda: _snapshot(_client(settings), settings).state)


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log's tail in commit order, of every request or of one."""

    def load() -> tuple[Event, ...]:
        log = decode_log(_query(_client(settings), _table(settings), EVENTS)).log
        return tuple(e for e in log.events if request_id in (None, e.request_id))

    return _guarded(settings, "read events", load)


def init(settings: Settings) -> Result[str, OhfError]:
    """Create the table (on-demand billing) and wait until it is active; idempotent."""
    table = _table(settings)

    def create() -> str:
        client = _client(settings)
        try:
            client.create_table(
                TableName=table,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            done = f"created dynamodb table {table} (on-demand billing)"
        except _aws_errors() as exc:
            if _code(exc) != "ResourceInUseException":
                raise
            done = f"dynamodb table {table} already exists"
        client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
        keys = client.describe_table(TableName=table)["Table"]["KeySchema"]
        if sorted((k["AttributeName"], k["KeyType"]) for k in keys) != [
            ("pk", "HASH"),
            ("sk", "RANGE"),
        ]:
            raise _Unreadable(f"table {table} exists with another key schema ({keys})")
        return done

    return _guarded(settings, "create table", create)


class _Open:
    """An open transaction: the version and state last committed, and the log's count."""

    def __init__(self, client: Any, settings: Settings, owner: str, view: View) -> None:
        self.client, self.settings, self.owner = client, settings, owner
        self.version, self.last, self.size = view.version, view.state, view.log_size

    def commit(self, new: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
        written = _commit(
            self.client, self.settings, self.owner, self.version, self.last, new, events
        )
        if isinstance(written, Success):
            self.version, self.last = written.unwrap(), new
            if events and self.size.bytes is not None:
                added = exact_size(Log(events=events))
                self.size = LogSize(
                    bytes=self.size.bytes + (added.bytes or 0),
                    oldest=self.size.oldest if self.size.oldest is not None else added.oldest,
                )
        return written.map(lambda _: None)

    def log_size(self) -> Result[LogSize, OhfError]:
        return Success(self.size)

    def compact(self, policy: Policy) -> Result[Compacted, OhfError]:
        done = _guarded(
            self.settings,
            "compact the event log",
            lambda: compact(
                self.client,
                self.settings,
                self.owner,
                self.version,
                self.last,
                self.size.bytes is not None,
                policy,
            ),
        ).bind(lambda result: result)
        if isinstance(done, Success):
            figures, self.version = done.unwrap()
            if figures.folded or self.size.bytes is None:
                # The head now counts the tail exactly; its first event's time is read afresh
                # by the next call.
                self.size = LogSize(bytes=figures.bytes_after, oldest=None)
        return done.map(lambda pair: pair[0])


@contextlib.contextmanager
def transaction(settings: Settings, *, owner: str) -> Iterator[Result[Txn, OhfError]]:
    """The store leased to `owner` for the block; each commit is fenced by lease and version."""
    try:
        client = _client(settings)
    except _aws_errors() as exc:
        yield _error(settings, "connect", exc)
        return
    acquired = _acquire(client, settings, owner)
    if isinstance(acquired, Failure):
        yield acquired
        return
    try:
        loaded = _guarded(settings, "read", lambda: _snapshot(client, settings, me=owner))
        if isinstance(loaded, Failure):
            yield loaded
            return
        view: View = loaded.unwrap()
        yield Success(txn(view.state, _Open(client, settings, owner, view)))
    finally:
        _release(client, settings, owner)


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and log of one version (read without the lease, retried until stable)."""

    def load() -> Dump:
        view = _snapshot(_client(settings), settings, with_events=True)
        return view.state, view.log

    return _guarded(settings, "export", load)


def restore(
    settings: Settings, state: State, log: Log, *, force: bool
) -> Result[str | None, OhfError]:
    """Replace the table's state and log under the lease. With `force`, unreadable items are
    first copied to a partition of their own (named in the answer) and deleted."""
    owner = f"import-{time.time_ns()}"
    try:
        client = _client(settings)
    except _aws_errors() as exc:
        return _error(settings, "connect", exc)
    acquired = _acquire(client, settings, owner)
    if isinstance(acquired, Failure):
        return acquired
    try:
        loaded = _guarded(
            settings, "read", lambda: _snapshot(client, settings, with_events=True, me=owner)
        )
        aside: str | None = None
        if isinstance(loaded, Failure):
            if not force or loaded.failure().code != "state":
                return loaded
            kept = _guarded(
                settings, "keep the unreadable items aside", lambda: keep_aside(client, settings)
            )
            if isinstance(kept, Failure):
                return kept
            aside = f"partition {kept.unwrap()} of dynamodb table {_table(settings)}"
            view = View(state=State(), version=0)
        else:
            view = loaded.unwrap()
            if not force and not is_empty(view.state, bool(view.event_keys)):
                return Failure(not_empty_error(f"dynamodb table {_table(settings)}"))
        return _commit(
            client,
            settings,
            owner,
            view.version,
            view.state,
            state,
            (),
            drop_events=fresh(view.event_keys),
            extra=log_actions(_table(settings), view.version, log),
            count=LogCount(exact=exact_size(log)),
        ).map(lambda _: aside)
    finally:
        _release(client, settings, owner)
