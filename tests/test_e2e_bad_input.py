"""End to end: bad input and broken config are refused cleanly, and change nothing.

For every case there is already some state (one successful request). The bad call must exit 1,
print one JSON object whose `message` says what is wrong and where, print no traceback, leave
the state file byte-identical and leave the cloud (moto_server) as it was.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ec2_client, hf_env, run_ohf

pytestmark = pytest.mark.e2e

OD = "OnDemand-c5"
UNKNOWN_ID = "i-0123456789abcdef0"


@dataclass(frozen=True)
class Held:
    """The state every case starts from: one request with one running machine."""

    conf: Path
    url: str
    request_id: str
    machine: dict[str, str]

    @property
    def state_file(self) -> Path:
        return self.conf / "work" / "ohf-state.json"

    def digest(self) -> str:
        return hashlib.sha256(self.state_file.read_bytes()).hexdigest()

    def cloud(self) -> dict[str, str]:
        """Instance id -> state name, for every instance moto holds."""
        reservations = ec2_client(self.url).describe_instances()["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


@pytest.fixture
def held(ibm_conf: Path, aws: str) -> Held:
    ask = {"template": {"templateId": OD, "machineCount": 1}}
    code, out, err = run_ohf("requestMachines", ask, ibm_conf)
    assert code == 0, (out, err)
    request_id = out["requestId"]  # type: ignore[index]
    reservations = ec2_client(aws).describe_instances()["Reservations"]
    (instance,) = [i for r in reservations for i in r["Instances"]]
    machine = {"name": instance["PrivateDnsName"], "machineId": instance["InstanceId"]}
    held = Held(conf=ibm_conf, url=aws, request_id=request_id, machine=machine)
    assert held.state_file.is_file()
    return held


def run_raw(args: list[str], conf: Path) -> tuple[int, bytes, str]:
    """`python -m ohf ARGS` with HF's environment: (exit code, raw stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ohf", *args],
        env=hf_env(conf),
        cwd=conf,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def assert_refused(code: int, stdout: bytes, *expected: str) -> str:
    """Exit 1, exactly one JSON object with a non-empty message containing `expected`."""
    assert b"Traceback" not in stdout
    out = json.loads(stdout)  # exactly one JSON document, or this raises
    assert code == 1, out
    assert isinstance(out, dict) and set(out) == {"message"}, out
    message = out["message"]
    assert isinstance(message, str) and message.strip()
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def assert_no_traceback_logged(conf: Path) -> None:
    log = conf / "log" / "ohf.log"
    assert log.is_file()  # written by the successful request every case starts from
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert not [e for e in entries if "exc" in e], "bad input was logged as an internal error"


Body = bytes | dict[str, Any] | list[Any] | Callable[[Held], dict[str, Any]]


def ask(count: object, template_id: str = OD) -> dict[str, Any]:
    return {"template": {"templateId": template_id, "machineCount": count}}


# id -> (call, input file bytes or JSON, substrings the message must contain)
CASES: dict[str, Any] = {
    "malformed-json": (
        "requestMachines",
        b'{"template": {"templateId": "OnDemand-c5" "machineCount": 1}}',
        ("not valid JSON", "byte 42"),
    ),
    "truncated-json": ("requestMachines", b'{"template": {"templateId": ', ("not valid JSON",)),
    "empty-file": ("requestMachines", b"", ("requestMachines", "empty")),
    "whitespace-only-file": ("requestMachines", b" \n\t", ("requestMachines", "empty")),
    "non-utf8-bytes": ("requestMachines", b"\xff\xfe{}", ("not valid JSON",)),
    "non-utf8-in-a-string": (
        "requestMachines",
        b'{"template": {"templateId": "caf\xe9", "machineCount": 1}}',
        ("not valid JSON", "not UTF-8 at byte 32"),
    ),
    "array-not-object": ("requestMachines", [ask(1)], ("`object`", "`array`")),
    "missing-template": ("requestMachines", {"machineCount": 1}, ("`template`",)),
    "machineCount-string": ("requestMachines", ask("3"), ("machineCount", "str")),
    "machineCount-zero": ("requestMachines", ask(0), ("machineCount", ">= 1")),
    "machineCount-negative": ("requestMachines", ask(-1), ("machineCount", ">= 1")),
    "machineCount-float": ("requestMachines", ask(2.5), ("machineCount", "float")),
    "machineCount-over-available": ("requestMachines", ask(10), ("machineCount", "available")),
    "unknown-templateId": ("requestMachines", ask(1, "NoSuchTemplate"), ("'NoSuchTemplate'", OD)),
    "status-missing-requests": ("getRequestStatus", {}, ("`requests`",)),
    "return-unknown-machine": (
        "requestReturnMachines",
        {"machines": [{"name": "ip-10-9-9-9.ec2.internal", "machineId": UNKNOWN_ID}]},
        (UNKNOWN_ID, "nothing was terminated"),
    ),
    "return-known-and-unknown": (
        "requestReturnMachines",
        lambda h: {"machines": [h.machine, {"name": "x", "machineId": UNKNOWN_ID}]},
        (UNKNOWN_ID, "nothing was terminated"),
    ),
    "return-empty-list": ("requestReturnMachines", {"machines": []}, ("`$.machines`",)),
}


