"""The boto3 interpreter performs the fleet intents (launch templates, EC2 Fleet, Spot Fleet,
Auto Scaling groups, spot signals) as AWS expects them.

Most tests run `make_interpreter` inside moto's in-process `mock_aws`, patched by
`tests.moto_patched` where moto 5.2.5 falls short (each gap is named there and, where a test
depends on it, in the test). What the interpreter sends is read from botocore's parameters (a
hook on every client it makes); what AWS answers that moto cannot produce (fleet history,
interruption notices, batch refusals) comes from a botocore Stubber.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from returns.result import Failure, Result, Success

from ohf.config import AwsConfig
from ohf.effects import aws
from ohf.effects.aws import clients as aws_clients
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
    DescribeInstances,
    DescribeSpotSignals,
    FleetSpec,
    Intent,
    LaunchSpec,
    ModifyFleetTarget,
    Override,
    RootVolume,
    RunInstances,
    TerminateInGroup,
)
from ohf.model import REQUEST_TAG, TEMPLATE_TAG, FleetApi, FleetInfo, FleetLaunch, OhfError
from tests.conftest import REGION
from tests.moto_patched import patched

RID = "req-00000001"
TAGS = ((REQUEST_TAG, RID), (TEMPLATE_TAG, "Fleet-c5"), ("team", "hpc"))
UNKNOWN_INSTANCE = "i-0123456789abcdef0"
UNKNOWN_FLEET = "fleet-00000000-0000-0000-0000-000000000000"
UNKNOWN_SPOT_FLEET = "sfr-00000000-0000-0000-0000-000000000000"
ROLE = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"
Answer = Result[Any, OhfError]


class Cloud(msgspec.Struct, kw_only=True):
    """The interpreter under test and what it did: operation names and parameters sent."""

    interpret: Callable[[Intent], Answer]
    calls: list[str]
    sent: list[tuple[str, dict[str, Any]]]
    ec2: Any
    autoscaling: Any
    subnets: tuple[str, str]
    image_id: str

    def params(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every `operation` call sent, in order."""
        return [p for op, p in self.sent if op == operation]

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


def _recording(sent: list[tuple[str, dict[str, Any]]]) -> Callable[..., Any]:
    """`aws_clients._make_client`, with a hook recording the parameters of every call."""
    make = aws_clients._make_client

    def make_client(config: AwsConfig, service: str, on_call: Any, session: Any = None) -> Any:
        client = make(config, service, on_call, session)
        client.meta.events.register(
            "before-parameter-build",
            lambda params, model, **_: sent.append((model.name, dict(params))),
        )
        return client

    return make_client


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """The boto3 interpreter in a fresh, patched, in-process moto."""
    import boto3
    from moto import mock_aws

    sent: list[tuple[str, dict[str, Any]]] = []
    calls: list[str] = []
    monkeypatch.setattr(aws_clients, "_make_client", _recording(sent))
    # Loading moto's AMI catalogue costs seconds per test: one registered image serves, with a
    # root device name other than ohf's fallback (/dev/xvda) so the lookup shows.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with patched(), mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        image = ec2.register_image(
            Name="hpc-node",
            RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]
        yield Cloud(
            interpret=aws.make_interpreter(AwsConfig(region=REGION), on_call=calls.append),
            calls=calls,
            sent=sent,
            ec2=ec2,
            autoscaling=boto3.client("autoscaling", region_name=REGION),
            subnets=(subnets[0], subnets[1]),
            image_id=image,
        )


def ok(answer: Answer) -> Any:
    assert isinstance(answer, Success), answer
    return answer.unwrap()


def failed(answer: Answer) -> OhfError:
    assert isinstance(answer, Failure), answer
    return answer.failure()


def launch_spec(image_id: str, **more: Any) -> LaunchSpec:
    fields: dict[str, Any] = {
        "image_id": image_id,
        "instance_type": None,
        "min_count": 1,
        "max_count": 1,
        "tags": TAGS,
        "client_token": RID,
    }
    return LaunchSpec(**(fields | more))


def launch_template(c: Cloud, name: str = f"ohf-{RID}") -> str:
    return str(ok(c.interpret(CreateLaunchTemplate(name=name, spec=launch_spec(c.image_id)))))


def fleet_spec(c: Cloud, api: FleetApi, lt_id: str, **more: Any) -> FleetSpec:
    """A two-type, two-subnet fleet of weight-1 overrides (moto fills from the first one)."""
    fields: dict[str, Any] = {
        "api": api,
        "name": f"ohf-{RID}",
        "launch_template_id": lt_id,
        "overrides": (
            Override(instance_type="c5.large", subnet_id=c.subnets[0], weight=1, priority=1),
            Override(instance_type="m5.large", subnet_id=c.subnets[1], weight=1, priority=2),
        ),
        "target_units": 3,
        "client_token": f"{RID}-fleet",
        "tags": TAGS[:2],
        "subnets": c.subnets,
        "fleet_role": ROLE,
    }
    return FleetSpec(**(fields | more))


def create(c: Cloud, spec: FleetSpec) -> FleetLaunch:
    launch = ok(c.interpret(CreateFleet(spec=spec)))
    assert isinstance(launch, FleetLaunch)
    return launch


def tagged(c: Cloud, request_id: str = RID) -> dict[str, str]:
    """{instance id: state} of the instances tagged with `request_id`, via the interpreter."""
    found = ok(c.interpret(DescribeInstances(request_ids=(request_id,))))
    return {i.instance_id: i.state for i in found}


def live(c: Cloud, request_id: str = RID) -> set[str]:
    return {i for i, s in tagged(c, request_id).items() if s in ("pending", "running")}


# --- Launch templates ---------------------------------------------------------------------------


