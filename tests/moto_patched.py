"""moto 5.2.5, patched where it falls short of the AWS behaviour ohf's fleet code relies on.

Run as a server (`python -m tests.moto_patched -H 127.0.0.1 -p PORT`, or the file as a script:
same arguments as `moto_server`), or patch in-process moto for a test with `patched()` (or
`apply_patches()`, which returns the function that undoes it).

Each gap, as found by trying moto 5.2.5, and what the patch does (faithful to AWS, kept small):
- ModifyFleet is NotImplemented: it now sets the fleet's target capacities. Like AWS it refuses
  fleets other than active `maintain` ones ("FleetNotInModifiableState"), terminates the excess
  only under the `termination` policy, and launches more when the target rises.
- Weighted capacity: for every strategy but `diversified` moto fills a target of n units with
  (n + n mod w) // w instances of the first override (weight w), which falls short whenever
  2 * (n mod w) < w (5 units of weight 4: one instance), and reports n + n mod w as fulfilled.
  Patched: ceil(n / w) instances, and the units actually launched. Still one pool only: moto
  takes the first override (Spot Fleet: the one with the lowest SpotPrice; EC2 Fleet never
  reads MaxPrice, so the first), where AWS spreads by strategy, price and capacity.
- A `maintain` EC2 Fleet or Spot Fleet never replaces instances that end (moto does replace
  Auto Scaling group instances, at once, on TerminateInstances). Patched: whenever instances
  are terminated, every active `maintain` fleet is topped up to its target, so a test sees a
  replacement exactly where AWS would launch one. Spot Fleet's `Type` (default `maintain`, as
  in AWS) is remembered for this, and ModifySpotFleetRequest, like AWS, refuses other types.
- FulfilledCapacity drifts: moto lowers it on termination only when the instance's subnet equals
  the override's. Patched: recomputed from the fleet's live instances after each termination.
- Auto Scaling group with a MixedInstancesPolicy: instances get the launch template's type,
  "" when the template has none (ohf's never do). Patched: the first override's type, the one
  moto already takes the weight from.
- CreateAutoScalingGroup with a taken name replaces the group (orphaning its instances).
  Patched: "AlreadyExists", as AWS answers.
- TerminateInstanceInAutoScalingGroup of an instance in no group raises StopIteration (HTTP 500).
  Patched: AWS's "ValidationError: Instance Id not found - No managed instance found ...".
- DeleteFleets / CancelSpotFleetRequests of an unknown id raise KeyError (HTTP 500). Patched: the
  id is listed as unsuccessful with AWS's "fleetIdDoesNotExist" / "fleetRequestIdDoesNotExist".
- Deleting with TerminateInstances=True (or lowering under the `termination` policy) an EC2
  Fleet with nothing to terminate asks EC2 to terminate an empty list, an error. Patched: skipped.
- Capacity never runs out. Injected, only when the server process has `OHF_MOTO_CAPACITY=N`
  in its environment: RunInstances keeps at most N instances pending or running, counted over
  the whole server (every account and region). As in AWS, a call whose MinCount does not fit
  fails with `InsufficientInstanceCapacity` ("We currently do not have sufficient <type>
  capacity in the Availability Zone you requested (<az>). ...", HTTP 500, a server error in
  EC2's error list, which SDKs retry) and launches nothing; one whose MinCount fits launches
  as many as fit, up to MaxCount (moto launches MinCount; AWS as many as it can). Without the
  variable RunInstances is moto's own.
- A block device mapping of the AMI's root device with neither VolumeSize nor SnapshotId (e.g.
  only `Encrypted`/`KmsKeyId`, as ohf sends for `encrypted`) is refused by RunInstances
  ("MissingParameter: size or snapshotId") and fails a launch from a launch template. AWS
  builds that volume from the AMI's snapshot: patched so, for both.
- moto keeps nothing of the parameters it was sent (its recorder writes raw bodies to one file
  per server). The server (not `patched()`) records the query parameters of every request, in
  the wire form boto3 sends (`MetadataOptions.HttpTokens`, `BlockDeviceMapping.1.Ebs.KmsKeyId`),
  served as JSON at GET /moto-api/ohf/received and emptied by /moto-api/reset: tests check there
  what reached AWS's request.

- Spot requests are always "fulfilled": moto never marks one for interruption. Patched: a spot
  instance tagged `ohf-test:spot-status=<code>` (CreateTags, from the test) shows `<code>` (say
  "marked-for-termination") as its spot request's status, updated now, as AWS shows a notice
  two minutes before it takes the instance. Spot requests exist for Spot Fleet instances only:
  moto's RunInstances with spot market options makes none (AWS makes one).

Not patched (tests must not rely on these): moto ignores ClientToken on CreateFleet,
RequestSpotFleet and RunInstances (a retry makes a second fleet, or more instances); Spot Fleet
reads only the first override of each launch template config and launches everything as spot
(OnDemandTargetCapacity, ValidUntil and SpotPrice limits are ignored); groups launch only
on-demand instances; fleets report no ActivityStatus and have no history (DescribeFleetHistory
and DescribeSpotFleetRequestHistory are NotImplemented); DescribeScalingActivities answers
nothing; spot requests are "fulfilled" unless their instance carries the tag above; without
OHF_MOTO_CAPACITY nothing ever fails for lack of capacity, and fleets and groups never do (their
instances count towards the cap, though).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.fleets import Fleet, FleetsBackend
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.models.spot_requests import (
    SpotFleetRequest,
    SpotInstanceRequest,
    SpotRequestBackend,
)
from moto.ec2.responses.fleets import Fleets
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.spot_fleets import SpotFleets

Undo = Callable[[], None]


def _not_modifiable(fleet_id: str) -> EC2ClientError:
    return EC2ClientError(
        "FleetNotInModifiableState",
        f"Fleet Request: {fleet_id} is not a modifiable fleet request type.",
    )


# --- Weighted fills ----------------------------------------------------------------------------


def _ceil_counts(specs: list[Any], weight_to_add: float) -> tuple[dict[Any, int], float]:
    """Instances of the cheapest (else first) spec that reach `weight_to_add` units."""
    spec = sorted(specs, key=lambda s: float(s.spot_price or "+inf"))[0]
    count = math.ceil(weight_to_add / spec.weighted_capacity)
    return {spec: count}, count * spec.weighted_capacity


def _fleet_counts(original: Callable[..., Any]) -> Callable[..., Any]:
    def counts(self: Fleet, weight_to_add: float) -> tuple[dict[Any, int], float]:
        if (self.spot_options or {}).get("AllocationStrategy") == "diversified":
            return original(self, weight_to_add)  # type: ignore[no-any-return]
        return _ceil_counts(self.launch_specs, weight_to_add)

    return counts


def _spot_fleet_counts(original: Callable[..., Any]) -> Callable[..., Any]:
    def counts(self: SpotFleetRequest, weight_to_add: float) -> tuple[dict[Any, int], float]:
        if self.allocation_strategy == "diversified":
            return original(self, weight_to_add)  # type: ignore[no-any-return]
        return _ceil_counts(self.launch_specs, weight_to_add)

    return counts


# --- Live capacity and maintain top-ups --------------------------------------------------------


def _alive(instance: Any) -> bool:
    return instance.state not in ("shutting-down", "terminated")


def _fleet_held(fleet: Fleet) -> tuple[float, float]:
    """(on-demand, spot) units held by the EC2 Fleet's live instances."""
    on_demand = sum(
        (item.get("launch_spec").weighted_capacity if item.get("launch_spec") else 1.0)
        for item in fleet.on_demand_instances
        if _alive(item["instance"])
    )
    spot = sum(
        (req.launch_spec.weighted_capacity if req.launch_spec else 1.0)
        for req in fleet.spot_requests
        if _alive(req.instance)
    )
    return on_demand, spot


