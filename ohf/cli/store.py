"""`ohf storage compact` and `ohf storage check`: the event log's upkeep, by hand."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from returns.result import Failure

from ohf.cli.commands import failed

if TYPE_CHECKING:
    from ohf.provider import Provider


def _when(at: int | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def compact(provider: Provider, args: argparse.Namespace) -> int:
    """Fold the log's events older than `retention_days` (and more, past `compact_bytes`)."""
    done = provider.compact_store()
    if isinstance(done, Failure):
        return failed("storage compact", done.failure())
    figures = done.unwrap()
    if not figures.folded:
        print(f"nothing to fold: {figures.kept} event(s) ({figures.bytes_after} bytes) kept")
        return 0
    print(
        f"folded {figures.folded} event(s) into the snapshot (through {_when(figures.through)}); "
        f"{figures.kept} kept, {figures.bytes_before} -> {figures.bytes_after} bytes"
    )
    return 0


def check(provider: Provider, args: argparse.Namespace) -> int:
    """Say whether the store and its log are readable and agree; 0 if so, 1 if not."""
    import msgspec

    found = provider.check_store()
    if args.json:
        figures = msgspec.structs.asdict(found) | {"ok": found.ok}
        sys.stdout.buffer.write(msgspec.json.encode(figures) + b"\n")
        sys.stdout.flush()
        return 0 if found.ok else 1
    print(f"store:    {found.store}")
    print(f"state:    {found.requests} request(s), {found.returns} return(s)")
    snapshot = (
        "none"
        if found.snapshot_through is None
        else f"{found.folded} event(s) folded, through {_when(found.snapshot_through)}"
    )
    print(f"snapshot: {snapshot}")
    print(f"log:      {found.events} event(s), {found.log_bytes} bytes, from {_when(found.oldest)}")
    for problem in found.problems:
        print(f"problem:  {problem}")
    print("ok: the state equals the log's replay (snapshot + events)" if found.ok else "FAILED")
    return 0 if found.ok else 1
