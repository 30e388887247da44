"""`ohf demo`: the whole HF lifecycle, as real `python -m ohf` calls, against a local moto_server.

It needs no AWS account: a throw-away moto_server plays AWS, a temp dir plays HF's provider conf
dir, and every call runs as a fresh process the way HF runs the provider's scripts. The checks
that decide whether a step gave what HF expects are pure functions, tested on their own.
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

from ohf.messages import OUTPUTS

REGION = "us-east-1"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
TEMPLATE_ID = "OnDemand-c5"
MAX_NUMBER = 10
MACHINES = 3
POLLS = 20
POLL_SECONDS = 0.5
SERVER_START_SECONDS = 20.0
CALL_TIMEOUT_SECONDS = 60.0
INSTALL_HINT = "install the sandbox extra: pip install 'ohf-aws[sandbox]'"
STEP_COUNT = 6

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


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one step: did HF get what it expects, and what was checked."""

    ok: bool
    summary: str


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


def passed(summary: str) -> Check:
    """A check that held."""
    return Check(ok=True, summary=summary)


def failed(summary: str) -> Check:
    """A check that did not hold."""
    return Check(ok=False, summary=summary)


def decode_reply(call: str, exit_code: int, stdout: bytes) -> tuple[Any, Check | None]:
    """HF's contract for any call: exit 0 and one JSON document of the call's shape.

    Returns the decoded document, and a failed Check when the contract is broken.
    """
    try:
        document = msgspec.json.decode(stdout)
    except msgspec.DecodeError as exc:
        return None, failed(f"stdout is not one JSON document ({exc}): {stdout[:200]!r}")
    if exit_code != 0:
        message = document.get("message") if isinstance(document, dict) else None
        return document, failed(f"exit code {exit_code}: {message or 'no message'}")
    try:
        msgspec.json.decode(stdout, type=OUTPUTS[call])
    except msgspec.ValidationError as exc:
        return document, failed(f"not the shape HF expects for {call}: {exc}")
    return document, None


def judge(
    call: str, exit_code: int, stdout: bytes, semantic: Callable[[Any], Check]
) -> tuple[Any, Check]:
    """The verdict on a call's raw answer: HF's contract first, then what this step expects."""
    document, broken = decode_reply(call, exit_code, stdout)
    return document, broken if broken is not None else semantic(document)


def check_templates(out: Mapping[str, Any]) -> Check:
    """getAvailableTemplates lists the demo template, unused, with HF's mandatory attributes."""
    templates = out.get("templates", [])
    found = [t for t in templates if t.get("templateId") == TEMPLATE_ID]
    if len(templates) != 1 or not found:
        ids = [t.get("templateId") for t in templates]
        return failed(f"expected exactly template {TEMPLATE_ID!r}, got {ids}")
    template = found[0]
    if template.get("maxNumber") != MAX_NUMBER or template.get("availableNumber") != MAX_NUMBER:
        return failed(
            f"expected maxNumber = availableNumber = {MAX_NUMBER}, got "
            f"{template.get('maxNumber')} / {template.get('availableNumber')}"
        )
    attrs = template.get("attributes", {})
    missing = [k for k in ("type", "ncpus", "nram") if not _attribute_pair(attrs.get(k))]
    if missing:
        return failed(f"attributes {missing} missing or not [kind, string] pairs: {attrs}")
    return passed(
        f"1 template {TEMPLATE_ID}, {MAX_NUMBER} of {MAX_NUMBER} available, "
        f"type={attrs['type'][1]} ncpus={attrs['ncpus'][1]} nram={attrs['nram'][1]} MiB"
    )


def _attribute_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def check_accepted(out: Mapping[str, Any]) -> Check:
    """requestMachines / requestReturnMachines answered with a request id to poll."""
    request_id = out.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        return failed(f"no requestId in the answer: {out}")
    return passed(f"accepted as {request_id}")


def find_request(out: Any, request_id: str) -> Mapping[str, Any] | None:
    """The entry for `request_id` in a getRequestStatus answer, if it has one."""
    requests = out.get("requests") if isinstance(out, Mapping) else None
    if not isinstance(requests, list):
        return None
    return next(
        (r for r in requests if isinstance(r, Mapping) and r.get("requestId") == request_id),
        None,
    )


def request_open(out: Any, request_id: str) -> bool:
    """True while HF would keep polling `request_id` (its status is still `running`)."""
    entry = find_request(out, request_id)
    return entry is not None and entry.get("status") == "running"


