"""Changing fleets and groups in the fake cloud: new targets, group terminations, deletion."""

from __future__ import annotations

import msgspec
from returns.result import Success

from ohf.effects.fake.cloud import _LIVE, Answer, FakeCloud, FakeFleet, _error
from ohf.effects.fake.fleets import _MODIFY_OP, _NOT_FOUND, _instant, _members, _with_fleet
from ohf.effects.fake.instances import _terminated
from ohf.intents import DeleteFleet, ModifyFleetTarget, TerminateInGroup
from ohf.model import FleetApi


def _live_fleet(cloud: FakeCloud, api: FleetApi, fleet_id: str) -> FakeFleet | None:
    fleet = cloud.fleets.get(fleet_id)
    return None if fleet is None or fleet.deleted or fleet.api != api else fleet


def _modify_fleet(cloud: FakeCloud, intent: ModifyFleetTarget) -> tuple[FakeCloud, Answer]:
    operation = _MODIFY_OP[intent.api]
    fleet = _live_fleet(cloud, intent.api, intent.fleet_id)
    if fleet is None:
        code, message = _NOT_FOUND[intent.api]
        return cloud, _error(operation, code, message.format(intent.fleet_id))
    if fleet.api != "ASG" and (fleet.spec.fleet_type != "maintain" or fleet.expired):
        return cloud, _error(
            operation,
            "FleetNotInModifiableState",
            f"Fleet Request: {fleet.fleet_id} is not a modifiable fleet request type.",
        )
    # Excess capacity is kept (no-termination): lowering only stops replacements.
    total = max(intent.target_units, 0)
    fleet = msgspec.structs.replace(
        fleet, target_units=total, on_demand_units=min(max(intent.on_demand_units, 0), total)
    )
    return _with_fleet(cloud, fleet), Success(None)


def _in_group(cloud: FakeCloud, group: str, instance_id: str) -> bool:
    item = cloud.instances.get(instance_id)
    fleet = _live_fleet(cloud, "ASG", group)
    return (
        fleet is not None
        and item is not None
        and item.fleet_id == group
        and item.instance.state in _LIVE
    )


def _terminate_in_group(cloud: FakeCloud, intent: TerminateInGroup) -> tuple[FakeCloud, Answer]:
    asked = tuple(dict.fromkeys(intent.instance_ids))
    members = [i for i in asked if _in_group(cloud, intent.group, i)]
    group = cloud.fleets.get(intent.group)
    if group is not None and members:
        lowered = max(group.target_units - sum(cloud.instances[i].units for i in members), 0)
        group = msgspec.structs.replace(
            group,
            target_units=lowered,
            on_demand_units=min(group.on_demand_units, lowered),
        )
        cloud = _with_fleet(cloud, group)
    cloud, states = _terminated(cloud, asked)
    return cloud, Success(states)


def _delete_fleet(cloud: FakeCloud, intent: DeleteFleet) -> tuple[FakeCloud, Answer]:
    fleet = _live_fleet(cloud, intent.api, intent.fleet_id)
    if fleet is None:
        return cloud, Success(None)
    if _instant(fleet) or fleet.api == "ASG":
        # TerminateInstances=True for an instant fleet (AWS insists); ForceDelete for a group.
        ids = [x.instance.instance_id for x in _members(cloud, fleet.fleet_id)]
        cloud, _ = _terminated(cloud, ids)
    return _with_fleet(cloud, msgspec.structs.replace(fleet, deleted=True)), Success(None)
