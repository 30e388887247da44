"""Describing fleets and groups in batches, with the reasons of those that fall short."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
from returns.result import Failure, Success

from ohf.codes import HISTORY_CODES, codes_in
from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.create_fleets import _pool_error, error_codes
from ohf.effects.aws.errors import Answer, _timed
from ohf.effects.aws.instances import chunks
from ohf.intents import DescribeFleets
from ohf.model import FleetInfo

log = logging.getLogger("ohf.aws")  # one name for the package: log settings keep working


FLEET_IDS_PER_CALL = 100
GROUP_NAMES_PER_CALL = 100  # DescribeAutoScalingGroups' MaxRecords
ERRORS_KEPT = 5
# Codes for an id AWS does not know (any more), per API.
FLEET_NOT_FOUND = frozenset({"InvalidFleetId.NotFound", "InvalidFleetId.Malformed"})
SPOT_FLEET_NOT_FOUND = frozenset(
    {"InvalidSpotFleetRequestId.NotFound", "InvalidSpotFleetRequestId.Malformed"}
)
Items = list[dict[str, Any]]


def _paged(client: Any, operation: str, key: str, **params: Any) -> Items:
    """Every item under `key` of every page of a paginated describe call."""
    pages = client.get_paginator(operation).paginate(**params)
    return [item for page in pages for item in page.get(key, []) or []]


def _batched(
    name: str,
    describe: Callable[[tuple[str, ...]], Items],
    ids: tuple[str, ...],
    size: int,
    missing: frozenset[str],
) -> Answer:
    """Items for `ids`, `size` ids per call; ids AWS does not know are simply absent.

    Should AWS refuse a whole batch for one unknown id, that batch is asked again id by id
    (the only case with one call per fleet).
    """
    found: Items = []
    for batch in chunks(ids, size):
        answer = _timed(name, partial(describe, batch))
        if isinstance(answer, Failure) and answer.failure().code in missing:
            for one in batch:
                single = _timed(name, partial(describe, (one,)))
                if isinstance(single, Success):
                    found += single.unwrap()
                elif single.failure().code not in missing:
                    return single
            continue
        if isinstance(answer, Failure):
            return answer
        found += answer.unwrap()
    return Success(found)


def ec2_fleet_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeFleets item."""
    target = raw.get("TargetCapacitySpecification") or {}
    return FleetInfo(
        fleet_id=raw["FleetId"],
        api="EC2Fleet",
        state=raw.get("FleetState", ""),
        activity=raw.get("ActivityStatus", "") or "",
        target_units=int(target.get("TotalTargetCapacity", 0)),
        fulfilled_units=float(raw.get("FulfilledCapacity", 0.0) or 0.0),
        errors=tuple(_pool_error(e) for e in raw.get("Errors", []) or []),
        codes=error_codes(raw.get("Errors", []) or []),
    )


def spot_fleet_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeSpotFleetRequests item."""
    config = raw.get("SpotFleetRequestConfig") or {}
    return FleetInfo(
        fleet_id=raw["SpotFleetRequestId"],
        api="SpotFleet",
        state=raw.get("SpotFleetRequestState", ""),
        activity=raw.get("ActivityStatus", "") or "",
        target_units=int(config.get("TargetCapacity", 0)),
        fulfilled_units=float(config.get("FulfilledCapacity", 0.0) or 0.0),
    )


_GONE_FROM_GROUP = ("Terminat", "Detach", "Warmed")


def group_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeAutoScalingGroups item: units held by live instances.

    An instance's units are its `WeightedCapacity`, else its type's weight in the group's
    overrides (AWS omits the field when no weights are set), else 1.
    """
    policy = (raw.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    weights = {
        o["InstanceType"]: o["WeightedCapacity"]
        for o in policy.get("Overrides", []) or []
        if o.get("InstanceType") and o.get("WeightedCapacity")
    }
    held = sum(
        float(i.get("WeightedCapacity") or weights.get(i.get("InstanceType", "")) or 1)
        for i in raw.get("Instances", []) or []
        if not str(i.get("LifecycleState", "")).startswith(_GONE_FROM_GROUP)
    )
    return FleetInfo(
        fleet_id=raw["AutoScalingGroupName"],
        api="ASG",
        # Status is only present while the group is being deleted.
        state="deleting" if raw.get("Status") else "active",
        target_units=int(raw.get("DesiredCapacity", 0)),
        fulfilled_units=held,
    )


def _history_errors(clients: ClientGetter, info: FleetInfo, created: datetime | None) -> FleetInfo:
    """`info` with the reasons in the fleet's error history (asked only for activity "error")."""
    ec2 = clients("ec2")
    since = created or datetime.now(UTC) - timedelta(hours=48)
    if info.api == "EC2Fleet":
        call = partial(
            ec2.describe_fleet_history,
            FleetId=info.fleet_id,
            StartTime=since,
            EventType="service-error",
        )
    else:
        call = partial(
            ec2.describe_spot_fleet_request_history,
            SpotFleetRequestId=info.fleet_id,
            StartTime=since,
            EventType="error",
        )
    answer = _timed("DescribeFleetHistory", call)
    if isinstance(answer, Failure):
        log.warning("no error history for %s: %s", info.fleet_id, answer.failure().message)
        return info
    records = sorted(
        answer.unwrap().get("HistoryRecords", []) or [],
        key=lambda r: r.get("Timestamp") or since,
        reverse=True,
    )
    events = [r.get("EventInformation") or {} for r in records]
    reasons = [f"{e.get('EventSubType', 'error')}: {e.get('EventDescription', '')}" for e in events]
    errors = tuple(dict.fromkeys((*info.errors, *reasons)))[:ERRORS_KEPT]
    return msgspec.structs.replace(
        info, errors=errors, codes=tuple(dict.fromkeys((*info.codes, *map(_event_code, events))))
    )


def _event_code(event: dict[str, Any]) -> str:
    """The code of one history error event: its subtype (AWS's name for the error, mapped to
    the error code it stands for), else a code its description names."""
    subtype = str(event.get("EventSubType") or "")
    if subtype:
        return HISTORY_CODES.get(subtype, subtype)
    found = codes_in(str(event.get("EventDescription") or ""))
    return found[0] if found else "error"


def _with_history(
    clients: ClientGetter, infos: Iterator[FleetInfo], raws: Items
) -> dict[str, FleetInfo]:
    """`{id: info}`, reading the error history only of fleets whose activity is "error"."""
    return {
        info.fleet_id: _history_errors(clients, info, raw.get("CreateTime"))
        if info.activity == "error"
        else info
        for info, raw in zip(infos, raws, strict=True)
    }


def _ec2_fleet_infos(clients: ClientGetter, ids: tuple[str, ...]) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeFleets",
        lambda batch: _paged(ec2, "describe_fleets", "Fleets", FleetIds=list(batch)),
        ids,
        FLEET_IDS_PER_CALL,
        FLEET_NOT_FOUND,
    )
    return found.map(lambda raws: _with_history(clients, map(ec2_fleet_info, raws), raws))