def _spot_fleet_held(fleet: SpotFleetRequest) -> float:
    """Units held by the Spot Fleet's live instances (weights by type, then subnet)."""

    def weight(instance: Any) -> float:
        same_type = [s for s in fleet.launch_specs if s.instance_type == instance.instance_type]
        exact = [s for s in same_type if s.subnet_id == instance.subnet_id]
        spec = (exact or same_type or [None])[0]
        return float(spec.weighted_capacity) if spec is not None else 1.0

    return sum(weight(r.instance) for r in fleet.spot_requests if _alive(r.instance))


def _recount_fleet(fleet: Fleet) -> tuple[float, float]:
    """Set an EC2 Fleet's fulfilled capacities from its live instances; (on-demand, spot)."""
    on_demand, spot = _fleet_held(fleet)
    fleet.fulfilled_capacity = on_demand + spot
    fleet.fulfilled_on_demand_capacity = on_demand
    fleet.fulfilled_spot_capacity = spot
    return on_demand, spot


def _top_up_fleet(fleet: Fleet) -> None:
    """Recount an EC2 Fleet; launch what an active `maintain` fleet lacks of its target."""
    on_demand, spot = _recount_fleet(fleet)
    short = fleet.target_capacity - (on_demand + spot)
    if fleet.fleet_type != "maintain" or fleet.state != "active" or short <= 0:
        return
    on_demand_short = min(max(fleet.on_demand_target_capacity - on_demand, 0), short)
    if on_demand_short > 0:
        fleet.create_on_demand_requests(on_demand_short)
    rest = short - on_demand_short
    default = fleet.target_capacity_specification.get("DefaultTargetCapacityType")
    if rest > 0 and (fleet.spot_target_capacity > 0 or default == "spot"):
        fleet.create_spot_requests(rest)
    elif rest > 0:
        fleet.create_on_demand_requests(rest)
    _recount_fleet(fleet)


