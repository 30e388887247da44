"""The shell over real AWS, built once per process: each provider's clients made on first use
and shared by every call, a fresh interpreter (and retry budget) per call, and the log.

Part of the front door (`ohf.provider.Provider.open` uses it); no face builds any of this.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ohf.effects.files import Settings
from ohf.hf import Shell

if TYPE_CHECKING:
    from ohf.config import AwsConfig
    from ohf.program import Interpreter

log = logging.getLogger("ohf")

CallHook = Callable[[str], None]


def new_correlation() -> str:
    """A short random id that ties one call's log lines and events together."""
    return uuid.uuid4().hex[:12]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def _clock() -> int:
    return int(time.time())


class _Clients(msgspec.Struct, frozen=True, kw_only=True):
    """One provider's AWS clients (made on first use, then shared by every call: building a
    client costs more than most calls), and how to make a call's interpreter over them."""

    getter: Callable[[], Any]
    interpreter: Callable[[], Interpreter]
    warm: Callable[[], None]


def _clients(
    aws: AwsConfig, on_call: CallHook | None, env: Mapping[str, str], state_path: str
) -> _Clients:
    made: list[Any] = []

    def getter() -> Any:
        if not made:
            from ohf.effects import logs
            from ohf.effects.aws import client_getter
            from ohf.effects.aws.models import cache_dirs, cut_models

            # Cut service models are cached in the user's cache directory, else by the state.
            models = cut_models(cache_dirs(env, state_path))
            clients = client_getter(aws, on_call, models=models)
            made.append(logs.logged_clients(clients, log))
        return made[0]

    def interpreter() -> Interpreter:
        # A fresh retry budget per call; the AWS interpreter is imported on the first intent,
        # so a call that never reaches AWS never imports it.
        cell: list[Interpreter] = []

        def interpret(intent: Any) -> Any:
            if not cell:
                from ohf.effects.aws import make_interpreter

                cell.append(make_interpreter(aws, clients=getter()))
            return cell[0](intent)

        return interpret

    def warm() -> None:
        from ohf.effects.aws import warm as build

        build(getter())

    return _Clients(getter=getter, interpreter=interpreter, warm=warm)


def aws_shells(
    settings: Settings, env: Mapping[str, str], on_call: CallHook | None = None
) -> Callable[[str], Shell]:
    """Shells over real AWS for `settings`, one per call (by correlation id): every provider
    has its clients (disabled ones too: their machines are still described and terminated)."""
    from ohf.effects.providers import provider_configs
    from ohf.placement import providers_of

    config = settings.config
    clients = {
        name: _clients(aws, on_call, env, settings.state_path)
        for name, aws in provider_configs(config).items()
    }
    enabled = [clients[p.name] for p in providers_of(config) if p.enabled]

    def warm() -> None:
        # Calls that change state build the EC2 client of every enabled provider (importing
        # boto3) once their input is valid and before taking the state lock, so calls at once
        # do not queue behind it.
        for each in enabled:
            each.warm()

    def shell(correlation: str) -> Shell:
        clouds = {name: each.interpreter() for name, each in clients.items()}
        return Shell(
            settings=settings,
            cloud=next(iter(clouds.values())),
            clouds=clouds if config.providers else {},
            warm=warm,
            now=_clock,
            new_id=_new_id,
            correlation=correlation,
            env=env,
        )

    return shell


def configure_logging(
    settings: Settings,
    label: str,
    correlation: str,
    env: Mapping[str, str],
    secrets: Iterable[str] = (),
) -> logging.Logger:
    """Send ohf's log lines (and, at DEBUG, boto's) to the configured file, labelled with the
    call (or "serve") and its correlation id, secrets from `env` and `secrets` masked."""
    from ohf.effects import logs

    logging_config = settings.config.logging
    return logs.setup(
        settings.log_path,
        logging_config.level,
        label,
        correlation,
        secrets=(*logs.env_secrets(env), *secrets),
        max_bytes=logging_config.max_bytes,
        backups=logging_config.backups,
    )
