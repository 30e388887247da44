"""`ohf validate`: the config and templates checked offline, with readable verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import hf_env


def _validate(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohf", "validate"],
        env=hf_env(conf),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _conf(tmp_path: Path, templates: list[dict[str, object]]) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text(json.dumps({"templates": templates}))
    return conf


def test_validate_passes_a_good_ibm_conf_dir_and_names_its_paths(tmp_path: Path) -> None:
    conf = _conf(
        tmp_path,
        [{"templateId": "ok", "maxNumber": 2, "imageId": "ami-12345678", "vmType": "c5.large"}],
    )
    proc = _validate(conf)
    assert proc.returncode == 0, proc.stdout
    assert "config: ok" in proc.stdout
    assert "template ok: ok" in proc.stdout
    assert str(conf / "work" / "ohf-state.json") in proc.stdout


def test_validate_fails_a_template_that_cannot_launch(tmp_path: Path) -> None:
    conf = _conf(tmp_path, [{"templateId": "noimage", "maxNumber": 2, "vmType": "c5.large"}])
    proc = _validate(conf)
    assert proc.returncode == 1
    assert "template noimage: FAIL" in proc.stdout
    assert "imageId" in proc.stdout


def test_validate_fails_an_unknown_type_without_attributes(tmp_path: Path) -> None:
    conf = _conf(
        tmp_path,
        [{"templateId": "new", "maxNumber": 2, "imageId": "ami-12345678", "vmType": "zz9.huge"}],
    )
    proc = _validate(conf)
    assert proc.returncode == 1
    assert "zz9.huge not in the instance-type catalogue" in proc.stdout


def test_validate_names_the_file_of_a_broken_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ohf.toml").write_text("[aws]\nregion = 'us-east-1'\nregoin = 'typo'\n")
    proc = _validate(conf)
    assert proc.returncode == 1
    assert "ohf.toml" in proc.stdout
    assert "regoin" in proc.stdout


def test_validate_warns_of_ibm_keys_ohf_does_not_honour_and_passes(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_config.json").write_text(
        json.dumps({"AWS_REGION": "us-east-1", "AWS_KEY_FILE": "/keys"})
    )
    (conf / "awsprov_templates.json").write_text(
        json.dumps(
            {
                "templates": [
                    {
                        "templateId": "t1",
                        "maxNumber": 2,
                        "imageId": "ami-12345678",
                        "vmType": "c5.large",
                        "keyName": "Lsf-Key",
                        "spotPrice": 0.05,
                    }
                ]
            }
        )
    )
    proc = _validate(conf)
    assert proc.returncode == 0, proc.stdout
    assert "warning: awsprov_config.json: AWS_KEY_FILE = '/keys' is not honoured" in proc.stdout
    assert "warning: template t1: spotPrice is not honoured" in proc.stdout
