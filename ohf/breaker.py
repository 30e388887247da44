"""Circuit breaker, pure: which AWS errors are transient, and the open/half-open/closed rules.

One breaker per AWS endpoint or region. After `threshold` consecutive transient failures
(throttling, 5xx, connection) within `window` seconds it opens for `cooldown` seconds: cloud
intents fail fast instead of adding load to an AWS that is already refusing. Once the cool-down
has passed it is half-open: the next call is a probe, whose success closes it and whose failure
opens it again. The shell keeps the breaker between HF calls; times are epoch seconds.
"""

from __future__ import annotations

import msgspec

from ohf.codes import OPEN_CODE, TRANSIENT_CODES
from ohf.model import OhfError


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """One endpoint's breaker: the current run of transient failures and, if open, until when."""

    failures: int = 0
    first_failure_at: int = 0
    open_until: int | None = None


CLOSED = Breaker()


def is_transient(error: OhfError) -> bool:
    """Whether `error` is throttling, an AWS-side failure or a connection failure."""
    return error.code in TRANSIENT_CODES


def allows(breaker: Breaker, now: int) -> bool:
    """Whether a call may go to AWS now: closed, or open with the cool-down over (a probe)."""
    return breaker.open_until is None or now >= breaker.open_until


def record(
    breaker: Breaker,
    failed: bool,
    now: int,
    *,
    threshold: int,
    window: int,
    cooldown: int,
) -> Breaker:
    """The breaker after one call's outcome (`failed`: it ended in a transient failure).

    A success closes it. A failure starts or extends the run of failures (a run older than
    `window` starts afresh); the run reaching `threshold`, or a failed probe, opens it.
    """
    if not failed:
        return CLOSED
    probing = breaker.open_until is not None and now >= breaker.open_until
    fresh = breaker.failures == 0 or now - breaker.first_failure_at > window
    failures = 1 if fresh and not probing else breaker.failures + 1
    first = now if fresh and not probing else breaker.first_failure_at
    opens = probing or failures >= threshold
    return Breaker(
        failures=failures,
        first_failure_at=first,
        open_until=now + cooldown if opens else None,
    )


def clock_time(epoch: int) -> str:
    """HH:MM:SS (UTC) of an epoch time, as the breaker's messages give it."""
    seconds = epoch % 86_400
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def open_error(key: str, breaker: Breaker) -> OhfError:
    """The fail-fast message of an open breaker."""
    until = clock_time(breaker.open_until or 0)
    return OhfError(
        message=(
            f"AWS {key} circuit open after {breaker.failures} failure(s) in a row "
            f"(throttling, AWS errors or no connection); retrying after {until} UTC"
        ),
        code=OPEN_CODE,
    )
