"""The floors every HF call is compared with, measured in the same run as the calls.

- `pass`: `python -c pass`, what any Python process costs;
- `deps`: importing ohf's runtime dependencies (`msgspec`, `returns.result`, `toolz`,
  `tomllib`), the least a Python provider built on them can cost (issue 17's dependency floor);
- `boto3`: a process making a bare `boto3.client('ec2')`, what a provider that talks to AWS
  through boto3 pays before its first call (issue 17's boto3 floor).

Each runs with ohf's virtualenv interpreter and ohf's environment (region and credentials from
the environment, no AWS config files), once per round of the light calls, between the tools.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from measure import Sample, spawn

FLOORS: dict[str, tuple[str, str]] = {
    "pass": ("`python -c pass` (floor)", "pass"),
    "deps": (
        "`import msgspec, returns.result, toolz, tomllib` (dependency floor)",
        "import msgspec, returns.result, toolz, tomllib",
    ),
    "boto3": ("`boto3.client('ec2')` (boto3 floor)", "import boto3; boto3.client('ec2')"),
}


def label(name: str) -> str:
    """How the report names a floor."""
    return FLOORS[name][0]


def measure(python: str, cwd: Path, env: Mapping[str, str]) -> dict[str, Sample]:
    """One run of every floor."""
    return {name: spawn([python, "-c", code], env, cwd) for name, (_, code) in FLOORS.items()}


def rss_floor(cwd: Path) -> float:
    """The peak RSS a child inherits from the measuring wrapper (it runs `true`), MiB."""
    true = shutil.which("true") or "/bin/true"
    return spawn([true], {"PATH": os.environ.get("PATH", "")}, cwd).rss_mib
