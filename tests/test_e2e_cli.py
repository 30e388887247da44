"""End to end: the real `python -m ohf` CLI, run as HF runs it, against moto_server.

Each test reads as a piece of the Host Factory protocol (/work/shared/HF_PROTOCOL.md) and checks
it twice: in ohf's JSON answer and in the cloud itself (boto3 on the same moto_server).
Every call also checks the two output channels: stdout is exactly one JSON object (`run_ohf`
fails otherwise) and the log file exists and holds JSON lines for that call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import (
    AL2023,
    REGION,
    default_subnet,
    ec2_client,
    hf_env,
    run_ohf,
    write_ibm_conf,
)

pytestmark = pytest.mark.e2e

OD = "OnDemand-c5"
SPOT = "Spot-m5"
HF_TEMPLATE_KEYS = {"templateId", "maxNumber", "availableNumber", "attributes"}
MACHINE_KEYS = {
    "machineId",
    "name",
    "result",
    "status",
    "privateIpAddress",
    "publicIpAddress",
    "launchtime",
    "message",
}


# --- helpers ------------------------------------------------------------------------------


def assert_json_log(log_file: Path, call: str) -> None:
    """The log file exists, every line is a JSON object, and this call wrote to it."""
    assert log_file.is_file(), f"no log file at {log_file}"
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) and {"ts", "level", "event"} <= e.keys() for e in entries)
    assert any(e.get("call") == call for e in entries), f"{call} wrote nothing to {log_file}"


def hf(call: str, body: object, conf: Path, *, exit_code: int = 0) -> dict[str, Any]:
    """One HF call the way HF makes it (`-f FILE`, HF's env), checked for shape and logging."""
    code, out, stderr = run_ohf(call, body, conf)
    assert code == exit_code, f"{call} exited {code}: {out} {stderr}"
    assert isinstance(out, dict), f"stdout is not a JSON object: {out!r}"
    assert_json_log(conf / "log" / "ohf.log", call)
    return out


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, dict[str, Any]]:
    """`python -m ohf ARGS` with a hand-made environment: (exit code, the one JSON object)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ohf", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = json.loads(proc.stdout)  # raises unless stdout is exactly one JSON document
    assert isinstance(out, dict), proc.stdout
    return proc.returncode, out


def plain_env() -> dict[str, str]:
    """The test's environment without anything HF (or a stray OHF_CONFIG) would set."""
    prefixes = ("HF_", "PRO_", "OHF_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.pop("PROVIDER_NAME", None)
    return env


def templates_by_id(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["templateId"]: t for t in out["templates"]}


def available(conf: Path, template_id: str) -> int:
    out = hf("getAvailableTemplates", {}, conf)
    return int(templates_by_id(out)[template_id]["availableNumber"])


def request(conf: Path, template_id: str, count: int) -> str:
    out = hf(
        "requestMachines", {"template": {"templateId": template_id, "machineCount": count}}, conf
    )
    assert isinstance(out["requestId"], str) and out["requestId"]
    return str(out["requestId"])


def poll_status(
    conf: Path, request_id: str, *, also: tuple[str, ...] = (), tries: int = 20
) -> dict[str, dict[str, Any]]:
    """getRequestStatus until `request_id` is no longer running (bounded): requests by id."""
    body = {"requests": [{"requestId": r} for r in (request_id, *also)]}
    for _ in range(tries):
        out = hf("getRequestStatus", body, conf)
        by_id = {r["requestId"]: r for r in out["requests"]}
        if by_id[request_id]["status"] != "running":
            return by_id
        time.sleep(0.3)
    raise AssertionError(f"{request_id} still running after {tries} polls: {by_id}")


def launched(conf: Path, template_id: str, count: int) -> tuple[str, list[dict[str, Any]]]:
    """Request `count` machines and wait until the request is complete: (id, machines)."""
    request_id = request(conf, template_id, count)
    req = poll_status(conf, request_id)[request_id]
    assert req["status"] == "complete", req
    return request_id, req["machines"]


def cloud_instances(url: str, **filters: str) -> list[dict[str, Any]]:
    """Every instance moto holds (matching `tag:KEY=VALUE` style filters)."""
    flt = [{"Name": k, "Values": [v]} for k, v in filters.items()]
    pages = ec2_client(url).get_paginator("describe_instances").paginate(Filters=flt)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def states(url: str) -> dict[str, str]:
    return {i["InstanceId"]: i["State"]["Name"] for i in cloud_instances(url)}


def tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def ssm_ami(url: str, parameter: str = AL2023) -> str:
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=url)
    return str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])


