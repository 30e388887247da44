"""Creating EC2 Fleets, Spot Fleet requests and Auto Scaling groups from a `FleetSpec`."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from returns.result import Failure, Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.errors import Answer, _timed
from ohf.effects.aws.launch_templates import aws_tags
from ohf.intents import CreateFleet, FleetSpec, Override
from ohf.model import REQUEST_TAG, TEMPLATE_TAG, FleetLaunch, Instance, OhfError
from ohf.native import merged

# IBM's camelCase allocation strategies in EC2 Fleet's and Auto Scaling's spelling. Spot Fleet
# speaks camelCase itself. Auto Scaling has no "diversified": the group's default is used.
EC2_FLEET_STRATEGY = {
    "capacityOptimized": "capacity-optimized",
    "capacityOptimizedPrioritized": "capacity-optimized-prioritized",
    "diversified": "diversified",
    "lowestPrice": "lowest-price",
    "priceCapacityOptimized": "price-capacity-optimized",
}
ON_DEMAND_STRATEGY = {"lowestPrice": "lowest-price", "prioritized": "prioritized"}


def _kebab(strategy: str | None, table: dict[str, str]) -> str | None:
    """`strategy` in AWS's dashed spelling (values already dashed pass through)."""
    return None if strategy is None else table.get(strategy, strategy)


def _launch_template_spec(spec: FleetSpec) -> dict[str, str]:
    return {"LaunchTemplateId": spec.launch_template_id, "Version": spec.launch_template_version}


def _split(spec: FleetSpec) -> tuple[int, int]:
    """(on-demand units, spot units) of the target."""
    on_demand = min(max(spec.on_demand_units, 0), spec.target_units)
    return on_demand, spec.target_units - on_demand


def _fleet_override(override: Override, price_key: str, price: str | None) -> dict[str, Any]:
    """One LaunchTemplateOverrides item of an EC2 Fleet (`MaxPrice`) or Spot Fleet (`SpotPrice`)."""
    item: dict[str, Any] = {
        "InstanceType": override.instance_type,
        "WeightedCapacity": float(override.weight),
    }
    optional = {
        "SubnetId": override.subnet_id,
        "Priority": None if override.priority is None else float(override.priority),
        price_key: price,
    }
    if price_key == "MaxPrice":  # only EC2 Fleet overrides take an AMI
        optional["ImageId"] = override.image_id
    return item | {k: v for k, v in optional.items() if v is not None}


def ec2_fleet_params(spec: FleetSpec) -> dict[str, Any]:
    """CreateFleet keyword arguments for `spec`, its `fleet` fragment merged in (pure)."""
    on_demand, spot = _split(spec)
    params: dict[str, Any] = {
        "Type": spec.fleet_type,
        "ClientToken": spec.client_token,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": [
                    _fleet_override(o, "MaxPrice", spec.max_spot_price) for o in spec.overrides
                ],
            }
        ],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": spec.target_units,
            "OnDemandTargetCapacity": on_demand,
            "SpotTargetCapacity": spot,
            "DefaultTargetCapacityType": "spot" if spot else "on-demand",
        },
    }
    strategy = _kebab(spec.allocation_strategy, EC2_FLEET_STRATEGY)
    spot_options: dict[str, Any] = {"AllocationStrategy": strategy} if strategy else {}
    if strategy == "lowest-price" and spec.pools_count:
        spot_options["InstancePoolsToUseCount"] = spec.pools_count
    if spot_options:
        params["SpotOptions"] = spot_options
    on_demand_strategy = _kebab(spec.allocation_strategy_on_demand, ON_DEMAND_STRATEGY)
    if on_demand_strategy:
        params["OnDemandOptions"] = {"AllocationStrategy": on_demand_strategy}
    if spec.fleet_type == "maintain":
        # Lowering the target (before a return) must never make AWS pick machines to kill.
        # (AWS takes the policy for maintain fleets only; only those can be lowered.)
        params["ExcessCapacityTerminationPolicy"] = "no-termination"
    if spec.tags:
        params["TagSpecifications"] = [{"ResourceType": "fleet", "Tags": aws_tags(spec.tags)}]
    return merged(params, spec.native_fleet)


