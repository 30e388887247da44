"""Prometheus text for `GET /metrics`: per-process counters and machines by state from the store."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

import msgspec

from ohf.model import State


class Tally(msgspec.Struct, frozen=True, kw_only=True):
    """This process's counters, bumped from the server's worker threads."""

    # (metric name, label value) -> count; the label is a call name or an AWS operation.
    counts: Counter[tuple[str, str]] = msgspec.field(default_factory=Counter)
    lock: threading.Lock = msgspec.field(default_factory=threading.Lock)


def bump(tally: Tally, name: str, label: str) -> None:
    """Add one to counter `name{label}`."""
    with tally.lock:
        tally.counts[(name, label)] += 1


def snapshot(tally: Tally) -> dict[tuple[str, str], int]:
    """A copy of the counters, taken under the lock."""
    with tally.lock:
        return dict(tally.counts)


_HELP = {
    "ohf_api_calls_total": ("call", "HF calls served by this API process"),
    "ohf_api_errors_total": ("call", "HF calls of this process that failed (exit code 1)"),
    "ohf_aws_calls_total": ("operation", "AWS API calls made by this process"),
}


def machines_by_state(state: State) -> dict[str, int]:
    """How many machines of the stored requests are in each state."""
    counts: Counter[str] = Counter(
        m.state for request in state.requests.values() for m in request.machines
    )
    return dict(counts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(counts: Mapping[tuple[str, str], int], machines: Mapping[str, int] | None) -> str:
    """The Prometheus text exposition of the counters and, if the store was read, the machines."""
    lines: list[str] = []
    for name, (label, text) in _HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
        lines += [
            f'{name}{{{label}="{_escape(value)}"}} {count}'
            for (metric, value), count in sorted(counts.items())
            if metric == name
        ]
    lines += [
        "# HELP ohf_machines Machines of the requests in the store, by state",
        "# TYPE ohf_machines gauge",
    ]
    lines += [f'ohf_machines{{state="{s}"}} {n}' for s, n in sorted((machines or {}).items())]
    lines += [
        "# HELP ohf_store_up 1 if the store could be read for this scrape",
        "# TYPE ohf_store_up gauge",
        f"ohf_store_up {0 if machines is None else 1}",
    ]
    return "\n".join(lines) + "\n"
