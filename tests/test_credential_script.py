"""`[aws] credential_script` (IBM's AWS_CREDENTIAL_SCRIPT): credentials printed by a script.

Against moto_server: a script that works (its keys, not the environment's, sign every call),
one that fails, one that prints garbage, one that hangs, and one whose credentials near their
expiry within one long-lived `Provider` (as `ohf serve` holds it) and are refreshed before they
expire. Which keys signed each request is read from a moto_server that records every request
(`MOTO_ENABLE_RECORDING`): the Authorization header names the access key.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure

from ohf.config import AwsConfig, Config, ProviderConfig, provider_aws
from ohf.effects.aws.credential_script import (
    ADVISORY_REFRESH,
    CredentialScriptError,
    parse_output,
    run_script,
)
from ohf.ibm import credential_sources, decode_ibm_config
from ohf.provider import Provider
from tests.conftest import (
    AL2023,
    REGION,
    _start_moto,
    _stop_moto,
    default_subnet,
    hf_env,
    run_ohf,
    write_ibm_conf,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROLE = "arn:aws:iam::123456789012:role/ohf-test"

# The script under test: counts its runs in argv[1] and prints credentials whose access key
# names the run; argv[2] gives each run's lifetime in seconds (the last one repeats).
SCRIPT = """
import json, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

