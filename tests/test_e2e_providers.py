"""End to end with two providers: the real `python -m ohf` CLI against two moto_servers.

Each moto_server stands for one AWS account/region. Provider `a` is the capped server (at most
CAPPED_CAPACITY instances alive: tests/moto_patched.py answers InsufficientInstanceCapacity
beyond that, as EC2 does when a pool runs dry), provider `b` the uncapped one. One ohf.toml
names both, each with its own subnet and AMI as `[providers.defaults]`, and one RunInstances
template that has neither. Every check is made twice: in ohf's HF answer and, with boto3, in
each cloud (which instance lives where, in which subnet, from which AMI, with which tags).

The first tests check the capacity injection itself, with boto3 alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.conftest import AL2023, CAPPED_CAPACITY, REGION, default_subnet, run_ohf

pytestmark = pytest.mark.e2e

TEMPLATE = "multi"
MAX_NUMBER = 10
TAG = "ohf:request-id"
LIVE = ("pending", "running")
GONE = ("shutting-down", "terminated")
# moto checks AMIs only with MOTO_ENABLE_AMI_VALIDATION: the injection tests need none real.
ANY_AMI = "ami-12345678"
AMZN2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"


# --- helpers ------------------------------------------------------------------------------


def ec2(url: str, region: str = REGION) -> Any:
    """A boto3 EC2 client on `url` that makes one attempt per call (the injected capacity
    error is an HTTP 500, which botocore would otherwise retry)."""
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=url,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


def instances(url: str, region: str = REGION) -> dict[str, dict[str, Any]]:
    """Every instance the cloud at `url` holds in `region`, by id."""
    pages = ec2(url, region).get_paginator("describe_instances").paginate()
    return {
        i["InstanceId"]: i for page in pages for r in page["Reservations"] for i in r["Instances"]
    }


def state_of(url: str) -> dict[str, str]:
    return {i: d["State"]["Name"] for i, d in instances(url).items()}


def tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def amis(url: str) -> tuple[str, str]:
    """Two different AMIs that exist in moto (by their SSM parameters): AL2023 and AL2."""
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=url)
    found = tuple(str(ssm.get_parameter(Name=p)["Parameter"]["Value"]) for p in (AL2023, AMZN2))
    assert len(ec2(url).describe_images(ImageIds=list(found))["Images"]) == 2
    return found[0], found[1]


def run_capped(url: str, min_count: int, max_count: int, region: str = REGION) -> list[str]:
    """RunInstances of t3.micro on `url`: the ids launched."""
    out = ec2(url, region).run_instances(
        ImageId=ANY_AMI, InstanceType="t3.micro", MinCount=min_count, MaxCount=max_count
    )
    return [i["InstanceId"] for i in out["Instances"]]


@dataclass(frozen=True)
class Clouds:
    """The two clouds of a test, what each gives as defaults, and ohf's conf dir."""

    conf: Path
    url_a: str
    url_b: str
    subnet_a: str
    subnet_b: str
    ami_a: str
    ami_b: str


def write_config(clouds: Clouds, *, a_enabled: bool = True) -> None:
    (clouds.conf / "ohf.toml").write_text(
        f"""
[aws]
region = "{REGION}"

[placement]
policy = "first_available"

[[providers]]
name = "a"
endpoint_url = "{clouds.url_a}"
enabled = {"true" if a_enabled else "false"}
[providers.defaults]
subnetId = "{clouds.subnet_a}"
imageId = "{clouds.ami_a}"

[[providers]]
name = "b"
endpoint_url = "{clouds.url_b}"
[providers.defaults]
subnetId = "{clouds.subnet_b}"
imageId = "{clouds.ami_b}"

[[templates]]
templateId = "{TEMPLATE}"
maxNumber = {MAX_NUMBER}
vmType = "t3.micro"
providerApi = "RunInstances"
"""
    )


