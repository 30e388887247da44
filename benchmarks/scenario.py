"""The benchmark's world: moto_servers, the two tools configured against them, and their state.

Each tool gets its own moto_server (same moto, same patch, same scenario), so neither tool's
AWS calls see the other's instances. The scenario is the one in issue 6: one RunInstances
template (c5.large, a subnet of the default VPC and its default security group, an Amazon Linux 2
AMI from moto's preloaded images) and N requests holding M machines, made through the tool itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import Recorder, Sample, spawn

REGION = "us-east-1"
TEMPLATE_ID = "bench-c5"
INSTANCE_TYPE = "c5.large"
MAX_NUMBER = 10_000
BENCH_CIDR = "172.31.128.0/17"  # free in the default VPC (172.31.0.0/16; its subnets are /20s)
ORB_VERSION = "1.8.5"
SERVER_START_SECONDS = 60.0
HERE = Path(__file__).resolve().parent

CALLS = (
    "getAvailableTemplates",
    "requestMachines",
    "getRequestStatus",
    "requestReturnMachines",
    "getReturnRequests",
)
# HF call -> ORB command (ORB's own HF scripts run `orb <these> -f FILE`).
ORB_COMMANDS: Mapping[str, tuple[str, ...]] = {
    "getAvailableTemplates": ("templates", "list"),
    "requestMachines": ("machines", "request"),
    "getRequestStatus": ("requests", "status"),
    "requestReturnMachines": ("machines", "return"),
    "getReturnRequests": ("requests", "list-returns"),
}


class BenchError(Exception):
    """The benchmark could not set something up."""


@dataclass(frozen=True)
class Server:
    """A running moto_server."""

    url: str
    pid: int
    recorder: Recorder


@dataclass(frozen=True)
class Network:
    """What a template needs from the (moto) account."""

    subnet: str
    security_group: str
    image: str
    image_name: str


@dataclass(frozen=True)
class Tool:
    """One HF provider, ready to run HF calls against its moto_server."""

    name: str
    prefix: tuple[str, ...]  # the command, before the call
    env: Mapping[str, str]
    root: Path  # its conf/work/log dirs and inputs live here
    server: Server

    def argv(self, call: str, input_path: Path) -> list[str]:
        """The command line HF's script for `call` would run."""
        if self.name == "ORB":
            return [*self.prefix, *ORB_COMMANDS[call], "-f", str(input_path)]
        return [*self.prefix, call, "-f", str(input_path)]

    def write_input(self, call: str, payload: Any) -> Path:
        """HF's input file for a call."""
        path = self.root / "in" / f"{call}-{time.monotonic_ns()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload), encoding="utf-8")
        return path

    def run(self, call: str, payload: Any) -> Sample:
        """Run one HF call, uncounted (scenario building)."""
        return spawn(self.argv(call, self.write_input(call, payload)), self.env, self.root)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(root: Path, name: str) -> Iterator[Server]:
    """A patched moto_server (moto_bench.py) on a free loopback port, stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(root / f"{name}-recording.jsonl")}
    env.pop("MOTO_ENABLE_RECORDING", None)  # recording is switched on per measured call
    log_path = root / f"{name}-moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "moto_bench.py"), "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(proc, url, log_path)
            yield Server(url=url, pid=proc.pid, recorder=Recorder(url))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text("utf-8", "replace")[-2000:]
            raise BenchError(f"moto_server exited with code {proc.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"moto_server did not answer on {url} within {SERVER_START_SECONDS:.0f} s")


def aws_env(url: str) -> dict[str, str]:
    """Fake credentials and the endpoint, and nothing of the user's own AWS configuration."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OHF_", "ORB_", "HF_", "PRO_", "MOTO_"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        # ORB's endpoint_url setting does not reach every client it makes (MOTO_NOTES.md).
        AWS_ENDPOINT_URL=url,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def discover(url: str) -> Network:
    """A roomy subnet in the default VPC, its default security group, an Amazon Linux 2 AMI.

    The default VPC's own subnets are /20 (4,091 addresses, in moto as in EC2): fewer than the
    scaling table's 5,000 machines and about what a full run launches per server. So the
    benchmark adds a /17 (32,763 addresses) to the default VPC, in the first default subnet's AZ.
    """
    import boto3

    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    default = [{"Name": "is-default", "Values": ["true"]}]
    vpc = ec2.describe_vpcs(Filters=default)["Vpcs"][0]["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    zone = sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]["AvailabilityZone"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=BENCH_CIDR, AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    named_default = [*in_vpc, {"Name": "group-name", "Values": ["default"]}]
    group = ec2.describe_security_groups(Filters=named_default)["SecurityGroups"][0]["GroupId"]
    images = [
        i
        for i in ec2.describe_images(Owners=["amazon"])["Images"]
        if i.get("Name", "").startswith("amzn2-ami-hvm") and i.get("Architecture") == "x86_64"
    ]
    if not images:
        raise BenchError("moto preloads no x86_64 Amazon Linux 2 AMI")
    image = max(images, key=lambda i: i["Name"])
    return Network(
        subnet=subnet, security_group=group, image=image["ImageId"], image_name=image["Name"]
    )


def ohf_tool(python: str, root: Path, server: Server, network: Network) -> Tool:
    """ohf with an IBM-format conf dir (awsprov_config.json, awsprov_templates.json)."""
    shutil.rmtree(root, ignore_errors=True)
    conf = root / "conf"
    conf.mkdir(parents=True)
    (conf / "awsprov_config.json").write_text(
        json.dumps({"AWS_REGION": REGION, "AWS_ENDPOINT_URL": server.url, "LogLevel": "INFO"})
    )
    template = {
        "templateId": TEMPLATE_ID,
        "maxNumber": MAX_NUMBER,
        "vmType": INSTANCE_TYPE,
        "imageId": network.image,
        "subnetId": network.subnet,
        "securityGroupIds": [network.security_group],
    }
    (conf / "awsprov_templates.json").write_text(json.dumps({"templates": [template]}))
    env = aws_env(server.url)
    env.update(
        HF_PROVIDER_NAME="aws",
        HF_PROVIDER_CONFDIR=str(conf),
        HF_PROVIDER_WORKDIR=str(root / "work"),
        HF_PROVIDER_LOGDIR=str(root / "log"),
    )
    return Tool(name="ohf", prefix=(python, "-m", "ohf"), env=env, root=root, server=server)


def orb_tool(orb: str, root: Path, server: Server, network: Network) -> Tool:
    """ORB set up as MOTO_NOTES.md found to work: `orb init`, then an HF-format template file."""
    shutil.rmtree(root, ignore_errors=True)
    conf, work, logs = root / "conf", root / "work", root / "logs"
    for d in (conf, work, logs):
        d.mkdir(parents=True)
    env = aws_env(server.url)
    env.update(
        ORB_CONFIG_DIR=str(conf),
        ORB_WORK_DIR=str(work),
        ORB_LOG_DIR=str(logs),
        ORB_SCRIPTS_DIR=str(root / "scripts"),
        HF_PROVIDER_NAME="aws",
        HF_PROVIDER_CONFDIR=str(conf),
        HF_PROVIDER_WORKDIR=str(work),
        HF_PROVIDER_LOGDIR=str(logs),
        # What ORB's own HF scripts (invoke_provider.sh) export before running `orb`.
        HF_LOGGING_CONSOLE_ENABLED="false",
    )
    init = [
        orb,
        "init",
        "--non-interactive",
        "--force",
        "--scheduler",
        "hostfactory",
        "--provider-type",
        "aws",
        "--config-dir",
        str(conf),
        "--aws-region",
        REGION,
        "--subnet-ids",
        network.subnet,
        "--security-group-ids",
        network.security_group,
    ]
    done = spawn(init, env, root)
    if done.exit_code != 0 or not (conf / "config.json").exists():
        raise BenchError(f"`orb init` failed (exit {done.exit_code}): {_tail(done)}")
    template = {
        "templateId": TEMPLATE_ID,
        "maxNumber": MAX_NUMBER,
        "providerApi": "RunInstances",
        "priceType": "ondemand",
        "vmType": INSTANCE_TYPE,
        "imageId": network.image,
        "subnetIds": [network.subnet],
        "securityGroupIds": [network.security_group],
    }
    (conf / "aws_templates.json").write_text(json.dumps({"templates": [template]}))
    prefix = (orb, "--config", str(conf / "config.json"))
    return Tool(name="ORB", prefix=prefix, env=env, root=root, server=server)


def _tail(sample: Sample, limit: int = 1500) -> str:
    text = (sample.stdout + b"\n" + sample.stderr).decode("utf-8", "replace").strip()
    return text[-limit:]


def reply(tool: Tool, call: str, sample: Sample) -> dict[str, Any]:
    """The call's JSON answer; BenchError (with what the tool said) if it failed."""
    try:
        document = json.loads(sample.stdout)
    except ValueError:
        document = None
    if sample.exit_code != 0 or not isinstance(document, dict):
        raise BenchError(f"{tool.name} {call} failed (exit {sample.exit_code}): {_tail(sample)}")
    return document


def request_ids(tool: Tool, answers: Sequence[tuple[Sample, str]]) -> list[str]:
    """The request ids of requestMachines answers (BenchError on the first failure)."""
    return [str(reply(tool, call, s)["requestId"]) for s, call in answers]


def build(tool: Tool, requests: int, machines_each: int, workers: int = 2) -> list[str]:
    """`requests` requestMachines calls of `machines_each` machines, through the tool itself.

    `workers` at a time: HF itself overlaps calls, and two at a time halves the time spent
    starting interpreters on a 2-core machine, for a tool whose store takes concurrent calls.
    """
    ask = {"template": {"templateId": TEMPLATE_ID, "machineCount": machines_each}}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        samples = list(pool.map(lambda _: tool.run("requestMachines", ask), range(requests)))
    return request_ids(tool, [(s, "requestMachines") for s in samples])


def build_orb_in_process(tool: Tool, requests: int, machines_each: int) -> list[str]:
    """ORB's requests through its CLI entry point, one after another in one process.

    orb_build.py says why; BenchError if any request failed (the caller can fall back to
    `orb` processes).
    """
    ask = tool.write_input(
        "requestMachines",
        {"template": {"templateId": TEMPLATE_ID, "machineCount": machines_each}},
    )
    python = str(Path(tool.prefix[0]).parent / "python")
    config = tool.prefix[tool.prefix.index("--config") + 1]
    argv = [python, str(HERE / "orb_build.py"), config, str(ask), str(requests)]
    try:
        done = subprocess.run(
            argv, env=dict(tool.env), cwd=tool.root, capture_output=True, timeout=3600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError("building ORB's requests in one process timed out") from exc
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
    failed = [a for a in answers if a["exit"] != 0]
    if done.returncode != 0 or len(answers) != requests or failed:
        said = failed[0]["out"] if failed else done.stderr.decode("utf-8", "replace")
        raise BenchError(
            f"orb_build.py: exit {done.returncode}, {len(answers)} answers: {said[-1500:]}"
        )
    try:
        return [str(json.loads(a["out"])["requestId"]) for a in answers]
    except (ValueError, KeyError) as exc:
        raise BenchError(f"orb_build.py: an answer without requestId: {exc}") from exc


def status_payload(ids: Sequence[str]) -> dict[str, Any]:
    """getRequestStatus input for these requests."""
    return {"requests": [{"requestId": i} for i in ids]}


def machine_states(answer: Mapping[str, Any]) -> Counter[tuple[str, str]]:
    """How many machines a getRequestStatus answer lists in each (status, result)."""
    return Counter(
        (str(m.get("status")), str(m.get("result")))
        for r in answer.get("requests", [])
        for m in r.get("machines", [])
    )


def incomplete(
    tool: Tool, answer: Mapping[str, Any], expected: Counter[tuple[str, str]]
) -> str | None:
    """Why a repeated getRequestStatus answer is not the full one HF got before, or None.

    Nothing changes between two polls of the scenario, so a full answer lists the same machines
    in the same states; a tool that could not reach AWS answers with fewer, or older, ones.
    """
    got = machine_states(answer)
    if got == expected:
        return None
    messages = sorted({str(r.get("message")) for r in answer.get("requests", [])})[:2]
    return (
        f"{tool.name} getRequestStatus listed {dict(got)} where the scenario holds "
        f"{dict(expected)}: {messages}"
    )


def held_machines(answer: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """request id -> its machines as HF names them in requestReturnMachines."""
    return {
        r["requestId"]: [
            {"name": str(m.get("name") or ""), "machineId": str(m["machineId"])}
            for m in r.get("machines", [])
        ]
        for r in answer.get("requests", [])
    }
