"""Conf dirs for each state store against moto_server, and views of the state and of AWS.

`store_conf(conf_dir, url, store)` writes an `ohf.toml` selecting `[storage] type` (json, sqlite
or dynamodb, the last on moto_server's DynamoDB with a table of its own), `read_state` reads the
state back through ohf's own store interface, and `tagged_instances` lists what AWS holds by
`ohf:request-id` tag: the ground truth the state is checked against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ohf.model import REQUEST_TAG
from tests.conftest import AL2023, REGION, default_subnet, ec2_client, hf_env
from tests.support import moto_dynamodb

STORES = ("json", "sqlite", "dynamodb")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def atomic_dynamodb() -> Iterator[str]:
    """URL of a moto_server whose DynamoDB writes are atomic (see `tests.support.moto_dynamodb`).

    A fixture to import into the test modules that run many ohf calls against one table.
    """
    yield from moto_dynamodb.start()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def store_conf(
    conf_dir: Path,
    url: str,
    store: str,
    *,
    templates: list[dict[str, object]],
    storage_url: str | None = None,
    lock_timeout: float = 300.0,
    lease_seconds: float = 5.0,
) -> Path:
    """An HF conf dir with an `ohf.toml` for `store`; returns the conf dir.

    The dynamodb store gets a fresh table of its own (created by `init_store`) on `storage_url`
    (default: `url`, the EC2 moto_server), with by default the shortest lease ohf allows, so
    that a killed call's lease ends soon.
    """
    conf_dir.mkdir(parents=True, exist_ok=True)
    storage: dict[str, object] = {"type": store, "lock_timeout": lock_timeout}
    if store == "dynamodb":
        storage |= {
            "table": f"ohf-{uuid.uuid4().hex[:12]}",
            "endpoint_url": storage_url or url,
            "lease_seconds": lease_seconds,
        }
    lines = [
        "[aws]",
        f"region = {_toml_value(REGION)}",
        f"endpoint_url = {_toml_value(url)}",
        "",
        "[storage]",
        *(f"{k} = {_toml_value(v)}" for k, v in storage.items()),
        "",
        "[logging]",
        'level = "DEBUG"',
    ]
    for template in templates:
        lines += ["", "[[templates]]", *(f"{k} = {_toml_value(v)}" for k, v in template.items())]
    (conf_dir / "ohf.toml").write_text("\n".join(lines) + "\n")
    return conf_dir


def c5_template(
    url: str, *, max_number: int, template_id: str = "OnDemand-c5"
) -> dict[str, object]:
    """An on-demand c5.large template on moto's default subnet, imaged through SSM."""
    return {
        "templateId": template_id,
        "maxNumber": max_number,
        "imageId": AL2023,
        "subnetId": default_subnet(url),
        "vmType": "c5.large",
    }


def env_of(conf_dir: Path) -> dict[str, str]:
    """HF's environment for `conf_dir`, able to import `tests.support` (for the crash wrapper)."""
    env = hf_env(conf_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def settings_of(conf_dir: Path) -> Any:
    """ohf's `Settings` for `conf_dir`, resolved as a call run by HF would resolve them."""
    from ohf.effects.files import load_settings

    return load_settings(None, hf_env(conf_dir), str(conf_dir)).unwrap()


def read_state(conf_dir: Path) -> Any:
    """The committed state of `conf_dir`'s store, read through ohf's store interface."""
    from ohf.effects import store

    return store.read(settings_of(conf_dir)).unwrap()


def read_events(conf_dir: Path) -> Any:
    """The event log of `conf_dir`'s store, in commit order."""
    from ohf.effects import store

    return store.read_events(settings_of(conf_dir)).unwrap()


def init_store(conf_dir: Path) -> None:
    """`ohf storage init` for `conf_dir` (creates the DynamoDB table; harmless for the others)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ohf", "storage", "init"],
        env=env_of(conf_dir),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


def tagged_instances(url: str) -> dict[str, tuple[str, str]]:
    """Every instance AWS holds with an `ohf:request-id` tag: id -> (request id, state)."""
    pages = (
        ec2_client(url)
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": "tag-key", "Values": [REQUEST_TAG]}])
    )
    out: dict[str, tuple[str, str]] = {}
    for page in pages:
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                out[inst["InstanceId"]] = (tags[REQUEST_TAG], inst["State"]["Name"])
    return out


def spawn(
    conf_dir: Path, args: list[str], body: object, name: str, *, kill_at: str | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m ohf ARGS -f FILE` (or the crash wrapper at `kill_at`) for `conf_dir`."""
    infile = conf_dir / f"in-{name}.json"
    infile.write_text(json.dumps(body))
    runner = ["-m", "ohf"] if kill_at is None else ["-m", "tests.support.killer", kill_at]
    return subprocess.Popen(
        [sys.executable, *runner, *args, "-f", str(infile)],
        env=env_of(conf_dir),
        cwd=conf_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, Any, str]:
    """Wait for `proc`: (exit code, its stdout as JSON or None if empty, stderr)."""
    out, err = proc.communicate(timeout=180)
    text = out.decode()
    if not text.strip():
        return proc.returncode, None, err.decode()
    try:
        return proc.returncode, json.loads(text), err.decode()
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not one JSON document: {text!r}") from exc
