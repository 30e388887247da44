"""The SQLite state store: one row per request and per return, and the event log, in WAL mode.

A poll rewrites only the rows that changed, so a site with thousands of requests pays for what
moved, not for the whole state. Each commit is one SQLite transaction (rows, events and the
state's version together) with `synchronous=FULL`: once `commit` returns it survives a crash or
power loss; NORMAL would be faster but, in WAL mode, may lose the last commits on power loss,
and the last commit may be the record of a request whose instances are about to be launched.

Mutual exclusion for a whole HF call: SQLite's `BEGIN IMMEDIATE` cannot span the checkpoint the
core commits before calling AWS and the commit after it, so a call holds the same `fcntl` lock
file as the json store (`<path>.lock`), which the kernel releases when a process dies. Readers
take no lock: a WAL read transaction sees one committed snapshot.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
from returns.result import Failure, Result, Success

from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, not_empty_error
from ohf.effects.store_json import locked
from ohf.events import Event
from ohf.model import OhfError, Request, ReturnRequest, State

SCHEMA_VERSION = "1"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS returns (id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL, request_id TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_request ON events (request_id, seq)",
    "INSERT OR IGNORE INTO meta (key, value) VALUES"
    f" ('schema', '{SCHEMA_VERSION}'), ('state_version', '1')",
)
Dump = tuple[State, tuple[Event, ...]]
_encoder = msgspec.json.Encoder()
_request = msgspec.json.Decoder(Request)
_return = msgspec.json.Decoder(ReturnRequest)
_event = msgspec.json.Decoder(Event)


class _Unreadable(Exception):
    """A row or the schema is not what this ohf writes."""


def _path(settings: Settings) -> Path:
    return Path(settings.state_path)


def _connect(settings: Settings) -> sqlite3.Connection:
    # Autocommit mode: transactions are begun and ended here, explicitly.
    db = sqlite3.connect(
        _path(settings), timeout=settings.config.storage.lock_timeout, isolation_level=None
    )
    db.execute("PRAGMA synchronous=FULL")
    return db


def _unreadable(settings: Settings, exc: Exception) -> Failure[OhfError]:
    return Failure(
        OhfError(
            message=f"sqlite store {_path(settings)} is unreadable ({exc}); it was left as it is",
            code="state",
        )
    )


def _failed(settings: Settings, what: str, exc: Exception) -> Failure[OhfError]:
    return Failure(
        OhfError(message=f"sqlite store {_path(settings)}: cannot {what}: {exc}", code="state")
    )


def _has_schema(db: sqlite3.Connection) -> bool:
    """False for a brand-new (empty) database; an error for a database that is not ohf's."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return False
    if not {"meta", "requests", "returns", "events"} <= tables:
        raise _Unreadable(f"not an ohf store (tables: {', '.join(sorted(tables))})")
    schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if schema is None or schema[0] != SCHEMA_VERSION:
        raise _Unreadable(f"schema version {schema and schema[0]!r}, expected {SCHEMA_VERSION}")
    return True