@pytest.fixture
def clouds(tmp_path: Path, two_clouds: tuple[str, str]) -> Iterator[Clouds]:
    """Empty clouds a (capped) and b, and an ohf.toml in HF's conf dir naming both."""
    url_a, url_b = two_clouds
    conf = tmp_path / "conf"
    conf.mkdir()
    ami_a, ami_b = amis(url_a)
    made = Clouds(
        conf=conf,
        url_a=url_a,
        url_b=url_b,
        subnet_a=default_subnet(url_a),
        subnet_b=default_subnet(url_b),
        ami_a=ami_a,
        ami_b=ami_b,
    )
    assert made.subnet_a != made.subnet_b  # two clouds, really
    write_config(made)
    yield made


def hf(call: str, body: object, conf: Path, *, exit_code: int = 0) -> dict[str, Any]:
    code, out, stderr = run_ohf(call, body, conf)
    assert code == exit_code, f"{call} exited {code}: {out} {stderr}"
    assert isinstance(out, dict), out
    return out


def ask(conf: Path, count: int, *, exit_code: int = 0) -> dict[str, Any]:
    return hf(
        "requestMachines",
        {"template": {"templateId": TEMPLATE, "machineCount": count}},
        conf,
        exit_code=exit_code,
    )


def poll(conf: Path, request_id: str, tries: int = 30) -> dict[str, Any]:
    """getRequestStatus until `request_id` is no longer running (bounded)."""
    for _ in range(tries):
        out = hf("getRequestStatus", {"requests": [{"requestId": request_id}]}, conf)
        (req,) = out["requests"]
        assert req["requestId"] == request_id
        if req["status"] != "running":
            return req  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"{request_id} still running after {tries} polls: {req}")


def available(conf: Path) -> int:
    out = hf("getAvailableTemplates", {}, conf)
    by_id = {t["templateId"]: t for t in out["templates"]}
    return int(by_id[TEMPLATE]["availableNumber"])


def overflowed(clouds: Clouds) -> tuple[str, list[dict[str, Any]]]:
    """Request 5 (3 fit on a): (request id, its machines once complete); prints the wall time."""
    started = time.perf_counter()
    out = ask(clouds.conf, 5)
    wall = time.perf_counter() - started
    print(f"\nFIGURE requestMachines of 5 (3 fit on a, 2 go to b): {wall:.3f} s wall")
    request_id = out["requestId"]
    assert isinstance(request_id, str) and request_id
    req = poll(clouds.conf, request_id)
    assert req["status"] == "complete", req
    return request_id, req["machines"]


# --- the capacity injection itself ------------------------------------------------------------


