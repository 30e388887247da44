"""The soak run: a simulated year of HF at a busy site, written to benchmarks/SOAK.md.

    python benchmarks/soak.py                 # the full year (nox -s soak), ~15-20 minutes
    python benchmarks/soak.py --days 30       # a month
    python benchmarks/soak.py --ci            # the CI size (two weeks, shrunk thresholds)

The simulation and its daily checks are `tests.support.soak` (the test suite runs its CI size);
this script runs it, prints a line a day, and writes the table of day vs. file sizes vs. median
poll time, with what exactly was simulated. Wall times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.support.soak import CI, FULL, POLL, Day, Size, run  # noqa: E402


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 10 << 20 else f"{n / (1 << 20):,.1f} MiB"


def _row(days: list[Day]) -> str:
    """One table row for a stretch of days: the last day's sizes, the stretch's median poll."""
    last = days[-1]
    polls = [d.poll_ms for d in days if d.polls]
    cpu = [d.poll_cpu_ms for d in days if d.polls]
    span = f"{days[0].day}" if len(days) == 1 else f"{days[0].day}-{last.day}"
    return (
        f"| {span} | {sum(d.requests for d in days):,} | {last.machines_live} "
        f"| {_kb(last.state_bytes)} | {_kb(last.events_bytes)} | {_kb(last.log_bytes)} "
        f"| {statistics.median(polls) if polls else 0:.1f} "
        f"| {statistics.median(cpu) if cpu else 0:.1f} |"
    )


def _load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _growth(days: list[Day], field: str, size: Size) -> float:
    """Bytes a day `field` grew by over the first days (the retention's, at most a week: before
    pruning, compaction or rotation take anything away)."""
    week = days[: max(2, min(len(days), 7, int(size.retention_days)))]
    if len(week) < 2:
        return 0.0
    return (getattr(week[-1], field) - getattr(week[0], field)) / (len(week) - 1)


def _defaults(size: Size, days: list[Day]) -> list[str]:
    """The closing note's figures: what this site writes a day, against the defaults."""
    events, log = _growth(days, "events_bytes", size), _growth(days, "log_bytes", size)
    retained = events * size.retention_days
    cap = size.log_max_bytes * (size.log_backups + 1)
    return [
        f"- This site writes about {_kb(int(events))} of events a day: {size.retention_days:g}"
        f" days of them ({_kb(int(retained))}) fit under `compact_bytes`"
        f" ({_kb(size.compact_bytes)}) {size.compact_bytes / max(retained, 1):.1f} times, so the"
        f" log is folded by age (once a day, `compact_days` {size.compact_days:g}) and keeps the"
        " whole retention; a site that many times busier would be folded by size instead.",
        f"- It writes about {_kb(int(log))} of `ohf.log` a day at INFO: `max_bytes`"
        f" {_kb(size.log_max_bytes)} x ({size.log_backups} backups + 1) = {_kb(cap)} holds"
        f" about {cap / max(log, 1):.0f} days of it.",
    ]