def test_launch_template_holds_the_launch_parameters_and_tags(cloud: Cloud) -> None:
    spec = launch_spec(
        cloud.image_id,
        key_name="hpc",
        security_group_ids=("sg-0123456789abcdef0",),
        user_data="#!/bin/sh\necho hello\n",
        instance_profile="hpc-node",
        root_volume=RootVolume(size_gib=50, volume_type="gp3", iops=3000),
        ebs_optimized=True,
        placement_group="pg-1",
        tenancy="dedicated",
        subnet_id=cloud.subnets[0],
        instance_type="c5.large",
    )
    lt_id = ok(cloud.interpret(CreateLaunchTemplate(name="ohf-lt", spec=spec)))

    version = cloud.ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)[
        "LaunchTemplateVersions"
    ][0]
    data = version["LaunchTemplateData"]
    tags = [{"Key": k, "Value": v} for k, v in TAGS]
    assert data["ImageId"] == cloud.image_id
    assert data["KeyName"] == "hpc"
    assert data["SecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert base64.b64decode(data["UserData"]).decode() == "#!/bin/sh\necho hello\n"
    assert data["IamInstanceProfile"] == {"Name": "hpc-node"}
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {
                "VolumeSize": 50,
                "VolumeType": "gp3",
                "Iops": 3000,
                "DeleteOnTermination": True,
            },
        }
    ]
    assert data["EbsOptimized"] is True
    assert data["Placement"] == {"GroupName": "pg-1", "Tenancy": "dedicated"}
    # The fleet picks type, subnet and market per override: none of them in the template.
    assert not {"InstanceType", "SubnetId", "InstanceMarketOptions"} & set(data)
    (sent,) = cloud.params("CreateLaunchTemplate")
    # (moto also copies the template's own tags into the data it answers.)
    assert sent["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": tags},
        {"ResourceType": "volume", "Tags": tags},
    ]
    assert sent["LaunchTemplateName"] == "ohf-lt"
    assert sent["ClientToken"] == RID
    assert sent["TagSpecifications"] == [{"ResourceType": "launch-template", "Tags": tags}]
    described = cloud.ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"]
    assert {(t["Key"], t["Value"]) for t in described[0]["Tags"]} == set(TAGS)


def test_launch_template_data_for_efa_puts_groups_on_interfaces_and_no_subnet() -> None:
    spec = launch_spec(
        "ami-12345678",
        security_group_ids=("sg-1",),
        subnet_id="subnet-1",
        interface_type="efa",
        efa_count=2,
    )
    data = aws.launch_template_data(spec, root_device=None)
    assert data["NetworkInterfaces"] == [
        {"DeviceIndex": 0, "NetworkCardIndex": 0, "InterfaceType": "efa", "Groups": ["sg-1"]},
        {"DeviceIndex": 1, "NetworkCardIndex": 1, "InterfaceType": "efa", "Groups": ["sg-1"]},
    ]
    assert not {"SubnetId", "SecurityGroupIds", "MinCount", "MaxCount", "ClientToken"} & set(data)


def test_creating_a_launch_template_again_answers_the_existing_one(cloud: Cloud) -> None:
    first = launch_template(cloud)
    again = launch_template(cloud)
    assert again == first
    assert cloud.count("DescribeLaunchTemplates") == 1
    assert len(cloud.ec2.describe_launch_templates()["LaunchTemplates"]) == 1


def test_deleting_a_launch_template_removes_it_and_an_unknown_one_is_already_gone(
    cloud: Cloud,
) -> None:
    lt_id = launch_template(cloud)
    assert ok(cloud.interpret(DeleteLaunchTemplate(launch_template_id=lt_id))) is None
    assert cloud.ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert ok(cloud.interpret(DeleteLaunchTemplate(launch_template_id=lt_id))) is None


# --- Creating fleets and groups -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ibm", "aws_name"),
    [
        ("capacityOptimized", "capacity-optimized"),
        ("capacityOptimizedPrioritized", "capacity-optimized-prioritized"),
        ("diversified", "diversified"),
        ("lowestPrice", "lowest-price"),
        ("priceCapacityOptimized", "price-capacity-optimized"),
    ],
)
def test_ec2_fleet_spells_allocation_strategies_the_aws_way(ibm: str, aws_name: str) -> None:
    spec = FleetSpec(
        api="EC2Fleet",
        name="f",
        launch_template_id="lt-1",
        overrides=(Override(instance_type="c5.large"),),
        target_units=2,
        allocation_strategy=ibm,
        pools_count=3,
        client_token="t",
    )
    options = aws.ec2_fleet_params(spec)["SpotOptions"]
    assert options["AllocationStrategy"] == aws_name
    # A pool count means something to lowest-price only.
    assert options.get("InstancePoolsToUseCount") == (3 if ibm == "lowestPrice" else None)


def test_ec2_fleet_request_carries_overrides_split_strategies_and_tags(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    spec = fleet_spec(
        cloud,
        "EC2Fleet",
        lt_id,
        fleet_type="maintain",
        target_units=5,
        on_demand_units=2,
        allocation_strategy="priceCapacityOptimized",
        allocation_strategy_on_demand="prioritized",
        max_spot_price="0.05",
        overrides=(
            Override(
                instance_type="c5.large",
                subnet_id=cloud.subnets[0],
                weight=2,
                priority=0,
                image_id=cloud.image_id,
            ),
        ),
    )
    launch = create(cloud, spec)

    (sent,) = cloud.params("CreateFleet")
    assert sent["Type"] == "maintain"
    assert sent["ClientToken"] == f"{RID}-fleet"
    assert sent["LaunchTemplateConfigs"] == [
        {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "$Latest"},
            "Overrides": [
                {
                    "InstanceType": "c5.large",
                    "WeightedCapacity": 2.0,
                    "SubnetId": cloud.subnets[0],
                    "Priority": 0.0,
                    "MaxPrice": "0.05",
                    "ImageId": cloud.image_id,
                }
            ],
        }
    ]
    assert sent["TargetCapacitySpecification"] == {
        "TotalTargetCapacity": 5,
        "OnDemandTargetCapacity": 2,
        "SpotTargetCapacity": 3,
        "DefaultTargetCapacityType": "spot",
    }
    assert sent["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized"}
    assert sent["OnDemandOptions"] == {"AllocationStrategy": "prioritized"}
    assert sent["ExcessCapacityTerminationPolicy"] == "no-termination"
    assert sent["TagSpecifications"] == [
        {"ResourceType": "fleet", "Tags": [{"Key": k, "Value": v} for k, v in TAGS[:2]]}
    ]
    assert launch.instances == ()
    (fleet,) = cloud.ec2.describe_fleets(FleetIds=[launch.fleet_id])["Fleets"]
    assert {(t["Key"], t["Value"]) for t in fleet["Tags"]} == set(TAGS[:2])