def _not_complete(entry: Mapping[str, Any]) -> Check:
    message = entry.get("message") or "no message"
    return failed(f"status {entry.get('status')!r}, expected 'complete': {message}")


def check_acquired(out: Mapping[str, Any], request_id: str, count: int) -> Check:
    """An acquire request is complete: `count` machines, all `succeed`, running, named, with IP."""
    entry = find_request(out, request_id)
    if entry is None:
        return failed(f"{request_id} is not in the answer")
    machines = entry.get("machines", [])
    if entry.get("status") != "complete":
        return _not_complete(entry)
    if len(machines) != count:
        return failed(f"{len(machines)} machines, expected {count}")
    unready = [
        m.get("machineId")
        for m in machines
        if m.get("result") != "succeed"
        or m.get("status") != "running"
        or not m.get("privateIpAddress")
        or not m.get("name")
        or not isinstance(m.get("launchtime"), int)
    ]
    if unready:
        return failed(f"not succeed+running with name, IP and launchtime: {unready}")
    return passed(f"complete: {count} machines, all succeed, running, with name and private IP")


def check_returned(out: Mapping[str, Any], request_id: str, machine_ids: Sequence[str]) -> Check:
    """A return request is complete: exactly the returned machines, all `succeed`, terminated."""
    entry = find_request(out, request_id)
    if entry is None:
        return failed(f"{request_id} is not in the answer")
    if entry.get("status") != "complete":
        return _not_complete(entry)
    machines = entry.get("machines", [])
    got = sorted(m.get("machineId") for m in machines)
    if got != sorted(machine_ids):
        return failed(f"machines {got}, expected {sorted(machine_ids)}")
    alive = [
        m.get("machineId")
        for m in machines
        if m.get("result") != "succeed" or m.get("status") not in ("terminated", "gone")
    ]
    if alive:
        return failed(f"not succeed+terminated: {alive}")
    return passed(f"complete: {len(machines)} machines, all succeed, terminated")


def check_no_reclaims(out: Mapping[str, Any]) -> Check:
    """getReturnRequests lists nothing: the machines HF returned itself are not cloud reclaims."""
    reclaims = out.get("requests", [])
    if reclaims:
        return failed(f"expected no reclaims, got {[r.get('machineId') for r in reclaims]}")
    return passed("no reclaims: HF returned these machines itself, so the cloud took none back")


def machine_refs(out: Mapping[str, Any], request_id: str) -> list[dict[str, str]]:
    """The machines of `request_id` as HF names them in requestReturnMachines."""
    entry = find_request(out, request_id) or {}
    return [
        {"name": str(m.get("name", "")), "machineId": str(m.get("machineId", ""))}
        for m in entry.get("machines", [])
    ]


def verdict(checks: Sequence[Check]) -> int:
    """The demo's exit code: 0 only when all steps ran and every check held."""
    return 0 if len(checks) == STEP_COUNT and all(c.ok for c in checks) else 1


def ibm_conf(url: str, subnet: str) -> dict[str, Any]:
    """The IBM-format conf files of the demo: file name -> JSON document."""
    return {
        "awsprov_config.json": {
            "LogLevel": "DEBUG",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": url,
        },
        "awsprov_templates.json": {
            "templates": [
                {
                    "templateId": TEMPLATE_ID,
                    "maxNumber": MAX_NUMBER,
                    "imageId": AL2023,
                    "subnetId": subnet,
                    "vmType": "c5.large",
                    "instanceTags": "cluster=ohf-demo",
                }
            ]
        },
    }


def child_env(base: Mapping[str, str], root: Path) -> dict[str, str]:
    """The environment of every child: HF's variables and fake credentials, no user AWS config."""
    env = {
        k: v
        for k, v in base.items()
        # The user's own profile, config file or ohf config must not leak into the sandbox.
        if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "OHF_CONFIG", "PRO_CONF_DIR")
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(root / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(root / "no-aws-credentials"),
        HF_PROVIDER_NAME="aws",
        HF_PROVIDER_CONFDIR=str(root / "conf"),
        HF_PROVIDER_WORKDIR=str(root / "work"),
        HF_PROVIDER_LOGDIR=str(root / "log"),
    )
    return env


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


def render(value: Any, indent: str = "") -> str:
    """JSON indented by 2, but with a list of scalars (HF's attribute pairs) kept on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {render(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [inner + render(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value)


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