def report(size: Size, days: list[Day], seconds: float) -> str:
    """SOAK.md: what was simulated, the table, and the figures that matter."""
    first = [[d] for d in days[:10]]
    weeks = [days[i : i + 7] for i in range(10, len(days), 7)]
    polls = [d.poll_ms for d in days if d.polls]
    steady = days[int(size.retention_days + size.compact_days) + 2 :] or days
    lines = [
        "# Soak: a simulated year of Host Factory at a busy site",
        "",
        f"Written by `nox -s soak` (`python benchmarks/soak.py`) on {time.strftime('%Y-%m-%d')},"
        f" {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; the run took {seconds / 60:.1f} minutes of wall time.",
        "",
        "## What was simulated",
        "",
        f"- {size.days} days on the fake cloud, its clock moved by the simulation: two providers"
        f" (`east`, `west`, placed round robin, failover on), {size.templates} templates"
        " (RunInstances on-demand and"
        " spot, EC2 Fleet `request` spot and `instant` on-demand, Spot Fleet `request`), each"
        " `maxNumber` 120 per provider.",
        f"- Each day: {size.busy_hours:g} working hours polled every {POLL} s, as HF polls:"
        " getRequestStatus with every open request and return id (while any is open) and"
        " getReturnRequests with every machine HF holds; the other"
        f" {24 - size.busy_hours:g} hours advanced {size.quiet_step // 60} minutes at a time, one"
        " poll each (no new demand; fleets settle, notices land, ended requests age).",
        f"- Demand: {size.requests_per_day} requestMachines a day of 1-8 units at random times"
        f" of the working hours over random templates ({sum(d.requests for d in days):,} in"
        " all); HF gives back, mid-day, every machine held for over a day, and at once every"
        " machine getReturnRequests reports.",
        "- The cloud: 0-3 spot reclaims (interruptions) per provider per day; a burst of 2-6"
        " `RequestLimitExceeded` on DescribeInstances each day, on one provider; every fifth day"
        " `east` has no c5.large capacity for the working hours (requests fail over to `west`);"
        " terminated instances and deleted fleets are forgotten at the end of each day, as AWS"
        " forgets them.",
        f"- ohf as HF runs it: the front door (`Provider.over`), the JSON store and `ohf.log` in"
        f" a temp dir; retention {size.retention_days:g} days, compaction at"
        f" {_kb(size.compact_bytes)} or {size.compact_days:g} day(s) past the retention, the log"
        f" rotated at {_kb(size.log_max_bytes)} with {size.log_backups} backups.",
        f"- {sum(d.calls for d in days):,} HF calls in all"
        f" ({sum(d.polls for d in days):,} getRequestStatus polls timed).",
        "",
        "Checked at the end of every day (the run stops at the first failure): every instance"
        " running in either cloud is in exactly one request of the state (none lost, none"
        " counted twice), every machine HF holds is still running, and every template's"
        " `availableNumber` equals the sum over providers of `maxNumber` minus the units running"
        " there.",
        "",
        "## Day vs. file sizes vs. median poll time",
        "",
        "Sizes at the end of the day (the last of a week's row); the event log counts its"
        " snapshot line; `ohf.log` counts its backups. Poll: median wall time of getRequestStatus"
        " (in-process, fsync included) over the day or week; poll CPU: the median CPU time of the"
        " same polls, which a machine shared with other work does not inflate (the load average"
        f" was {_load()} when the run ended).",
        "",
        "| day | requests | machines held | state file | event log | ohf.log | poll (ms) "
        "| poll CPU (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(stretch) for stretch in first + weeks),
        "",
        "## In short",
        "",
        f"- State file: at most {_kb(max(d.state_bytes for d in days))}, flat after the first"
        f" {size.retention_days:g} days (ended requests are pruned after the retention).",
        f"- Event log: at most {_kb(max(d.events_bytes for d in days))} (tail + snapshot), from"
        f" day {steady[0].day} between {_kb(min(d.events_bytes for d in steady))} and"
        f" {_kb(max(d.events_bytes for d in steady))}.",
        f"- ohf.log with its backups: at most {_kb(max(d.log_bytes for d in days))}.",
        *_defaults(size, days),
        f"- Poll: median {statistics.median(polls):.1f} ms over the run; per-day medians from"
        f" day {steady[0].day}: {min(d.poll_ms for d in steady if d.polls):.1f} to"
        f" {max(d.poll_ms for d in steady if d.polls):.1f} ms wall,"
        f" {min(d.poll_cpu_ms for d in steady if d.polls):.1f} to"
        f" {max(d.poll_cpu_ms for d in steady if d.polls):.1f} ms CPU.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the soak, print a line a day, write SOAK.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, help="days to simulate (default: the full year)")
    parser.add_argument("--ci", action="store_true", help="the CI size instead of the full one")
    parser.add_argument("--out", default=str(HERE / "SOAK.md"), help="where to write the report")
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    if args.days:
        size = dataclasses.replace(size, days=args.days)
    started = time.monotonic()

    def progress(day: Day) -> None:
        print(
            f"day {day.day:3d}: {day.calls:5d} calls, {day.machines_live:4d} held, state "
            f"{_kb(day.state_bytes)}, events {_kb(day.events_bytes)}, log {_kb(day.log_bytes)}, "
            f"poll {day.poll_ms:.1f} ms, {day.poll_cpu_ms:.1f} ms CPU "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="ohf-soak-") as work:
        days = run(size, Path(work), progress)
    out = Path(args.out)
    out.write_text(report(size, days, time.monotonic() - started))
    # The rows themselves, to compare runs or draw them.
    out.with_suffix(".json").write_text(
        json.dumps([dataclasses.asdict(d) for d in days], indent=0) + "\n"
    )
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
