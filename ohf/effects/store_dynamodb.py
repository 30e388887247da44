"""The DynamoDB state store, for HA pairs of HF masters that share one state.

One table (`[storage] table`, created by `ohf storage init`, on-demand billing), keyed by
`pk` (partition) and `sk` (sort):
- `state` / `!head`: the commit counter `ver` (plus who committed last, when, and `partial`);
- `state` / `!lease`: who holds the store (`owner` = the call's correlation id) until `expires`;
- `state` / `req#<id>`, `ret#<id>`: one item per request or return, zlib-compressed msgspec JSON,
  so a 1,000-machine request fits DynamoDB's 400 KB item limit;
- `events` / `<version>#<part>`: the events of one commit, compressed, in commit order.

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

from returns.result import Failure, Result, Success

from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, not_empty_error
from ohf.effects.store_dynamodb_items import EVENTS, Snapshot, _decode_events, _Unreadable
from ohf.effects.store_dynamodb_table import (
    _acquire,
    _aws_errors,
    _client,
    _code,
    _commit,
    _error,
    _guarded,
    _query,
    _release,
    _snapshot,
    _table,
)
from ohf.events import Event
from ohf.model import OhfError, State

Dump = tuple[State, tuple[Event, ...]]


def read(settings: Settings) -> Result[State, OhfError]:
    """The committed state, from a consistent snapshot (no lease)."""
    return _guarded(settings, "read", lambda: _snapshot(_client(settings), settings).state)


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log in commit order, of every request or of one."""

    def load() -> tuple[Event, ...]:
        _, events = _decode_events(_query(_client(settings), _table(settings), EVENTS))
        return tuple(e for e in events if request_id in (None, e.request_id))

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
        snap: Snapshot = loaded.unwrap()
        version, last = snap.version, snap.state

        def commit(new: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
            nonlocal version, last
            written = _commit(client, settings, owner, version, last, new, events)
            if isinstance(written, Success):
                version, last = written.unwrap(), new
            return written.map(lambda _: None)

        yield Success(Txn(state=snap.state, commit=commit))
    finally:
        _release(client, settings, owner)


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and events of one version (read without the lease, retried until stable)."""

    def load() -> Dump:
        snap = _snapshot(_client(settings), settings, with_events=True)
        return snap.state, snap.events

    return _guarded(settings, "export", load)


def restore(
    settings: Settings, state: State, events: tuple[Event, ...], *, force: bool
) -> Result[None, OhfError]:
    """Replace the table's state and events under the lease."""
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
        if isinstance(loaded, Failure):
            return loaded
        snap: Snapshot = loaded.unwrap()
        if not force and not is_empty(snap.state, bool(snap.event_keys)):
            return Failure(not_empty_error(f"dynamodb table {_table(settings)}"))
        return _commit(
            client,
            settings,
            owner,
            snap.version,
            snap.state,
            state,
            events,
            drop_events=snap.event_keys,
        ).map(lambda _: None)
    finally:
        _release(client, settings, owner)
