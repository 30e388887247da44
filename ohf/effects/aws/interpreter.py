"""The boto3 interpreter: each intent's performer, behind retries and error translation."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from returns.result import Failure

from ohf.config import AwsConfig
from ohf.effects.aws.change_fleets import _delete_fleet, _modify_fleet_target, _terminate_in_group
from ohf.effects.aws.clients import CallHook, ClientGetter, client_getter
from ohf.effects.aws.create_fleets import _create_fleet
from ohf.effects.aws.describe_fleets import _describe_fleets
from ohf.effects.aws.errors import Answer, _aws_errors, _failure
from ohf.effects.aws.instances import _describe, _resolve, _run, _terminate
from ohf.effects.aws.launch_templates import _create_launch_template, _delete_launch_template
from ohf.effects.aws.retries import Retries, retrying
from ohf.effects.aws.spot_signals import _spot_signals
from ohf.effects.aws.tags import _tag_instance_ids
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


def make_interpreter(
    config: AwsConfig,
    on_call: CallHook | None = None,
    *,
    clients: ClientGetter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> Callable[[Intent], Answer]:
    """An interpreter for the cloud intents, talking to AWS with boto3 (clients made lazily).

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
    table: dict[type[Any], Callable[[ClientGetter, Any], Answer]] = {
        RunInstances: _run,
        DescribeInstances: _describe,
        TerminateInstances: _terminate,
        ResolveImage: _resolve,
        CreateLaunchTemplate: _create_launch_template,
        DeleteLaunchTemplate: _delete_launch_template,
        CreateFleet: _create_fleet,
        DescribeFleets: _describe_fleets,
        ModifyFleetTarget: _modify_fleet_target,
        TerminateInGroup: _terminate_in_group,
        DeleteFleet: _delete_fleet,
        DescribeSpotSignals: _spot_signals,
        TagInstanceIds: _tag_instance_ids,
    }

    def interpret(intent: Intent) -> Answer:
        handler = table.get(type(intent))
        if handler is None:
            return Failure(OhfError(message=f"the AWS interpreter cannot perform {intent!r}"))
        try:
            return handler(clients, intent)
        except _aws_errors() as exc:
            # Client creation (region, profile, credentials file) fails outside any one call.
            return _failure(type(intent).__name__, exc)

    return interpret