def refs(machines: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Machines as HF names them in requestReturnMachines / getReturnRequests."""
    return [{"name": m["name"], "machineId": m["machineId"]} for m in machines]


# --- getAvailableTemplates ----------------------------------------------------------------


def test_templates_are_listed_with_hf_keys_and_catalogue_attributes(
    ibm_conf: Path, aws: str
) -> None:
    out = hf("getAvailableTemplates", b"", ibm_conf)  # HF may send an empty input file

    templates = templates_by_id(out)
    assert set(templates) == {OD, SPOT}
    for template in templates.values():
        assert template.keys() >= HF_TEMPLATE_KEYS
        assert template["availableNumber"] == template["maxNumber"]
        for name in ("type", "ncpus", "nram"):
            kind, value = template["attributes"][name]
            assert kind in ("String", "Numeric") and isinstance(value, str)

    # OnDemand-c5 wrote no attributes: derived from c5.large, ncpus = physical cores.
    c5 = ec2_client(aws).describe_instance_types(InstanceTypes=["c5.large"])["InstanceTypes"][0]
    od = templates[OD]
    assert od["maxNumber"] == 10
    assert od["attributes"]["type"] == ["String", "X86_64"]
    assert (
        od["attributes"]["ncpus"]
        == ["Numeric", "1"]
        == ["Numeric", str(c5["VCpuInfo"]["DefaultCores"])]
    )
    assert (
        od["attributes"]["nram"]
        == ["Numeric", "4096"]
        == ["Numeric", str(c5["MemoryInfo"]["SizeInMiB"])]
    )
    # Keys ohf does not know, and provider keys, are echoed.
    assert od["customKey"] == "kept"
    assert od["instanceTags"] == "team=hpc;env=test"

    spot = templates[SPOT]
    assert spot["maxNumber"] == 5
    assert spot["priceType"] == "spot"
    assert spot["attributes"]["type"] == ["String", "X86_64"]
    assert spot["attributes"]["ncpus"] == ["Numeric", "2"]
    assert spot["attributes"]["nram"] == ["Numeric", "16384"]

    assert hf("getAvailableTemplates", {}, ibm_conf) == out


def test_attributes_an_administrator_wrote_are_not_overridden(tmp_path: Path, aws: str) -> None:
    conf = write_ibm_conf(
        tmp_path / "conf",
        aws,
        [
            {
                "templateId": "Tuned-c5",
                "maxNumber": -1,
                "imageId": AL2023,
                "subnetId": default_subnet(aws),
                "vmType": "c5.large",
                "attributes": {"nram": ["Numeric", "3000"], "ncpus": ["Numeric", 7]},
            }
        ],
    )

    (template,) = hf("getAvailableTemplates", {}, conf)["templates"]

    assert template["attributes"]["nram"] == ["Numeric", "3000"]
    assert template["attributes"]["ncpus"] == ["Numeric", "7"]
    assert template["attributes"]["type"] == ["String", "X86_64"]  # still derived
    assert template["maxNumber"] == -1 and template["availableNumber"] == -1


# --- requestMachines ----------------------------------------------------------------------


def test_request_machines_launches_tagged_instances_from_the_ssm_ami(
    ibm_conf: Path, aws: str
) -> None:
    request_id = request(ibm_conf, OD, 3)

    assert request_id.startswith("req-")
    instances = cloud_instances(aws)
    assert len(instances) == 3
    ami = ssm_ami(aws)
    assert ami.startswith("ami-")
    for instance in instances:
        assert (
            tags(instance).items()
            >= {
                "ohf:request-id": request_id,
                "ohf:template-id": OD,
                "team": "hpc",
                "env": "test",
            }.items()
        )
        assert instance["ImageId"] == ami
        assert instance["InstanceType"] == "c5.large"
        assert instance.get("InstanceLifecycle", "on-demand") != "spot"
    assert len(cloud_instances(aws, **{"tag:ohf:request-id": request_id})) == 3
    assert available(ibm_conf, OD) == 7


def test_spot_template_launches_spot_instances(ibm_conf: Path, aws: str) -> None:
    request_id = request(ibm_conf, SPOT, 2)

    instances = cloud_instances(aws, **{"tag:ohf:request-id": request_id})
    assert len(instances) == 2
    assert {i["InstanceLifecycle"] for i in instances} == {"spot"}
    assert {i["InstanceType"] for i in instances} == {"m5.xlarge"}
    assert available(ibm_conf, SPOT) == 3
    assert available(ibm_conf, OD) == 10


def test_max_number_is_enforced_across_requests(ibm_conf: Path, aws: str) -> None:
    request(ibm_conf, OD, 8)

    out = hf(
        "requestMachines",
        {"template": {"templateId": OD, "machineCount": 3}},
        ibm_conf,
        exit_code=1,
    )

    assert "available" in out["message"]
    assert "requestId" not in out
    assert len(cloud_instances(aws)) == 8
    assert available(ibm_conf, OD) == 2


# --- getRequestStatus ---------------------------------------------------------------------


def test_request_status_reports_usable_machines_and_unknown_ids_per_request(
    ibm_conf: Path, aws: str
) -> None:
    request_id = request(ibm_conf, OD, 3)

    by_id = poll_status(ibm_conf, request_id, also=("req-does-not-exist",))

    req = by_id[request_id]
    assert req["status"] == "complete"
    cloud = {i["InstanceId"]: i for i in cloud_instances(aws)}
    assert {m["machineId"] for m in req["machines"]} == set(cloud)
    for machine in req["machines"]:
        assert machine.keys() >= MACHINE_KEYS
        instance = cloud[machine["machineId"]]
        assert machine["result"] == "succeed"
        assert machine["status"] == "running" == instance["State"]["Name"]
        assert machine["name"] == instance["PrivateDnsName"] != ""
        assert machine["privateIpAddress"] == instance["PrivateIpAddress"]
        assert isinstance(machine["launchtime"], int)
        assert machine["launchtime"] == int(instance["LaunchTime"].timestamp())

    unknown = by_id["req-does-not-exist"]
    assert unknown["status"] == "complete_with_error"
    assert "req-does-not-exist" in unknown["message"]
    assert unknown["machines"] == []


# --- requestReturnMachines ----------------------------------------------------------------


def test_returning_machines_terminates_exactly_those_and_frees_capacity(
    ibm_conf: Path, aws: str
) -> None:
    _, machines = launched(ibm_conf, OD, 3)
    assert available(ibm_conf, OD) == 7
    give_back, keep = machines[:2], machines[2]

    out = hf("requestReturnMachines", {"machines": refs(give_back)}, ibm_conf)

    return_id = out["requestId"]
    assert return_id.startswith("ret-")
    assert states(aws) == {
        give_back[0]["machineId"]: "terminated",
        give_back[1]["machineId"]: "terminated",
        keep["machineId"]: "running",
    }
    ret = poll_status(ibm_conf, return_id)[return_id]
    assert ret["status"] == "complete"
    assert {m["machineId"] for m in ret["machines"]} == {m["machineId"] for m in give_back}
    assert {m["result"] for m in ret["machines"]} == {"succeed"}
    assert available(ibm_conf, OD) == 9


# --- getReturnRequests --------------------------------------------------------------------


def test_return_requests_lists_only_machines_the_cloud_took(ibm_conf: Path, aws: str) -> None:
    _, machines = launched(ibm_conf, OD, 3)
    returned, healthy, lost = machines
    hf("requestReturnMachines", {"machines": refs([returned])}, ibm_conf)
    held = {"machines": refs(machines)}  # HF's list may still hold the one it returned

    assert hf("getReturnRequests", held, ibm_conf)["requests"] == []

    ec2_client(aws).terminate_instances(InstanceIds=[lost["machineId"]])  # "from the console"
    out = hf("getReturnRequests", held, ibm_conf)

    assert out["requests"] == [
        {"machine": lost["name"], "machineId": lost["machineId"], "gracePeriod": 0}
    ]
    assert states(aws)[healthy["machineId"]] == "running"


# --- ohf.toml instead of IBM files --------------------------------------------------------


def write_ohf_toml(path: Path, url: str, ami: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[aws]
region = "{REGION}"
endpoint_url = "{url}"

[storage]
path = "state/ohf-state.json"

[logging]
level = "DEBUG"

[[templates]]
templateId = "Toml-c5"
maxNumber = 4
imageId = "{ami}"
subnetId = "{default_subnet(url)}"
vmType = "c5.xlarge"
instanceTags = "origin=toml"
"""
    )
    return path


