"""The circuit breaker's shell: an interpreter wrapper that consults and updates it, and its file.

HF runs one process per call, so the breakers live in a small JSON file next to the state
(`ohf-breaker.json`), read when a call starts and replaced atomically when it ends if a breaker
changed. Write calls do this under the store's lock; getReturnRequests without it (two calls at
once may lose one outcome: the breaker is advisory, that is harmless). With the DynamoDB store
each host keeps its own breaker file. An unreadable file counts as all breakers closed.

Each `[[providers]]` entry has its own breaker (`provider:<name>`), so an account or region
that throttles or fails is skipped by placement (`open_circuits`) while the others serve.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import msgspec
from returns.result import Failure

from ohf.breaker import CLOSED, Breaker, allows, is_transient, open_error, record
from ohf.config import AwsConfig
from ohf.effects.files import Settings
from ohf.intents import Intent
from ohf.placement import providers_of
from ohf.program import Answer, Interpreter

log = logging.getLogger("ohf.breaker")

BREAKER_FILE = "ohf-breaker.json"


class BreakerFile(msgspec.Struct, frozen=True, kw_only=True):
    """The file's content: one breaker per provider (the `[aws]` shorthand's: per endpoint)."""

    breakers: dict[str, Breaker] = {}


def breaker_path(settings: Settings) -> Path:
    """Where the breakers are kept: beside the state file, in HF's work dir by default."""
    return Path(settings.state_path).parent / BREAKER_FILE


def endpoint_key(config: AwsConfig, env: Mapping[str, str]) -> str:
    """The endpoint a breaker guards: the endpoint URL if set, else the region."""
    return (
        config.endpoint_url
        or config.region
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or "default"
    )


def load(path: Path) -> dict[str, Breaker]:
    """The breakers in `path`; none (all closed) if it is absent or unreadable."""
    try:
        return dict(msgspec.json.decode(path.read_bytes(), type=BreakerFile).breakers)
    except FileNotFoundError:
        return {}
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("breaker file %s ignored: %s", path, exc)
        return {}


def save(path: Path, breakers: dict[str, Breaker]) -> None:
    """Replace `path` atomically; a failure is logged, never raised (the breaker is advisory)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(msgspec.json.encode(BreakerFile(breakers=breakers)))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("breaker file %s not written: %s", path, exc)


def guarded(
    cloud: Interpreter, key: str, config: AwsConfig, now: Callable[[], int], cell: list[Breaker]
) -> Interpreter:
    """`cloud` behind the breaker in `cell[0]`: refused while open, each outcome recorded."""

    def interpret(intent: Intent) -> Answer:
        at = now()
        if not allows(cell[0], at):
            return Failure(open_error(key, cell[0]))
        answer = cloud(intent)
        failed = isinstance(answer, Failure) and is_transient(answer.failure())
        before = cell[0]
        cell[0] = record(
            before,
            failed,
            at,
            threshold=config.breaker_threshold,
            window=config.breaker_window,
            cooldown=config.breaker_cooldown,
        )
        if cell[0].open_until is not None and cell[0].open_until != before.open_until:
            log.warning("%s", open_error(key, cell[0]).message)
        return answer

    return interpret


def breaker_key(name: str, config: AwsConfig, env: Mapping[str, str]) -> str:
    """The breaker a provider has: `provider:<name>`; the `[aws]` shorthand ("") keeps the
    endpoint's (so a site that adds no `[[providers]]` keeps its breaker file as it was)."""
    return f"provider:{name}" if name else endpoint_key(config, env)


@contextlib.contextmanager
def circuits(
    settings: Settings,
    clouds: Mapping[str, Interpreter],
    now: Callable[[], int],
    env: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Interpreter]]:
    """Each provider's interpreter behind its own breaker for the block (one provider refusing
    calls leaves the others open); the changed breakers are saved together at its end."""
    config = settings.config.aws
    environ = os.environ if env is None else env
    keys = {name: breaker_key(name, config, environ) for name in clouds}
    path = breaker_path(settings)
    breakers = load(path)
    start = {name: breakers.get(key, CLOSED) for name, key in keys.items()}
    cells = {name: [breaker] for name, breaker in start.items()}
    try:
        yield {
            name: guarded(cloud, keys[name], config, now, cells[name])
            for name, cloud in clouds.items()
        }
    finally:
        changed = {keys[n]: cells[n][0] for n in clouds if cells[n][0] != start[n]}
        if changed:
            save(path, {**breakers, **changed})


@contextlib.contextmanager
def circuit(
    settings: Settings,
    cloud: Interpreter,
    now: Callable[[], int],
    env: Mapping[str, str] | None = None,
) -> Iterator[Interpreter]:
    """`cloud` behind its endpoint's breaker for the block; the breaker is saved at its end."""
    with circuits(settings, {"": cloud}, now, env) as guarded_clouds:
        yield guarded_clouds[""]


def open_circuits(
    settings: Settings, now: int, env: Mapping[str, str] | None = None
) -> frozenset[str]:
    """The providers whose breaker refuses calls at `now` (open, cool-down not over)."""
    config = settings.config
    environ = os.environ if env is None else env
    breakers = load(breaker_path(settings))
    return frozenset(
        p.name
        for p in providers_of(config)
        if not allows(breakers.get(breaker_key(p.name, config.aws, environ), CLOSED), now)
    )
