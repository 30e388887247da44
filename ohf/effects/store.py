"""The state store interface, chosen by `[storage] type`: json (default), sqlite or dynamodb.

Every store offers the same few functions, so `ohf.hf` and the CLI never know which one runs:
- `read(settings)`: the state, for calls that change nothing (no lock; never half a write);
- `transaction(settings, owner=...)`: a context manager giving a `Txn` whose `state` was loaded
  under the store's exclusive lock (or DynamoDB lease) and whose `commit(state, events)` makes a
  new state and its events durable before it returns. A call may commit several times (the core
  checkpoints a request before calling AWS); the lock is held until the context ends;
- `read_events`, `init`, and `export_lines` / `import_lines` (JSON lines, round trip exact).

The backends are imported on first use, so a json site never imports sqlite3 or botocore.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, cast

import msgspec
from returns.result import Result

from ohf.effects.files import Settings
from ohf.model import OhfError, State

if TYPE_CHECKING:
    # Imported lazily at run time: getAvailableTemplates needs no event machinery.
    from ohf.events import Event

    Commit = Callable[[State, tuple[Event, ...]], Result[None, OhfError]]
    Dump = tuple[State, tuple[Event, ...]]


class Txn(msgspec.Struct, frozen=True, kw_only=True):
    """An open write transaction: the state as loaded under the lock, and how to commit."""

    state: State
    commit: Commit


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
        """The state and the whole event log, as of one moment."""

    def restore(
        self, settings: Settings, state: State, events: tuple[Event, ...], *, force: bool
    ) -> Result[None, OhfError]:
        """Replace the store's content; refuse a non-empty store unless `force`."""


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
    """The event log in commit order, of every request or of `request_id` only."""
    return backend(settings).read_events(settings, request_id)


def init(settings: Settings) -> Result[str, OhfError]:
    """Create the store's schema or table (idempotent); says what it did."""
    return backend(settings).init(settings)


def export_lines(settings: Settings) -> Result[list[bytes], OhfError]:
    """The whole store as JSON lines (a header, requests, returns, then events in order)."""
    from ohf.effects.store_lines import encode_lines

    return backend(settings).dump(settings).map(lambda dump: encode_lines(*dump))


def import_lines(
    settings: Settings, lines: Iterable[bytes], *, force: bool = False
) -> Result[int, OhfError]:
    """Load JSON lines made by `export_lines` into the store; the number of lines read."""
    from ohf.effects.store_lines import decode_lines

    raw = list(lines)
    return decode_lines(raw).bind(
        lambda dump: (
            backend(settings)
            .restore(settings, dump[0], dump[1], force=force)
            .map(lambda _: len([line for line in raw if line.strip()]))
        )
    )


def is_empty(state: State, has_events: bool) -> bool:
    """True when a store holds nothing worth keeping."""
    return not state.requests and not state.returns and not has_events


def not_empty_error(where: str) -> OhfError:
    """Why an import was refused."""
    return OhfError(
        message=f"{where} is not empty; import refuses to replace it (pass --force to do so)",
        code="input",
    )
