"""The json store's event log file: appends, its snapshot line, and a new file per compaction.

The log of generation 0 is `<state stem>.events.jsonl`; each compaction (or import) writes the
next generation, `<stem>.events.<n>.jsonl`: a first line holding the snapshot (the state the
folded events built), then the events kept. The state file names the generation it belongs to
(with the snapshot line's length and the log's length at its commit), so switching to a new
log is the one atomic rename of the state file: a kill before it leaves the old log in force
and the new file an orphan, a kill after it leaves the old file an orphan; the next transaction
deletes whichever orphan is left. An existing log file is only ever appended to or cut back to
the state file's mark, never rewritten.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec
from returns.result import Failure, Result, Success

from ohf.model import OhfError

if TYPE_CHECKING:
    # Imported where a log is decoded: getAvailableTemplates reads the state file only, and
    # the events' module brings the programs with it.
    from ohf.compaction import Log, Snapshot
    from ohf.events import Event

_encoder = msgspec.json.Encoder()


@functools.cache
def _decoders() -> tuple[msgspec.json.Decoder[Snapshot], msgspec.json.Decoder[Event]]:
    from ohf.compaction import Snapshot
    from ohf.events import Event

    return msgspec.json.Decoder(Snapshot), msgspec.json.Decoder(Event)


class _At(msgspec.Struct):
    at: int


_at = msgspec.json.Decoder(_At)


def log_path(path: Path, generation: int) -> Path:
    """The event log of generation `generation` next to the state file `path`."""
    middle = "" if generation == 0 else f".{generation}"
    return path.with_name(f"{path.stem}.events{middle}.jsonl")


def log_files(path: Path) -> list[Path]:
    """Every event log file of the state at `path`, whatever its generation."""
    return sorted(path.parent.glob(f"{path.stem}.events*.jsonl"))


def fsync_dir(directory: Path) -> None:
    """Make a rename, creation or removal in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def event_lines(events: tuple[Event, ...]) -> bytes:
    """`events` as JSON lines."""
    return b"".join(_encoder.encode(e) + b"\n" for e in events)


def _failed(what: str, log: Path, exc: OSError) -> Failure[OhfError]:
    return Failure(OhfError(message=f"cannot {what} event log {log}: {exc}", code="state"))


def append_events(log: Path, events: tuple[Event, ...]) -> Result[int, OhfError]:
    """Append `events` to `log`, fsync; the log's new length (call under the lock)."""
    try:
        created = not log.exists()
        with open(log, "ab+") as handle:
            _cut_torn_tail(handle)
            if events:
                handle.write(event_lines(events))
                handle.flush()
                os.fsync(handle.fileno())
            size = handle.seek(0, os.SEEK_END)
        if created:
            fsync_dir(log.parent)
    except OSError as exc:
        return _failed("append to", log, exc)
    return Success(size)


def cut_unlanded(log: Path, mark: int | None) -> Result[None, OhfError]:
    """Cut `log` back to `mark`: events past it are of a commit whose state never landed."""
    try:
        if mark is not None and log.exists() and log.stat().st_size > mark:
            with open(log, "rb+") as handle:
                handle.truncate(mark)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        return _failed("trim", log, exc)
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


def write_log(
    log: Path, snapshot: Snapshot | None, events: tuple[Event, ...]
) -> Result[tuple[int, int], OhfError]:
    """Write a new log file (snapshot line, then events), fsync it and its directory: the
    snapshot line's length and the file's. The file is no one's until a state file names it."""
    head = b"" if snapshot is None else _encoder.encode(snapshot) + b"\n"
    body = event_lines(events)
    try:
        with open(log, "wb") as handle:
            handle.write(head)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(log.parent)
    except OSError as exc:
        return _failed("write", log, exc)
    return Success((len(head), len(head) + len(body)))


def drop_log(log: Path) -> None:
    """Remove a log file no state file names any more (best effort: an orphan is harmless)."""
    with contextlib.suppress(FileNotFoundError):
        log.unlink()
        fsync_dir(log.parent)


def sweep(path: Path, generation: int) -> None:
    """Remove what a compaction killed half-way left: the next generation's file (never
    switched to) or the previous one's (switched from, not yet removed)."""
    for other in (generation - 1, generation + 1):
        if other >= 0:
            with contextlib.suppress(OSError):
                drop_log(log_path(path, other))


def oldest_at(log: Path, base: int, mark: int | None) -> Result[int | None, OhfError]:
    """The time of the first event after the snapshot line (None for an empty tail)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(base)
            line = handle.readline()
    except FileNotFoundError:
        return Success(None)
    except OSError as exc:
        return _failed("read", log, exc)
    if not line.endswith(b"\n") or (mark is not None and base + len(line) > mark):
        return Success(None)
    try:
        return Success(_at.decode(line).at)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Failure(
            OhfError(message=f"event log {log} is unreadable at byte {base} ({exc})", code="state")
        )


def _unreadable(source: Path, where: str, exc: Exception) -> Failure[OhfError]:
    return Failure(
        OhfError(
            message=f"event log {source} {where} is unreadable ({exc}); it was left as it is",
            code="state",
        )
    )


def decode_log(raw: bytes, *, base: int, mark: int | None, source: Path) -> Result[Log, OhfError]:
    """The snapshot (the first `base` bytes) and events (up to `mark`) of a log file's bytes."""
    from ohf.compaction import Log

    _snapshot, _event = _decoders()
    snapshot: Snapshot | None = None
    if base:
        try:
            snapshot = _snapshot.decode(raw[:base])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _unreadable(source, "snapshot line", exc)
    body = raw[base:] if mark is None else raw[base:mark]
    lines = body.split(b"\n")
    # The last piece is empty after a whole line, or a torn append: ignored either way.
    events: list[Event] = []
    for number, line in enumerate(lines[:-1], start=2 if base else 1):
        if not line.strip():
            continue
        try:
            events.append(_event.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _unreadable(source, f"line {number}", exc)
    return Success(Log(snapshot=snapshot, events=tuple(events)))
