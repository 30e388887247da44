"""The default state store: one JSON file, written atomically under an exclusive lock.

A call that changes state holds an `fcntl` lock on `<state>.lock` for its whole
read-modify-write (including its AWS calls), so two HF calls at once never lose an update.
Writes go to a temp file in the same directory, are fsynced, then `os.replace`d: a reader (or
a crash) sees the old file or the new one, never half of one. Read-only calls take no lock.
Events are appended (and fsynced) to `<state stem>.events.jsonl` under the same lock, just
before the state file is replaced, and the state file records how long the log was at its
commit (`events_bytes`). Bytes past that mark are events of a commit whose state never landed (a
crash between the two writes): readers ignore them and the next transaction cuts them off, so
log and state always agree. A torn last line is ignored and cut off on the next append.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec
from returns.result import Failure, Result, Success

from ohf.effects.files import Settings
from ohf.effects.store import Txn, is_empty, not_empty_error
from ohf.model import OhfError, State

if TYPE_CHECKING:
    from ohf.effects.store import Dump
    from ohf.events import Event

_encoder = msgspec.json.Encoder()


class StateFile(State, frozen=True, kw_only=True):
    """The state file's content: the state, and the event log's length at its commit."""

    # None in files written before the mark existed: then the whole log counts.
    events_bytes: int | None = None


_decoder = msgspec.json.Decoder(StateFile)


def _state(content: StateFile) -> State:
    return State(version=content.version, requests=content.requests, returns=content.returns)


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


def encode_state(state: State, events_bytes: int | None = None) -> bytes:
    """The bytes of a state file."""
    content = StateFile(
        version=state.version,
        requests=state.requests,
        returns=state.returns,
        events_bytes=events_bytes,
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


def save(path: Path, state: State, events_bytes: int | None = None) -> Result[None, OhfError]:
    """Replace the state file atomically (temp file, fsync, rename, fsync the directory)."""
    try:
        _replace(path, encode_state(state, events_bytes))
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
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def events_path(path: Path) -> Path:
    """The event log next to the state file `path`."""
    return path.with_name(path.stem + ".events.jsonl")


def _event_lines(events: tuple[Event, ...]) -> bytes:
    return b"".join(_encoder.encode(e) + b"\n" for e in events)


def append_events(path: Path, events: tuple[Event, ...]) -> Result[int, OhfError]:
    """Append `events` to the log of the state at `path`, fsync; the log's new length.

    Call under the lock. Bytes past `mark` (the length the state file knows) belong to a commit
    that never landed, and are cut off first.
    """
    log = events_path(path)
    try:
        created = not log.exists()
        with open(log, "ab+") as handle:
            _cut_torn_tail(handle)
            size = handle.seek(0, os.SEEK_END)
            if events:
                handle.write(_event_lines(events))
                handle.flush()
                os.fsync(handle.fileno())
            size = handle.seek(0, os.SEEK_END)
        if created:
            _fsync_dir(log.parent)
    except OSError as exc:
        return Failure(OhfError(message=f"cannot append to event log {log}: {exc}", code="state"))
    return Success(size)


def cut_unlanded(path: Path, mark: int | None) -> Result[None, OhfError]:
    """Cut the log back to `mark`: events past it are of a commit whose state never landed."""
    log = events_path(path)
    try:
        if mark is not None and log.exists() and log.stat().st_size > mark:
            with open(log, "rb+") as handle:
                handle.truncate(mark)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        return Failure(OhfError(message=f"cannot trim event log {log}: {exc}", code="state"))
    return Success(None)


def _cut_torn_tail(handle: BinaryIO) -> None:
    """Drop a last line without its newline: the tail of an append a crash cut short."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return
    start = max(0, size - (1 << 20))
    handle.seek(start)
    tail = handle.read()
    cut = tail.rfind(b"\n")
    # A torn line longer than the window read: cut from the start of the window.
    handle.truncate(start + cut + 1 if cut >= 0 else start)
    handle.seek(0, os.SEEK_END)


def load_events(path: Path) -> Result[tuple[Event, ...], OhfError]:
    """Every event in the log of the state at `path`, oldest first."""
    from ohf.events import Event

    decoder = msgspec.json.Decoder(Event)
    log = events_path(path)
    # The state file first: the log is read only as far as the state it belongs to.
    content = load_file(path)
    if isinstance(content, Failure):
        return content
    mark = content.unwrap().events_bytes
    try:
        raw = log.read_bytes()
    except FileNotFoundError:
        return Success(())
    except OSError as exc:
        return Failure(OhfError(message=f"cannot read event log {log}: {exc}", code="state"))
    if mark is not None:
        raw = raw[:mark]
    lines = raw.split(b"\n")
    # The last piece is empty after a whole line, or a torn append: ignored either way.
    events: list[Event] = []
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            events.append(decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return Failure(
                OhfError(
                    message=f"event log {log} line {number} is unreadable ({exc}); "
                    "it was left as it is",
                    code="state",
                )
            )
    return Success(tuple(events))


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
        cut = cut_unlanded(path, loaded.unwrap().events_bytes)
        if isinstance(cut, Failure):
            yield cut
            return

        def commit(state: State, events: tuple[Event, ...]) -> Result[None, OhfError]:
            return append_events(path, events).bind(lambda size: save(path, state, size))

        yield Success(Txn(state=_state(loaded.unwrap()), commit=commit))


def read_events(settings: Settings, request_id: str | None) -> Result[tuple[Event, ...], OhfError]:
    """The event log, of every request or of one."""
    return load_events(Path(settings.state_path)).map(
        lambda events: tuple(e for e in events if request_id in (None, e.request_id))
    )


def init(settings: Settings) -> Result[str, OhfError]:
    """Nothing to create: the file appears on the first write."""
    return Success(
        f"json store: nothing to create; {settings.state_path} is written on the first change"
    )


def dump(settings: Settings) -> Result[Dump, OhfError]:
    """State and events under the lock, so they are of the same moment."""
    path = Path(settings.state_path)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            return lock
        return load(path).bind(lambda state: load_events(path).map(lambda ev: (state, ev)))


def restore(
    settings: Settings, state: State, events: tuple[Event, ...], *, force: bool
) -> Result[None, OhfError]:
    """Replace state file and event log under the lock (each atomically; events first)."""
    path = Path(settings.state_path)
    with locked(path, settings.config.storage.lock_timeout) as lock:
        if isinstance(lock, Failure):
            return lock
        current = load(path).bind(lambda s: load_events(path).map(lambda ev: (s, ev)))
        if isinstance(current, Failure) and not force:
            return current
        if not force and not is_empty(current.unwrap()[0], bool(current.unwrap()[1])):
            return Failure(not_empty_error(f"json store {path}"))
        lines = _event_lines(events)
        try:
            _replace(events_path(path), lines)
        except OSError as exc:
            return Failure(
                OhfError(message=f"cannot write event log {events_path(path)}: {exc}", code="state")
            )
        return save(path, state, len(lines))
