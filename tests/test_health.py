"""`ohf health`: every template's AWS resources checked against the moto_server, as a table or JSON.

A good config exits 0; a template whose subnet, image or instance type does not exist, or a
store that cannot be read, exits 1 with a row naming the template and the missing thing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AL2023, default_subnet, ec2_client, hf_env, write_ibm_conf


def _health(conf: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohf", "health", *extra],
        env=hf_env(conf),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _template(url: str, **changes: Any) -> dict[str, Any]:
    group = ec2_client(url).describe_security_groups()["SecurityGroups"][0]["GroupId"]
    return {
        "templateId": "Good",
        "maxNumber": 4,
        "imageId": AL2023,
        "subnetId": default_subnet(url),
        "securityGroupIds": [group],
        "vmType": "c5.large",
        **changes,
    }


def test_a_good_config_is_healthy(tmp_path: Path, aws: str) -> None:
    conf = write_ibm_conf(tmp_path / "conf", aws, [_template(aws)])

    proc = _health(conf, "--json")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    checks = {c["check"] for c in report["checks"]}
    assert checks == {
        "region",
        "credentials",
        "image",
        "subnets",
        "security groups",
        "instance types",
        "store",
    }
    assert all(c["ok"] for c in report["checks"]), report

    table = _health(conf)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["CHECK", "TARGET", "RESULT", "DETAIL"]
    assert table.stdout.rstrip().endswith("healthy")


BROKEN = {
    "missing-subnet": (
        {"subnetId": "subnet-0000000000deadbee"},
        "subnets",
        "subnet-0000000000deadbee",
    ),
    "bad-ami": ({"imageId": "ami-0000000000000dead"}, "image", "ami-0000000000000dead"),
    "unknown-instance-type": (
        {
            "vmType": "zz9.huge",
            "attributes": {
                "type": ["String", "X86_64"],
                "ncpus": ["Numeric", "2"],
                "nram": ["Numeric", "4096"],
            },
        },
        "instance types",
        "zz9.huge",
    ),
    "missing-security-group": (
        {"securityGroupIds": ["sg-0000000000deadbee"]},
        "security groups",
        "sg-0000000000deadbee",
    ),
}


@pytest.mark.parametrize(("changes", "check", "name"), BROKEN.values(), ids=BROKEN.keys())
def test_a_template_with_a_missing_resource_fails_naming_it(
    tmp_path: Path, aws: str, changes: dict[str, Any], check: str, name: str
) -> None:
    good = _template(aws, templateId="Good")
    bad = _template(aws, templateId="Broken", **changes)
    conf = write_ibm_conf(tmp_path / "conf", aws, [good, bad])

    proc = _health(conf, "--json")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [(c["check"], c["target"].split(":")[0]) for c in failed] == [(check, "Broken")]
    assert name in failed[0]["target"] + failed[0]["detail"]
    table = _health(conf)
    assert table.returncode == 1
    (row,) = [line for line in table.stdout.splitlines() if "FAIL" in line]
    assert "Broken" in row and name in row
    assert table.stdout.rstrip().endswith("1 check(s) failed")


def test_an_unreadable_store_fails(tmp_path: Path, aws: str) -> None:
    conf = write_ibm_conf(tmp_path / "conf", aws, [_template(aws)])
    (conf / "work").mkdir()
    (conf / "work" / "ohf-state.json").write_bytes(b"{not json")

    proc = _health(conf, "--json")

    assert proc.returncode == 1
    (failed,) = [c for c in json.loads(proc.stdout)["checks"] if not c["ok"]]
    assert failed["check"] == "store"
    assert "ohf-state.json" in failed["target"] + failed["detail"]