def _top_up_spot_fleet(fleet: SpotFleetRequest) -> None:
    """Recompute what a Spot Fleet holds; launch what an active `maintain` one lacks."""
    fleet.fulfilled_capacity = _spot_fleet_held(fleet)
    if getattr(fleet, "fleet_type", "maintain") != "maintain" or fleet.state != "active":
        return
    short = fleet.target_capacity - fleet.fulfilled_capacity
    if short > 0:
        fleet.create_spot_requests(short)
        fleet.fulfilled_capacity = _spot_fleet_held(fleet)


def _maintaining_terminate(original: Callable[..., Any]) -> Callable[..., Any]:
    def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
        result = original(self, instance_ids)
        for fleet in list(getattr(self, "fleets", {}).values()):
            _top_up_fleet(fleet)
        for spot_fleet in list(getattr(self, "spot_fleet_requests", {}).values()):
            _top_up_spot_fleet(spot_fleet)
        return result

    return terminate_instances


def _guarded_fleet_terminate(original: Callable[..., Any]) -> Callable[..., Any]:
    def terminate_instances(self: Fleet) -> None:
        # moto asks EC2 to terminate an empty list (an error) when nothing exceeds the target,
        # e.g. deleting with TerminateInstances=True a fleet whose instances all ended.
        on_demand, spot = _recount_fleet(self)
        if on_demand + spot > self.target_capacity:
            original(self)

    return terminate_instances


# --- ModifyFleet -------------------------------------------------------------------------------


def _backend_modify_fleet(
    self: FleetsBackend, fleet_id: str, spec: dict[str, Any], policy: str | None
) -> None:
    fleet = self.fleets.get(fleet_id)
    if fleet is None:
        raise EC2ClientError("InvalidFleetId.NotFound", f"The fleet ID '{fleet_id}' does not exist")
    if fleet.fleet_type != "maintain" or fleet.state != "active":
        raise _not_modifiable(fleet_id)
    total = int(spec.get("TotalTargetCapacity", fleet.target_capacity))
    on_demand = int(spec.get("OnDemandTargetCapacity", fleet.on_demand_target_capacity))
    spot = int(spec.get("SpotTargetCapacity", max(total - on_demand, 0)))
    fleet.target_capacity = total
    fleet.on_demand_target_capacity = on_demand
    fleet.spot_target_capacity = spot
    fleet.target_capacity_specification = {
        **fleet.target_capacity_specification,
        "TotalTargetCapacity": total,
        "OnDemandTargetCapacity": on_demand,
        "SpotTargetCapacity": spot,
    }
    if policy:
        fleet.excess_capacity_termination_policy = policy
    if fleet.excess_capacity_termination_policy == "termination":
        fleet.terminate_instances()
    _top_up_fleet(fleet)


