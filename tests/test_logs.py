"""Structured logs: one JSON object per line, every AWS call logged, and no secret ever logged.

The secrets test runs all five HF calls as HF does (`python -m ohf CALL -f FILE`) against the
moto_server at DEBUG, so botocore logs its requests (headers, signed bodies) into the same file,
with recognisable fake credentials in the environment and a marker in a template's userData.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ohf.effects import logs
from tests.conftest import AL2023, default_subnet, run_ohf, write_ibm_conf

ACCESS_KEY = "AKIAOHFTESTKEY123456"
SECRET_KEY = "ohfSecretKeyValue/ThatMustNeverBeLogged+42"
SESSION_TOKEN = "ohfSessionTokenValueThatMustNeverBeLogged0123456789"
MARKER = "OHF-USERDATA-MARKER-7f3a"
USER_DATA = f"#!/bin/bash\necho 'password={MARKER}' > /etc/ohf-marker\n"


def log_entries(conf: Path) -> list[dict[str, Any]]:
    # split on "\n" only: str.splitlines would also split inside U+2028 etc.
    text = (conf / "log" / "ohf.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


@pytest.fixture
def secret_conf(tmp_path: Path, aws: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    return write_ibm_conf(
        tmp_path / "conf",
        aws,
        [
            {
                "templateId": "WithUserData",
                "maxNumber": 4,
                "imageId": AL2023,
                "subnetId": default_subnet(aws),
                "vmType": "c5.large",
                "userData": USER_DATA,
            }
        ],
    )


def run_all_calls(conf: Path) -> str:
    """The five HF calls, one lifecycle; returns the acquire request id."""
    code, out, err = run_ohf("getAvailableTemplates", {}, conf)
    assert code == 0, (out, err)
    ask = {"template": {"templateId": "WithUserData", "machineCount": 2}}
    code, out, err = run_ohf("requestMachines", ask, conf)
    assert code == 0, (out, err)
    request_id = str(out["requestId"])  # type: ignore[index]
    code, out, err = run_ohf("getRequestStatus", {"requests": [{"requestId": request_id}]}, conf)
    assert code == 0, (out, err)
    machines = [
        {"name": m["name"], "machineId": m["machineId"]}
        for m in out["requests"][0]["machines"]  # type: ignore[index]
    ]
    assert len(machines) == 2
    code, out, err = run_ohf("getReturnRequests", {"machines": machines}, conf)
    assert code == 0, (out, err)
    code, out, err = run_ohf("requestReturnMachines", {"machines": machines[:1]}, conf)
    assert code == 0, (out, err)
    return request_id


def test_no_secret_reaches_any_log_line(secret_conf: Path) -> None:
    run_all_calls(secret_conf)

    raw = (secret_conf / "log" / "ohf.log").read_text(encoding="utf-8")
    entries = log_entries(secret_conf)
    # The test means something only if the wire traffic itself was logged.
    assert any(e["logger"].startswith("botocore") for e in entries)
    assert any("RunInstances" in e["event"] for e in entries if e["logger"].startswith("botocore"))
    encoded = base64.b64encode(USER_DATA.encode()).decode()
    forbidden = {
        "access key id": ACCESS_KEY,
        "secret key": SECRET_KEY,
        "session token": SESSION_TOKEN,
        "user data marker": MARKER,
        "user data (base64)": encoded,
        "user data (base64, url-quoted)": encoded.replace("+", "%2B").replace("=", "%3D"),
    }
    for line in raw.split("\n"):
        for what, secret in forbidden.items():
            assert secret not in line, f"{what} in log line: {line[:300]}"


def test_every_line_is_one_json_object_with_call_correlation_and_request(
    secret_conf: Path,
) -> None:
    request_id = run_all_calls(secret_conf)

    entries = log_entries(secret_conf)
    assert entries
    for entry in entries:
        assert {"ts", "level", "call", "cid", "logger", "event"} <= entry.keys(), entry
        assert entry["ts"].endswith("Z")
    # One correlation id per process: the five calls give five ids.
    assert len({e["cid"] for e in entries}) == 5
    finals = [e for e in entries if e["logger"] == "ohf" and " exit=" in e["event"]]
    assert [e["call"] for e in finals] == [
        "getAvailableTemplates",
        "requestMachines",
        "getRequestStatus",
        "getReturnRequests",
        "requestReturnMachines",
    ]
    assert finals[1]["request"] == request_id
    assert finals[2]["request"] == request_id
    assert finals[4]["request"].startswith("ret-")


def test_every_aws_call_is_logged_with_operation_duration_and_outcome(secret_conf: Path) -> None:
    run_all_calls(secret_conf)

    calls = [e for e in log_entries(secret_conf) if "operation" in e]
    operations = {e["operation"] for e in calls}
    assert {"RunInstances", "DescribeInstances", "TerminateInstances"} <= operations
    for entry in calls:
        assert entry["level"] == "DEBUG"
        assert isinstance(entry["duration"], float) and entry["duration"] >= 0
        assert entry["outcome"] == "ok", entry


def test_redaction_masks_each_kind_of_secret() -> None:
    cases = {
        "Credential=AKIAIOSFODNN7EXAMPLE/20261125/us-east-1": "AKIAIOSFODNN7EXAMPLE",
        "key ASIAIOSFODNN7EXAMPLE used": "ASIAIOSFODNN7EXAMPLE",
        "{'UserData': 'IyEvYmluL2Jhc2g=', 'MinCount': 1}": "IyEvYmluL2Jhc2g=",
        "LaunchTemplateData.UserData=IyEvYmlu%3D&Version=2": "IyEvYmlu%3D",
        '{"userData": "#!/bin/sh\\necho \\"hi\\"", "maxNumber": 2}': "echo",
        "'X-Amz-Security-Token': b'FwoGZXIvYXdzEJr'": "FwoGZXIvYXdzEJr",
        "'Authorization': b'AWS4-HMAC-SHA256 Credential=x, Signature=abcdef'": "abcdef",
        "Authorization: Bearer eyJhbGciOi.payload.sig": "eyJhbGciOi",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG": "wJalrXUtnFEMI",
        "password=hunter2 and more": "hunter2",
    }
    for text, secret in cases.items():
        masked = logs.redact(text)
        assert secret not in masked, (text, masked)
        assert logs.MASK in masked
    assert logs.redact("RunInstances ok in 0.2s") == "RunInstances ok in 0.2s"
    assert logs.redact("a s3cr3tv4lue b", ["s3cr3tv4lue"]) == f"a {logs.MASK} b"


def test_redaction_covers_tracebacks_and_format_arguments(tmp_path: Path) -> None:
    path = tmp_path / "ohf.log"
    log = logs.setup(str(path), "INFO", "requestMachines", "cid1", secrets=["topsecretvalue"])
    try:
        raise RuntimeError("failed with topsecretvalue and AKIAIOSFODNN7EXAMPLE")
    except RuntimeError:
        log.exception("call with %s", "topsecretvalue")
    for handler in log.handlers:
        handler.close()
    logging.getLogger("ohf").handlers.clear()

    (entry,) = [json.loads(line) for line in path.read_text().split("\n") if line]
    assert entry["event"] == f"call with {logs.MASK}"
    assert "RuntimeError" in entry["exc"]
    assert "topsecretvalue" not in entry["exc"] and "AKIAIOSFODNN7EXAMPLE" not in entry["exc"]