def test_capped_server_refuses_a_min_count_that_does_not_fit(
    two_clouds: tuple[str, str],
) -> None:
    url_a, _ = two_clouds
    assert len(run_capped(url_a, 2, 2)) == 2

    with pytest.raises(ClientError) as caught:
        run_capped(url_a, CAPPED_CAPACITY, CAPPED_CAPACITY)

    error = caught.value.response
    assert error["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert error["Error"]["Message"].startswith(
        "We currently do not have sufficient t3.micro capacity"
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500  # EC2's server error, as in AWS
    assert sorted(state_of(url_a).values()) == ["running", "running"]  # nothing launched


def test_capped_server_launches_only_what_fits_up_to_max_count(
    two_clouds: tuple[str, str],
) -> None:
    url_a, _ = two_clouds
    first = run_capped(url_a, 1, 5)
    assert len(first) == CAPPED_CAPACITY  # MinCount fits, MaxCount does not: what fits

    with pytest.raises(ClientError) as caught:
        run_capped(url_a, 1, 1)
    assert caught.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"

    ec2(url_a).terminate_instances(InstanceIds=first[:1])  # a terminated one frees its slot
    assert len(run_capped(url_a, 1, 5)) == 1
    live = [i for i, s in state_of(url_a).items() if s in LIVE]
    assert len(live) == CAPPED_CAPACITY


def test_capped_server_counts_every_region(two_clouds: tuple[str, str]) -> None:
    url_a, _ = two_clouds
    assert len(run_capped(url_a, 2, 2)) == 2
    assert len(run_capped(url_a, 1, 5, region="us-west-2")) == CAPPED_CAPACITY - 2


def test_uncapped_server_keeps_motos_launch(two_clouds: tuple[str, str]) -> None:
    _, url_b = two_clouds
    assert len(run_capped(url_b, 6, 6)) == 6  # no cap without OHF_MOTO_CAPACITY
    assert len(run_capped(url_b, 1, 5)) == 1  # and moto's own MinCount launch


# --- ohf over two providers -------------------------------------------------------------------


def test_request_overflowing_the_first_provider_completes_on_the_second(
    clouds: Clouds,
) -> None:
    request_id, machines = overflowed(clouds)

    ids = {m["machineId"] for m in machines}
    assert len(ids) == 5
    assert all(m["result"] == "succeed" and m["status"] == "running" for m in machines)
    in_a, in_b = instances(clouds.url_a), instances(clouds.url_b)
    assert len(ids & in_a.keys()) == CAPPED_CAPACITY
    assert len(ids & in_b.keys()) == 5 - CAPPED_CAPACITY
    assert ids == in_a.keys() | in_b.keys()  # nothing launched that HF was not told about
    for instance in in_a.values():
        assert tags(instance)[TAG] == request_id
        assert (instance["SubnetId"], instance["ImageId"]) == (clouds.subnet_a, clouds.ami_a)
    for instance in in_b.values():
        part = tags(instance)[TAG]
        assert part.startswith(request_id) and part != request_id, part
        assert (instance["SubnetId"], instance["ImageId"]) == (clouds.subnet_b, clouds.ami_b)

    assert available(clouds.conf) == 2 * MAX_NUMBER - 5


def test_returns_terminate_the_right_instance_in_each_cloud(clouds: Clouds) -> None:
    _, machines = overflowed(clouds)
    in_a, in_b = instances(clouds.url_a), instances(clouds.url_b)
    one_a = next(m for m in machines if m["machineId"] in in_a)
    one_b = next(m for m in machines if m["machineId"] in in_b)
    refs = [{"name": m["name"], "machineId": m["machineId"]} for m in (one_a, one_b)]

    out = hf("requestReturnMachines", {"machines": refs}, clouds.conf)
    return_id = out["requestId"]
    assert isinstance(return_id, str) and return_id

    for url, gone in ((clouds.url_a, one_a["machineId"]), (clouds.url_b, one_b["machineId"])):
        states = state_of(url)
        assert states.pop(gone) in GONE
        assert set(states.values()) == {"running"}, (url, states)
    assert len(state_of(clouds.url_a)) == CAPPED_CAPACITY
    assert len(state_of(clouds.url_b)) == 5 - CAPPED_CAPACITY

    returned = poll(clouds.conf, return_id)
    assert returned["status"] == "complete", returned
    assert {m["machineId"] for m in returned["machines"]} == {
        one_a["machineId"],
        one_b["machineId"],
    }

    # HF lists every host it holds; the running ones, in either cloud, are not being reclaimed.
    held = [{"name": m["name"], "machineId": m["machineId"]} for m in machines]
    reclaims = hf("getReturnRequests", {"machines": held}, clouds.conf)["requests"]
    running = {m["machineId"] for m in machines} - {one_a["machineId"], one_b["machineId"]}
    assert not running & {r["machineId"] for r in reclaims}, reclaims


def test_request_larger_than_both_providers_is_refused(clouds: Clouds) -> None:
    out = ask(clouds.conf, 2 * MAX_NUMBER + 1, exit_code=1)

    assert isinstance(out.get("message"), str) and out["message"]
    assert "requestId" not in out
    assert instances(clouds.url_a) == {}
    assert instances(clouds.url_b) == {}
    assert available(clouds.conf) == 2 * MAX_NUMBER


def test_disabled_provider_is_skipped(clouds: Clouds) -> None:
    write_config(clouds, a_enabled=False)
    assert available(clouds.conf) == MAX_NUMBER  # only b's room is HF's

    request_id = ask(clouds.conf, 2)["requestId"]
    req = poll(clouds.conf, request_id)

    assert req["status"] == "complete", req
    ids = {m["machineId"] for m in req["machines"]}
    assert instances(clouds.url_a) == {}
    in_b = instances(clouds.url_b)
    assert ids == in_b.keys() and len(ids) == 2
    assert {tags(i)[TAG] for i in in_b.values()} == {request_id}  # b holds the request itself
    assert available(clouds.conf) == MAX_NUMBER - 2