def test_on_demand_only_fleet_defaults_to_on_demand_capacity() -> None:
    spec = FleetSpec(
        api="EC2Fleet",
        name="f",
        launch_template_id="lt-1",
        overrides=(Override(instance_type="c5.large"),),
        target_units=4,
        on_demand_units=4,
        client_token="t",
    )
    params = aws.ec2_fleet_params(spec)
    assert params["TargetCapacitySpecification"]["DefaultTargetCapacityType"] == "on-demand"
    assert params["TargetCapacitySpecification"]["SpotTargetCapacity"] == 0
    # Only a maintain fleet can be lowered, and AWS takes the policy for those only.
    assert "ExcessCapacityTerminationPolicy" not in params
    assert "SpotOptions" not in params


def test_instant_fleet_answers_its_instances_at_once(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, target_units=4, on_demand_units=1))

    assert launch.fleet_id.startswith("fleet-")
    lifecycles = sorted(i.lifecycle for i in launch.instances)
    assert lifecycles == ["on-demand", "spot", "spot", "spot"]
    assert {i.state for i in launch.instances} == {"pending"}
    assert {i.instance_type for i in launch.instances} == {"c5.large"}
    assert {i.request_id for i in launch.instances} == {RID}
    assert launch.errors == ()
    # The instances carry the launch template's tags, so a lost answer is found by tag.
    assert live(cloud) == {i.instance_id for i in launch.instances}


def test_instant_fleet_errors_name_the_pool() -> None:
    response = {
        "FleetId": "fleet-1",
        "Errors": [
            {
                "LaunchTemplateAndOverrides": {
                    "Overrides": {"InstanceType": "p5.48xlarge", "SubnetId": "subnet-1"}
                },
                "Lifecycle": "spot",
                "ErrorCode": "InsufficientInstanceCapacity",
                "ErrorMessage": "There is no Spot capacity available.",
            },
            {"ErrorCode": "UnfulfillableCapacity", "ErrorMessage": "Unable to fulfill."},
        ],
    }
    spec = FleetSpec(
        api="EC2Fleet", name="f", launch_template_id="lt", overrides=(), target_units=1,
        client_token="t",
    )  # fmt: skip
    assert aws.fleet_launch(response, spec).errors == (
        "InsufficientInstanceCapacity: There is no Spot capacity available. (p5.48xlarge/subnet-1)",
        "UnfulfillableCapacity: Unable to fulfill.",
    )


@pytest.mark.parametrize(
    ("api", "fleet_type"),
    [
        ("EC2Fleet", "instant"),
        ("EC2Fleet", "request"),
        ("EC2Fleet", "maintain"),
        ("SpotFleet", "request"),
        ("SpotFleet", "maintain"),
        ("ASG", "maintain"),
    ],
)
def test_every_api_launches_instances_that_carry_the_request_tag(
    cloud: Cloud, api: FleetApi, fleet_type: str
) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, api, lt_id, fleet_type=fleet_type, target_units=3))
    found = ok(cloud.interpret(DescribeInstances(request_ids=(RID,))))
    assert len(found) == 3
    assert {i.template_id for i in found} == {"Fleet-c5"}
    answered = {i.instance_id for i in launch.instances}
    assert answered == ({i.instance_id for i in found} if fleet_type == "instant" else set())


def test_request_and_maintain_fleets_answer_only_their_id(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    for fleet_type in ("request", "maintain"):
        launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, fleet_type=fleet_type))
        assert launch.fleet_id.startswith("fleet-")
        assert launch.instances == ()


def test_spot_fleet_request_carries_role_expiry_prices_and_tags(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    expiry = 1_900_000_000
    spec = fleet_spec(
        cloud,
        "SpotFleet",
        lt_id,
        fleet_type="instant",
        on_demand_units=1,
        valid_until=expiry,
        max_spot_price="0.10",
        pools_count=2,
        allocation_strategy_on_demand="lowestPrice",
    )
    launch = create(cloud, spec)

    (sent,) = cloud.params("RequestSpotFleet")
    config = sent["SpotFleetRequestConfig"]
    assert config["IamFleetRole"] == ROLE
    # moto requires a strategy; AWS's own default is lowestPrice.
    assert config["AllocationStrategy"] == "lowestPrice"
    assert config["InstancePoolsToUseCount"] == 2
    assert config["TargetCapacity"] == 3
    assert config["OnDemandTargetCapacity"] == 1
    assert config["OnDemandAllocationStrategy"] == "lowestPrice"
    # Spot Fleet has no instant type.
    assert config["Type"] == "request"
    assert config["ValidUntil"] == datetime.fromtimestamp(expiry, tz=UTC)
    assert config["SpotPrice"] == "0.10"
    assert config["ClientToken"] == f"{RID}-fleet"
    # A one-time request is never lowered; AWS takes the policy for maintain fleets only.
    assert "ExcessCapacityTerminationPolicy" not in config
    maintained = aws.spot_fleet_config(msgspec.structs.replace(spec, fleet_type="maintain"))
    assert maintained["Type"] == "maintain"
    assert maintained["ExcessCapacityTerminationPolicy"] == "noTermination"
    assert config["LaunchTemplateConfigs"][0]["Overrides"] == [
        {
            "InstanceType": "c5.large",
            "WeightedCapacity": 1.0,
            "SubnetId": cloud.subnets[0],
            "Priority": 1.0,
            "SpotPrice": "0.10",
        },
        {
            "InstanceType": "m5.large",
            "WeightedCapacity": 1.0,
            "SubnetId": cloud.subnets[1],
            "Priority": 2.0,
            "SpotPrice": "0.10",
        },
    ]
    assert config["TagSpecifications"] == [
        {
            "ResourceType": "spot-fleet-request",
            "Tags": [{"Key": k, "Value": v} for k, v in TAGS[:2]],
        }
    ]
    assert launch.fleet_id.startswith("sfr-")


def test_spot_fleet_without_a_fleet_role_fails_before_calling_aws(cloud: Cloud) -> None:
    spec = fleet_spec(cloud, "SpotFleet", "lt-0123456789abcdef0", fleet_role=None)
    error = failed(cloud.interpret(CreateFleet(spec=spec)))
    assert error.code == "config"
    assert "fleetRole" in error.message
    assert cloud.calls == []


def test_group_has_one_override_per_type_preferred_first_and_units_as_sizes(
    cloud: Cloud,
) -> None:
    lt_id = launch_template(cloud)
    overrides = (
        Override(instance_type="m5.xlarge", subnet_id=cloud.subnets[0], weight=2, priority=5),
        Override(instance_type="m5.xlarge", subnet_id=cloud.subnets[1], weight=2, priority=5),
        Override(instance_type="c5.large", subnet_id=cloud.subnets[0], weight=1, priority=0),
        Override(instance_type="c5.large", subnet_id=cloud.subnets[1], weight=1, priority=0),
    )
    spec = fleet_spec(
        cloud,
        "ASG",
        lt_id,
        overrides=overrides,
        target_units=1,
        on_demand_units=1,
        allocation_strategy="capacityOptimized",
        allocation_strategy_on_demand="lowestPrice",
        max_spot_price="0.2",
    )
    launch = create(cloud, spec)

    assert launch.fleet_id == f"ohf-{RID}"
    (sent,) = cloud.params("CreateAutoScalingGroup")
    assert sent["AutoScalingGroupName"] == f"ohf-{RID}"
    assert (sent["MinSize"], sent["DesiredCapacity"]) == (0, 1)
    assert sent["NewInstancesProtectedFromScaleIn"] is True
    # AWS may exceed MaxSize by up to the largest weight to reach the target.
    assert sent["MaxSize"] == 1
    assert sent["VPCZoneIdentifier"] == ",".join(cloud.subnets)
    policy = sent["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["Overrides"] == [
        {"InstanceType": "c5.large", "WeightedCapacity": "1"},
        {"InstanceType": "m5.xlarge", "WeightedCapacity": "2"},
    ]
    assert policy["InstancesDistribution"] == {
        "OnDemandBaseCapacity": 1,
        "OnDemandPercentageAboveBaseCapacity": 100,
        "SpotAllocationStrategy": "capacity-optimized",
        "OnDemandAllocationStrategy": "lowest-price",
        "SpotMaxPrice": "0.2",
    }
    assert sent["Tags"] == [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in TAGS[:2]]
    (group,) = cloud.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[launch.fleet_id]
    )["AutoScalingGroups"]
    assert len(group["Instances"]) == 1


