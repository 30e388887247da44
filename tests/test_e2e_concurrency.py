"""Concurrent HF calls (separate processes, one state file) never lose or duplicate an update."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ec2_client, hf_env

pytestmark = pytest.mark.e2e


def _spawn(call: str, body: object, conf: Path, name: str) -> subprocess.Popen[bytes]:
    infile = conf / f"in-{name}.json"
    infile.write_text(json.dumps(body))
    return subprocess.Popen(
        [sys.executable, "-m", "ohf", call, "-f", str(infile)],
        env=hf_env(conf),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_parallel_requests_and_polls_keep_every_request(ibm_conf: Path, aws: str) -> None:
    asks = [
        _spawn(
            "requestMachines",
            {"template": {"templateId": "OnDemand-c5", "machineCount": 1}},
            ibm_conf,
            f"req{n}",
        )
        for n in range(6)
    ]
    polls = [
        _spawn("getRequestStatus", {"requests": [{"requestId": "req-none"}]}, ibm_conf, f"p{n}")
        for n in range(4)
    ]
    replies = [json.loads(p.communicate(timeout=120)[0]) for p in asks]
    for p in polls:
        p.communicate(timeout=120)
        assert p.returncode == 0
    assert all(p.returncode == 0 for p in asks), replies
    ids = {r["requestId"] for r in replies}
    assert len(ids) == 6

    state = json.loads((ibm_conf / "work" / "ohf-state.json").read_text())
    assert set(state["requests"]) == ids
    recorded = {m["machine_id"] for r in state["requests"].values() for m in r["machines"]}
    reservations = ec2_client(aws).describe_instances()["Reservations"]
    launched = {i["InstanceId"] for r in reservations for i in r["Instances"]}
    assert recorded == launched
    assert len(launched) == 6


def test_parallel_requests_never_exceed_max_number(ibm_conf: Path, aws: str) -> None:
    # Spot-m5 allows 5 units; eight concurrent asks of 1 must leave exactly 5 granted.
    asks = [
        _spawn(
            "requestMachines",
            {"template": {"templateId": "Spot-m5", "machineCount": 1}},
            ibm_conf,
            f"spot{n}",
        )
        for n in range(8)
    ]
    outcomes = [(p.communicate(timeout=120)[0], p) for p in asks]
    granted = [json.loads(out) for out, p in outcomes if p.returncode == 0]
    refused = [json.loads(out) for out, p in outcomes if p.returncode == 1]
    assert len(granted) == 5
    assert len(refused) == 3
    assert all("available" in r["message"] for r in refused)
    reservations = ec2_client(aws).describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 5
