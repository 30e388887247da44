"""Retrying transient AWS errors: exponential backoff with full jitter within a budget."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import msgspec

from ohf.codes import TRANSIENT_CODES
from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.errors import _aws_errors, _client_error

log = logging.getLogger("ohf.aws")  # one name for the package: log settings keep working


BACKOFF_BASE = 0.5  # seconds: the first retry waits up to this, each next one up to twice more
BACKOFF_CAP = 8.0  # seconds: no single wait is longer


class Retries(msgspec.Struct, kw_only=True):
    """One HF call's retry budget and its clock (mutable: it counts what the call has spent).

    `sleep`, `monotonic` and `random` are injectable so tests never sleep and can count delays.
    """

    max_attempts: int
    budget: float
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random
    started: float | None = None
    slept: float = 0.0
    retried: int = 0


def is_transient_exception(exc: Exception) -> bool:
    """Throttling, an AWS-side (5xx) failure, or no (timely) connection to the endpoint."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        return _client_error("", exc).code in TRANSIENT_CODES
    return isinstance(exc, ConnectionError | HTTPClientError)


def backoff(retries: Retries, attempt: int) -> float | None:
    """The wait before retry number `attempt` (0-based), or None once attempts or time are out.

    Full jitter (a uniform draw up to the exponential ceiling) spreads the retries of many
    processes throttled at once; the wait is cut to what the budget has left.
    """
    if attempt + 1 >= retries.max_attempts:
        return None
    started = retries.started if retries.started is not None else retries.monotonic()
    spent = max(retries.monotonic() - started, retries.slept)
    left = retries.budget - spent
    if left <= 0:
        return None
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * float(1 << min(attempt, 30)))
    return min(retries.random() * ceiling, left)


def retried(retries: Retries, operation: str, call: Callable[[], Any]) -> Any:
    """`call()`, again after a backoff while it fails transiently; the last error is raised."""
    if retries.started is None:
        retries.started = retries.monotonic()
    attempt = 0
    while True:
        try:
            return call()
        except _aws_errors() as exc:
            delay = backoff(retries, attempt) if is_transient_exception(exc) else None
            if delay is None:
                raise
            log.info("aws %s: %s; retry %d in %.2fs", operation, exc, attempt + 1, delay)
            retries.sleep(delay)
            retries.slept += delay
            retries.retried += 1
            attempt += 1


class _RetryingPaginator:
    """A paginator whose whole pagination is retried (pages are read to the end at once)."""

    def __init__(self, paginator: Any, retries: Retries, operation: str) -> None:
        self._paginator = paginator
        self._retries = retries
        self._operation = operation

    def paginate(self, **params: Any) -> list[Any]:
        """Every page."""
        return self.collect(lambda page: [page], **params)

    def collect(self, take: Callable[[Any], Iterable[Any]], **params: Any) -> list[Any]:
        """What `take` keeps of each page, taken as the page arrives (the page itself is then
        dropped); a transient failure starts the whole pagination again."""

        def pages() -> list[Any]:
            return [kept for page in self._paginator.paginate(**params) for kept in take(page)]

        return retried(self._retries, self._operation, pages)  # type: ignore[no-any-return]


class _RetryingClient:
    """A boto3 client whose API calls and paginations retry transient errors."""

    def __init__(self, client: Any, retries: Retries) -> None:
        self._client = client
        self._retries = retries

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_paginator":
            return lambda op: _RetryingPaginator(attr(op), self._retries, op)
        api = self._client.meta.method_to_api_mapping.get(name)
        if api is None:
            return attr
        return lambda *args, **kwargs: retried(self._retries, api, partial(attr, *args, **kwargs))


def retrying(clients: ClientGetter, retries: Retries) -> ClientGetter:
    """`clients` whose clients retry transient errors within `retries`' budget."""
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = _RetryingClient(clients(service), retries)
        return cache[service]

    return get