def _response_modify_fleet(self: Fleets) -> ActionResult:
    fleet_id = self._get_param("FleetId")
    spec = self._get_param("TargetCapacitySpecification", {})
    policy = self._get_param("ExcessCapacityTerminationPolicy")
    self.error_on_dryrun()
    self.ec2_backend.modify_fleet(fleet_id, spec, policy)
    return ActionResult({"Return": True})


# --- Spot Fleet type, modify, cancel -----------------------------------------------------------


def _typed_request_spot_fleet(original: Callable[..., Any]) -> Callable[..., Any]:
    def request_spot_fleet(self: SpotFleets) -> ActionResult:
        fleet_type = self._get_param("SpotFleetRequestConfig", {}).get("Type") or "maintain"
        result = original(self)
        fleet_id = result.result["SpotFleetRequestId"]
        self.ec2_backend.spot_fleet_requests[fleet_id].fleet_type = fleet_type
        return result  # type: ignore[no-any-return]

    return request_spot_fleet


def _checked_modify_spot_fleet(original: Callable[..., Any]) -> Callable[..., Any]:
    def modify(self: SpotRequestBackend, fleet_id: str, target: int, policy: str) -> None:
        fleet = self.spot_fleet_requests.get(fleet_id)
        if fleet is None:
            raise EC2ClientError(
                "InvalidSpotFleetRequestId.NotFound",
                f"The spot fleet request ID '{fleet_id}' does not exist",
            )
        if getattr(fleet, "fleet_type", "maintain") != "maintain" or fleet.state != "active":
            raise _not_modifiable(fleet_id)
        original(self, fleet_id, target, policy)
        _top_up_spot_fleet(fleet)

    return modify


def _response_delete_fleets(self: Fleets) -> ActionResult:
    fleet_ids = self._get_param("FleetIds", [])
    terminate = self._get_bool_param("TerminateInstances")
    known = [i for i in fleet_ids if i in self.ec2_backend.fleets]
    fleets = self.ec2_backend.delete_fleets(known, terminate) if known else []
    return ActionResult(
        {
            "SuccessfulFleetDeletions": [
                {"CurrentFleetState": f.state, "PreviousFleetState": "active", "FleetId": f.id}
                for f in fleets
            ],
            "UnsuccessfulFleetDeletions": [
                {
                    "Error": {
                        "Code": "fleetIdDoesNotExist",
                        "Message": f"The fleet ID '{i}' does not exist",
                    },
                    "FleetId": i,
                }
                for i in fleet_ids
                if i not in known
            ],
        }
    )


def _response_cancel_spot_fleets(self: SpotFleets) -> ActionResult:
    fleet_ids = self._get_param("SpotFleetRequestIds", [])
    terminate = self._get_bool_param("TerminateInstances")
    known = [i for i in fleet_ids if i in self.ec2_backend.spot_fleet_requests]
    fleets = self.ec2_backend.cancel_spot_fleet_requests(known, terminate) if known else []
    return ActionResult(
        {
            "SuccessfulFleetRequests": [
                {
                    "SpotFleetRequestId": f.id,
                    "CurrentSpotFleetRequestState": "cancelled_terminating"
                    if terminate
                    else f.state,
                    "PreviousSpotFleetRequestState": "active",
                }
                for f in fleets
            ],
            "UnsuccessfulFleetRequests": [
                {
                    "Error": {
                        "Code": "fleetRequestIdDoesNotExist",
                        "Message": f"The spot fleet request ID '{i}' does not exist",
                    },
                    "SpotFleetRequestId": i,
                }
                for i in fleet_ids
                if i not in known
            ],
        }
    )