def spot_fleet_config(spec: FleetSpec) -> dict[str, Any]:
    """RequestSpotFleet's SpotFleetRequestConfig for `spec`, its `fleet` fragment merged in."""
    on_demand, _ = _split(spec)
    strategy = spec.allocation_strategy or "lowestPrice"
    config: dict[str, Any] = {
        "IamFleetRole": spec.fleet_role,
        "AllocationStrategy": strategy,
        "TargetCapacity": spec.target_units,
        "OnDemandTargetCapacity": on_demand,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": [
                    _fleet_override(o, "SpotPrice", spec.max_spot_price) for o in spec.overrides
                ],
            }
        ],
        # Spot Fleet has no `instant` type: a one-time `request` is the nearest.
        "Type": "maintain" if spec.fleet_type == "maintain" else "request",
        "ClientToken": spec.client_token,
    }
    if spec.fleet_type == "maintain":
        config["ExcessCapacityTerminationPolicy"] = "noTermination"
    optional: dict[str, Any] = {
        "SpotPrice": spec.max_spot_price,
        "ValidUntil": None
        if spec.valid_until is None
        else datetime.fromtimestamp(spec.valid_until, tz=UTC),
        "InstancePoolsToUseCount": spec.pools_count if strategy == "lowestPrice" else None,
        "OnDemandAllocationStrategy": spec.allocation_strategy_on_demand,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    if spec.tags:
        config["TagSpecifications"] = [
            {"ResourceType": "spot-fleet-request", "Tags": aws_tags(spec.tags)}
        ]
    return merged(config, spec.native_fleet)


def _group_overrides(spec: FleetSpec) -> list[dict[str, str]]:
    """One override per instance type (groups take subnets separately), preferred first."""
    ranked = sorted(spec.overrides, key=lambda o: (o.priority is None, o.priority or 0))
    first: dict[str, Override] = {}
    for override in ranked:
        first.setdefault(override.instance_type, override)
    return [
        {"InstanceType": o.instance_type, "WeightedCapacity": str(o.weight)} for o in first.values()
    ]


def group_params(spec: FleetSpec) -> dict[str, Any]:
    """CreateAutoScalingGroup keyword arguments for `spec`, its `fleet` fragment merged in (pure).

    Sizes are in capacity units when types have weights. MaxSize is the target: to reach it
    with weighted types AWS may go over MaxSize by up to the largest weight. Instances are
    protected from scale-in, so lowering the desired capacity never makes AWS pick machines
    to end (TerminateInstanceInAutoScalingGroup still ends the ones ohf names).
    """
    on_demand, spot = _split(spec)
    distribution: dict[str, Any] = {
        "OnDemandBaseCapacity": on_demand,
        "OnDemandPercentageAboveBaseCapacity": 0 if spot else 100,
    }
    strategy = _kebab(spec.allocation_strategy, EC2_FLEET_STRATEGY)
    optional = {
        "SpotAllocationStrategy": None if strategy == "diversified" else strategy,
        "SpotInstancePools": spec.pools_count if strategy == "lowest-price" else None,
        "OnDemandAllocationStrategy": _kebab(
            spec.allocation_strategy_on_demand, ON_DEMAND_STRATEGY
        ),
        "SpotMaxPrice": spec.max_spot_price,
    }
    distribution.update({k: v for k, v in optional.items() if v is not None})
    subnets = spec.subnets or tuple(
        dict.fromkeys(o.subnet_id for o in spec.overrides if o.subnet_id)
    )
    params: dict[str, Any] = {
        "AutoScalingGroupName": spec.name,
        "MinSize": 0,
        "MaxSize": max(spec.target_units, 1),
        "DesiredCapacity": spec.target_units,
        "NewInstancesProtectedFromScaleIn": True,
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": _group_overrides(spec),
            },
            "InstancesDistribution": distribution,
        },
        "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in spec.tags],
    }
    if subnets:
        params["VPCZoneIdentifier"] = ",".join(subnets)
    return merged(params, spec.native_fleet)


def _pool_error(error: dict[str, Any]) -> str:
    """An instant fleet's launch error as "CODE: message (type/subnet)"."""
    text = f"{error.get('ErrorCode', 'Unknown')}: {error.get('ErrorMessage', '')}"
    override = (error.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
    place = "/".join(
        str(override[k]) for k in ("InstanceType", "SubnetId") if override.get(k) is not None
    )
    return f"{text} ({place})" if place else text


def fleet_launch(response: dict[str, Any], spec: FleetSpec) -> FleetLaunch:
    """The `FleetLaunch` of a CreateFleet answer: instances (instant fleets) and pool errors."""
    tags = dict(spec.tags)
    instances = tuple(
        Instance(
            instance_id=instance_id,
            state="pending",
            instance_type=item.get("InstanceType", ""),
            lifecycle="spot" if item.get("Lifecycle") == "spot" else "on-demand",
            request_id=tags.get(REQUEST_TAG),
            template_id=tags.get(TEMPLATE_TAG),
        )
        for item in response.get("Instances", []) or []
        for instance_id in item.get("InstanceIds", []) or []
    )
    raw_errors = response.get("Errors", []) or []
    return FleetLaunch(
        fleet_id=str(response["FleetId"]),
        instances=instances,
        errors=tuple(_pool_error(e) for e in raw_errors),
        codes=error_codes(raw_errors),
    )


def error_codes(errors: list[dict[str, Any]]) -> tuple[str, ...]:
    """AWS's `ErrorCode` of each of a fleet's `Errors`, in order, once each."""
    return tuple(dict.fromkeys(str(e["ErrorCode"]) for e in errors if e.get("ErrorCode")))


def _create_ec2_fleet(clients: ClientGetter, spec: FleetSpec) -> Answer:
    params = ec2_fleet_params(spec)
    return _timed("CreateFleet", partial(clients("ec2").create_fleet, **params)).map(
        lambda r: fleet_launch(r, spec)
    )


def _request_spot_fleet(clients: ClientGetter, spec: FleetSpec) -> Answer:
    if not spec.fleet_role:
        return Failure(
            OhfError(
                message="RequestSpotFleet: a SpotFleet template needs fleetRole (an IAM role ARN)",
                code="config",
            )
        )
    config = spot_fleet_config(spec)
    return _timed(
        "RequestSpotFleet",
        partial(clients("ec2").request_spot_fleet, SpotFleetRequestConfig=config),
    ).map(lambda r: FleetLaunch(fleet_id=str(r["SpotFleetRequestId"])))


def _create_group(clients: ClientGetter, spec: FleetSpec) -> Answer:
    params = group_params(spec)
    answer = _timed(
        "CreateAutoScalingGroup",
        partial(clients("autoscaling").create_auto_scaling_group, **params),
    )
    if isinstance(answer, Failure) and answer.failure().code == "AlreadyExists":
        # Groups take no ClientToken: the name, unique per request, makes the retry safe.
        return Success(FleetLaunch(fleet_id=spec.name))
    return answer.map(lambda _: FleetLaunch(fleet_id=spec.name))


def _create_fleet(clients: ClientGetter, intent: CreateFleet) -> Answer:
    create = {"EC2Fleet": _create_ec2_fleet, "SpotFleet": _request_spot_fleet, "ASG": _create_group}
    return create[intent.spec.api](clients, intent.spec)
