"""The demo's pure side: what HF must get at each step, the demo's conf files, rendering."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ohf.messages import OUTPUTS

REGION = "us-east-1"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
TEMPLATE_ID = "OnDemand-c5"
MAX_NUMBER = 10
MACHINES = 3

STEP_COUNT = 6


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one step: did HF get what it expects, and what was checked."""

    ok: bool
    summary: str


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