def _spot_fleet_infos(clients: ClientGetter, ids: tuple[str, ...]) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeSpotFleetRequests",
        lambda batch: _paged(
            ec2,
            "describe_spot_fleet_requests",
            "SpotFleetRequestConfigs",
            SpotFleetRequestIds=list(batch),
        ),
        ids,
        FLEET_IDS_PER_CALL,
        SPOT_FLEET_NOT_FOUND,
    )
    return found.map(lambda raws: _with_history(clients, map(spot_fleet_info, raws), raws))


def _scaling_failures(
    clients: ClientGetter, names: set[str]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Recent failed scaling activities of the groups `names`, in one call (newest first):
    their reasons, and the AWS error codes those name (a scaling activity has no code field:
    its `StatusCode` is only Failed or Cancelled, so the text is the last resort, read for whole
    known codes only).

    One group is asked by name; several at once account-wide (the latest 100 activities).
    """
    by_name = {"AutoScalingGroupName": next(iter(names))} if len(names) == 1 else {}
    answer = _timed(
        "DescribeScalingActivities",
        partial(clients("autoscaling").describe_scaling_activities, MaxRecords=100, **by_name),
    )
    if isinstance(answer, Failure):
        log.warning("no scaling activities: %s", answer.failure().message)
        return {}
    failures: dict[str, list[str]] = {}
    for activity in answer.unwrap().get("Activities", []) or []:
        name = activity.get("AutoScalingGroupName")
        if name in names and activity.get("StatusCode") in ("Failed", "Cancelled"):
            reason = activity.get("StatusMessage") or activity.get("Description") or "failed"
            failures.setdefault(name, []).append(str(reason))
    return {
        name: (
            tuple(dict.fromkeys(r))[:ERRORS_KEPT],
            tuple(dict.fromkeys(c for reason in r for c in codes_in(reason))),
        )
        for name, r in failures.items()
    }


def _group_infos(clients: ClientGetter, names: tuple[str, ...]) -> Answer:
    autoscaling = clients("autoscaling")
    found = _batched(
        "DescribeAutoScalingGroups",
        lambda batch: _paged(
            autoscaling,
            "describe_auto_scaling_groups",
            "AutoScalingGroups",
            AutoScalingGroupNames=list(batch),
            PaginationConfig={"PageSize": GROUP_NAMES_PER_CALL},
        ),
        names,
        GROUP_NAMES_PER_CALL,
        frozenset(),
    )
    if isinstance(found, Failure):
        return found
    infos = {info.fleet_id: info for info in map(group_info, found.unwrap())}
    short = {n for n, i in infos.items() if i.fulfilled_units < i.target_units}
    failures = _scaling_failures(clients, short) if short else {}
    return Success(
        {
            name: msgspec.structs.replace(info, errors=failures[name][0], codes=failures[name][1])
            if name in failures
            else info
            for name, info in infos.items()
        }
    )


def _describe_fleets(clients: ClientGetter, intent: DescribeFleets) -> Answer:
    describe = {"EC2Fleet": _ec2_fleet_infos, "SpotFleet": _spot_fleet_infos, "ASG": _group_infos}
    infos: dict[str, FleetInfo] = {}
    for api in ("EC2Fleet", "SpotFleet", "ASG"):
        ids = tuple(dict.fromkeys(i for a, i in intent.fleets if a == api))
        if not ids:
            continue
        answer = describe[api](clients, ids)
        if isinstance(answer, Failure):
            return answer
        infos.update(answer.unwrap())
    return Success(
        {
            fleet_id: infos.get(fleet_id) or FleetInfo(fleet_id=fleet_id, api=api, state="gone")
            for api, fleet_id in intent.fleets
        }
    )
