"""A log file many processes append to at once, rotated by size without losing or splitting a line.

HF runs every call as a process of its own, often several at once, all appending to one
`ohf.log`. Each line is written by one `write` on a descriptor opened with `O_APPEND`, so lines
of different processes never interleave. Whichever process finds the file past `max_bytes`
rotates it (`ohf.log` -> `ohf.log.1` -> ... -> `ohf.log.<backups>`, the oldest dropped) while
holding an exclusive `flock` on `<log>.lock`. Every write holds that lock shared, and first
makes sure its descriptor is still the file called `ohf.log` (re-opening it when another process
rotated meanwhile), so a line lands whole in the current file: never in one being renamed, never
in one being removed. The lock is the kernel's, released when a process dies.

`max_bytes = 0` turns rotation off, for sites that rotate with logrotate: each HF call opens the
log afresh, so logrotate's default rename-and-create works (no `copytruncate` needed); a call
running across the rename finishes its lines in the renamed file. The log must be on a local
file system (`O_APPEND` and `flock` are not to be trusted over NFS).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path


class SharedFileHandler(logging.Handler):
    """A `logging.Handler` writing whole lines to `path`, rotated at `max_bytes` (0: never)."""

    def __init__(self, path: str | Path, *, max_bytes: int = 0, backups: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._lock_fd: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record as one line; a failure goes to `handleError`, never to the caller."""
        try:
            self.write((self.format(record) + "\n").encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)

    def write(self, data: bytes) -> None:
        """Append `data` (one or more whole lines) in one write, then rotate if it is due."""
        if self.max_bytes <= 0:
            _write_all(self._open(), data)
            return
        lock = self._lock()
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            fd = self._current()
            _write_all(fd, data)
            size = os.fstat(fd).st_size
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        if size >= self.max_bytes:
            self._rotate()

    def close(self) -> None:
        """Close the log and lock descriptors."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None
        super().close()

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _lock(self) -> int:
        if self._lock_fd is None:
            lock_path = self.path.with_name(self.path.name + ".lock")
            self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._lock_fd

    def _current(self) -> int:
        """The descriptor of the file named `path` now (re-opened if it was rotated away)."""
        fd = self._open()
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            named = None
        mine = os.fstat(fd)
        if named is None or (named.st_ino, named.st_dev) != (mine.st_ino, mine.st_dev):
            os.close(fd)
            self._fd = None
            fd = self._open()
        return fd

    def _rotate(self) -> None:
        """Shift the backups and move the log to `.1`, unless another process just did."""
        lock = self._lock()
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                if os.stat(self.path).st_size < self.max_bytes:
                    return
            except FileNotFoundError:
                return
            if self.backups == 0:
                os.unlink(self.path)
                return
            for number in range(self.backups - 1, 0, -1):
                older = self._backup(number)
                if older.exists():
                    os.replace(older, self._backup(number + 1))
            os.replace(self.path, self._backup(1))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _backup(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")


def _write_all(fd: int, data: bytes) -> None:
    # A regular file takes a whole write at once; the loop only guards against a short one.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
