"""The SQLite state store: one row per request and per return, and the event log, in WAL mode.

A poll rewrites only the rows that changed, so a site with thousands of requests pays for what
moved, not for the whole state. Each commit is one SQLite transaction (rows, events and the
state's version together) with `synchronous=FULL`: once `commit` returns it survives a crash or
power loss; NORMAL would be faster but, in WAL mode, may lose the last commits on power loss,
and the last commit may be the record of a request whose instances are about to be launched.

The log's snapshot (after a compaction) is the `meta` row `snapshot`, and `meta.events_bytes`
counts the bytes of the events table as JSON lines, so a call can tell whether compaction is due
without reading the log. A compaction is one SQLite transaction: the snapshot row, the folded
events deleted, the count updated; a kill before its COMMIT leaves the log as it was.

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
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.compaction import Compacted, Log, LogSize, Policy, Snapshot, fold, fold_count, report
from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, keep_aside, not_empty_error, txn
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
Dump = tuple[State, Log]
_encoder = msgspec.json.Encoder()
_request = msgspec.json.Decoder(Request)
_return = msgspec.json.Decoder(ReturnRequest)
_event = msgspec.json.Decoder(Event)
_snapshot = msgspec.json.Decoder(Snapshot)
# The bytes of an event as a JSON line (its body and the newline), as `ohf.compaction` counts.
_LINE_BYTES = "coalesce(sum(length(body) + 1), 0)"


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
        if db.execute("SELECT 1 FROM meta WHERE key = 'events_bytes'").fetchone() is None:
            # A store written before the count existed: counted once, kept up by every write.
            db.execute(
                f"INSERT INTO meta (key, value) SELECT 'events_bytes', {_LINE_BYTES} FROM events"
            )
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


def _log(db: sqlite3.Connection) -> Log:
    """The snapshot and the events, read inside the caller's transaction."""
    if not _has_schema(db):
        return Log()
    row = db.execute("SELECT value FROM meta WHERE key = 'snapshot'").fetchone()
    try:
        snapshot = None if row is None else _snapshot.decode(row[0])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Unreadable(f"the log's snapshot is unreadable: {exc}") from exc
    return Log(snapshot=snapshot, events=_events(db, None))


@contextlib.contextmanager
def _reading(settings: Settings) -> Iterator[sqlite3.Connection | None]:
    """A read transaction (one consistent snapshot), or None when the file does not exist."""
    if not _path(settings).exists():
        yield None
        return
    with contextlib.closing(_connect(settings)) as db, _snapshot_of(db):
        yield db


def read(settings: Settings) -> Result[State, OhfError]:
    """The committed state (no lock: a WAL reader sees the last commit)."""
    try:
        with _reading(settings) as db:
            return Success(State() if db is None else _load(db))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        return _unreadable(settings, exc)


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log in commit order, of every request or of one."""
    try:
        with _reading(settings) as db:
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
    new_log: Log | None = None,
) -> None:
    """Write what changed from `before` to `after` and the events, in one transaction; with
    `new_log`, the log is replaced by it (its snapshot, then its events and `events`)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if new_log is not None:
            db.execute("DELETE FROM events")
            db.execute("UPDATE meta SET value = '0' WHERE key = 'events_bytes'")
            _set_snapshot(db, new_log.snapshot)
            events = new_log.events + events
        for table, old, new in (
            ("requests", before.requests, after.requests),
            ("returns", before.returns, after.returns),
        ):
            gone = [(k,) for k in old.keys() - new.keys()]
            db.executemany(f"DELETE FROM {table} WHERE id = ?", gone)
            changed = [(k, _encoder.encode(v)) for k, v in new.items() if old.get(k) != v]
            db.executemany(f"INSERT OR REPLACE INTO {table} (id, body) VALUES (?, ?)", changed)
        rows = [(e.at, e.request_id, _encoder.encode(e)) for e in events]
        db.executemany("INSERT INTO events (at, request_id, body) VALUES (?, ?, ?)", rows)
        if rows:
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'events_bytes'",
                (sum(len(body) + 1 for _, _, body in rows),),
            )
        if after.version != before.version:
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'state_version'", (str(after.version),)
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _set_snapshot(db: sqlite3.Connection, snapshot: Snapshot | None) -> None:
    if snapshot is None:
        _exec(db, "DELETE FROM meta WHERE key = 'snapshot'")
    else:
        _exec(
            db,
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('snapshot', ?)",
            (_encoder.encode(snapshot).decode(),),
        )


def _exec(db: sqlite3.Connection, statement: str, params: tuple[Any, ...] = ()) -> None:
    """One statement of a compaction (a module function, so a test can kill before each)."""
    db.execute(statement, params)