def _create(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        if not _has_schema(db):
            for statement in _SCHEMA:
                db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _load(db: sqlite3.Connection) -> State:
    """The state, read inside the caller's transaction."""
    if not _has_schema(db):
        return State()
    try:
        version = db.execute("SELECT value FROM meta WHERE key = 'state_version'").fetchone()
        requests = [_request.decode(b) for (b,) in db.execute("SELECT body FROM requests")]
        returns = [_return.decode(b) for (b,) in db.execute("SELECT body FROM returns")]
        return State(
            version=int(version[0]) if version else 1,
            requests={r.request_id: r for r in requests},
            returns={r.request_id: r for r in returns},
        )
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise _Unreadable(str(exc)) from exc


def _events(db: sqlite3.Connection, request_id: str | None) -> tuple[Event, ...]:
    if not _has_schema(db):
        return ()
    rows = (
        db.execute("SELECT body FROM events ORDER BY seq")
        if request_id is None
        else db.execute("SELECT body FROM events WHERE request_id = ? ORDER BY seq", (request_id,))
    )
    try:
        return tuple(_event.decode(b) for (b,) in rows)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Unreadable(f"an event is unreadable: {exc}") from exc


@contextlib.contextmanager
def _snapshot(settings: Settings) -> Iterator[sqlite3.Connection | None]:
    """A read transaction (one consistent snapshot), or None when the file does not exist."""
    if not _path(settings).exists():
        yield None
        return
    db = _connect(settings)
    try:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("ROLLBACK")
    finally:
        db.close()


def read(settings: Settings) -> Result[State, OhfError]:
    """The committed state (no lock: a WAL reader sees the last commit)."""
    try:
        with _snapshot(settings) as db:
            return Success(State() if db is None else _load(db))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        return _unreadable(settings, exc)


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log in commit order, of every request or of one."""
    try:
        with _snapshot(settings) as db:
            return Success(() if db is None else _events(db, request_id))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        return _unreadable(settings, exc)


def init(settings: Settings) -> Result[str, OhfError]:
    """Create the file, tables and WAL mode (idempotent)."""
    try:
        _path(settings).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(_connect(settings)) as db:
            _create(db)
    except _Unreadable as exc:
        return _unreadable(settings, exc)
    except (sqlite3.Error, OSError) as exc:
        return _failed(settings, "create the schema", exc)
    return Success(f"sqlite store {_path(settings)} is ready (WAL, schema {SCHEMA_VERSION})")


def _write(
    db: sqlite3.Connection,
    before: State,
    after: State,
    events: tuple[Event, ...],
    *,
    new_log: bool = False,
) -> None:
    """Write what changed from `before` to `after` and the events (replacing the log if
    `new_log`), in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if new_log:
            db.execute("DELETE FROM events")
        for table, old, new in (
            ("requests", before.requests, after.requests),
            ("returns", before.returns, after.returns),
        ):
            gone = [(k,) for k in old.keys() - new.keys()]
            db.executemany(f"DELETE FROM {table} WHERE id = ?", gone)
            changed = [(k, _encoder.encode(v)) for k, v in new.items() if old.get(k) != v]
            db.executemany(f"INSERT OR REPLACE INTO {table} (id, body) VALUES (?, ?)", changed)
        db.executemany(
            "INSERT INTO events (at, request_id, body) VALUES (?, ?, ?)",
            [(e.at, e.request_id, _encoder.encode(e)) for e in events],
        )
        if after.version != before.version:
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'state_version'", (str(after.version),)
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[Result[sqlite3.Connection, OhfError]]:
    """The store under the lock file, its schema created if this is the first write."""
    path = _path(settings)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            yield lock
            return
        try:
            db = _connect(settings)
        except sqlite3.DatabaseError as exc:
            yield _unreadable(settings, exc)
            return
        except sqlite3.Error as exc:
            yield _failed(settings, "open", exc)
            return
        try:
            _create(db)
        except (_Unreadable, sqlite3.DatabaseError) as exc:
            db.close()
            yield _unreadable(settings, exc)
            return
        try:
            yield Success(db)
        finally:
            db.close()


@contextlib.contextmanager
def transaction(settings: Settings, *, owner: str) -> Iterator[Result[Txn, OhfError]]:
    """The state loaded under the lock; each commit writes the rows that changed since the last."""
    del owner  # the lock file is per process: a killed holder releases it at once
    with _opened(settings) as opened:
        if isinstance(opened, Failure):
            yield opened
            return
        db = opened.unwrap()
        try:
            with _snapshot_of(db):
                state = _load(db)
        except (_Unreadable, sqlite3.DatabaseError) as exc:
            yield _unreadable(settings, exc)
            return
        last = state

        def commit(new: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
            nonlocal last
            try:
                _write(db, last, new, events)
            except sqlite3.Error as exc:
                return _failed(settings, "commit", exc)
            last = new
            return Success(None)

        yield Success(Txn(state=state, commit=commit))


@contextlib.contextmanager
def _snapshot_of(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("ROLLBACK")


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and events from one snapshot."""
    try:
        with _snapshot(settings) as db:
            if db is None:
                return Success((State(), ()))
            return Success((_load(db), _events(db, None)))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        return _unreadable(settings, exc)


def restore(
    settings: Settings, state: State, events: tuple[Event, ...], *, force: bool
) -> Result[None, OhfError]:
    """Replace everything in one transaction, under the lock."""
    with _opened(settings) as opened:
        if isinstance(opened, Failure):
            return opened
        db = opened.unwrap()
        try:
            with _snapshot_of(db):
                current = _load(db)
                has_events = db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None
        except (_Unreadable, sqlite3.DatabaseError) as exc:
            return _unreadable(settings, exc)
        if not force and not is_empty(current, has_events):
            return Failure(not_empty_error(f"sqlite store {_path(settings)}"))
        try:
            _write(db, current, state, events, new_log=True)
        except sqlite3.Error as exc:
            return _failed(settings, "import", exc)
        return Success(None)
