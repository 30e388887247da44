"""The default state store: one JSON file, written atomically under an exclusive lock.

A call that changes state holds an `fcntl` lock on `<state>.lock` for its whole
read-modify-write (including its AWS calls), so two HF calls at once never lose an update.
Writes go to a temp file in the same directory, are fsynced, then `os.replace`d: a reader (or
a crash) sees the old file or the new one, never half of one. Read-only calls take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from returns.result import Failure, Result, Success

from ohf.model import OhfError, State

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(State)


def decode_state(raw: bytes, *, source: str) -> Result[State, OhfError]:
    """Decode a state file; an empty or absent file is the empty state."""
    if not raw.strip():
        return Success(State())
    try:
        return Success(_decoder.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Failure(
            OhfError(
                message=f"state file {source} is unreadable ({exc}); it was left as it is",
                code="state",
            )
        )


def encode_state(state: State) -> bytes:
    """The bytes of a state file."""
    return _encoder.encode(state)


def load(path: Path) -> Result[State, OhfError]:
    """Read the state (no lock: files are replaced atomically)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Success(State())
    except OSError as exc:
        return Failure(OhfError(message=f"cannot read state file {path}: {exc}", code="state"))
    return decode_state(raw, source=str(path))


def save(path: Path, state: State) -> Result[None, OhfError]:
    """Replace the state file atomically (temp file, fsync, rename, fsync the directory)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(encode_state(state))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        return Failure(OhfError(message=f"cannot write state file {path}: {exc}", code="state"))
    return Success(None)


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
