"""Spot interruption notices, read from the instances' spot requests."""

from __future__ import annotations

from functools import partial
from typing import Any

from returns.result import Failure, Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.describe_fleets import _paged
from ohf.effects.aws.errors import Answer, _timed
from ohf.effects.aws.instances import FILTER_VALUES_MAX, chunks
from ohf.intents import DescribeSpotSignals
from ohf.model import SpotSignal

# Status codes of a spot request AWS has marked for interruption (the instance goes 2 min later).
INTERRUPTION_CODES = frozenset(
    {"marked-for-termination", "marked-for-stop", "marked-for-hibernation"}
)


def spot_signal(raw: dict[str, Any]) -> SpotSignal | None:
    """The interruption notice in one DescribeSpotInstanceRequests item, if it carries one."""
    status = raw.get("Status") or {}
    code = status.get("Code", "")
    if code not in INTERRUPTION_CODES or not raw.get("InstanceId"):
        return None
    updated = status.get("UpdateTime")
    return SpotSignal(
        instance_id=raw["InstanceId"],
        kind="interruption",
        at=int(updated.timestamp()) if updated is not None else 0,
        reason=status.get("Message") or code,
    )


def _spot_signals(clients: ClientGetter, intent: DescribeSpotSignals) -> Answer:
    """Interruption notices, from the instances' spot requests.

    Rebalance recommendations are not in any describe API: AWS publishes them only in the
    instance metadata (IMDS `events/recommendations/rebalance`) and as EventBridge events. Fleet
    history's `termination_notified` is a scale-down notice, not a rebalance signal. So this
    reports interruptions only.
    """
    ec2 = clients("ec2")
    signals: list[SpotSignal] = []
    for batch in chunks(tuple(dict.fromkeys(intent.instance_ids)), FILTER_VALUES_MAX):
        answer = _timed(
            "DescribeSpotInstanceRequests",
            partial(
                _paged,
                ec2,
                "describe_spot_instance_requests",
                "SpotInstanceRequests",
                Filters=[{"Name": "instance-id", "Values": list(batch)}],
            ),
        )
        if isinstance(answer, Failure):
            return answer
        signals += [s for s in map(spot_signal, answer.unwrap()) if s is not None]
    return Success(tuple(signals))
