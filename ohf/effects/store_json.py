"""The default state store: one JSON file, written atomically under an exclusive lock.

A call that changes state holds an `fcntl` lock on `<state>.lock` for its whole
read-modify-write (including its AWS calls), so two HF calls at once never lose an update.
Writes go to a temp file in the same directory, are fsynced, then `os.replace`d: a reader (or
a crash) sees the old file or the new one, never half of one. Read-only calls take no lock.
Events are appended (and fsynced) to the event log (`<state stem>.events.jsonl`, or the
generation a compaction made: `ohf.effects.store_json_log`) under the same lock, just before the
state file is replaced, and the state file records which log it belongs to and how long it was
at its commit (`events_bytes`). Bytes past that mark are events of a commit whose state never
landed (a crash between the two writes): readers ignore them and the next transaction cuts them
off, so log and state always agree. A torn last line is ignored and cut off on the next append.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from returns.result import Failure, Result, Success

from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, keep_aside, not_empty_error, txn
from ohf.effects.store_json_log import (
    append_events,
    cut_unlanded,
    decode_log,
    drop_log,
    fsync_dir,
    log_files,
    log_path,
    oldest_at,
    sweep,
    write_log,
)
from ohf.model import OhfError, State

if TYPE_CHECKING:
    from ohf.compaction import Compacted, Log, LogSize, Policy
    from ohf.effects.store import Dump
    from ohf.events import Event

_encoder = msgspec.json.Encoder()
# A reader that finds the log it was pointed to gone (compacted meanwhile) reads again.
_READ_ATTEMPTS = 5


class StateFile(State, frozen=True, kw_only=True):
    """The state file's content: the state, and which event log it belongs to, how far."""

    # None in files written before the mark existed: then the whole log counts.
    events_bytes: int | None = None
    # The log's generation (0: `<stem>.events.jsonl`) and its snapshot line's length.
    events_generation: int = 0
    events_base: int = 0


class Mark(msgspec.Struct, frozen=True, kw_only=True):
    """Where a state's events are: the log's generation, snapshot line length and length."""

    generation: int = 0
    base: int = 0
    size: int | None = None


_decoder = msgspec.json.Decoder(StateFile)


def _state(content: StateFile) -> State:
    return State(version=content.version, requests=content.requests, returns=content.returns)


def _mark(content: StateFile) -> Mark:
    return Mark(
        generation=content.events_generation, base=content.events_base, size=content.events_bytes
    )


