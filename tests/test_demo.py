"""`ohf demo`: the whole lifecycle passes against moto_server, and a failing step fails the demo."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ohf.effects import sandbox
from ohf.effects.sandbox import (
    CallResult,
    Check,
    Sandbox,
    check_acquired,
    check_no_reclaims,
    check_returned,
    check_templates,
    judge,
    lifecycle,
    verdict,
)

STEPS = (
    "getAvailableTemplates",
    "requestMachines",
    "getRequestStatus",
    "requestReturnMachines",
    "getRequestStatus",
    "getReturnRequests",
)


@pytest.mark.e2e
def test_demo_runs_every_step_and_succeeds() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ohf", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    headers = re.findall(r"^== step (\d)/6: (\w+)", out, flags=re.MULTILINE)
    assert [call for _, call in headers] == list(STEPS)
    assert [int(n) for n, _ in headers] == [1, 2, 3, 4, 5, 6]
    assert out.count("\u2713 ") == 6
    assert "FAIL" not in out
    assert "3 machines, all succeed, running" in out
    assert "3 machines, all succeed, terminated" in out
    assert re.search(r"^demo: all 6 steps passed in [\d.]+ s$", out, flags=re.MULTILINE)
    conf = re.search(r"^  conf dir     (\S+)", out, flags=re.MULTILINE)
    assert conf is not None
    assert not Path(conf.group(1)).exists(), "the throw-away conf dir was not removed"


# ---- the pure step checks ----------------------------------------------------------------------


def machine(i: int, *, result: str = "succeed", status: str = "running") -> dict[str, Any]:
    return {
        "machineId": f"i-{i}",
        "name": f"ip-10-0-0-{i}.ec2.internal",
        "result": result,
        "status": status,
        "privateIpAddress": f"10.0.0.{i}",
        "publicIpAddress": None,
        "launchtime": 1_700_000_000,
        "message": "",
    }


def status_reply(request_id: str, status: str, machines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requests": [{"requestId": request_id, "status": status, "machines": machines}]}


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_judge_fails_a_nonzero_exit_even_with_valid_json() -> None:
    _, check = judge("requestMachines", 1, raw({"message": "no capacity"}), sandbox.check_accepted)
    assert not check.ok and "exit code 1" in check.summary and "no capacity" in check.summary


def test_judge_fails_stdout_that_is_not_one_json_document() -> None:
    _, check = judge("getAvailableTemplates", 0, b"starting...\n{}", check_templates)
    assert not check.ok and "not one JSON document" in check.summary


def test_judge_fails_an_answer_not_shaped_as_hf_expects() -> None:
    _, check = judge("requestMachines", 0, raw({"message": "ok"}), sandbox.check_accepted)
    assert not check.ok and "shape" in check.summary


def test_judge_passes_a_good_answer_to_the_steps_own_check() -> None:
    document, check = judge(
        "requestMachines", 0, raw({"requestId": "req-1", "message": ""}), sandbox.check_accepted
    )
    assert check.ok and document["requestId"] == "req-1"


def test_templates_check_wants_the_demo_template_with_mandatory_attributes() -> None:
    attributes = {
        "type": ["String", "X86_64"],
        "ncpus": ["Numeric", "1"],
        "nram": ["Numeric", "4096"],
    }
    good: dict[str, Any] = {
        "templateId": "OnDemand-c5",
        "maxNumber": 10,
        "availableNumber": 10,
        "attributes": attributes,
    }
    assert check_templates({"templates": [good]}).ok
    assert not check_templates({"templates": []}).ok
    no_nram = {**good, "attributes": {k: v for k, v in attributes.items() if k != "nram"}}
    assert not check_templates({"templates": [no_nram]}).ok
    assert not check_templates({"templates": [{**good, "availableNumber": 7}]}).ok


def test_acquire_check_wants_all_machines_succeeded() -> None:
    three = [machine(i) for i in range(3)]
    assert check_acquired(status_reply("req-1", "complete", three), "req-1", 3).ok
    assert not check_acquired(status_reply("req-1", "complete", three[:2]), "req-1", 3).ok
    assert not check_acquired(status_reply("req-1", "running", three), "req-1", 3).ok
    failed_one = [*three[:2], machine(2, result="fail", status="terminated")]
    assert not check_acquired(status_reply("req-1", "complete", failed_one), "req-1", 3).ok
    assert not check_acquired(status_reply("req-2", "complete", three), "req-1", 3).ok


def test_return_check_wants_exactly_the_returned_machines_terminated() -> None:
    gone = [machine(i, status="terminated") for i in range(3)]
    ids = ["i-0", "i-1", "i-2"]
    assert check_returned(status_reply("ret-1", "complete", gone), "ret-1", ids).ok
    assert not check_returned(status_reply("ret-1", "complete", gone), "ret-1", ids[:2]).ok
    alive = [*gone[:2], machine(2, result="executing", status="shutting-down")]
    assert not check_returned(status_reply("ret-1", "complete", alive), "ret-1", ids).ok


def test_reclaim_check_expects_none_after_hf_returned_the_machines() -> None:
    assert check_no_reclaims({"requests": [], "status": "complete"}).ok
    listed = {"requests": [{"machine": "h", "machineId": "i-0", "gracePeriod": 0}]}
    assert not check_no_reclaims(listed).ok


def test_verdict_is_success_only_when_all_six_steps_passed() -> None:
    ok = Check(ok=True, summary="")
    bad = Check(ok=False, summary="")
    assert verdict([ok] * 6) == 0
    assert verdict([ok, ok, bad]) == 1
    assert verdict([ok] * 5 + [bad]) == 1
    assert verdict([ok] * 5) == 1, "a demo that stopped early is not a success"


# ---- the lifecycle stops and fails at the first bad step --------------------------------------


def test_a_failing_step_stops_and_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    templates = {
        "templates": [
            {
                "templateId": "OnDemand-c5",
                "maxNumber": 10,
                "availableNumber": 10,
                "attributes": {
                    "type": ["String", "X86_64"],
                    "ncpus": ["Numeric", "1"],
                    "nram": ["Numeric", "4096"],
                },
            }
        ]
    }
    # Two of three machines come up; the third dies: the request ends complete_with_error.
    answers = {
        "getAvailableTemplates": templates,
        "requestMachines": {"requestId": "req-1", "message": ""},
        "getRequestStatus": status_reply(
            "req-1",
            "complete_with_error",
            [machine(0), machine(1), machine(2, result="fail", status="terminated")],
        ),
    }
    calls: list[str] = []

    def fake_run_call(_sb: Sandbox, _step: int, call: str, _payload: Any) -> CallResult:
        calls.append(call)
        return CallResult(
            call=call,
            input_path="in.json",
            exit_code=0,
            stdout=raw(answers[call]),
            stderr="",
            seconds=0.0,
        )

    monkeypatch.setattr(sandbox, "run_call", fake_run_call)
    checks = lifecycle(Sandbox(root=str(tmp_path), env={}, url="http://unused"))

    assert calls == ["getAvailableTemplates", "requestMachines", "getRequestStatus"]
    assert [c.ok for c in checks] == [True, True, False]
    assert verdict(checks) == 1
    assert "complete_with_error" in checks[-1].summary
    assert "FAIL" in capsys.readouterr().out


def test_demo_without_moto_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sandbox, "_moto_installed", lambda: False)
    assert sandbox.demo() == 1
    assert "pip install 'ohf-aws[sandbox]'" in capsys.readouterr().out
