#!/usr/bin/env python3
"""Regenerate ``ohf/data/instance_types.json``, the bundled EC2 instance-type catalogue.

The provider needs vCPU, physical-core, memory and architecture figures for
every instance type to build Host Factory templates, and it must not call
``DescribeInstanceTypes`` on the hot path to get them.  This developer tool
snapshots those figures into a small JSON file that ships with the package.

Two sources are supported:

* the EC2 ``DescribeInstanceTypes`` API (``--region``, optional
  ``--endpoint-url``), for an up-to-date catalogue of a real region;
* ``--from-moto``, which reads the catalogue bundled with the installed moto,
  so the file can be regenerated offline and without AWS credentials.

Output format (valid JSON, compact, one instance type per line so that
refreshes produce readable diffs)::

    {"source":"moto-5.2.5","generated":"2025-01-31","types":{
    "c5.large":[2,1,4096,"x86_64"],
    ...
    }}

Each value is ``[vcpus, cores, memory_mib, architecture]``.  Types are sorted
by name, so two runs over the same input on the same ``--date`` produce
byte-identical files.

Usage::

    python scripts/refresh_catalogue.py --from-moto
    python scripts/refresh_catalogue.py --region us-east-1 [--endpoint-url URL]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib.metadata
import importlib.resources
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# Anchored to the repository, not the working directory, so running the
# script from anywhere refreshes the file that actually ships.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("ohf/data/instance_types.json")

# Relative to the installed ``moto`` package.  ``moto/ec2/resources`` has no
# ``__init__.py``, so it cannot be addressed as a package of its own.
MOTO_CATALOGUE = "ec2/resources/instance_types.json.gz"

Entry = tuple[int, int, int, str]
Records = list[Mapping[str, Any]]


def record_to_entry(record: Mapping[str, Any]) -> Entry:
    """Reduce one ``DescribeInstanceTypes`` record to ``(vcpus, cores, mib, arch)``."""
    vcpu_info = record["VCpuInfo"]
    vcpus = int(vcpu_info["DefaultVCpus"])
    cores = vcpu_info.get("DefaultCores")
    if cores is None:
        # Some records omit DefaultCores; derive it from SMT width when known
        # and otherwise assume no SMT, which is the conservative answer for
        # core-count based scheduling.
        threads = vcpu_info.get("DefaultThreadsPerCore")
        cores = vcpus // threads if threads else vcpus
    cores = max(int(cores), 1)
    mib = int(record["MemoryInfo"]["SizeInMiB"])
    # The first architecture is the one AWS lists as primary; the provider
    # only needs one value to match AMIs against.
    arch = str(record["ProcessorInfo"]["SupportedArchitectures"][0])
    return vcpus, cores, mib, arch


def convert(records: Iterable[Mapping[str, Any]]) -> dict[str, Entry]:
    """Map instance-type name to its entry, sorted by name."""
    entries = {str(r["InstanceType"]): record_to_entry(r) for r in records}
    return dict(sorted(entries.items()))


def render(source: str, generated: str, types: Mapping[str, Entry]) -> str:
    """Serialise the catalogue: compact JSON, one instance type per line."""

    def dump(value: object) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True)

    header = f'{{"source":{dump(source)},"generated":{dump(generated)},"types":{{'
    lines = [f"{dump(name)}:{dump(list(entry))}" for name, entry in sorted(types.items())]
    return header + "\n" + ",\n".join(lines) + ("\n" if lines else "") + "}}\n"


def moto_records() -> tuple[str, Records]:
    """Load moto's bundled catalogue; returns ``(source_label, records)``."""
    resource = importlib.resources.files("moto").joinpath(MOTO_CATALOGUE)
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    # moto keys the records by type name; each record repeats it as well.
    records = list(data.values()) if isinstance(data, dict) else list(data)
    return f"moto-{importlib.metadata.version('moto')}", records


def aws_records(region: str | None, endpoint_url: str | None) -> tuple[str, Records]:
    """Page through ``DescribeInstanceTypes``; returns ``(source_label, records)``."""
    # Imported lazily so --from-moto works in environments without boto3.
    import boto3

    client = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    region_name = client.meta.region_name
    if not region_name:
        raise SystemExit("no AWS region configured; pass --region")

    def pages() -> Iterator[Mapping[str, Any]]:
        for page in client.get_paginator("describe_instance_types").paginate():
            yield from page.get("InstanceTypes", [])

    return f"aws:{region_name}", list(pages())


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` so readers never observe a half-written catalogue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        tmp.chmod(0o644)  # mkstemp creates 0600; the file ships in the package
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_date(value: str) -> str:
    """Validate ``--date`` as ISO ``YYYY-MM-DD``."""
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Regenerate the bundled EC2 instance-type catalogue.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-moto",
        action="store_true",
        help="read moto's bundled catalogue instead of calling DescribeInstanceTypes",
    )
    source.add_argument("--region", help="AWS region to query (default: boto3's configured region)")
    parser.add_argument("--endpoint-url", help="override the EC2 endpoint URL")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / DEFAULT_OUTPUT,
        help=f"where to write the catalogue (default: <repo>/{DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--date",
        type=parse_date,
        default=None,
        help="value for the 'generated' field, YYYY-MM-DD (default: today, UTC); "
        "pin it to reproduce an existing file byte for byte",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_moto and args.endpoint_url:
        parser.error("--endpoint-url cannot be combined with --from-moto")

    if args.from_moto:
        source, records = moto_records()
    else:
        source, records = aws_records(args.region, args.endpoint_url)

    types = convert(records)
    if not types:
        # An empty catalogue would silently disable every template downstream.
        print("error: source returned no instance types", file=sys.stderr)
        return 1

    generated = args.date or datetime.datetime.now(datetime.UTC).date().isoformat()
    write_atomically(args.output, render(source, generated, types))
    print(f"wrote {len(types)} instance types from {source} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