def decode_file(raw: bytes, *, source: str) -> Result[StateFile, OhfError]:
    """Decode a state file with its log mark; an empty or absent file is the empty state."""
    if not raw.strip():
        return Success(StateFile())
    try:
        return Success(_decoder.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Failure(
            OhfError(
                message=f"state file {source} is unreadable ({exc}); it was left as it is",
                code="state",
            )
        )


def decode_state(raw: bytes, *, source: str) -> Result[State, OhfError]:
    """Decode a state file; an empty or absent file is the empty state."""
    return decode_file(raw, source=source).map(_state)


def encode_state(state: State, mark: Mark | int | None = None) -> bytes:
    """The bytes of a state file (`mark`: its log's, or just the log's length)."""
    where = mark if isinstance(mark, Mark) else Mark(size=mark)
    content = StateFile(
        version=state.version,
        requests=state.requests,
        returns=state.returns,
        events_bytes=where.size,
        events_generation=where.generation,
        events_base=where.base,
    )
    return _encoder.encode(content)


def load_file(path: Path) -> Result[StateFile, OhfError]:
    """Read the state file with its log mark (no lock: files are replaced atomically)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        # No state committed yet: no event in the log belongs to one.
        return Success(StateFile(events_bytes=0))
    except OSError as exc:
        return Failure(OhfError(message=f"cannot read state file {path}: {exc}", code="state"))
    return decode_file(raw, source=str(path))


def load(path: Path) -> Result[State, OhfError]:
    """Read the state (no lock: files are replaced atomically)."""
    return load_file(path).map(_state)


def save(path: Path, state: State, mark: Mark | int | None = None) -> Result[None, OhfError]:
    """Replace the state file atomically (temp file, fsync, rename, fsync the directory)."""
    try:
        _replace(path, encode_state(state, mark))
    except OSError as exc:
        return Failure(OhfError(message=f"cannot write state file {path}: {exc}", code="state"))
    return Success(None)


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: a read-only call never writes, and tempfile costs an import

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def events_path(path: Path) -> Path:
    """The event log of generation 0 next to the state file `path` (one never compacted)."""
    return log_path(path, 0)


def _load_log_at(path: Path, mark: Mark) -> Result[Log, OhfError] | None:
    """The log `mark` points to; None if its file is gone (a compaction moved on)."""
    from ohf.compaction import Log

    log = log_path(path, mark.generation)
    try:
        raw = log.read_bytes()
    except FileNotFoundError:
        return Success(Log()) if mark.generation == 0 and mark.base == 0 else None
    except OSError as exc:
        return Failure(OhfError(message=f"cannot read event log {log}: {exc}", code="state"))
    return decode_log(raw, base=mark.base, mark=mark.size, source=log)


def load_log(path: Path) -> Result[Log, OhfError]:
    """The event log (snapshot and tail) of the state at `path`, as far as the state knows."""
    for _ in range(_READ_ATTEMPTS):
        # The state file first: the log is read only as far as the state it belongs to.
        content = load_file(path)
        if isinstance(content, Failure):
            return content
        mark = _mark(content.unwrap())
        found = _load_log_at(path, mark)
        if found is None:
            continue
        if isinstance(found, Success) and not found.unwrap().events and mark.generation == 0:
            # A generation-0 log read as empty may have been compacted away meanwhile.
            again = load_file(path)
            if isinstance(again, Success) and _mark(again.unwrap()).generation != 0:
                continue
        return found
    return Failure(
        OhfError(
            message=f"the event log of {path} kept moving (compacted) while being read; try again",
            code="busy",
        )
    )


def load_events(path: Path) -> Result[tuple[Event, ...], OhfError]:
    """Every event in the log's tail of the state at `path`, oldest first."""
    return load_log(path).map(lambda log: log.events)


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[Result[None, OhfError]]:
    """Hold the exclusive lock of the state at `path`, waiting at most `timeout` seconds."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        yield Failure(OhfError(message=f"cannot open lock file {lock_path}: {exc}", code="state"))
        return
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield Failure(
                        OhfError(
                            message=(
                                f"state {path} is locked by another ohf call for over "
                                f"{timeout:g}s; try again (raise [storage] lock_timeout if "
                                "this is routine)"
                            ),
                            code="busy",
                        )
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield Success(None)
    finally:
        os.close(fd)


# --- the store interface (see ohf.effects.store) ----------------------------------------------


def read(settings: Settings) -> Result[State, OhfError]:
    """The state file's state (no lock: it is replaced atomically)."""
    return load(Path(settings.state_path))


class _Open:
    """An open transaction's view of the store: the last committed state and its log mark."""

    def __init__(self, path: Path, content: StateFile) -> None:
        self.path = path
        self.state = _state(content)
        self.mark = _mark(content)

    @property
    def log(self) -> Path:
        return log_path(self.path, self.mark.generation)

    def commit(self, state: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
        appended = append_events(self.log, events)
        if isinstance(appended, Failure):
            return appended
        mark = msgspec.structs.replace(self.mark, size=appended.unwrap())
        saved = save(self.path, state, mark)
        if isinstance(saved, Success):
            self.state, self.mark = state, mark
        return saved

    def log_size(self) -> Result[LogSize, OhfError]:
        from ohf.compaction import LogSize

        try:
            size = self.mark.size if self.mark.size is not None else self.log.stat().st_size
        except FileNotFoundError:
            size = self.mark.base
        except OSError as exc:
            return Failure(
                OhfError(message=f"cannot read event log {self.log}: {exc}", code="state")
            )
        return oldest_at(self.log, self.mark.base, self.mark.size).map(
            lambda oldest: LogSize(bytes=size - self.mark.base, oldest=oldest)
        )

    def compact(self, policy: Policy) -> Result[Compacted, OhfError]:
        from ohf.compaction import fold, fold_count, report

        found = _load_log_at(self.path, self.mark)
        if found is None:
            return Failure(OhfError(message=f"event log {self.log} is missing", code="state"))
        if isinstance(found, Failure):
            return found
        log = found.unwrap()
        new = fold(log, fold_count(log.events, policy))
        if new == log:
            return Success(report(log, log))
        switched = self.switch(new)
        return switched.map(lambda _: report(log, new))

    def switch(self, log: Log) -> Result[None, OhfError]:
        """Write `log` as the next generation, point the state file at it, drop the old one."""
        old = self.log
        generation = self.mark.generation + 1
        written = write_log(log_path(self.path, generation), log.snapshot, log.events)
        if isinstance(written, Failure):
            return written
        base, size = written.unwrap()
        mark = Mark(generation=generation, base=base, size=size)
        saved = save(self.path, self.state, mark)
        if isinstance(saved, Failure):
            return saved
        self.mark = mark
        drop_log(old)
        return Success(None)


@contextlib.contextmanager
def transaction(settings: Settings, *, owner: str) -> Iterator[Result[Txn, OhfError]]:
    """The state loaded under the lock; each commit appends events then replaces the file."""
    del owner  # the lock is the process's own: a killed holder releases it at once
    path = Path(settings.state_path)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            yield lock
            return
        loaded = load_file(path)
        if isinstance(loaded, Failure):
            yield loaded
            return
        store = _Open(path, loaded.unwrap())
        cut = cut_unlanded(store.log, store.mark.size)
        if isinstance(cut, Failure):
            yield cut
            return
        sweep(path, store.mark.generation)
        yield Success(txn(store.state, store))


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log's tail, of every request or of one."""
    return load_events(Path(settings.state_path)).map(
        lambda events: tuple(e for e in events if request_id in (None, e.request_id))
    )


def init(settings: Settings) -> Result[str, OhfError]:
    """Nothing to create: the file appears on the first write."""
    return Success(
        f"json store: nothing to create; {settings.state_path} is written on the first change"
    )


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and log under the lock, so they are of the same moment."""
    path = Path(settings.state_path)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            return lock
        return load(path).bind(lambda state: load_log(path).map(lambda log: (state, log)))


def _has_log(log: Log) -> bool:
    return bool(log.events) or log.snapshot is not None


def restore(
    settings: Settings, state: State, log: Log, *, force: bool
) -> Result[str | None, OhfError]:
    """Replace state file and event log under the lock: the log as a new generation, then the
    state file naming it. An unreadable store (with `force`) is moved aside first."""
    path = Path(settings.state_path)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            return lock
        current = load(path).bind(lambda s: load_log(path).map(lambda lg: (s, lg)))
        if isinstance(current, Failure) and not force:
            return current
        aside: str | None = None
        if isinstance(current, Failure):
            try:
                aside = keep_aside(path, *log_files(path))
            except OSError as exc:
                return Failure(OhfError(message=f"cannot move {path} aside: {exc}", code="state"))
        elif not force and not is_empty(current.unwrap()[0], _has_log(current.unwrap()[1])):
            return Failure(not_empty_error(f"json store {path}"))
        content = load_file(path).value_or(StateFile(events_bytes=0))
        store = _Open(path, content)
        store.state = state
        return store.switch(log).map(lambda _: aside)
