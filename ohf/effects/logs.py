"""Logging set-up: one JSON object per line to the log file (stderr if it cannot be opened).

Each line carries `ts`, `level`, `call`, `cid` (the call's correlation id), `request` (the HF
request id, where known), `logger` and `event`. stdout belongs to HF's JSON answer, so no
handler here ever writes to it. Every line passes a redaction filter first: AWS access key ids,
secret keys, session tokens, Authorization/bearer values, passwords and user data are masked,
and so is any credential value found in the environment, wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
MASK = "***"

# Environment variables whose values are secrets: masked literally in every line.
SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)

_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{12,}\b")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# key (quoted or not) then `:` or `=`, then a value: "double" or 'single' quoted (b'' too), or bare.
_SECRET_KEYS = (
    r"user_?data(?:_?script)?|secret_?access_?key|secret_?key|secret|session_?token|"
    r"security[-_]?token|x-amz-security-token|authorization|password|passwd|credentials?|"
    r"access_?token|id_?token|refresh_?token|api_?key"
)
_KEYED = re.compile(
    r"(?i)(?P<key>(?:" + _SECRET_KEYS + r"))(?P<sep>\\?['\"]?\s*[:=]\s*b?)"
    r"(?P<value>\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s&,;}\]]+)"
)


def _mask_keyed(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[:2] if value.startswith('\\"') else value[:1] if value[:1] in "'\"" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret it contains masked."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    # Bearer first: a keyed bare value would stop at the space after the scheme.
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KEYED.sub(_mask_keyed, text)
    return _KEY_ID.sub(MASK, text)


def env_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values set in `env` (credentials from the environment)."""
    return tuple(v for k in SECRET_ENV if (v := env.get(k, "")))


class Redact(logging.Filter):
    """Rewrites each record's message and traceback with its secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(sorted(set(secrets), key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text, self.secrets), None
        return True


class _JsonLines(logging.Formatter):
    def __init__(self, call: str, correlation_id: str) -> None:
        super().__init__()
        self.call = call
        self.correlation_id = correlation_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "call": self.call,
            "cid": self.correlation_id,
        }
        request = getattr(record, "request_id", None)
        if request:
            entry["request"] = request
        entry["logger"] = record.name
        entry["event"] = record.getMessage()
        for key in ("operation", "duration", "outcome"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return _encoder.encode(entry).decode()


# Libraries whose own logs join ohf's file at DEBUG (they are silent otherwise).
_LIBRARIES = ("botocore", "boto3", "urllib3")


def setup(
    path: str | None,
    level: str,
    call: str,
    correlation_id: str,
    secrets: Iterable[str] = (),
    *,
    max_bytes: int = 0,
    backups: int = 0,
) -> logging.Logger:
    """Configure the `ohf` logger (and, at DEBUG, boto's) for this process and return it.

    The file is rotated at `max_bytes` with `backups` old files kept (`ohf.effects.logfile`:
    safe with many processes appending at once); 0 never rotates.
    """
    from ohf.effects.logfile import SharedFileHandler

    logger = logging.getLogger("ohf")
    logger.setLevel(level)
    logger.propagate = False
    for name in ("ohf", *_LIBRARIES):
        for old in list(logging.getLogger(name).handlers):
            if not isinstance(old, logging.NullHandler):
                logging.getLogger(name).removeHandler(old)
                old.close()
    handler: logging.Handler
    try:
        if path is None:
            raise OSError("no log file configured")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = SharedFileHandler(path, max_bytes=max_bytes, backups=backups)
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines(call, correlation_id))
    handler.addFilter(Redact(secrets))
    logger.addHandler(handler)
    if level == "DEBUG":
        for name in _LIBRARIES:
            library = logging.getLogger(name)
            library.setLevel(logging.DEBUG)
            library.propagate = False
            library.addHandler(handler)
    return logger


def logged_clients(clients: Callable[[str], Any], parent: logging.Logger) -> Callable[[str], Any]:
    """`clients` whose every AWS call is logged at debug: operation, duration and outcome."""
    log = parent.getChild("aws.call")
    seen: set[int] = set()

    def get(service: str) -> Any:
        client = clients(service)
        if id(client) not in seen:
            seen.add(id(client))
            events = client.meta.events
            events.register("before-call", _started)
            events.register("after-call", lambda **kw: _finished(log, kw, None))
            events.register("after-call-error", lambda **kw: _finished(log, kw, kw["exception"]))
        return client

    return get


def _started(model: Any, context: dict[str, Any], **_: Any) -> None:
    # after-call-error is not given the operation: keep it beside the start time.
    context["ohf_started"] = time.perf_counter()
    context["ohf_operation"] = model.name


def _finished(log: logging.Logger, kw: dict[str, Any], error: Exception | None) -> None:
    context = kw.get("context") or {}
    started = context.get("ohf_started")
    duration = round(time.perf_counter() - started, 4) if started is not None else None
    operation = str(context.get("ohf_operation", "?"))
    if error is not None:
        outcome = type(error).__name__
    else:
        status = getattr(kw.get("http_response"), "status_code", 200)
        parsed = kw.get("parsed") or {}
        outcome = "ok" if status < 300 else str(parsed.get("Error", {}).get("Code", status))
    log.debug(
        "aws %s %s in %ss",
        operation,
        outcome,
        duration,
        extra={"operation": operation, "duration": duration, "outcome": outcome},
    )