def test_group_of_spot_and_on_demand_puts_the_on_demand_part_in_the_base() -> None:
    spec = FleetSpec(
        api="ASG",
        name="g",
        launch_template_id="lt-1",
        overrides=(Override(instance_type="c5.large"),),
        target_units=10,
        on_demand_units=3,
        allocation_strategy="diversified",
        pools_count=2,
        client_token="t",
    )
    distribution = aws.group_params(spec)["MixedInstancesPolicy"]["InstancesDistribution"]
    # Auto Scaling has no "diversified": the group's default strategy applies.
    assert distribution == {"OnDemandBaseCapacity": 3, "OnDemandPercentageAboveBaseCapacity": 0}


def test_creating_a_group_again_answers_the_same_group_without_launching_more(
    cloud: Cloud,
) -> None:
    """moto gap: moto replaces a group created twice; the patched moto refuses, like AWS."""
    lt_id = launch_template(cloud)
    first = create(cloud, fleet_spec(cloud, "ASG", lt_id))
    again = create(cloud, fleet_spec(cloud, "ASG", lt_id))
    assert again == first
    assert len(live(cloud)) == 3


def test_creating_a_fleet_from_an_unknown_launch_template_fails_with_the_aws_code(
    cloud: Cloud,
) -> None:
    spec = fleet_spec(cloud, "EC2Fleet", "lt-0123456789abcdef0")
    error = failed(cloud.interpret(CreateFleet(spec=spec)))
    assert error.code.startswith("InvalidLaunchTemplate")
    assert error.message.startswith(f"CreateFleet: {error.code}: ")


# --- Describing ---------------------------------------------------------------------------------


def test_describing_fleets_of_every_api_costs_one_call_per_api(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    made: list[tuple[FleetApi, str]] = []
    for n in range(3):
        for api, fleet_type in (("EC2Fleet", "maintain"), ("SpotFleet", "request"), ("ASG", "")):
            spec = fleet_spec(
                cloud,
                api,
                lt_id,
                name=f"ohf-group-{n}",
                client_token=f"{RID}-{n}-{api}",
                fleet_type=fleet_type or "maintain",
                target_units=n + 1,
            )
            made.append((api, create(cloud, spec).fleet_id))
    unknown: list[tuple[FleetApi, str]] = [
        ("EC2Fleet", UNKNOWN_FLEET),
        ("SpotFleet", UNKNOWN_SPOT_FLEET),
        ("ASG", "ohf-req-gone"),
    ]
    cloud.calls.clear()

    infos = ok(cloud.interpret(DescribeFleets(fleets=(*made, *unknown))))

    assert sorted(cloud.calls) == [
        "DescribeAutoScalingGroups",
        "DescribeFleets",
        "DescribeSpotFleetRequests",
    ]
    assert set(infos) == {fleet_id for _, fleet_id in (*made, *unknown)}
    for api, fleet_id in unknown:
        assert infos[fleet_id] == FleetInfo(fleet_id=fleet_id, api=api, state="gone")
    for n, (api, fleet_id) in enumerate(made):
        info = infos[fleet_id]
        assert (info.api, info.state) == (api, "active")
        assert info.target_units == n // 3 + 1
        assert info.fulfilled_units == n // 3 + 1
        assert info.errors == ()


def test_describing_hundreds_of_fleets_asks_a_hundred_per_call(cloud: Cloud) -> None:
    ids = tuple(f"fleet-00000000-0000-0000-0000-{n:012d}" for n in range(250))
    infos = ok(cloud.interpret(DescribeFleets(fleets=tuple(("EC2Fleet", i) for i in ids))))
    assert cloud.count("DescribeFleets") == 3
    assert [len(p["FleetIds"]) for p in cloud.params("DescribeFleets")] == [100, 100, 50]
    assert {i.state for i in infos.values()} == {"gone"}


def test_group_units_count_weights_of_live_instances(cloud: Cloud) -> None:
    """moto gap: group instances had no type ("" from a template without one); patched moto
    gives them the first override's type, which is what carries the weight here."""
    lt_id = launch_template(cloud)
    overrides = (Override(instance_type="m5.xlarge", subnet_id=cloud.subnets[0], weight=2),)
    launch = create(cloud, fleet_spec(cloud, "ASG", lt_id, overrides=overrides, target_units=4))
    info = ok(cloud.interpret(DescribeFleets(fleets=(("ASG", launch.fleet_id),))))[launch.fleet_id]
    assert (info.target_units, info.fulfilled_units) == (4, 4.0)
    assert {
        i.instance_type for i in ok(cloud.interpret(DescribeInstances(request_ids=(RID,))))
    } == {"m5.xlarge"}


def test_group_info_ignores_instances_on_their_way_out() -> None:
    raw = {
        "AutoScalingGroupName": "g",
        "DesiredCapacity": 6,
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "Overrides": [
                    {"InstanceType": "c5.large", "WeightedCapacity": "1"},
                    {"InstanceType": "c5.xlarge", "WeightedCapacity": "2"},
                ]
            }
        },
        "Instances": [
            {"InstanceId": "i-1", "InstanceType": "c5.xlarge", "LifecycleState": "InService"},
            {"InstanceId": "i-2", "InstanceType": "c5.large", "LifecycleState": "Pending"},
            {
                "InstanceId": "i-3",
                "InstanceType": "c5.xlarge",
                "LifecycleState": "InService",
                "WeightedCapacity": "3",
            },
            {"InstanceId": "i-4", "InstanceType": "c5.xlarge", "LifecycleState": "Terminating"},
        ],
        "Status": "Delete in progress",
    }
    info = aws.group_info(raw)
    assert info == FleetInfo(
        fleet_id="g", api="ASG", state="deleting", target_units=6, fulfilled_units=6.0
    )


