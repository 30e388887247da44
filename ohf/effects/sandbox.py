"""`ohf demo`: the whole HF lifecycle, as real `python -m ohf` calls, against a local moto_server.

It needs no AWS account: a throw-away moto_server plays AWS, a temp dir plays HF's provider conf
dir, and every call runs as a fresh process the way HF runs the provider's scripts. The checks
that decide whether a step gave what HF expects are pure functions (`sandbox_checks`),
tested on their own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ohf.effects.sandbox_checks import (
    AL2023,
    MACHINES,
    STEP_COUNT,
    TEMPLATE_ID,
    Check,
    check_accepted,
    check_acquired,
    check_no_reclaims,
    check_returned,
    check_templates,
    child_env,
    decode_reply,
    failed,
    find_request,
    ibm_conf,
    judge,
    machine_refs,
    render,
    request_open,
    verdict,
)

POLLS = 20
POLL_SECONDS = 0.5
SERVER_START_SECONDS = 20.0
CALL_TIMEOUT_SECONDS = 60.0
INSTALL_HINT = "install the sandbox extra: pip install 'ohf-aws[sandbox]'"

_SUBNET_LOOKUP = (
    "import boto3\n"
    "ec2 = boto3.client('ec2')\n"
    "vpcs = ec2.describe_vpcs(Filters=[{'Name': 'is-default', 'Values': ['true']}])['Vpcs']\n"
    "vpc = vpcs[0]['VpcId']\n"
    "subnets = ec2.describe_subnets(Filters=[{'Name': 'vpc-id', 'Values': [vpc]}])['Subnets']\n"
    "print(sorted(subnets, key=lambda s: s['AvailabilityZone'])[0]['SubnetId'])\n"
)


class DemoError(Exception):
    """The sandbox itself could not be set up (as opposed to a step giving a wrong answer)."""


class CallResult(msgspec.Struct, frozen=True, kw_only=True):
    """One `python -m ohf CALL -f FILE` run, as HF would see it."""

    call: str
    input_path: str
    exit_code: int
    stdout: bytes
    stderr: str
    seconds: float


class Sandbox(msgspec.Struct, frozen=True, kw_only=True):
    """Where the demo runs: the conf dir, the child environment and the server URL."""

    root: str
    env: dict[str, str]
    url: str


def _mark(ok: bool) -> str:
    symbol = "\u2713" if ok else "\u2717"
    encoding = sys.stdout.encoding or "ascii"
    try:
        symbol.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        symbol = "ok" if ok else "x"
    return symbol if ok else f"{symbol} FAIL:"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _pretty(document: Any) -> str:
    return "\n".join("    " + line for line in render(document).splitlines())


def _show_call(result: CallResult, payload: Any, document: Any) -> None:
    _say(f"  $ python -m ohf {result.call} -f {result.input_path}")
    _say("  input:")
    _say(_pretty(payload))
    _say(f"  output (exit {result.exit_code}, {result.seconds:.2f} s):")
    if document is None:
        _say("    " + result.stdout.decode("utf-8", "replace").rstrip())
    else:
        _say(_pretty(document))
    if result.exit_code != 0 and result.stderr.strip():
        _say("  stderr:")
        _say("\n".join("    " + line for line in result.stderr.strip().splitlines()[-15:]))


def _show_check(check: Check) -> None:
    _say(f"  {_mark(check.ok)} {check.summary}")
    _say()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_installed() -> bool:
    return importlib.util.find_spec("moto") is not None


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """A moto_server on a free loopback port for the duration of the block; always stopped."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(proc, url, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = log_path.read_text("utf-8", "replace")
            if "ModuleNotFoundError" in output or "No module named" in output:
                raise DemoError(f"moto_server cannot start: {INSTALL_HINT}\n{output[-800:]}")
            raise DemoError(f"moto_server exited with code {proc.returncode}:\n{output[-800:]}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"moto_server did not answer on {url} within {SERVER_START_SECONDS:.0f} s")


def _default_subnet(env: Mapping[str, str], url: str) -> str:
    # Looked up in a child with the sandbox env, so the user's AWS profile/config never matters.
    lookup_env = {**env, "AWS_ENDPOINT_URL": url}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _SUBNET_LOOKUP],
            env=lookup_env,
            capture_output=True,
            timeout=CALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError("looking up the default subnet timed out") from exc
    subnet = proc.stdout.decode().strip()
    if proc.returncode != 0 or not subnet.startswith("subnet-"):
        raise DemoError(f"cannot find the default VPC's subnet: {proc.stderr.decode()[-800:]}")
    return subnet


def _write_conf(root: Path, url: str, subnet: str) -> None:
    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name, document in ibm_conf(url, subnet).items():
        (conf / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def run_call(sandbox: Sandbox, step: int, call: str, payload: Any) -> CallResult:
    """Run one HF call as HF does: input JSON in a file, a fresh `python -m ohf` process."""
    input_path = Path(sandbox.root) / "in" / f"{step:02d}-{call}-{time.monotonic_ns()}.json"
    input_path.parent.mkdir(parents=True, exist_ok=True)
    input_path.write_text(json.dumps(payload), encoding="utf-8")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ohf", call, "-f", str(input_path)],
            env=sandbox.env,
            capture_output=True,
            timeout=CALL_TIMEOUT_SECONDS,
            check=False,
        )
        exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, stdout = -1, exc.stdout or b""
        stderr = f"timed out after {CALL_TIMEOUT_SECONDS:.0f} s".encode()
    return CallResult(
        call=call,
        input_path=str(input_path),
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr.decode("utf-8", "replace"),
        seconds=time.perf_counter() - started,
    )


