"""The front door: `ohf.Provider` as Python tooling, the REST API and tests use it.

The README's "Use from Python" example runs as written against moto_server; the API's AWS
calls are logged exactly as the CLI's; the typed methods answer with ohf's structs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from returns.result import Failure, Success

from ohf import Provider
from ohf.api.app import make_app
from ohf.api.auth import make_verifier
from ohf.api.metrics import Tally
from ohf.config import ApiConfig
from ohf.messages import RequestAccepted, RequestsStatusOut, TemplatesOut
from ohf.model import Template
from ohf.testing import door, fake_provider
from tests.conftest import AL2023, REGION, default_subnet, run_ohf, write_ibm_conf

README = Path(__file__).resolve().parent.parent / "README.md"
pytestmark = pytest.mark.e2e


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Use from Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def moto_toml(path: Path, url: str, subnet: str, *, level: str = "INFO") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "ohf.toml"
    config.write_text(
        f'[aws]\nregion = "{REGION}"\nendpoint_url = "{url}"\n\n'
        f'[logging]\nlevel = "{level}"\nfile = "ohf.log"\n\n'
        f'[[templates]]\ntemplateId = "OnDemand-c5"\nmaxNumber = 10\nimageId = "{AL2023}"\n'
        f'subnetId = "{subnet}"\nvmType = "c5.large"\n'
    )
    return config


def test_the_readme_example_runs_as_written(tmp_path: Path, aws: str) -> None:
    config = moto_toml(tmp_path / "site", aws, default_subnet(aws))
    env = {**os.environ, "OHF_CONFIG": str(config)}
    proc = subprocess.run(
        [sys.executable, "-c", readme_example()],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "OnDemand-c5 10"
    status, count = lines[1].split()
    assert status in ("running", "complete") and count == "2"
    rows = [line.split() for line in lines[2:4]]
    assert all(r[0].startswith("i-") and r[2] == "aws" for r in rows), lines
    assert lines[4] == "True"


def test_typed_calls_answer_with_ohfs_structs(tmp_path: Path) -> None:
    template = Template(
        template_id="t1", max_number=4, image_id="ami-0123456789abcdef0", vm_type="c5.large"
    )
    provider = door(fake_provider([template], tmp_path))
    listed = provider.templates()
    assert isinstance(listed, Success) and isinstance(listed.unwrap(), TemplatesOut)
    assert listed.unwrap().templates[0]["availableNumber"] == 4
    accepted = provider.request_machines("t1", 3).unwrap()
    assert isinstance(accepted, RequestAccepted) and accepted.request_id.startswith("req-")
    status = provider.request_status(accepted.request_id).unwrap()
    assert isinstance(status, RequestsStatusOut)
    assert len(status.requests[0].machines) == 3
    assert provider.templates().unwrap().templates[0]["availableNumber"] == 1
    over = provider.request_machines("t1", 2)
    assert isinstance(over, Failure) and "over what is available" in over.failure().message
    unknown = provider.request_machines("nope", 1)
    assert isinstance(unknown, Failure) and "unknown templateId" in unknown.failure().message
    refused = provider.return_machines("i-notours")
    assert isinstance(refused, Failure) and "not ohf's" in refused.failure().message
    rows = provider.requests().unwrap()
    assert [(r.request_id, r.asked, r.held) for r in rows] == [(accepted.request_id, 3, 3)]


def test_open_refuses_a_missing_config_with_a_clear_reason(tmp_path: Path) -> None:
    opened = Provider.open(str(tmp_path / "nowhere.toml"), {}, cwd=str(tmp_path))
    assert isinstance(opened, Failure)
    assert "nowhere.toml does not exist" in opened.failure().message


def _aws_lines(log: Path, operation: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [e for e in entries if e.get("operation") == operation]


def test_aws_calls_made_through_the_rest_api_are_logged_like_the_clis(
    tmp_path: Path, aws: str
) -> None:
    subnet = default_subnet(aws)
    # The CLI, as HF runs it, at DEBUG: one line per AWS call.
    conf = write_ibm_conf(
        tmp_path / "cli",
        aws,
        [{"templateId": "OnDemand-c5", "maxNumber": 10, "imageId": AL2023,
          "subnetId": subnet, "vmType": "c5.large"}],
    )  # fmt: skip
    code, out, _ = run_ohf(
        "requestMachines", {"template": {"templateId": "OnDemand-c5", "machineCount": 1}}, conf
    )
    assert code == 0, out
    cli_lines = _aws_lines(conf / "log" / "ohf.log", "RunInstances")
    # The REST API over the same kind of config, through the front door.
    config = moto_toml(tmp_path / "api", aws, subnet, level="DEBUG")
    provider = Provider.open(str(config), {**os.environ}, cwd=str(tmp_path)).unwrap()
    from ohf.shell import configure_logging

    configure_logging(provider.settings, "serve", "api", {})
    api = ApiConfig(auth="none")
    with TestClient(make_app(api, make_verifier(api, {}), provider, Tally())) as client:
        answer = client.post(
            "/requests", json={"template": {"templateId": "OnDemand-c5", "machineCount": 1}}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["requestId"].startswith("req-")
    api_lines = _aws_lines(tmp_path / "api" / "ohf.log", "RunInstances")
    assert cli_lines and api_lines
    for line in (cli_lines[0], api_lines[0]):
        assert line["outcome"] == "ok" and line["logger"] == "ohf.aws.call"
        assert isinstance(line["duration"], float)
    finals = [
        json.loads(line)
        for line in (tmp_path / "api" / "ohf.log").read_text().splitlines()
        if "requestMachines exit=0" in line
    ]
    assert finals and finals[0]["request"] == answer.json()["requestId"]