def _stubbed(
    monkeypatch: pytest.MonkeyPatch, service: str, script: list[tuple[str, Any, dict[str, Any]]]
) -> tuple[Callable[[Intent], Answer], Any]:
    """An interpreter whose `service` client answers `script`: (operation, response or error
    code, expected parameters)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name=REGION)
    stubber = Stubber(client)
    for operation, response, expected in script:
        if isinstance(response, str):
            stubber.add_client_error(
                operation, service_error_code=response, expected_params=expected
            )
        else:
            stubber.add_response(operation, response, expected)
    stubber.activate()
    monkeypatch.setattr(aws_clients, "_make_client", lambda config, name, on_call, *_: client)
    return aws.make_interpreter(AwsConfig(region=REGION, max_attempts=1)), stubber


def test_a_batch_refused_for_an_unknown_id_is_asked_again_id_by_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known, gone = "fleet-11111111-1111-1111-1111-111111111111", UNKNOWN_FLEET
    fleet = {
        "FleetId": known,
        "FleetState": "active",
        "ActivityStatus": "fulfilled",
        "TargetCapacitySpecification": {"TotalTargetCapacity": 2},
        "FulfilledCapacity": 2.0,
    }
    interpret, stubber = _stubbed(
        monkeypatch,
        "ec2",
        [
            ("describe_fleets", "InvalidFleetId.NotFound", {"FleetIds": [known, gone]}),
            ("describe_fleets", {"Fleets": [fleet]}, {"FleetIds": [known]}),
            ("describe_fleets", "InvalidFleetId.NotFound", {"FleetIds": [gone]}),
        ],
    )
    infos = ok(interpret(DescribeFleets(fleets=(("EC2Fleet", known), ("EC2Fleet", gone)))))
    stubber.assert_no_pending_responses()
    assert infos[known] == FleetInfo(
        fleet_id=known,
        api="EC2Fleet",
        state="active",
        activity="fulfilled",
        target_units=2,
        fulfilled_units=2.0,
    )
    assert infos[gone].state == "gone"


@pytest.mark.parametrize("api", ["EC2Fleet", "SpotFleet"])
def test_a_fleet_in_error_reports_the_reasons_from_its_history(
    monkeypatch: pytest.MonkeyPatch, api: FleetApi
) -> None:
    """moto gap: moto reports no activity and has no fleet history (NotImplemented)."""
    created = datetime(2025, 1, 2, tzinfo=UTC)
    records = {
        "HistoryRecords": [
            {
                "EventType": "error",
                "Timestamp": datetime(2025, 1, 2, 0, 1, tzinfo=UTC),
                "EventInformation": {
                    "EventSubType": "spotInstanceCountLimitExceeded",
                    "EventDescription": "Max spot instance count exceeded",
                },
            },
            {
                "EventType": "error",
                "Timestamp": datetime(2025, 1, 2, 0, 2, tzinfo=UTC),
                "EventInformation": {
                    "EventSubType": "allLaunchSpecsTemporarilyBlacklisted",
                    "EventDescription": "insufficient capacity",
                },
            },
        ]
    }
    if api == "EC2Fleet":
        fleet_id = "fleet-11111111-1111-1111-1111-111111111111"
        describe = (
            "describe_fleets",
            {
                "Fleets": [
                    {
                        "FleetId": fleet_id,
                        "FleetState": "active",
                        "ActivityStatus": "error",
                        "CreateTime": created,
                        "TargetCapacitySpecification": {"TotalTargetCapacity": 4},
                        "FulfilledCapacity": 1.0,
                    }
                ]
            },
            {"FleetIds": [fleet_id]},
        )
        history = (
            "describe_fleet_history",
            records,
            {"FleetId": fleet_id, "StartTime": created, "EventType": "service-error"},
        )
    else:
        fleet_id = "sfr-11111111-1111-1111-1111-111111111111"
        describe = (
            "describe_spot_fleet_requests",
            {
                "SpotFleetRequestConfigs": [
                    {
                        "SpotFleetRequestId": fleet_id,
                        "SpotFleetRequestState": "active",
                        "ActivityStatus": "error",
                        "CreateTime": created,
                        "SpotFleetRequestConfig": {
                            "IamFleetRole": ROLE,
                            "TargetCapacity": 4,
                            "FulfilledCapacity": 1.0,
                        },
                    }
                ]
            },
            {"SpotFleetRequestIds": [fleet_id]},
        )
        history = (
            "describe_spot_fleet_request_history",
            records,
            {"SpotFleetRequestId": fleet_id, "StartTime": created, "EventType": "error"},
        )
    interpret, stubber = _stubbed(monkeypatch, "ec2", [describe, history])
    info = ok(interpret(DescribeFleets(fleets=((api, fleet_id),))))[fleet_id]
    stubber.assert_no_pending_responses()
    assert (info.activity, info.target_units, info.fulfilled_units) == ("error", 4, 1.0)
    assert info.errors == (
        "allLaunchSpecsTemporarilyBlacklisted: insufficient capacity",
        "spotInstanceCountLimitExceeded: Max spot instance count exceeded",
    )


@pytest.mark.parametrize("short_groups", [1, 2])
def test_short_groups_report_their_failed_scaling_activities_in_one_call(
    monkeypatch: pytest.MonkeyPatch, short_groups: int
) -> None:
    """moto gap: moto answers DescribeScalingActivities with nothing.

    One short group is asked by name, several account-wide; either way one call.
    """

    def group(name: str, desired: int, held: int) -> dict[str, Any]:
        return {
            "AutoScalingGroupName": name,
            "MinSize": 0,
            "MaxSize": 10,
            "DesiredCapacity": desired,
            "DefaultCooldown": 300,
            "AvailabilityZones": ["us-east-1a"],
            "HealthCheckType": "EC2",
            "CreatedTime": datetime(2025, 1, 2, tzinfo=UTC),
            "Instances": [
                {
                    "InstanceId": f"i-{name}{n}",
                    "AvailabilityZone": "us-east-1a",
                    "LifecycleState": "InService",
                    "HealthStatus": "Healthy",
                    "ProtectedFromScaleIn": False,
                }
                for n in range(held)
            ],
        }

    def activity(name: str, code: str, message: str) -> dict[str, Any]:
        return {
            "ActivityId": f"a-{name}-{code}",
            "AutoScalingGroupName": name,
            "Cause": "scaling",
            "StartTime": datetime(2025, 1, 2, tzinfo=UTC),
            "StatusCode": code,
            "StatusMessage": message,
        }

    groups = [group("short", 3, 1), group("full", 2, 2), group("empty", 2, 0)][: short_groups + 1]
    names = [g["AutoScalingGroupName"] for g in groups]
    interpret, stubber = _stubbed(
        monkeypatch,
        "autoscaling",
        [
            (
                "describe_auto_scaling_groups",
                {"AutoScalingGroups": groups},
                {"AutoScalingGroupNames": names, "MaxRecords": 100},
            ),
            (
                "describe_scaling_activities",
                {
                    "Activities": [
                        activity("short", "Failed", "We currently do not have capacity."),
                        activity("short", "Successful", "Launched."),
                        activity("full", "Failed", "old failure"),
                        activity("someone-else", "Failed", "not ours"),
                        activity("empty", "Cancelled", "Launching was cancelled."),
                    ]
                },
                {"MaxRecords": 100}
                | ({"AutoScalingGroupName": "short"} if short_groups == 1 else {}),
            ),
        ],
    )
    infos = ok(interpret(DescribeFleets(fleets=tuple(("ASG", n) for n in names))))
    stubber.assert_no_pending_responses()
    if short_groups == 2:
        assert infos["empty"].errors == ("Launching was cancelled.",)
    assert infos["short"].errors == ("We currently do not have capacity.",)
    assert (infos["short"].target_units, infos["short"].fulfilled_units) == (3, 1.0)
    # A group holding its target is not short: its old failures do not matter.
    assert infos["full"].errors == ()


def test_a_describe_failure_is_a_failure_with_the_aws_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interpret, _ = _stubbed(
        monkeypatch, "ec2", [("describe_fleets", "RequestLimitExceeded", {"FleetIds": ["f-1"]})]
    )
    error = failed(interpret(DescribeFleets(fleets=(("EC2Fleet", "f-1"),))))
    assert error.code == "RequestLimitExceeded"
    assert error.message.startswith("DescribeFleets: RequestLimitExceeded")


# --- Lowering targets, terminating in groups ----------------------------------------------------


def test_lowering_a_maintain_fleet_keeps_its_machines_and_stops_replacements(
    cloud: Cloud,
) -> None:
    """moto gap: ModifyFleet is NotImplemented and a maintain fleet never replaces instances;
    the patched moto does both, as AWS does."""
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, fleet_type="maintain"))
    machines = sorted(live(cloud))
    assert len(machines) == 3

    answer = cloud.interpret(
        ModifyFleetTarget(api="EC2Fleet", fleet_id=launch.fleet_id, target_units=2)
    )
    assert ok(answer) is None
    (sent,) = cloud.params("ModifyFleet")
    assert sent["TargetCapacitySpecification"] == {
        "TotalTargetCapacity": 2,
        "OnDemandTargetCapacity": 0,
        "SpotTargetCapacity": 2,
    }
    assert sent["ExcessCapacityTerminationPolicy"] == "no-termination"
    assert live(cloud) == set(machines)

    cloud.ec2.terminate_instances(InstanceIds=machines[:1])
    assert live(cloud) == set(machines[1:])
    info = ok(cloud.interpret(DescribeFleets(fleets=(("EC2Fleet", launch.fleet_id),))))
    assert (info[launch.fleet_id].target_units, info[launch.fleet_id].fulfilled_units) == (2, 2.0)

    # Without the lower target, AWS (and the patched moto) launches a replacement.
    cloud.ec2.terminate_instances(InstanceIds=machines[1:2])
    replaced = live(cloud) - set(machines)
    assert len(replaced) == 1


def test_only_a_maintain_fleet_can_be_lowered(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, fleet_type="request"))
    error = failed(
        cloud.interpret(ModifyFleetTarget(api="EC2Fleet", fleet_id=launch.fleet_id, target_units=1))
    )
    assert error.code == "FleetNotInModifiableState"


def test_lowering_a_spot_fleet_keeps_its_machines(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "SpotFleet", lt_id, fleet_type="maintain"))
    machines = live(cloud)
    answer = cloud.interpret(
        ModifyFleetTarget(
            api="SpotFleet", fleet_id=launch.fleet_id, target_units=1, on_demand_units=4
        )
    )
    assert ok(answer) is None
    (sent,) = cloud.params("ModifySpotFleetRequest")
    assert sent == {
        "SpotFleetRequestId": launch.fleet_id,
        "TargetCapacity": 1,
        "OnDemandTargetCapacity": 1,
        "ExcessCapacityTerminationPolicy": "noTermination",
    }
    assert live(cloud) == machines
    info = ok(cloud.interpret(DescribeFleets(fleets=(("SpotFleet", launch.fleet_id),))))
    assert info[launch.fleet_id].target_units == 1


def test_setting_a_group_target_updates_its_desired_capacity(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "ASG", lt_id, target_units=2))
    answer = cloud.interpret(ModifyFleetTarget(api="ASG", fleet_id=launch.fleet_id, target_units=4))
    assert ok(answer) is None
    assert cloud.params("UpdateAutoScalingGroup") == [
        {"AutoScalingGroupName": launch.fleet_id, "DesiredCapacity": 4, "MinSize": 0}
    ]
    (group,) = cloud.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[launch.fleet_id]
    )["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 4


def test_lowering_a_group_ends_none_of_its_protected_machines(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "ASG", lt_id, target_units=3))
    machines = live(cloud)
    answer = cloud.interpret(ModifyFleetTarget(api="ASG", fleet_id=launch.fleet_id, target_units=1))
    assert ok(answer) is None
    assert live(cloud) == machines
    info = ok(cloud.interpret(DescribeFleets(fleets=(("ASG", launch.fleet_id),))))
    assert (info[launch.fleet_id].target_units, info[launch.fleet_id].fulfilled_units) == (1, 3.0)


def test_setting_the_target_of_an_unknown_group_fails_with_the_aws_code(cloud: Cloud) -> None:
    error = failed(cloud.interpret(ModifyFleetTarget(api="ASG", fleet_id="nope", target_units=0)))
    assert error.code == "ValidationError"


def test_terminating_in_a_group_lowers_it_and_falls_back_for_strangers(cloud: Cloud) -> None:
    """moto gap: terminating an instance in no group raised StopIteration (HTTP 500) in moto;
    the patched moto answers AWS's ValidationError."""
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "ASG", lt_id, target_units=3))
    members = sorted(live(cloud))
    stranger = ok(
        cloud.interpret(
            RunInstances(
                spec=launch_spec(cloud.image_id, instance_type="c5.large", client_token="x")
            )
        )
    )[0].instance_id
    cloud.calls.clear()

    states = ok(
        cloud.interpret(
            TerminateInGroup(
                group=launch.fleet_id, instance_ids=(members[0], stranger, UNKNOWN_INSTANCE)
            )
        )
    )

    assert states == {
        members[0]: "shutting-down",
        stranger: "shutting-down",
        UNKNOWN_INSTANCE: "gone",
    }
    assert cloud.count("TerminateInstanceInAutoScalingGroup") == 3
    assert all(
        p["ShouldDecrementDesiredCapacity"]
        for p in cloud.params("TerminateInstanceInAutoScalingGroup")
    )
    (group,) = cloud.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[launch.fleet_id]
    )["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 2
    # The group was lowered, so nothing replaces the machine.
    assert live(cloud) == set(members[1:])


# --- Deleting -----------------------------------------------------------------------------------


def test_deleting_a_request_fleet_leaves_its_instances(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, fleet_type="request"))
    machines = live(cloud)
    assert ok(cloud.interpret(DeleteFleet(api="EC2Fleet", fleet_id=launch.fleet_id))) is None
    assert cloud.params("DeleteFleets") == [
        {"FleetIds": [launch.fleet_id], "TerminateInstances": False}
    ]
    assert live(cloud) == machines
    (fleet,) = cloud.ec2.describe_fleets(FleetIds=[launch.fleet_id])["Fleets"]
    assert fleet["FleetState"] == "deleted_running"
    # Again (a retry after a lost answer): already deleted, nothing more is asked.
    assert ok(cloud.interpret(DeleteFleet(api="EC2Fleet", fleet_id=launch.fleet_id))) is None
    assert cloud.count("DeleteFleets") == 1


