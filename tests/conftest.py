"""Shared fixtures: moto_servers on free loopback ports (one capacity-capped), IBM conf dirs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

REGION = "us-east-1"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start a patched moto_server (tests/moto_patched.py) on a free port: (process, URL).

    `env` is the server's whole environment (None: this process's).
    """
    port = _free_port()
    server = Path(__file__).with_name("moto_patched.py")
    proc = subprocess.Popen(
        [sys.executable, str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    return proc, url


def _stop_moto(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        # moto's SIGTERM handler exits through werkzeug, which joins its request threads: on a
        # loaded machine that can outlast the wait. The session is over; kill it.
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """URL of a moto_server (patched: tests/moto_patched.py) for this session (per xdist worker)."""
    proc, url = _start_moto()
    yield url
    _stop_moto(proc)


CAPPED_CAPACITY = 3


@pytest.fixture(scope="session")
def moto_server_capped() -> Iterator[str]:
    """A second moto_server whose RunInstances keeps at most CAPPED_CAPACITY instances alive.

    Another "account/region" for multi-provider tests; the cap is tests/moto_patched.py's
    OHF_MOTO_CAPACITY (InsufficientInstanceCapacity beyond it).
    """
    proc, url = _start_moto({**os.environ, "OHF_MOTO_CAPACITY": str(CAPPED_CAPACITY)})
    yield url
    _stop_moto(proc)


def _reset(url: str) -> None:
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).close()


@pytest.fixture
def aws(moto_server: str) -> Iterator[str]:
    """moto_server, reset before the test so every test starts from an empty cloud."""
    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).close()
    yield moto_server


@pytest.fixture
def two_clouds(moto_server_capped: str, moto_server: str) -> Iterator[tuple[str, str]]:
    """Two empty clouds, reset before the test: (URL of the capped one, URL of the other)."""
    _reset(moto_server_capped)
    _reset(moto_server)
    yield moto_server_capped, moto_server


def ec2_client(url: str):  # type: ignore[no-untyped-def]
    """A boto3 EC2 client on the moto_server at `url`, with the tests' own keys.

    A session of its own: boto3's default session keeps the credentials it first found, so a
    test that set other keys in the environment would sign every later test's calls with them.
    """
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client("ec2", endpoint_url=url)


def default_subnet(url: str) -> str:
    """The first subnet of moto's default VPC."""
    return str(ec2_client(url).describe_subnets()["Subnets"][0]["SubnetId"])


def write_ibm_conf(conf_dir: Path, url: str, templates: list[dict[str, object]]) -> Path:
    """An IBM-format provider conf dir (awsprov_config.json + awsprov_templates.json)."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "awsprov_config.json").write_text(
        json.dumps({"LogLevel": "DEBUG", "AWS_REGION": REGION, "AWS_ENDPOINT_URL": url})
    )
    (conf_dir / "awsprov_templates.json").write_text(json.dumps({"templates": templates}))
    return conf_dir


@pytest.fixture
def ibm_conf(tmp_path: Path, aws: str) -> Path:
    """An IBM conf dir with two templates: on-demand c5.large (max 10, SSM AMI), spot m5 (max 5)."""
    subnet = default_subnet(aws)
    return write_ibm_conf(
        tmp_path / "conf",
        aws,
        [
            {
                "templateId": "OnDemand-c5",
                "maxNumber": 10,
                "imageId": AL2023,
                "subnetId": subnet,
                "vmType": "c5.large",
                "instanceTags": "team=hpc;env=test",
                "customKey": "kept",
            },
            {
                "templateId": "Spot-m5",
                "maxNumber": 5,
                "attributes": {
                    "type": ["String", "X86_64"],
                    "ncpus": ["Numeric", "2"],
                    "nram": ["Numeric", "16384"],
                },
                "imageId": AL2023,
                "subnetId": subnet,
                "vmType": "m5.xlarge",
                "priceType": "spot",
            },
        ],
    )


def hf_env(conf_dir: Path) -> dict[str, str]:
    """The environment HF gives a provider whose conf dir is `conf_dir`."""
    env = dict(os.environ)
    env.update(
        HF_PROVIDER_CONFDIR=str(conf_dir),
        HF_PROVIDER_WORKDIR=str(conf_dir / "work"),
        HF_PROVIDER_LOGDIR=str(conf_dir / "log"),
        HF_PROVIDER_NAME="aws",
    )
    env.pop("OHF_CONFIG", None)
    return env


def run_ohf(
    call: str, body: object | bytes | None, conf_dir: Path, tmp: Path | None = None
) -> tuple[int, object, str]:
    """Run `python -m ohf CALL -f FILE` as HF does: (exit code, parsed stdout, stderr)."""
    tmp = tmp or conf_dir
    args = [sys.executable, "-m", "ohf", call]
    if body is not None:
        infile = tmp / f"hf_in_{call}_{time.monotonic_ns()}.json"
        infile.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
        args += ["-f", str(infile)]
    proc = subprocess.run(args, env=hf_env(conf_dir), capture_output=True, timeout=120, check=False)
    try:
        parsed = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not one JSON document: {proc.stdout!r}") from exc
    return proc.returncode, parsed, proc.stderr.decode()


@pytest.fixture(autouse=True)
def _process_logging_restored() -> Iterator[None]:
    """Put the `ohf` (and boto) loggers back as they were after each test.

    An in-process CLI call configures the process's logging as HF's one-call process would
    (`ohf.effects.logs.setup`: its own file handler, no propagation), which would otherwise
    hide later tests' records from pytest's caplog, depending on the order tests run in. A
    server's `logging.config.dictConfig` (some litestar and uvicorn releases) disables every
    logger that exists by then, `ohf.api` included: that is put back too.
    """
    loggers = [logging.getLogger(name) for name in ("ohf", "botocore", "boto3", "urllib3")]
    saved = [(log, log.level, log.propagate, list(log.handlers)) for log in loggers]
    disabled = {
        name: log.disabled
        for name, log in logging.Logger.manager.loggerDict.items()
        if isinstance(log, logging.Logger) and name.split(".")[0] == "ohf"
    }
    yield
    for name, log in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(log, logging.Logger) and name.split(".")[0] == "ohf":
            log.disabled = disabled.get(name, False)
    for log, level, propagate, handlers in saved:
        for handler in list(log.handlers):
            if handler not in handlers:
                log.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in log.handlers:
                log.addHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _hypothesis_profiles() -> None:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        derandomize=True,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", deadline=None)
    settings.load_profile(
        "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev")
    )


_hypothesis_profiles()
