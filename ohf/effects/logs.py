"""Logging set-up: one JSON object per line to the log file (stderr if it cannot be opened).

stdout belongs to HF's JSON answer, so no handler here ever writes to it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import msgspec

_encoder = msgspec.json.Encoder()


class _JsonLines(logging.Formatter):
    def __init__(self, call: str, correlation_id: str) -> None:
        super().__init__()
        self.call = call
        self.correlation_id = correlation_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "call": self.call,
            "cid": self.correlation_id,
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def setup(path: str | None, level: str, call: str, correlation_id: str) -> logging.Logger:
    """Configure the `ohf` logger for this process and return it."""
    logger = logging.getLogger("ohf")
    logger.setLevel(level)
    logger.propagate = False
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler
    try:
        if path is None:
            raise OSError("no log file configured")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines(call, correlation_id))
    logger.addHandler(handler)
    return logger
