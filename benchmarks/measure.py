"""Measure one process as HF runs it: wall time, CPU time, peak RSS, and the AWS calls it made.

Each call runs under `child.py`, a tiny wrapper that times it and reaps it with `os.wait4`,
whose rusage belongs to that child alone (child.py says why the driver cannot spawn it itself).
AWS calls are counted on the moto_server side with its request recorder, so the two tools are
counted the same way.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CALL_TIMEOUT_SECONDS = 600.0
CHILD = Path(__file__).resolve().parent / "child.py"


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall: float  # seconds, fork to reap
    cpu: float  # seconds of user + system CPU of the child
    rss_mib: float  # peak resident set size of the child
    exit_code: int
    stdout: bytes
    stderr: bytes
    aws: Mapping[str, int] = field(default_factory=dict)  # AWS action -> calls
    server_cpu: float = 0.0  # seconds of moto_server CPU spent serving this run

    @property
    def aws_total(self) -> int:
        """Every AWS API call the run made."""
        return sum(self.aws.values())


def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = CALL_TIMEOUT_SECONDS
) -> Sample:
    """Run `argv` to completion; its wall time, CPU time, peak RSS, exit code and output."""
    cwd.mkdir(parents=True, exist_ok=True)
    # One pair of files per run: runs may go two at a time in the same directory.
    tag = f"{threading.get_ident()}-{time.monotonic_ns()}"
    out_path, err_path = cwd / f".bench-{tag}.out", cwd / f".bench-{tag}.err"
    wrapper = [sys.executable, "-I", "-S", str(CHILD), str(out_path), str(err_path)]
    with subprocess.Popen(
        [*wrapper, *argv],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills wrapper and call alike
    ) as proc:
        try:
            said, moaned = proc.communicate(timeout=timeout)
            report = json.loads(said) if proc.returncode == 0 else None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            said, moaned = proc.communicate()
            report = {"wall": timeout, "cpu": 0.0, "maxrss_kib": 0, "exit": -9}
    if report is None:
        raise RuntimeError(f"the measuring wrapper failed: {moaned.decode()[-2000:]}")
    stdout = out_path.read_bytes() if out_path.exists() else b""
    stderr = err_path.read_bytes() if err_path.exists() else b""
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    return Sample(
        wall=float(report["wall"]),
        cpu=float(report["cpu"]),
        rss_mib=int(report["maxrss_kib"]) / 1024,  # KiB on Linux
        exit_code=int(report["exit"]),
        stdout=stdout,
        stderr=stderr,
    )


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30).close()


class Recorder:
    """moto_server's request recorder: which AWS actions it served between start() and stop()."""

    def __init__(self, url: str) -> None:
        self.base = f"{url}/moto-api/recorder"

    def start(self) -> None:
        """Forget earlier requests and record from now on."""
        _post(f"{self.base}/reset-recording")
        _post(f"{self.base}/start-recording")

    def stop(self) -> dict[str, int]:
        """Stop recording; the actions served since start(), counted."""
        _post(f"{self.base}/stop-recording")
        with urllib.request.urlopen(f"{self.base}/download-recording", timeout=60) as answer:
            text = answer.read().decode("utf-8", "replace")
        return dict(collections.Counter(map(action_of, filter(None, text.splitlines()))))


def action_of(line: str) -> str:
    """The AWS action of one recorded request (query protocol, JSON protocol, or REST)."""
    entry = json.loads(line)
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    if target := headers.get("x-amz-target"):
        return str(target).rsplit(".", 1)[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    query = urllib.parse.urlsplit(entry.get("url", "")).query
    for text in (body, query):
        if action := dict(urllib.parse.parse_qsl(text)).get("Action"):
            return action
    return f"{entry.get('method')} {urllib.parse.urlsplit(entry.get('url', '')).path}"


def counted(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    recorder: Recorder,
    server_pid: int,
) -> Sample:
    """`spawn`, with the AWS calls the run made and the moto_server CPU it cost."""
    recorder.start()
    before = process_cpu(server_pid)
    sample = spawn(argv, env, cwd)
    server_cpu = process_cpu(server_pid) - before
    aws = recorder.stop()
    return Sample(
        wall=sample.wall,
        cpu=sample.cpu,
        rss_mib=sample.rss_mib,
        exit_code=sample.exit_code,
        stdout=sample.stdout,
        stderr=sample.stderr,
        aws=aws,
        server_cpu=server_cpu,
    )
