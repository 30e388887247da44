"""Describing fleets and groups in the fake cloud, with the errors the boto3 interpreter finds."""

from __future__ import annotations

import msgspec
from returns.result import Success

from ohf.effects.fake.cloud import Answer, FakeCloud, _take_fault, error_codes
from ohf.effects.fake.fleets import _instant, _members, _units
from ohf.intents import DescribeFleets
from ohf.model import FleetApi, FleetInfo

# What a describe shows of a fleet that was cancelled or deleted: (instances left, none left).
_ENDED_STATES: dict[str, tuple[str, str]] = {
    "EC2Fleet": ("deleted_running", "deleted"),
    "SpotFleet": ("cancelled_running", "cancelled"),
}


def _info(cloud: FakeCloud, api: FleetApi, fleet_id: str) -> FleetInfo:
    """What AWS's describe call shows (the error history is added by the caller)."""
    fleet = cloud.fleets.get(fleet_id)
    if fleet is None or fleet.api != api or (fleet.deleted and api == "ASG"):
        return FleetInfo(fleet_id=fleet_id, api=api, state="gone")
    live = _members(cloud, fleet_id)
    state = fleet.state
    if fleet.deleted or fleet.expired:
        state = _ENDED_STATES[api][0 if live else 1]
    return FleetInfo(
        fleet_id=fleet_id,
        api=api,
        state=state,
        # Groups have no activity status.
        activity="" if api == "ASG" else fleet.activity,
        target_units=fleet.target_units,
        fulfilled_units=float(_units(live)),
        # DescribeFleets carries an instant fleet's launch errors; the rest is history.
        errors=fleet.errors if _instant(fleet) else (),
        codes=error_codes(fleet.errors) if _instant(fleet) else (),
    )


def _history_calls(cloud: FakeCloud, intent: DescribeFleets) -> list[tuple[str, str | None]]:
    """The follow-up calls the boto3 interpreter makes for errors: one per fleet in "error",
    one for all groups short of their target. (operation, fleet id or None for all groups)
    """
    infos = [_info(cloud, api, fid) for api, fid in dict.fromkeys(intent.fleets)]
    calls: list[tuple[str, str | None]] = [
        ("DescribeFleetHistory", i.fleet_id)
        for i in infos
        if i.api != "ASG" and i.activity == "error"
    ]
    if any(
        i.api == "ASG" and i.state != "gone" and i.fulfilled_units < i.target_units for i in infos
    ):
        calls.append(("DescribeScalingActivities", None))
    return calls


def _describe_fleets(cloud: FakeCloud, intent: DescribeFleets) -> tuple[FakeCloud, Answer]:
    infos = {fid: _info(cloud, api, fid) for api, fid in intent.fleets}
    for operation, fleet_id in _history_calls(cloud, intent):
        cloud = msgspec.structs.replace(cloud, calls=(*cloud.calls, operation))
        cloud, fault = _take_fault(cloud, operation)
        if fault is not None:
            # The boto3 interpreter logs a failed history call and answers without reasons.
            continue
        for fid, info in infos.items():
            fleet = cloud.fleets.get(fid)
            wanted = fleet_id == fid or (fleet_id is None and info.api == "ASG")
            if wanted and fleet is not None and not _instant(fleet) and info.state != "gone":
                # The history's error subtypes / a group's failed activities name the same
                # codes as the pool errors behind them.
                infos[fid] = msgspec.structs.replace(
                    info, errors=fleet.errors, codes=error_codes(fleet.errors)
                )
    return cloud, Success(infos)