@pytest.mark.parametrize(("call", "body", "expected"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_and_changes_nothing(
    held: Held, call: str, body: Body, expected: tuple[str, ...]
) -> None:
    before, cloud_before = held.digest(), held.cloud()
    payload = body(held) if callable(body) else body
    infile = held.conf / "hf_in.json"
    infile.write_bytes(payload if isinstance(payload, bytes) else json.dumps(payload).encode())

    code, stdout, _ = run_raw([call, "-f", str(infile)], held.conf)

    assert_refused(code, stdout, *expected)
    assert held.digest() == before
    assert held.cloud() == cloud_before
    assert held.machine["machineId"] in cloud_before  # the known machine is still there
    assert cloud_before[held.machine["machineId"]] == "running"
    assert_no_traceback_logged(held.conf)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", "{conf}/no-such-input.json"], ("{conf}/no-such-input.json", "does not exist")),
        (["-f"], ("-f",)),
        (["-f", "{conf}/work", "-d", "{{}}"], ("-f", "-d")),
        (["-d", "{{not json"], ("not valid JSON",)),
    ],
    ids=["missing-file", "no-path-after-f", "both-f-and-d", "bad-inline-data"],
)
def test_bad_arguments_are_refused_and_change_nothing(
    held: Held, args: list[str], expected: tuple[str, ...]
) -> None:
    before, cloud_before = held.digest(), held.cloud()
    conf = str(held.conf)

    code, stdout, _ = run_raw(["requestMachines", *(a.format(conf=conf) for a in args)], held.conf)

    assert_refused(code, stdout, *(e.format(conf=conf) for e in expected))
    assert held.digest() == before
    assert held.cloud() == cloud_before


def test_unknown_request_ids_are_reported_per_request_not_as_a_failure(held: Held) -> None:
    before = held.digest()
    asked = ["req-never-issued", "ret-never-issued"]

    code, out, _ = run_ohf(
        "getRequestStatus", {"requests": [{"requestId": r} for r in asked]}, held.conf
    )

    assert code == 0, out
    assert isinstance(out, dict)
    assert [r["requestId"] for r in out["requests"]] == asked
    for req in out["requests"]:
        assert req["status"] == "complete_with_error"
        assert req["requestId"] in req["message"]
        assert req["machines"] == []
    assert held.digest() == before


# --- broken config ------------------------------------------------------------------------

HF_CALLS: dict[str, object] = {
    "getAvailableTemplates": {},
    "requestMachines": ask(1),
    "getRequestStatus": {"requests": [{"requestId": "req-x"}]},
    "requestReturnMachines": {"machines": [{"name": "n", "machineId": UNKNOWN_ID}]},
    "getReturnRequests": {"machines": []},
}


def _templates(conf: Path) -> list[dict[str, Any]]:
    return list(json.loads((conf / "awsprov_templates.json").read_text())["templates"])


def _write(conf: Path, templates: list[dict[str, Any]]) -> None:
    (conf / "awsprov_templates.json").write_text(json.dumps({"templates": templates}))


BROKEN: dict[str, tuple[Callable[[Path], object], tuple[str, ...]]] = {
    "invalid-json": (
        lambda conf: (conf / "awsprov_templates.json").write_text(
            '{"templates": [{"templateId" "x"}]}'
        ),
        ("JSON is malformed",),
    ),
    "maxNumber-not-a-number": (
        lambda conf: _write(conf, [{**_templates(conf)[0], "maxNumber": "ten"}]),
        ("maxNumber", OD),
    ),
    "duplicate-templateId": (
        lambda conf: _write(conf, [*_templates(conf), _templates(conf)[0]]),
        (OD, "twice"),
    ),
}


@pytest.mark.parametrize(("breakage", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_config_fails_every_call_naming_the_file(
    held: Held, breakage: Callable[[Path], object], expected: tuple[str, ...]
) -> None:
    before, cloud_before = held.digest(), held.cloud()
    breakage(held.conf)
    templates_file = str(held.conf / "awsprov_templates.json")

    for call, body in HF_CALLS.items():
        code, out, _ = run_ohf(call, body, held.conf)
        assert_refused(code, json.dumps(out).encode(), templates_file, *expected)

    assert held.digest() == before
    assert held.cloud() == cloud_before
