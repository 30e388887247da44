"""Native AWS fragments and secure defaults, end to end against moto_server.

Every fragment is checked on the request moto received (tests/moto_patched.py keeps the query
parameters of each request: GET /moto-api/ohf/received), in AWS's wire form as botocore
serialises the fragment; IMDS and encryption settings are checked on the launched instances and
volumes where moto models them, and on the request where it does not (named in each test).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Success

from ohf import Provider
from tests.conftest import AL2023, REGION, default_subnet, ec2_client

pytestmark = pytest.mark.e2e

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FLEET_ROLE = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"
RESERVATIONS = "arn:aws:resource-groups:us-east-1:123456789012:group/${template_id}-reservations"
# The three documented examples (README "Native AWS fragments").
CAPACITY_RESERVATION = {
    "CapacityReservationSpecification": {
        "CapacityReservationTarget": {"CapacityReservationResourceGroupArn": RESERVATIONS}
    }
}
IMDSV2_HOP_LIMIT = {"MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}}
ENCRYPTED_GP3_ROOT = {
    "BlockDeviceMappings": [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "VolumeType": "gp3",
                "VolumeSize": 30,
                "Throughput": 250,
                "Encrypted": True,
                "KmsKeyId": KMS_KEY,
                "DeleteOnTermination": True,
            },
        }
    ]
}


def template(url: str, name: str, api: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "templateId": name,
        "maxNumber": 10,
        "imageId": AL2023,
        "subnetId": default_subnet(url),
        "providerApi": api,
        **fields,
    }
    if api == "RunInstances":
        base.setdefault("vmType", "c5.large")
    else:
        base.setdefault("vmTypes", {"c5.large": 1})
    if api == "SpotFleet":
        base.update(fleetRole=FLEET_ROLE, priceType="spot", fleetType="maintain")
        base.setdefault("allocationStrategy", "capacityOptimized")
    return base


def config_file(tmp_path: Path, url: str, templates: list[dict[str, Any]]) -> Path:
    path = tmp_path / "ohf.json"
    path.write_text(
        json.dumps(
            {
                "aws": {"region": REGION, "endpoint_url": url},
                "logging": {"file": str(tmp_path / "ohf.log")},
                "storage": {"path": str(tmp_path / "state.json")},
                "templates": templates,
            }
        )
    )
    return path


def provider(tmp_path: Path, url: str, *templates: dict[str, Any]) -> Provider:
    return Provider.open(
        str(config_file(tmp_path, url, list(templates))), cwd=str(tmp_path)
    ).unwrap()


def requested(door: Provider, template_id: str, count: int) -> str:
    accepted = door.request_machines(template_id, count)
    assert isinstance(accepted, Success), accepted
    return accepted.unwrap().request_id


def received(url: str, action: str) -> list[dict[str, str]]:
    """The parameters (wire form) of every `action` request moto_server received."""
    with urllib.request.urlopen(f"{url}/moto-api/ohf/received", timeout=10) as answer:
        calls = json.load(answer)
    return [c["params"] for c in calls if c["action"] == action]


def wire(service: str, operation: str, params: dict[str, Any]) -> dict[str, str]:
    """`params` as boto3 puts them on the wire for `operation` (flat query keys)."""
    import botocore.serialize
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    serializer = botocore.serialize.create_serializer(
        model.metadata["protocol"], include_validation=False
    )
    body = serializer.serialize_to_request(params, model.operation_model(operation))["body"]
    return {k: str(v) for k, v in body.items() if k not in ("Action", "Version")}


def sent(url: str, service: str, operation: str, params: dict[str, Any]) -> dict[str, str]:
    """The one `operation` request moto received, asserted to carry every key of `params`."""
    (request,) = received(url, operation)
    expected = wire(service, operation, params)
    missing = {k: v for k, v in expected.items() if request.get(k) != v}
    assert not missing, f"{operation} lacks {missing}; sent {request}"
    return request


def instances(url: str, request_id: str) -> list[dict[str, Any]]:
    pages = ec2_client(url).describe_instances(
        Filters=[{"Name": "tag:ohf:request-id", "Values": [request_id]}]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def root_volumes(url: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [
        m["Ebs"]["VolumeId"]
        for i in found
        for m in i["BlockDeviceMappings"]
        if m["DeviceName"] == i["RootDeviceName"]
    ]
    return ec2_client(url).describe_volumes(VolumeIds=ids)["Volumes"] if ids else []


# --- Native fragments reach each API's request -------------------------------------------------


def test_run_instances_fragment_reaches_the_request_with_placeholders_filled(
    tmp_path: Path, aws: str
) -> None:
    fragment = {**CAPACITY_RESERVATION, **IMDSV2_HOP_LIMIT, "CpuOptions": {"ThreadsPerCore": 1}}
    door = provider(tmp_path, aws, template(aws, "reserved", "RunInstances", runInstances=fragment))
    request_id = requested(door, "reserved", 2)
    filled = json.loads(json.dumps(fragment).replace("${template_id}", "reserved"))
    request = sent(aws, "ec2", "RunInstances", filled)
    # ohf's own keys are still its own.
    assert request["MinCount"] == request["MaxCount"] == "2"
    assert request["TagSpecification.1.Tag.1.Value"] == request_id
    # moto applies MetadataOptions to the instances it launches.
    found = instances(aws, request_id)
    assert len(found) == 2
    assert {i["MetadataOptions"]["HttpTokens"] for i in found} == {"required"}
    assert {i["MetadataOptions"]["HttpPutResponseHopLimit"] for i in found} == {2}


def test_ec2_fleet_fragments_reach_the_launch_template_and_the_fleet(
    tmp_path: Path, aws: str
) -> None:
    all_or_nothing = {
        "OnDemandOptions": {"SingleInstanceType": True, "MinTargetCapacity": "${machine_count}"}
    }
    door = provider(
        tmp_path,
        aws,
        template(
            aws,
            "fleet",
            "EC2Fleet",
            launchTemplateData={**IMDSV2_HOP_LIMIT, **ENCRYPTED_GP3_ROOT},
            fleet=all_or_nothing,
        ),
    )
    request_id = requested(door, "fleet", 3)
    sent(
        aws,
        "ec2",
        "CreateLaunchTemplate",
        {"LaunchTemplateData": {**IMDSV2_HOP_LIMIT, **ENCRYPTED_GP3_ROOT}},
    )
    fleet = sent(
        aws,
        "ec2",
        "CreateFleet",
        {"OnDemandOptions": {"SingleInstanceType": True, "MinTargetCapacity": 3}},
    )
    assert fleet["TargetCapacitySpecification.TotalTargetCapacity"] == "3"
    assert fleet["ClientToken"].startswith(request_id)
    # Gap: moto launches a fleet's instances with neither the launch template's MetadataOptions
    # nor its block device mappings (a default 8 GiB volume), so the requests above are the proof.
    assert len(instances(aws, request_id)) == 3


def test_spot_fleet_fragment_reaches_the_request_config(tmp_path: Path, aws: str) -> None:
    fragment = {
        "SpotMaintenanceStrategies": {"CapacityRebalance": {"ReplacementStrategy": "launch"}},
        "InstanceInterruptionBehavior": "terminate",
        "ReplaceUnhealthyInstances": True,
    }
    door = provider(
        tmp_path,
        aws,
        template(aws, "spot", "SpotFleet", fleet=fragment, launchTemplateData=IMDSV2_HOP_LIMIT),
    )
    requested(door, "spot", 2)
    config = sent(aws, "ec2", "RequestSpotFleet", {"SpotFleetRequestConfig": fragment})
    assert config["SpotFleetRequestConfig.TargetCapacity"] == "2"
    assert config["SpotFleetRequestConfig.IamFleetRole"] == FLEET_ROLE
    sent(aws, "ec2", "CreateLaunchTemplate", {"LaunchTemplateData": IMDSV2_HOP_LIMIT})


def test_group_fragment_merges_into_create_auto_scaling_group(tmp_path: Path, aws: str) -> None:
    fragment = {
        "CapacityRebalance": True,
        "DefaultInstanceWarmup": 60,
        "MixedInstancesPolicy": {
            "InstancesDistribution": {"SpotAllocationStrategy": "price-capacity-optimized"}
        },
        # Fires only when an instance ends: a hook that tells a site's function which request.
        "LifecycleHookSpecificationList": [
            {
                "LifecycleHookName": "drain",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "NotificationMetadata": "${request_id}",
            }
        ],
    }
    door = provider(tmp_path, aws, template(aws, "group", "ASG", fleet=fragment))
    request_id = requested(door, "group", 2)
    filled = json.loads(json.dumps(fragment).replace("${request_id}", request_id))
    group = sent(aws, "autoscaling", "CreateAutoScalingGroup", filled)
    # Merged table by table: ohf's on-demand split and launch template are kept beside it.
    distribution = "MixedInstancesPolicy.InstancesDistribution"
    assert group[f"{distribution}.OnDemandBaseCapacity"] == "2"
    assert group["MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.Version"]
    assert group["DesiredCapacity"] == "2"
    assert group["AutoScalingGroupName"] == f"ohf-{request_id}"


# --- Secure defaults: IMDS and root volume encryption ------------------------------------------

SECURE = {
    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
    "encrypted": True,
    "kmsKeyId": KMS_KEY,
    "volumeType": "gp3",
}


def test_imds_and_encryption_reach_run_instances_and_the_instances(
    tmp_path: Path, aws: str
) -> None:
    door = provider(tmp_path, aws, template(aws, "secure", "RunInstances", **SECURE))
    request_id = requested(door, "secure", 1)
    found = instances(aws, request_id)
    (instance,) = found
    root = instance["RootDeviceName"]
    sent(
        aws,
        "ec2",
        "RunInstances",
        {
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "BlockDeviceMappings": [
                {
                    "DeviceName": root,
                    "Ebs": {"VolumeType": "gp3", "Encrypted": True, "KmsKeyId": KMS_KEY},
                }
            ],
        },
    )
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    (volume,) = root_volumes(aws, found)
    assert volume["Encrypted"] is True
    assert volume["KmsKeyId"] == KMS_KEY
    assert volume["VolumeType"] == "gp3"


def test_imds_and_encryption_reach_the_launch_template_of_a_fleet(tmp_path: Path, aws: str) -> None:
    door = provider(tmp_path, aws, template(aws, "secure-fleet", "EC2Fleet", **SECURE))
    request_id = requested(door, "secure-fleet", 2)
    data = sent(
        aws,
        "ec2",
        "CreateLaunchTemplate",
        {"LaunchTemplateData": {"MetadataOptions": SECURE_WIRE_IMDS}},
    )
    prefix = "LaunchTemplateData.BlockDeviceMapping.1"
    assert data[f"{prefix}.DeviceName"] == "/dev/xvda"  # the AMI's root device, looked up
    assert data[f"{prefix}.Ebs.Encrypted"] == "true"
    assert data[f"{prefix}.Ebs.KmsKeyId"] == KMS_KEY
    assert data[f"{prefix}.Ebs.VolumeType"] == "gp3"
    # Gap: moto launches a fleet's instances with neither the launch template's MetadataOptions
    # nor its block device mappings, so the launch template's request above is the proof.
    assert len(instances(aws, request_id)) == 2


SECURE_WIRE_IMDS = {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}


def test_a_config_without_the_new_keys_sends_what_it_sent_before(tmp_path: Path, aws: str) -> None:
    door = provider(
        tmp_path,
        aws,
        template(aws, "plain", "RunInstances"),
        template(aws, "plain-fleet", "EC2Fleet"),
    )
    requested(door, "plain", 1)
    requested(door, "plain-fleet", 1)
    (run,) = received(aws, "RunInstances")
    (data,) = received(aws, "CreateLaunchTemplate")
    assert not [k for k in run if k.startswith(("MetadataOptions", "BlockDeviceMapping"))]
    assert not [k for k in data if k.startswith("LaunchTemplateData.MetadataOptions")]
    assert not [k for k in data if k.startswith("LaunchTemplateData.BlockDeviceMapping")]


# --- Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "fields", "named"),
    [
        ("RunInstances", {"runInstances": {"MinCount": 5}}, "runInstances.MinCount is set by ohf"),
        (
            "EC2Fleet",
            {"fleet": {"TargetCapacitySpecification": {"TotalTargetCapacity": 9}}},
            "fleet.TargetCapacitySpecification is set by ohf",
        ),
        ("SpotFleet", {"fleet": {"TargetCapacity": 9}}, "fleet.TargetCapacity is set by ohf"),
        (
            "ASG",
            {"fleet": {"MixedInstancesPolicy": {"LaunchTemplate": {"Overrides": []}}}},
            "fleet.MixedInstancesPolicy.LaunchTemplate is set by ohf",
        ),
        (
            "ASG",
            {"launchTemplateData": {"TagSpecifications": []}},
            "launchTemplateData.TagSpecifications is set by ohf",
        ),
    ],
)
def test_an_owned_key_refuses_the_config_before_any_request(
    tmp_path: Path, aws: str, api: str, fields: dict[str, Any], named: str
) -> None:
    path = config_file(tmp_path, aws, [template(aws, "owned", api, **fields)])
    opened = Provider.open(str(path), cwd=str(tmp_path))
    assert isinstance(opened, Failure)
    assert f"template 'owned': {named}" in opened.failure().message
    assert received(aws, "RunInstances") == []


@pytest.mark.parametrize(
    ("api", "fields", "named"),
    [
        (
            "RunInstances",
            {"runInstances": {"MetadataOptions": {"HttpToken": "required"}}},
            'Unknown parameter in runInstances.MetadataOptions: "HttpToken"',
        ),
        (
            "EC2Fleet",
            {"launchTemplateData": {"MetadataOptions": {"HttpPutResponseHopLimit": "2"}}},
            "Invalid type for parameter launchTemplateData.MetadataOptions.HttpPutResponseHopLimit",
        ),
        (
            "EC2Fleet",
            {"fleet": {"OnDemandOptions": {"SingleInstanceTyp": True}}},
            'Unknown parameter in fleet.OnDemandOptions: "SingleInstanceTyp"',
        ),
        (
            "SpotFleet",
            {"fleet": {"ReplaceUnhealthyInstances": "yes"}},
            "Invalid type for parameter fleet.ReplaceUnhealthyInstances",
        ),
        (
            "ASG",
            {"fleet": {"CapacityRebalanc": True}},
            'Unknown parameter in fleet: "CapacityRebalanc"',
        ),
    ],
)
def test_validate_fails_a_fragment_botocore_refuses_naming_its_key_path(
    tmp_path: Path, aws: str, api: str, fields: dict[str, Any], named: str
) -> None:
    door = provider(tmp_path, aws, template(aws, "typo", api, **fields))
    (verdict,) = door.validate().templates
    assert not verdict.ok
    assert named in verdict.message
    assert received(aws, "RunInstances") == []
