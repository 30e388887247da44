"""What the figures were measured on: CPU, memory, OS, Python, both tools' package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_VERSIONS = (
    "import importlib.metadata as m, sys\n"
    "print(sys.version.split()[0])\n"
    "for name in sys.argv[1:]:\n"
    "    try: print(name, m.version(name))\n"
    "    except m.PackageNotFoundError: pass\n"
)


def _output(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _versions(python: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    lines = _output([python, "-c", _VERSIONS, *names]).splitlines()
    if not lines:
        return "?", {}
    return lines[0], dict(line.split(" ", 1) for line in lines[1:])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def machine(ohf_python: str, orb: str | None) -> dict[str, Any]:
    """What the figures were measured on."""
    import moto

    python, ohf_packages = _versions(
        ohf_python, ["ohf-aws", "boto3", "botocore", "msgspec", "returns", "toolz"]
    )
    orb_python = str(Path(orb).parent / "python") if orb else None
    _, orb_packages = (
        _versions(orb_python, ["orb-py", "boto3", "botocore", "pydantic"])
        if orb_python
        else ("?", {})
    )
    commit = _output(["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"])
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram": _ram_gib(),
        "os": f"{_os_name()}, Linux {platform.release()}",
        "python": python,
        "ohf": ohf_packages,
        "ohf_commit": commit or "?",
        "orb": orb_packages,
        "moto": moto.__version__,
    }