def _compact_rows(db: sqlite3.Connection, count: int, snapshot: Snapshot | None) -> None:
    """Fold the first `count` events into `snapshot`, in one transaction."""
    _exec(db, "BEGIN IMMEDIATE")
    try:
        _set_snapshot(db, snapshot)
        _exec(
            db,
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
            (count,),
        )
        _exec(
            db,
            f"UPDATE meta SET value = (SELECT {_LINE_BYTES} FROM events)"
            " WHERE key = 'events_bytes'",
        )
        _exec(db, "COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _open_db(settings: Settings) -> Result[sqlite3.Connection, OhfError]:
    """A connection to the store, its schema created if this is the first write."""
    try:
        db = _connect(settings)
    except sqlite3.DatabaseError as exc:
        return _unreadable(settings, exc)
    except sqlite3.Error as exc:
        return _failed(settings, "open", exc)
    try:
        _create(db)
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        db.close()
        return _unreadable(settings, exc)
    return Success(db)


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[Result[sqlite3.Connection, OhfError]]:
    """The store under the lock file, its schema created if this is the first write."""
    with locked(_path(settings), settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            yield lock
            return
        opened = _open_db(settings)
        if isinstance(opened, Failure):
            yield opened
            return
        db = opened.unwrap()
        try:
            yield Success(db)
        finally:
            db.close()


class _Open:
    """An open transaction: the connection and the last committed state."""

    def __init__(self, settings: Settings, db: sqlite3.Connection, state: State) -> None:
        self.settings, self.db, self.last = settings, db, state

    def commit(self, new: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
        try:
            _write(self.db, self.last, new, events)
        except sqlite3.Error as exc:
            return _failed(self.settings, "commit", exc)
        self.last = new
        return Success(None)

    def log_size(self) -> Result[LogSize, OhfError]:
        try:
            size = self.db.execute("SELECT value FROM meta WHERE key = 'events_bytes'").fetchone()
            first = self.db.execute("SELECT at FROM events ORDER BY seq LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            return _failed(self.settings, "read the log's size", exc)
        return Success(
            LogSize(
                bytes=int(size[0]) if size else None, oldest=None if first is None else first[0]
            )
        )

    def compact(self, policy: Policy) -> Result[Compacted, OhfError]:
        try:
            with _snapshot_of(self.db):
                log = _log(self.db)
        except (_Unreadable, sqlite3.DatabaseError) as exc:
            return _unreadable(self.settings, exc)
        count = fold_count(log.events, policy)
        new = fold(log, count)
        if count:
            try:
                _compact_rows(self.db, count, new.snapshot)
            except sqlite3.Error as exc:
                return _failed(self.settings, "compact the event log", exc)
        return Success(report(log, new))


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
        yield Success(txn(state, _Open(settings, db, state)))


@contextlib.contextmanager
def _snapshot_of(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("ROLLBACK")


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and log from one snapshot."""
    try:
        with _reading(settings) as db:
            if db is None:
                return Success((State(), Log()))
            return Success((_load(db), _log(db)))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        return _unreadable(settings, exc)


def _current(settings: Settings) -> Result[tuple[sqlite3.Connection, State, bool], OhfError]:
    """An open connection, the state and whether the store holds a log (or why it cannot)."""
    opened = _open_db(settings)
    if isinstance(opened, Failure):
        return opened
    db = opened.unwrap()
    try:
        with _snapshot_of(db):
            log = _log(db)
            return Success((db, _load(db), bool(log.events) or log.snapshot is not None))
    except (_Unreadable, sqlite3.DatabaseError) as exc:
        db.close()
        return _unreadable(settings, exc)


def restore(
    settings: Settings, state: State, log: Log, *, force: bool
) -> Result[str | None, OhfError]:
    """Replace everything in one transaction, under the lock. With `force`, an unreadable
    database is moved aside first and a new one made."""
    path = _path(settings)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            return lock
        aside: str | None = None
        current = _current(settings)
        if isinstance(current, Failure):
            if not force or current.failure().code != "state":
                return current
            try:
                aside = keep_aside(path, *(path.with_name(path.name + x) for x in ("-wal", "-shm")))
            except OSError as exc:
                return Failure(OhfError(message=f"cannot move {path} aside: {exc}", code="state"))
            current = _current(settings)
            if isinstance(current, Failure):
                return current
        db, before, has_log = current.unwrap()
        try:
            if not force and not is_empty(before, has_log):
                return Failure(not_empty_error(f"sqlite store {path}"))
            _write(db, before, state, (), new_log=log)
        except sqlite3.Error as exc:
            return _failed(settings, "import", exc)
        finally:
            db.close()
        return Success(aside)