@pytest.mark.parametrize("found_by", ["HF_PROVIDER_CONFDIR", "--config", "OHF_CONFIG"])
def test_full_lifecycle_with_an_ohf_toml(tmp_path: Path, aws: str, found_by: str) -> None:
    ami = ssm_ami(aws)  # a literal AMI id this time, not an SSM path
    if found_by == "HF_PROVIDER_CONFDIR":
        config = write_ohf_toml(tmp_path / "conf" / "ohf.toml", aws, ami)
        env, extra = hf_env(config.parent), list[str]()
        log_file = config.parent / "log" / "ohf.log"
    else:
        config = write_ohf_toml(tmp_path / "elsewhere" / "my-ohf.toml", aws, ami)
        env, extra = plain_env(), []
        if found_by == "--config":
            extra = ["--config", str(config)]
        else:
            env["OHF_CONFIG"] = str(config)
        log_file = config.parent / "ohf.log"  # no HF log dir: next to the config
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def call(name: str, body: object) -> dict[str, Any]:
        code, out = run_cli([name, "-d", json.dumps(body), *extra], env, cwd)
        assert code == 0, out
        assert_json_log(log_file, name)
        return out

    (template,) = call("getAvailableTemplates", {})["templates"]
    assert template["templateId"] == "Toml-c5"
    assert template["maxNumber"] == template["availableNumber"] == 4
    assert template["attributes"]["ncpus"] == ["Numeric", "2"]
    assert template["attributes"]["nram"] == ["Numeric", "8192"]

    request_id = call(
        "requestMachines", {"template": {"templateId": "Toml-c5", "machineCount": 2}}
    )["requestId"]
    instances = cloud_instances(aws, **{"tag:ohf:request-id": request_id})
    assert len(instances) == 2
    assert {i["ImageId"] for i in instances} == {ami}
    assert {tags(i)["origin"] for i in instances} == {"toml"}
    assert (config.parent / "state" / "ohf-state.json").is_file()

    for _ in range(20):
        (req,) = call("getRequestStatus", {"requests": [{"requestId": request_id}]})["requests"]
        if req["status"] != "running":
            break
        time.sleep(0.3)
    assert req["status"] == "complete"
    assert [m["result"] for m in req["machines"]] == ["succeed", "succeed"]
    assert call("getAvailableTemplates", {})["templates"][0]["availableNumber"] == 2

    return_id = call("requestReturnMachines", {"machines": refs(req["machines"])})["requestId"]
    assert set(states(aws).values()) == {"terminated"}
    (ret,) = call("getRequestStatus", {"requests": [{"requestId": return_id}]})["requests"]
    assert ret["status"] == "complete"
    assert call("getReturnRequests", {"machines": refs(req["machines"])})["requests"] == []
    assert call("getAvailableTemplates", {})["templates"][0]["availableNumber"] == 4


# --- -d JSON ------------------------------------------------------------------------------


def test_inline_data_works_like_an_input_file(ibm_conf: Path, aws: str) -> None:
    env = hf_env(ibm_conf)
    log_file = ibm_conf / "log" / "ohf.log"

    code, inline = run_cli(["getAvailableTemplates", "-d", "{}"], env, ibm_conf)
    assert code == 0
    assert inline == hf("getAvailableTemplates", {}, ibm_conf)

    ask = {"template": {"templateId": OD, "machineCount": 1}}
    code, out = run_cli(["requestMachines", "-d", json.dumps(ask)], env, ibm_conf)
    assert code == 0
    assert_json_log(log_file, "requestMachines")
    assert len(cloud_instances(aws, **{"tag:ohf:request-id": out["requestId"]})) == 1

    by_file = poll_status(ibm_conf, out["requestId"])[out["requestId"]]
    status = {"requests": [{"requestId": out["requestId"]}]}
    code, by_data = run_cli(["getRequestStatus", "-d", json.dumps(status)], env, ibm_conf)
    assert code == 0
    assert by_data["requests"] == [by_file]