# --- Auto Scaling ------------------------------------------------------------------------------


def _override_type(original: property) -> property:
    def instance_type(self: FakeAutoScalingGroup) -> str:
        value: str = original.fget(self)  # type: ignore[misc]
        policy = (self.mixed_instances_policy or {}).get("LaunchTemplate") or {}
        overrides = policy.get("Overrides") or []
        if not value and overrides:
            return str(overrides[0].get("InstanceType") or value)
        return value

    return property(instance_type)


def _unique_group(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(self: AutoScalingBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.autoscaling_groups:
            raise AutoscalingClientError(
                "AlreadyExists",
                f"AutoScalingGroup by this name already exists - A group with the name {name} "
                "already exists",
            )
        return original(self, name, *args, **kwargs)

    return create


def _known_instance(original: Callable[..., Any]) -> Callable[..., Any]:
    def terminate_instance(self: AutoScalingBackend, instance_id: str, decrement: bool) -> Any:
        in_group = any(
            state.instance.id == instance_id
            for group in self.autoscaling_groups.values()
            for state in group.instance_states
        )
        if not in_group:
            raise AutoscalingClientError(
                "ValidationError",
                f"Instance Id not found - No managed instance found for instance ID {instance_id}",
            )
        return original(self, instance_id, decrement)

    return terminate_instance


# --- Capacity (OHF_MOTO_CAPACITY) --------------------------------------------------------------

CAPACITY_ENV = "OHF_MOTO_CAPACITY"
# The count of live instances and the launch must be one step: the server is threaded.
_capacity_lock = threading.Lock()


def _capacity() -> int | None:
    value = os.environ.get(CAPACITY_ENV)
    return int(value) if value else None


def _holding_capacity() -> int:
    """Instances pending or running anywhere on this server (every account and region)."""
    return sum(
        1
        for account in list(ec2_backends.values())
        for backend in list(account.values())
        for instance in backend.all_instances()
        if instance.state in ("pending", "running")
    )


def _requested_zone(response: InstanceResponse) -> str:
    zone = response._get_param("Placement.AvailabilityZone")
    subnet_id = response._get_param("SubnetId")
    if not zone and subnet_id:
        try:
            zone = response.ec2_backend.get_subnet(subnet_id).availability_zone
        except EC2ClientError:
            zone = None  # an unknown subnet: moto's own RunInstances says so
    return str(zone or f"{response.region}a")


def _insufficient_capacity(response: InstanceResponse) -> tuple[str | bytes, dict[str, Any]]:
    """EC2's InsufficientInstanceCapacity answer, with the HTTP 500 AWS sends it with."""
    instance_type = response._get_param("InstanceType") or "m1.small"
    error = EC2ClientError(
        "InsufficientInstanceCapacity",
        f"We currently do not have sufficient {instance_type} capacity in the Availability "
        f"Zone you requested ({_requested_zone(response)}). Our system will be working on "
        f"provisioning additional capacity. You can currently get {instance_type} capacity by "
        "not specifying an Availability Zone in your request or choosing another one.",
    )
    _status, headers, body = response.serialized(ActionResult(error))
    headers["status"] = 500
    return body, headers


def _capped_run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    def run_instances(self: InstanceResponse) -> Any:
        cap = _capacity()
        if cap is None or self._get_param("DryRun", False):
            return original(self)
        wanted = int(self._get_param("MinCount", if_none="1"))
        at_most = int(self._get_param("MaxCount", if_none=str(wanted)))
        with _capacity_lock:
            room = max(cap - _holding_capacity(), 0)
            if wanted > room:
                return _insufficient_capacity(self)
            count = str(max(min(at_most, room), wanted))
            # moto launches MinCount: hand it the count AWS would launch instead.
            _shadow_param(self, "MinCount", count)
            return original(self)

    return run_instances


# --- Spot interruption notices ----------------------------------------------------------------

SPOT_STATUS_TAG = "ohf-test:spot-status"


def _tagged_spot_status(original: property) -> property:
    def status(self: SpotInstanceRequest) -> dict[str, Any]:
        shown: dict[str, Any] = dict(original.fget(self))  # type: ignore[misc]
        for tag in self.instance.get_tags():
            if tag["key"] == SPOT_STATUS_TAG:
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                message = f"Spot Instance {tag['value']} (the test's {SPOT_STATUS_TAG} tag)"
                shown.update(Code=tag["value"], Message=message, UpdateTime=now)
        return shown

    return property(status)


def _shadow_param(response: Any, name: str, value: Any) -> None:
    """Make the response's `_get_param(name)` answer `value`. The response object serves this
    one request, so shadowing its method touches nothing else."""
    read = response._get_param

    def get_param(param_name: str, if_none: Any = None) -> Any:
        return value if param_name == name else read(param_name, if_none)

    response._get_param = get_param


# --- Root volumes from the AMI's snapshot ------------------------------------------------------


def _ami_snapshot(backend: Any, image_id: str | None) -> tuple[str, str] | None:
    """(root device name, snapshot id) of an AMI moto knows."""
    images = backend.describe_images(filters={"image-id": image_id}) if image_id else []
    snapshot = getattr(images[0], "ebs_snapshot", None) if images else None
    return (images[0].root_device_name, snapshot.id) if snapshot is not None else None


def _with_root_snapshot(mappings: list[Any], root: tuple[str, str] | None) -> list[Any]:
    """Block device mappings, the AMI's root one given the AMI's snapshot if it has no size."""
    if root is None:
        return mappings
    out = []
    for mapping in mappings:
        ebs = mapping.get("Ebs") if isinstance(mapping, dict) else None
        bare = isinstance(ebs, dict) and not ebs.get("VolumeSize") and not ebs.get("SnapshotId")
        if bare and mapping.get("DeviceName") == root[0]:
            out.append({**mapping, "Ebs": {**ebs, "SnapshotId": root[1]}})
        else:
            out.append(mapping)
    return out


def _root_from_ami(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse(self: InstanceResponse) -> Any:
        root = _ami_snapshot(self.ec2_backend, self._get_param("ImageId"))
        mappings = _with_root_snapshot(self._get_param("BlockDeviceMappings", []), root)
        _shadow_param(self, "BlockDeviceMappings", mappings)
        return original(self)

    return parse


def _root_device_from_ami(original: Callable[..., Any]) -> Callable[..., Any]:
    def add_block_device(
        self: Instance, size: Any, device_path: str, snapshot_id: Any, *rest: Any, **kw: Any
    ) -> Any:
        if size is None and not snapshot_id:
            root = _ami_snapshot(self.ec2_backend, self.image_id)
            if root is not None and root[0] == device_path:
                snapshot_id = root[1]
        return original(self, size, device_path, snapshot_id, *rest, **kw)

    return add_block_device


# --- Requests received (the server only) -------------------------------------------------------

# moto keeps no parameters of the requests it serves (its recorder, MOTO_ENABLE_RECORDING, writes
# raw bodies to one file per server, shared by every test). Recorded here instead: the query
# parameters (EC2's and Auto Scaling's wire form, e.g. `MetadataOptions.HttpTokens`) of every
# Query-protocol request, in memory, read at GET RECEIVED_PATH and emptied by /moto-api/reset.
RECEIVED_PATH = "/moto-api/ohf/received"
_received: list[dict[str, Any]] = []
_received_lock = threading.Lock()


def _received_call_action(original: Callable[..., Any]) -> Callable[..., Any]:
    def call_action(self: BaseResponse) -> Any:
        query = getattr(self, "querystring", None) or {}
        action = (query.get("Action") or [None])[0]
        if action:
            params = {k: v[0] for k, v in query.items() if k not in ("Action", "Version") and v}
            with _received_lock:
                _received.append({"service": self.service_name, "action": action, "params": params})
        return original(self)

    return call_action


def _emptied_on_reset(original: Callable[..., Any]) -> Callable[..., Any]:
    def reset(self: Any) -> None:
        with _received_lock:
            _received.clear()
        original(self)

    return reset


def _received_response(
    request: Any, full_url: str, headers: Any
) -> tuple[int, dict[str, str], str]:
    with _received_lock:
        body = json.dumps(_received)
    return 200, {"Content-Type": "application/json"}, body


def record_requests() -> None:
    """Keep the parameters of every request this server receives (for the server: no undo)."""
    from moto.moto_api._internal import urls
    from moto.moto_api._internal.models import MotoAPIBackend

    BaseResponse.call_action = _received_call_action(BaseResponse.call_action)  # type: ignore[method-assign]
    MotoAPIBackend.reset = _emptied_on_reset(MotoAPIBackend.reset)  # type: ignore[method-assign]
    urls.url_paths["{0}" + RECEIVED_PATH] = _received_response


# --- Applying ----------------------------------------------------------------------------------


def apply_patches() -> Undo:
    """Patch moto's classes (in this process) and return the function that restores them."""
    replaced: list[tuple[type, str, Any]] = []

    def put(owner: type, name: str, value: Any) -> None:
        replaced.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    put(InstanceResponse, "run_instances", _capped_run_instances(InstanceResponse.run_instances))
    put(
        InstanceResponse,
        "_parse_block_device_mapping",
        _root_from_ami(InstanceResponse._parse_block_device_mapping),
    )
    put(Instance, "add_block_device", _root_device_from_ami(Instance.add_block_device))
    put(Fleets, "modify_fleet", _response_modify_fleet)
    put(FleetsBackend, "modify_fleet", _backend_modify_fleet)
    put(Fleets, "delete_fleets", _response_delete_fleets)
    put(Fleet, "terminate_instances", _guarded_fleet_terminate(Fleet.terminate_instances))
    put(Fleet, "get_launch_spec_counts", _fleet_counts(Fleet.get_launch_spec_counts))
    put(
        SpotFleetRequest,
        "get_launch_spec_counts",
        _spot_fleet_counts(SpotFleetRequest.get_launch_spec_counts),
    )
    put(
        InstanceBackend,
        "terminate_instances",
        _maintaining_terminate(InstanceBackend.terminate_instances),
    )
    put(SpotFleets, "request_spot_fleet", _typed_request_spot_fleet(SpotFleets.request_spot_fleet))
    put(SpotFleets, "cancel_spot_fleet_requests", _response_cancel_spot_fleets)
    put(
        SpotRequestBackend,
        "modify_spot_fleet_request",
        _checked_modify_spot_fleet(SpotRequestBackend.modify_spot_fleet_request),
    )
    put(
        FakeAutoScalingGroup,
        "instance_type",
        _override_type(FakeAutoScalingGroup.__dict__["instance_type"]),
    )
    put(
        AutoScalingBackend,
        "create_auto_scaling_group",
        _unique_group(AutoScalingBackend.create_auto_scaling_group),
    )
    put(
        AutoScalingBackend,
        "terminate_instance",
        _known_instance(AutoScalingBackend.terminate_instance),
    )
    put(
        SpotInstanceRequest,
        "status",
        _tagged_spot_status(SpotInstanceRequest.__dict__["status"]),
    )

    def undo() -> None:
        for owner, name, old in reversed(replaced):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        replaced.clear()

    return undo


_MISSING = object()


@contextmanager
def patched() -> Iterator[None]:
    """moto patched for the duration of the block (in-process `mock_aws` tests)."""
    undo = apply_patches()
    try:
        yield
    finally:
        undo()


def main(argv: list[str]) -> None:
    """Patch moto, then run its server with `moto_server`'s arguments (-H HOST -p PORT ...)."""
    from moto.server import main as serve

    apply_patches()
    record_requests()
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
