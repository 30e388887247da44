"""End to end per fleet API: the real `python -m ohf` against moto_server, IBM-format templates.

For EC2 Fleet, Spot Fleet and Auto Scaling groups, each with a multi-type weighted `vmTypes`
template: request, poll to complete, return part (the fleet's or group's capacity is lowered
first and no replacement appears), return the rest (the fleet or group and the launch template
ohf created are deleted). Each step is checked in ohf's answer and in the cloud via boto3.

moto ignores `WeightedCapacity` when it picks instance types (it fills the target with the
first override), so these tests read units from the machines ohf reports rather than assuming
AWS's choice of types; the fake cloud tests (tests/test_fake_fleets.py) cover weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import AL2023, REGION, default_subnet, ec2_client, run_ohf, write_ibm_conf

pytestmark = pytest.mark.e2e

WEIGHTS = {"c5.large": 1, "c5.xlarge": 2}
FLEET_ROLE = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"
TEMPLATES: dict[str, dict[str, Any]] = {
    "ec2fleet-maintain": {"providerApi": "EC2Fleet", "fleetType": "maintain"},
    "ec2fleet-instant": {"providerApi": "EC2Fleet", "fleetType": "instant"},
    "spotfleet": {
        "providerApi": "SpotFleet",
        "fleetType": "maintain",
        "priceType": "spot",
        "fleetRole": FLEET_ROLE,
        "allocationStrategy": "capacityOptimized",
    },
    "asg": {"providerApi": "ASG"},
}


def hf(call: str, body: object, conf: Path) -> dict[str, Any]:
    code, out, stderr = run_ohf(call, body, conf)
    assert code == 0, f"{call} exited {code}: {out} {stderr}"
    assert isinstance(out, dict)
    return out


def conf_for(tmp_path: Path, url: str, name: str) -> Path:
    subnet = default_subnet(url)
    template = {
        "templateId": name,
        "maxNumber": 20,
        "imageId": AL2023,
        "subnetId": subnet,
        "vmTypes": WEIGHTS,
        "instanceTags": "team=hpc",
        **TEMPLATES[name],
    }
    return write_ibm_conf(tmp_path / "conf", url, [template])


def poll(conf: Path, request_id: str, *, until: set[str], tries: int = 30) -> dict[str, Any]:
    for _ in range(tries):
        out = hf("getRequestStatus", {"requests": [{"requestId": request_id}]}, conf)
        (request,) = out["requests"]
        if request["status"] in until:
            return request  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"{request_id} never reached {until}: {request}")


def tagged_live(url: str, request_id: str) -> set[str]:
    pages = (
        ec2_client(url)
        .get_paginator("describe_instances")
        .paginate(
            Filters=[
                {"Name": "tag:ohf:request-id", "Values": [request_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
    )
    return {i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]}


def fleet_capacity(url: str, api: str, fleet_id: str) -> int | None:
    """The fleet's or group's target in AWS; None once it is gone (deleted/cancelled)."""
    if api == "EC2Fleet":
        fleets = ec2_client(url).describe_fleets(FleetIds=[fleet_id])["Fleets"]
        live = [f for f in fleets if not f["FleetState"].startswith("deleted")]
        return live[0]["TargetCapacitySpecification"]["TotalTargetCapacity"] if live else None
    if api == "SpotFleet":
        configs = ec2_client(url).describe_spot_fleet_requests(SpotFleetRequestIds=[fleet_id])
        live = [
            c
            for c in configs["SpotFleetRequestConfigs"]
            if not c["SpotFleetRequestState"].startswith("cancelled")
        ]
        return live[0]["SpotFleetRequestConfig"]["TargetCapacity"] if live else None
    groups = boto3.client("autoscaling", region_name=REGION, endpoint_url=url)
    found = groups.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet_id])
    return found["AutoScalingGroups"][0]["DesiredCapacity"] if found["AutoScalingGroups"] else None


def launch_template_exists(url: str, lt_id: str) -> bool:
    ec2 = ec2_client(url)
    try:
        return bool(ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"])
    except ec2.exceptions.ClientError:
        return False


def state_of(conf: Path, request_id: str) -> dict[str, Any]:
    state = json.loads((conf / "work" / "ohf-state.json").read_text())
    return state["requests"][request_id]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_fleet_lifecycle_request_poll_partial_and_full_return(
    tmp_path: Path, aws: str, name: str
) -> None:
    conf = conf_for(tmp_path, aws, name)
    api = TEMPLATES[name]["providerApi"]
    templates = hf("getAvailableTemplates", {}, conf)["templates"]
    assert templates[0]["availableNumber"] == 20

    accepted = hf("requestMachines", {"template": {"templateId": name, "machineCount": 4}}, conf)
    rid = accepted["requestId"]
    request = poll(conf, rid, until={"complete", "complete_with_error"})
    assert request["status"] == "complete", request
    machines = {m["machineId"]: m for m in request["machines"]}
    assert all(m["result"] == "succeed" and m["privateIpAddress"] for m in machines.values())
    # Every instance AWS launched for the request is one ohf reports, found by its tag.
    assert tagged_live(aws, rid) == set(machines)
    record = state_of(conf, rid)
    units = {m["machine_id"]: m["units"] for m in record["machines"]}
    assert sum(units.values()) >= 4
    fleet_id, lt_id = record["fleet_id"], record["launch_template_id"]
    assert fleet_id and lt_id and launch_template_exists(aws, lt_id)
    left = hf("getAvailableTemplates", {}, conf)["templates"][0]["availableNumber"]
    assert left <= 20 - sum(units.values())

    # Partial return: the target goes down first, and AWS launches no replacement.
    first = sorted(machines)[0]
    before = fleet_capacity(aws, api, fleet_id)
    ret = hf("requestReturnMachines", {"machines": [{"name": "", "machineId": first}]}, conf)
    if TEMPLATES[name].get("fleetType") != "instant":
        assert before is not None
        assert fleet_capacity(aws, api, fleet_id) == max(before - units[first], 0)
    poll(conf, ret["requestId"], until={"complete"})
    for _ in range(3):  # a few polls: time for a maintain fleet/group to (wrongly) refill
        again = poll(conf, rid, until={"complete"})
    assert tagged_live(aws, rid) == set(machines) - {first}
    assert {m["machineId"] for m in again["machines"]} == set(machines)

    # Full return: the fleet or group and ohf's launch template are deleted.
    rest = [{"name": "", "machineId": m} for m in sorted(set(machines) - {first})]
    ret2 = hf("requestReturnMachines", {"machines": rest}, conf)
    poll(conf, ret2["requestId"], until={"complete"})
    assert tagged_live(aws, rid) == set()
    assert fleet_capacity(aws, api, fleet_id) is None
    assert not launch_template_exists(aws, lt_id)
    assert state_of(conf, rid)["cleaned_up"] is True
    assert hf("getAvailableTemplates", {}, conf)["templates"][0]["availableNumber"] == 20