def test_deleting_an_instant_fleet_asks_aws_to_terminate_with_it(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "EC2Fleet", lt_id, fleet_type="instant"))
    cloud.ec2.terminate_instances(InstanceIds=[i.instance_id for i in launch.instances])
    assert ok(cloud.interpret(DeleteFleet(api="EC2Fleet", fleet_id=launch.fleet_id))) is None
    assert cloud.params("DeleteFleets") == [
        {"FleetIds": [launch.fleet_id], "TerminateInstances": True}
    ]


def test_deleting_unknown_fleets_and_groups_succeeds(cloud: Cloud) -> None:
    """moto gap: unknown ids made moto's DeleteFleets / CancelSpotFleetRequests fail with HTTP
    500; the patched moto lists them as unsuccessful, with AWS's codes."""
    for api, fleet_id in (
        ("EC2Fleet", UNKNOWN_FLEET),
        ("SpotFleet", UNKNOWN_SPOT_FLEET),
        ("ASG", "ohf-req-gone"),
    ):
        assert ok(cloud.interpret(DeleteFleet(api=api, fleet_id=fleet_id))) is None  # type: ignore[arg-type]
    assert cloud.count("CancelSpotFleetRequests") == 1
    assert cloud.count("DeleteAutoScalingGroup") == 1


