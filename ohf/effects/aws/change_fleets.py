"""Changing fleets and groups: new targets, terminating group members, deleting."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from returns.result import Failure, Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.describe_fleets import (
    FLEET_NOT_FOUND,
    SPOT_FLEET_NOT_FOUND,
    _batched,
    _paged,
    _spot_fleet_infos,
)
from ohf.effects.aws.errors import Answer, _timed
from ohf.effects.aws.instances import _terminate_batch
from ohf.intents import DeleteFleet, ModifyFleetTarget, TerminateInGroup
from ohf.model import InstanceState, OhfError

log = logging.getLogger("ohf.aws")  # one name for the package: log settings keep working


def _modify_fleet_target(clients: ClientGetter, intent: ModifyFleetTarget) -> Answer:
    total = max(intent.target_units, 0)
    on_demand = min(max(intent.on_demand_units, 0), total)
    if intent.api == "EC2Fleet":
        call = partial(
            clients("ec2").modify_fleet,
            FleetId=intent.fleet_id,
            TargetCapacitySpecification={
                "TotalTargetCapacity": total,
                "OnDemandTargetCapacity": on_demand,
                "SpotTargetCapacity": total - on_demand,
            },
            ExcessCapacityTerminationPolicy="no-termination",
        )
        name = "ModifyFleet"
    elif intent.api == "SpotFleet":
        call = partial(
            clients("ec2").modify_spot_fleet_request,
            SpotFleetRequestId=intent.fleet_id,
            TargetCapacity=total,
            OnDemandTargetCapacity=on_demand,
            ExcessCapacityTerminationPolicy="noTermination",
        )
        name = "ModifySpotFleetRequest"
    else:
        call = partial(
            clients("autoscaling").update_auto_scaling_group,
            AutoScalingGroupName=intent.fleet_id,
            DesiredCapacity=total,
            MinSize=0,
        )
        name = "UpdateAutoScalingGroup"
    answer = _timed(name, call)
    if isinstance(answer, Success) and answer.unwrap().get("Return") is False:
        return Failure(OhfError(message=f"{name}: AWS did not accept the change", code=name))
    return answer.map(lambda _: None)


def _terminate_in_group(clients: ClientGetter, intent: TerminateInGroup) -> Answer:
    autoscaling = clients("autoscaling")
    states: dict[str, InstanceState] = {}
    outside: list[str] = []
    for instance_id in dict.fromkeys(intent.instance_ids):
        answer = _timed(
            "TerminateInstanceInAutoScalingGroup",
            partial(
                autoscaling.terminate_instance_in_auto_scaling_group,
                InstanceId=instance_id,
                ShouldDecrementDesiredCapacity=True,
            ),
        )
        if isinstance(answer, Success):
            states[instance_id] = "shutting-down"
        elif answer.failure().code == "ValidationError":
            # Not (or no longer) in service in a group: already leaving, detached or gone.
            outside.append(instance_id)
        else:
            return answer
    if outside:
        log.info(
            "%s: %d instance(s) not in the group, terminated directly", intent.group, len(outside)
        )
        answer = _terminate_batch(clients("ec2"), tuple(outside))
        if isinstance(answer, Failure):
            return answer
        states.update(answer.unwrap())
    return Success(states)


def _unsuccessful(
    name: str, response: dict[str, Any], key: str, fine: frozenset[str]
) -> OhfError | None:
    """The first refusal in a DeleteFleets/CancelSpotFleetRequests answer not in `fine`."""
    for item in response.get(key, []) or []:
        error = item.get("Error") or {}
        code = str(error.get("Code", "unexpectedError"))
        if code not in fine:
            return OhfError(message=f"{name}: {code}: {error.get('Message', '')}", code=code)
    return None


def _delete_ec2_fleet(clients: ClientGetter, fleet_id: str) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeFleets",
        lambda batch: _paged(ec2, "describe_fleets", "Fleets", FleetIds=list(batch)),
        (fleet_id,),
        1,
        FLEET_NOT_FOUND,
    )
    if isinstance(found, Failure):
        return found
    fleets = found.unwrap()
    if not fleets or str(fleets[0].get("FleetState", "")).startswith("deleted"):
        return Success(None)
    # AWS deletes an instant fleet only together with its instances. ohf deletes a fleet only
    # once none of its machines is left, so this terminates nothing HF still holds.
    terminate = fleets[0].get("Type") == "instant"
    answer = _timed(
        "DeleteFleets",
        partial(ec2.delete_fleets, FleetIds=[fleet_id], TerminateInstances=terminate),
    )
    if isinstance(answer, Failure):
        return answer
    refused = _unsuccessful(
        "DeleteFleets",
        answer.unwrap(),
        "UnsuccessfulFleetDeletions",
        frozenset({"fleetIdDoesNotExist"}),
    )
    return Success(None) if refused is None else Failure(refused)


def _cancel_spot_fleet(clients: ClientGetter, fleet_id: str) -> Answer:
    ec2 = clients("ec2")
    answer = _timed(
        "CancelSpotFleetRequests",
        partial(
            ec2.cancel_spot_fleet_requests, SpotFleetRequestIds=[fleet_id], TerminateInstances=False
        ),
    )
    if isinstance(answer, Failure):
        return Success(None) if answer.failure().code in SPOT_FLEET_NOT_FOUND else answer
    refused = _unsuccessful(
        "CancelSpotFleetRequests",
        answer.unwrap(),
        "UnsuccessfulFleetRequests",
        frozenset({"fleetRequestIdDoesNotExist"}),
    )
    if refused is None:
        return Success(None)
    if refused.code != "fleetRequestNotInCancellableState":
        return Failure(refused)
    # Already cancelled (a retry after a lost answer) is done; anything else is not.
    info = _spot_fleet_infos(clients, (fleet_id,)).map(lambda infos: infos.get(fleet_id))
    state = info.map(lambda i: "gone" if i is None else i.state).value_or("")
    if state == "gone" or state.startswith("cancelled"):
        return Success(None)
    return Failure(refused)


def _delete_group(clients: ClientGetter, name: str) -> Answer:
    # ForceDelete: a group still holding an instance (one ohf has not seen yet) goes with it;
    # without it AWS refuses until the group is empty.
    answer = _timed(
        "DeleteAutoScalingGroup",
        partial(
            clients("autoscaling").delete_auto_scaling_group,
            AutoScalingGroupName=name,
            ForceDelete=True,
        ),
    )
    if isinstance(answer, Failure):
        error = answer.failure()
        gone = error.code == "ValidationError" and "not found" in error.message
        return Success(None) if gone else answer
    return Success(None)


def _delete_fleet(clients: ClientGetter, intent: DeleteFleet) -> Answer:
    delete = {"EC2Fleet": _delete_ec2_fleet, "SpotFleet": _cancel_spot_fleet, "ASG": _delete_group}
    return delete[intent.api](clients, intent.fleet_id)
