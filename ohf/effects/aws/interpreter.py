"""The AWS interpreter: each intent's performer, behind retries and error translation."""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable
from typing import Any, cast

from returns.result import Failure

from ohf.config import AwsConfig
from ohf.effects.aws.clients import CallHook, ClientGetter, client_getter
from ohf.effects.aws.errors import Answer, _aws_errors, _failure
from ohf.effects.aws.retries import Retries, retrying
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
    DescribeInstances,
    DescribeSpotSignals,
    Intent,
    ModifyFleetTarget,
    ResolveImage,
    RunInstances,
    TagInstanceIds,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.model import OhfError

Performer = Callable[[ClientGetter, Any], Answer]

# Each intent's performer, as (module of this package, function): imported on first use, so a
# call pays for the performers of its own intents only (a status poll: `instances`).
PERFORMERS: dict[type[Any], tuple[str, str]] = {
    RunInstances: ("instances", "_run"),
    DescribeInstances: ("instances", "_describe"),
    TerminateInstances: ("instances", "_terminate"),
    ResolveImage: ("instances", "_resolve"),
    CreateLaunchTemplate: ("launch_templates", "_create_launch_template"),
    DeleteLaunchTemplate: ("launch_templates", "_delete_launch_template"),
    CreateFleet: ("create_fleets", "_create_fleet"),
    DescribeFleets: ("describe_fleets", "_describe_fleets"),
    ModifyFleetTarget: ("change_fleets", "_modify_fleet_target"),
    TerminateInGroup: ("change_fleets", "_terminate_in_group"),
    DeleteFleet: ("change_fleets", "_delete_fleet"),
    DescribeSpotSignals: ("spot_signals", "_spot_signals"),
    TagInstanceIds: ("tags", "_tag_instance_ids"),
}


def performer(intent_type: type[Any]) -> Performer | None:
    """The function performing intents of `intent_type`, or None if this interpreter has none."""
    where = PERFORMERS.get(intent_type)
    if where is None:
        return None
    module = importlib.import_module(f"ohf.effects.aws.{where[0]}")
    return cast(Performer, getattr(module, where[1]))


def make_interpreter(
    config: AwsConfig,
    on_call: CallHook | None = None,
    *,
    clients: ClientGetter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> Callable[[Intent], Answer]:
    """An interpreter for the cloud intents, talking to AWS with botocore (clients made lazily).

    One interpreter serves one HF call: its retries share `[aws] retry_budget`, counted from
    its first AWS call. `sleep`, `monotonic` and `jitter` are time's and random's by default.
    """
    budget = Retries(
        max_attempts=config.max_attempts,
        budget=config.retry_budget,
        sleep=sleep,
        monotonic=monotonic,
        random=jitter,
    )
    clients = retrying(clients or client_getter(config, on_call), budget)

    def interpret(intent: Intent) -> Answer:
        handler = performer(type(intent))
        if handler is None:
            return Failure(OhfError(message=f"the AWS interpreter cannot perform {intent!r}"))
        try:
            return handler(clients, intent)
        except _aws_errors() as exc:
            # Client creation (region, profile, credentials file) fails outside any one call.
            return _failure(type(intent).__name__, exc)

    return interpret
