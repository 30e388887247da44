"""Several AWS accounts and regions in the shell: one cloud interpreter per provider, and routing.

Programs address a provider by wrapping a cloud intent in `At` (`ohf.program.on`); `routed`
sends each intent to its provider's interpreter, bare ones to the default provider's. Every
provider the config names gets an interpreter, disabled ones too: machines they already hold
must still be described and terminated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from returns.result import Failure

from ohf.config import AwsConfig, Config, provider_aws
from ohf.model import OhfError
from ohf.placement import label, providers_of

if TYPE_CHECKING:
    # Every call asks `provider_configs`; only calls that reach a cloud need the intents.
    from ohf.intents import Intent
    from ohf.program import Answer, Interpreter


def provider_configs(config: Config) -> dict[str, AwsConfig]:
    """The AWS settings of each provider (`[aws]` alone: the shorthand provider ""), in order."""
    return {p.name: provider_aws(config.aws, p) for p in providers_of(config)}


def provider_clouds(
    config: Config, make: Callable[[AwsConfig], Interpreter]
) -> dict[str, Interpreter]:
    """One interpreter per provider, made from its AWS settings, in the config's order."""
    return {name: make(aws) for name, aws in provider_configs(config).items()}


def unknown_provider(name: str, known: Mapping[str, object]) -> OhfError:
    """The failure of an intent for a provider the config does not name (any more)."""
    names = ", ".join(label(n) for n in known) or "none"
    return OhfError(
        message=(
            f"provider {label(name)!r} is not configured (known: {names}); its requests were "
            "placed under a config that named it: put its [[providers]] entry back "
            "(enabled = false keeps new requests off it) so its machines can be found"
        ),
        code="config",
    )


def routed(clouds: Mapping[str, Interpreter], default: str) -> Interpreter:
    """An interpreter sending `At(provider, intent)` to `clouds[provider]` and bare intents to
    `clouds[default]`; a provider not in `clouds` is a Failure (code "config")."""
    from ohf.intents import At

    def interpret(intent: Intent) -> Answer:
        name, inner = (
            (intent.provider, intent.intent) if isinstance(intent, At) else (default, intent)
        )
        cloud = clouds.get(name)
        if cloud is None:
            return Failure(unknown_provider(name, clouds))
        return cloud(inner)

    return interpret