def test_a_refused_fleet_deletion_is_a_failure_with_the_aws_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet_id = "fleet-11111111-1111-1111-1111-111111111111"
    interpret, _ = _stubbed(
        monkeypatch,
        "ec2",
        [
            (
                "describe_fleets",
                {"Fleets": [{"FleetId": fleet_id, "FleetState": "modifying", "Type": "maintain"}]},
                {"FleetIds": [fleet_id]},
            ),
            (
                "delete_fleets",
                {
                    "SuccessfulFleetDeletions": [],
                    "UnsuccessfulFleetDeletions": [
                        {
                            "FleetId": fleet_id,
                            "Error": {"Code": "fleetNotInDeletableState", "Message": "busy"},
                        }
                    ],
                },
                {"FleetIds": [fleet_id], "TerminateInstances": False},
            ),
        ],
    )
    error = failed(interpret(DeleteFleet(api="EC2Fleet", fleet_id=fleet_id)))
    assert error == OhfError(
        message="DeleteFleets: fleetNotInDeletableState: busy", code="fleetNotInDeletableState"
    )


def test_cancelling_a_spot_fleet_leaves_its_instances(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "SpotFleet", lt_id, fleet_type="maintain"))
    machines = live(cloud)
    assert ok(cloud.interpret(DeleteFleet(api="SpotFleet", fleet_id=launch.fleet_id))) is None
    assert cloud.params("CancelSpotFleetRequests") == [
        {"SpotFleetRequestIds": [launch.fleet_id], "TerminateInstances": False}
    ]
    assert live(cloud) == machines
    info = ok(cloud.interpret(DescribeFleets(fleets=(("SpotFleet", launch.fleet_id),))))
    assert info[launch.fleet_id].state == "cancelled_running"