runs = Path(sys.argv[1])
n = len(runs.read_text().splitlines()) + 1 if runs.exists() else 1
runs.write_text((runs.read_text() if runs.exists() else "") + f"run {n}\\n")
lifetimes = [int(x) for x in sys.argv[2].split(",")]
expiry = datetime.now(UTC) + timedelta(seconds=lifetimes[min(n, len(lifetimes)) - 1])
print(json.dumps({
    "AccessKeyId": f"AKIDSCRIPTRUN{n:04d}",
    "SecretAccessKey": "secret-of-run-%d" % n,
    "SessionToken": "token-of-run-%d" % n,
    "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
}))
"""


def script_command(tmp_path: Path, lifetimes: str = "3600") -> tuple[str, Path]:
    """The command line of the counting script, and the file that counts its runs."""
    script = tmp_path / "creds.py"
    script.write_text(SCRIPT)
    runs = tmp_path / "runs.txt"
    return f"{sys.executable} {script} {runs} {lifetimes}", runs


def runs_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def shell_script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


# --- The script's output -----------------------------------------------------------------------


def printed(**keys: Any) -> bytes:
    return json.dumps(keys).encode()


def test_the_printed_credentials_become_botocores_metadata() -> None:
    out = parse_output(
        printed(
            AccessKeyId="AKID",
            SecretAccessKey=SECRET,
            SessionToken="tok",
            Expiration="2026-01-02T04:04:05Z",
        ),
        NOW,
    ).unwrap()
    assert out == {
        "access_key": "AKID",
        "secret_key": SECRET,
        "token": "tok",
        "expiry_time": "2026-01-02T04:04:05+00:00",
    }


def test_the_shape_aws_sts_prints_is_read_too() -> None:
    body = {"Credentials": {"AccessKeyId": "AKID", "SecretAccessKey": SECRET, "SessionToken": "t"}}
    out = parse_output(json.dumps(body).encode(), NOW).unwrap()
    assert out["access_key"] == "AKID"
    # No Expiration: the script is run again after 15 minutes.
    assert out["expiry_time"] == (NOW + timedelta(minutes=15)).isoformat()


@pytest.mark.parametrize(
    ("stdout", "needle"),
    [
        (b"hello, world", "not JSON"),
        (b"", "0 byte(s) that are not JSON"),
        (
            f"[default]\naws_access_key_id = AKID\naws_secret_access_key = {SECRET}\n".encode(),
            "INI credentials file",
        ),
        (b'["AKID"]', "not an object"),
        (printed(AccessKeyId="AKID"), "without SecretAccessKey"),
        (printed(SecretAccessKey=SECRET, SessionToken="t"), "without AccessKeyId"),
        (printed(AccessKeyId="A", SecretAccessKey=SECRET, Expiration="soon"), "not ISO 8601"),
        (
            printed(AccessKeyId="A", SecretAccessKey=SECRET, Expiration="2026-01-01T00:00:00Z"),
            "expired at 2026-01-01T00:00:00+00:00",
        ),
        (printed(AccessKeyId="A", SecretAccessKey=SECRET, SessionToken=7), "wrong type"),
    ],
)
def test_output_that_is_not_credentials_is_refused_without_quoting_it(
    stdout: bytes, needle: str
) -> None:
    result = parse_output(stdout, NOW)
    assert isinstance(result, Failure)
    assert needle in result.failure()
    assert SECRET not in result.failure()


# --- Running it ------------------------------------------------------------------------------


def test_a_failing_script_is_an_error_naming_it_with_its_stderr(tmp_path: Path) -> None:
    script = shell_script(tmp_path, "fails.sh", "echo 'SSO session expired' >&2\nexit 3\n")
    with pytest.raises(CredentialScriptError) as raised:
        run_script(str(script), 10)
    assert str(script) in str(raised.value)
    assert "exited with code 3: SSO session expired" in str(raised.value)


def test_a_script_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    script = shell_script(tmp_path, "hangs.sh", "sleep 30\n")
    started = time.monotonic()
    with pytest.raises(CredentialScriptError, match=r"did not finish within 0\.5s"):
        run_script(str(script), 0.5)
    assert time.monotonic() - started < 10


def test_a_script_that_cannot_run_names_itself(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sh"
    with pytest.raises(CredentialScriptError, match="cannot be run") as raised:
        run_script(str(missing), 5)
    assert str(missing) in str(raised.value)
    with pytest.raises(CredentialScriptError, match="cannot be split"):
        run_script('"unbalanced', 5)


def test_the_script_runs_without_a_shell(tmp_path: Path) -> None:
    # `;` and `$HOME` reach the program as arguments: no shell ever sees them.
    echo = shell_script(tmp_path, "args.sh", 'printf "%s|" "$@" > "$0.args"\nexit 1\n')
    with pytest.raises(CredentialScriptError):
        run_script(f"{echo} 'a b' ; $HOME", 5)
    assert (tmp_path / "args.sh.args").read_text() == "a b|;|$HOME|"


# --- Where it comes from and what wins ------------------------------------------------------


def test_ibm_credential_script_maps_onto_aws_and_an_empty_one_means_none() -> None:
    config = decode_ibm_config(
        b'{"AWS_REGION": "us-west-2", "AWS_CREDENTIAL_SCRIPT": " /opt/sso/creds.sh "}', source="x"
    ).unwrap()
    assert config.aws.credential_script == "/opt/sso/creds.sh"
    assert config.ibm_unhonoured == {}
    blank = decode_ibm_config(b'{"AWS_CREDENTIAL_SCRIPT": ""}', source="x").unwrap()
    assert blank.aws.credential_script is None


def test_a_provider_inherits_the_script_unless_it_names_its_own_credentials() -> None:
    aws = AwsConfig(credential_script="/opt/creds.sh", profile="hpc")
    plain = provider_aws(aws, ProviderConfig(name="east"))
    assert plain.credential_script == "/opt/creds.sh"
    own_profile = provider_aws(aws, ProviderConfig(name="west", profile="west"))
    assert (own_profile.credential_script, own_profile.profile) == (None, "west")
    own_script = provider_aws(aws, ProviderConfig(name="eu", credential_script="/opt/eu.sh"))
    assert own_script.credential_script == "/opt/eu.sh"


def test_validate_warns_that_the_script_wins_over_a_profile_or_file() -> None:
    config = Config(aws=AwsConfig(credential_script="/opt/c.sh", credentials_file="/etc/creds"))
    (line,) = credential_sources(config)
    assert "[aws]" in line and "'/opt/c.sh' wins over credentials_file" in line
    alone = Config(aws=AwsConfig(credential_script="/opt/c.sh"))
    assert credential_sources(alone) == []


# --- Against moto_server --------------------------------------------------------------------


def write_config(tmp_path: Path, url: str, **aws: str) -> Path:
    """An ohf.toml over moto_server with one small template; `aws` adds `[aws]` keys."""
    lines = [
        "[aws]",
        f'region = "{REGION}"',
        f"endpoint_url = {json.dumps(url)}",
        *(f"{k} = {json.dumps(v)}" for k, v in aws.items()),
        "[[templates]]",
        'templateId = "t1"',
        "maxNumber = 10",
        f"imageId = {json.dumps(AL2023)}",
        f"subnetId = {json.dumps(default_subnet(url))}",
        'vmType = "t3.micro"',
    ]
    path = tmp_path / "ohf.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def open_provider(config: Path, tmp_path: Path) -> Provider:
    env = {**os.environ, "HF_PROVIDER_WORKDIR": str(tmp_path), "HF_PROVIDER_LOGDIR": str(tmp_path)}
    return Provider.open(str(config), env, cwd=str(tmp_path)).unwrap()


@pytest.fixture(scope="module")
def recording_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A moto_server of this module's own that records every request: (URL, recording)."""
    recording = tmp_path_factory.mktemp("recording") / "requests.jsonl"
    env = {**os.environ, "MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)}
    proc, url = _start_moto(env)
    yield url, recording
    _stop_moto(proc)


@pytest.fixture
def recorded(recording_moto: tuple[str, Path]) -> Iterator[tuple[str, Path]]:
    """The recording moto_server, emptied (cloud and recording) before the test."""
    import urllib.request

    url, recording = recording_moto
    for path in ("/moto-api/reset", "/moto-api/recorder/reset-recording"):
        urllib.request.urlopen(urllib.request.Request(url + path, method="POST"), timeout=10)
    yield url, recording


_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/[^/]+/[^/]+/([a-z0-9-]+)/")


def signers(recording: Path) -> list[tuple[str, str]]:
    """(access key, service) of every request recorded, in order (moto's own API left out)."""
    out = []
    for line in recording.read_text().splitlines():
        found = _CREDENTIAL.search(json.loads(line)["headers"].get("Authorization", ""))
        if found:
            out.append((found.group(1), found.group(2)))
    return out


def test_a_working_script_signs_every_call_and_runs_once(
    tmp_path: Path, recorded: tuple[str, Path]
) -> None:
    url, recording = recorded
    command, runs = script_command(tmp_path)
    provider = open_provider(write_config(tmp_path, url, credential_script=command), tmp_path)

    accepted = provider.request_machines("t1", 2).unwrap()
    status = provider.request_status(accepted.request_id).unwrap()

    assert status.requests[0].status in ("running", "complete")
    assert runs_of(runs) == 1
    keys = {key for key, _ in signers(recording)}
    # The script's keys won over the environment's (AWS_ACCESS_KEY_ID=testing).
    assert keys == {"AKIDSCRIPTRUN0001"}


def test_credentials_near_expiry_are_refreshed_within_one_long_lived_provider(
    tmp_path: Path, recorded: tuple[str, Path]
) -> None:
    url, recording = recorded
    # Run 1's credentials enter the refresh margin (5 minutes before expiry) 6 s after the script
    # prints them; run 2's last an hour.
    command, runs = script_command(tmp_path, f"{ADVISORY_REFRESH + 6},3600")
    provider = open_provider(write_config(tmp_path, url, credential_script=command), tmp_path)

    accepted = provider.request_machines("t1", 1).unwrap()
    before = len(signers(recording))
    time.sleep(7)  # the process lives on (as `ohf serve` does) while the credentials age
    for _ in range(3):
        provider.request_status(accepted.request_id).unwrap()
    provider.return_machines(*[m.machine_id for m in _machines(provider, accepted)]).unwrap()

    assert runs_of(runs) == 2
    used = [key for key, _ in signers(recording)]
    assert set(used[:before]) == {"AKIDSCRIPTRUN0001"}
    # Refreshed before they expired, and never used again once replaced.
    assert len(used) > before
    assert set(used[before:]) == {"AKIDSCRIPTRUN0002"}


def _machines(provider: Provider, accepted: Any) -> list[Any]:
    (request,) = provider.request_status(accepted.request_id).unwrap().requests
    return list(request.machines)


def test_the_script_is_the_source_of_an_assumed_role(
    tmp_path: Path, recorded: tuple[str, Path]
) -> None:
    url, recording = recorded
    command, runs = script_command(tmp_path)
    config = write_config(tmp_path, url, credential_script=command, role_arn=ROLE)
    provider = open_provider(config, tmp_path)

    provider.request_machines("t1", 1).unwrap()

    assert runs_of(runs) == 1
    used = signers(recording)
    sts = [key for key, service in used if service == "sts"]
    ec2 = {key for key, service in used if service == "ec2"}
    assert sts == ["AKIDSCRIPTRUN0001"]  # AssumeRole, signed with the script's keys
    assert ec2 and "AKIDSCRIPTRUN0001" not in ec2  # the role's keys for the rest


def test_a_failing_script_reaches_hfs_message_and_health(tmp_path: Path, aws: str) -> None:
    script = shell_script(
        tmp_path, "sso.sh", "echo 'token expired, run aws sso login' >&2\nexit 2\n"
    )
    conf = write_ibm_conf(
        tmp_path / "conf",
        aws,
        [
            {
                "templateId": "t1",
                "maxNumber": 4,
                "imageId": AL2023,
                "subnetId": default_subnet(aws),
                "vmType": "t3.micro",
            }
        ],
    )
    ibm = json.loads((conf / "awsprov_config.json").read_text())
    (conf / "awsprov_config.json").write_text(
        json.dumps({**ibm, "AWS_CREDENTIAL_SCRIPT": str(script)})
    )

    code, out, _ = run_ohf(
        "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}}, conf
    )

    assert code == 1
    assert isinstance(out, dict)
    assert str(script) in out["message"]
    assert "exited with code 2: token expired, run aws sso login" in out["message"]

    # `ohf health` prints this report.
    report = Provider.open(env=hf_env(conf), cwd=str(conf)).unwrap().health()
    assert not report.ok
    (row,) = [c for c in report.checks if c.check == "credentials"]
    assert not row.ok
    assert str(script) in row.detail and "exited with code 2" in row.detail


def test_a_script_printing_garbage_fails_the_call_naming_it(tmp_path: Path, aws: str) -> None:
    script = shell_script(tmp_path, "chatty.sh", f"echo 'Logging in... key {SECRET}'\n")
    provider = open_provider(write_config(tmp_path, aws, credential_script=str(script)), tmp_path)

    result = provider.request_machines("t1", 1)

    message = result.failure().message
    assert str(script) in message and "not JSON" in message
    assert SECRET not in message
    report = provider.health()
    (row,) = [c for c in report.checks if c.check == "credentials"]
    assert not row.ok and str(script) in row.detail


def test_a_hanging_script_fails_the_call_at_its_timeout(tmp_path: Path, aws: str) -> None:
    script = shell_script(tmp_path, "slow.sh", "sleep 30\n")
    config = write_config(tmp_path, aws, credential_script=str(script))
    config.write_text(
        config.read_text().replace(
            "[[templates]]", "credential_script_timeout = 1.0\n[[templates]]"
        )
    )
    provider = open_provider(config, tmp_path)

    started = time.monotonic()
    result = provider.request_machines("t1", 1)

    assert "did not finish within 1s" in result.failure().message
    assert str(script) in result.failure().message
    # Not retried: a credential failure is not transient.
    assert time.monotonic() - started < 10