def _step_once(
    sandbox: Sandbox,
    checks: list[Check],
    title: str,
    call: str,
    payload: Any,
    semantic: Callable[[Any], Check],
) -> Any:
    """Run a call once, print it and its verdict (added to `checks`); the answer, or None."""
    _say(f"== step {len(checks) + 1}/{STEP_COUNT}: {title} ==")
    result = run_call(sandbox, len(checks) + 1, call, payload)
    document, check = judge(call, result.exit_code, result.stdout, semantic)
    _show_call(result, payload, document)
    return _record(checks, check, document)


def _step_poll(
    sandbox: Sandbox,
    checks: list[Check],
    title: str,
    request_id: str,
    semantic: Callable[[Any], Check],
) -> Any:
    """Poll getRequestStatus as HF does until the request is no longer `running`."""
    _say(f"== step {len(checks) + 1}/{STEP_COUNT}: {title} ==")
    payload = {"requests": [{"requestId": request_id}]}
    for attempt in range(1, POLLS + 1):
        result = run_call(sandbox, len(checks) + 1, "getRequestStatus", payload)
        document, broken = decode_reply("getRequestStatus", result.exit_code, result.stdout)
        entry = find_request(document, request_id) or {}
        _say(f"  poll {attempt}: {entry.get('status', '?')} ({result.seconds:.2f} s)")
        if broken is not None or not request_open(document, request_id):
            break
        time.sleep(POLL_SECONDS)
    document, check = judge("getRequestStatus", result.exit_code, result.stdout, semantic)
    if not check.ok and request_open(document, request_id):
        check = failed(f"still running after {POLLS} polls, {POLL_SECONDS} s apart")
    _show_call(result, payload, document)
    return _record(checks, check, document)


def _record(checks: list[Check], check: Check, document: Any) -> Any:
    _show_check(check)
    checks.append(check)
    return document if check.ok else None


def lifecycle(sandbox: Sandbox) -> list[Check]:
    """Run the six HF steps in order, stopping at the first that fails; their verdicts."""
    checks: list[Check] = []
    if (
        _step_once(
            sandbox, checks, "getAvailableTemplates", "getAvailableTemplates", {}, check_templates
        )
        is None
    ):
        return checks
    ask = {"template": {"templateId": TEMPLATE_ID, "machineCount": MACHINES}}
    accepted = _step_once(
        sandbox, checks, f"requestMachines {MACHINES}", "requestMachines", ask, check_accepted
    )
    if accepted is None:
        return checks
    req_id = accepted["requestId"]
    acquired = _step_poll(
        sandbox,
        checks,
        f"getRequestStatus {req_id} until complete",
        req_id,
        lambda out: check_acquired(out, req_id, MACHINES),
    )
    if acquired is None:
        return checks
    refs = machine_refs(acquired, req_id)
    ids = [r["machineId"] for r in refs]
    returned = _step_once(
        sandbox,
        checks,
        f"requestReturnMachines ({len(refs)} machines)",
        "requestReturnMachines",
        {"machines": refs},
        check_accepted,
    )
    if returned is None:
        return checks
    ret_id = returned["requestId"]
    done = _step_poll(
        sandbox,
        checks,
        f"getRequestStatus {ret_id} until complete",
        ret_id,
        lambda out: check_returned(out, ret_id, ids),
    )
    if done is None:
        return checks
    _step_once(
        sandbox,
        checks,
        "getReturnRequests (the returned machines)",
        "getReturnRequests",
        {"machines": refs},
        check_no_reclaims,
    )
    return checks


def _report(checks: Sequence[Check], seconds: float) -> int:
    code = verdict(checks)
    if code == 0:
        _say(f"demo: all {STEP_COUNT} steps passed in {seconds:.1f} s")
    else:
        failing = next((i for i, c in enumerate(checks, 1) if not c.ok), len(checks) + 1)
        reason = checks[failing - 1].summary if failing <= len(checks) else "did not run"
        _say(f"demo: FAILED at step {failing}/{STEP_COUNT}: {reason}")
    return code


def demo(keep: bool = False) -> int:
    """`ohf demo`: the HF lifecycle against a local moto_server; 0 only if every step passed."""
    if not _moto_installed():
        _say(INSTALL_HINT)
        return 1
    started = time.perf_counter()
    _say("ohf demo: the Host Factory lifecycle against a local moto_server (no AWS account)")
    try:
        root = Path(tempfile.mkdtemp(prefix="ohf-demo-"))
    except OSError as exc:
        _say(f"demo: FAIL: cannot create a temp dir: {exc}")
        return 1
    checks: list[Check] = []
    try:
        env = child_env(os.environ, root)
        with moto_server(root / "moto_server.log") as url:
            _say(f"  moto_server  {url} (up after {time.perf_counter() - started:.1f} s)")
            subnet = _default_subnet(env, url)
            _write_conf(root, url, subnet)
            _say(f"  conf dir     {root / 'conf'} (awsprov_config.json, awsprov_templates.json)")
            _say(
                f"  kept after   {root} (conf/, work/, log/ohf.log, moto_server.log)"
                if keep
                else "  (removed at the end; --keep keeps it with the state and logs)"
            )
            _say(f"  template     {TEMPLATE_ID}: c5.large, {AL2023}, {subnet}")
            _say()
            checks = lifecycle(Sandbox(root=str(root), env=env, url=url))
    except (DemoError, OSError) as exc:
        _say(f"demo: FAIL: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("demo: interrupted")
        return 130
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return _report(checks, time.perf_counter() - started)