def test_a_spot_fleet_already_cancelled_counts_as_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet_id = "sfr-11111111-1111-1111-1111-111111111111"
    interpret, stubber = _stubbed(
        monkeypatch,
        "ec2",
        [
            (
                "cancel_spot_fleet_requests",
                {
                    "UnsuccessfulFleetRequests": [
                        {
                            "SpotFleetRequestId": fleet_id,
                            "Error": {
                                "Code": "fleetRequestNotInCancellableState",
                                "Message": "already cancelled",
                            },
                        }
                    ]
                },
                {"SpotFleetRequestIds": [fleet_id], "TerminateInstances": False},
            ),
            (
                "describe_spot_fleet_requests",
                {
                    "SpotFleetRequestConfigs": [
                        {
                            "SpotFleetRequestId": fleet_id,
                            "SpotFleetRequestState": "cancelled_running",
                            "SpotFleetRequestConfig": {"IamFleetRole": ROLE, "TargetCapacity": 2},
                        }
                    ]
                },
                {"SpotFleetRequestIds": [fleet_id]},
            ),
        ],
    )
    assert ok(interpret(DeleteFleet(api="SpotFleet", fleet_id=fleet_id))) is None
    stubber.assert_no_pending_responses()


def test_deleting_a_group_forces_it_away(cloud: Cloud) -> None:
    lt_id = launch_template(cloud)
    launch = create(cloud, fleet_spec(cloud, "ASG", lt_id, target_units=1))
    assert ok(cloud.interpret(DeleteFleet(api="ASG", fleet_id=launch.fleet_id))) is None
    assert cloud.params("DeleteAutoScalingGroup") == [
        {"AutoScalingGroupName": launch.fleet_id, "ForceDelete": True}
    ]
    groups = cloud.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert groups == []


# --- Spot signals -------------------------------------------------------------------------------


def test_spot_requests_marked_for_interruption_are_signals(cloud: Cloud) -> None:
    """moto gap: moto's spot requests are always "fulfilled"; the test marks one the way AWS
    does two minutes before it takes the instance."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    lt_id = launch_template(cloud)
    create(cloud, fleet_spec(cloud, "SpotFleet", lt_id, fleet_type="request"))
    machines = sorted(live(cloud))
    requests = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].spot_instance_requests.values()
    marked = next(r for r in requests if r.instance.id == machines[0])
    marked._status_code = "marked-for-termination"
    marked.status_message = "Spot Instance interrupted: no capacity"

    signals = ok(cloud.interpret(DescribeSpotSignals(instance_ids=(*machines, UNKNOWN_INSTANCE))))

    assert len(signals) == 1
    (signal,) = signals
    assert (signal.instance_id, signal.kind) == (machines[0], "interruption")
    assert signal.reason == "Spot Instance interrupted: no capacity"
    (seen,) = cloud.ec2.describe_spot_instance_requests(
        Filters=[{"Name": "instance-id", "Values": machines[:1]}]
    )["SpotInstanceRequests"]
    assert signal.at == int(seen["Status"]["UpdateTime"].timestamp())
    (sent,) = cloud.params("DescribeSpotInstanceRequests")
    assert sent["Filters"] == [{"Name": "instance-id", "Values": [*machines, UNKNOWN_INSTANCE]}]


def test_spot_signals_ask_two_hundred_instances_per_call(cloud: Cloud) -> None:
    ids = tuple(f"i-{n:017x}" for n in range(450))
    assert ok(cloud.interpret(DescribeSpotSignals(instance_ids=ids))) == ()
    assert [
        len(p["Filters"][0]["Values"]) for p in cloud.params("DescribeSpotInstanceRequests")
    ] == [
        200,
        200,
        50,
    ]


def test_spot_signal_reads_only_interruption_codes() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    def request(code: str) -> dict[str, Any]:
        return {"InstanceId": "i-1", "Status": {"Code": code, "UpdateTime": at, "Message": ""}}

    for code in ("marked-for-termination", "marked-for-stop", "marked-for-hibernation"):
        signal = aws.spot_signal(request(code))
        assert signal is not None
        assert (signal.kind, signal.at, signal.reason) == (
            "interruption",
            int(at.timestamp()),
            code,
        )
    for code in (
        "fulfilled",
        "instance-terminated-by-user",
        "request-canceled-and-instance-running",
    ):
        assert aws.spot_signal(request(code)) is None


# --- The patched moto_server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_moto_gap_modify_fleet_works_through_the_patched_server() -> None:
    """moto gap: ModifyFleet is NotImplemented in moto 5.2.5; `tests.moto_patched` serves it."""
    import boto3

    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.moto_patched", "-H", "127.0.0.1", "-p", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "the patched moto_server exited"
                assert time.monotonic() < deadline, "the patched moto_server did not start"
                time.sleep(0.1)
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
        image = ec2.register_image(Name="hpc-node", RootDeviceName="/dev/xvda")["ImageId"]
        lt_id = ec2.create_launch_template(
            # AWS takes 3 to 128 characters (botocore 1.34 checks it; recent models do not)
            LaunchTemplateName="lt-modify",
            LaunchTemplateData={"ImageId": image},
        )["LaunchTemplate"]["LaunchTemplateId"]
        fleet_id = ec2.create_fleet(
            Type="maintain",
            LaunchTemplateConfigs=[
                {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "1"},
                    "Overrides": [{"InstanceType": "c5.large"}],
                }
            ],
            TargetCapacitySpecification={
                "TotalTargetCapacity": 3,
                "DefaultTargetCapacityType": "on-demand",
            },
        )["FleetId"]

        answer = ec2.modify_fleet(
            FleetId=fleet_id,
            TargetCapacitySpecification={"TotalTargetCapacity": 1},
            ExcessCapacityTerminationPolicy="no-termination",
        )

        assert answer["Return"] is True
        (fleet,) = ec2.describe_fleets(FleetIds=[fleet_id])["Fleets"]
        assert fleet["TargetCapacitySpecification"]["TotalTargetCapacity"] == 1
        running = ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]
        assert sum(len(r["Instances"]) for r in running) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
