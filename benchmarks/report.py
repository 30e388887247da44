"""RESULTS.md from the driver's results: tables, ratios, the issue's targets, the machine."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import floors
import notes
import targets
from measure import Sample

HERE = Path(__file__).resolve().parent
TEMPLATES_VS_BARE = 1.5
TEMPLATES_VS_ORB = 10.0
STATUS_CALLS = 2
RSS_SHARE = 0.5

# --- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median (0 for no values)."""
    return statistics.median(values) if values else 0.0


def walls(samples: Sequence[Sample]) -> list[float]:
    """Wall times, seconds."""
    return [s.wall for s in samples]


def peak_rss(samples: Sequence[Sample]) -> float:
    """The largest peak RSS over the runs, MiB."""
    return max((s.rss_mib for s in samples), default=0.0)


def aws_calls(samples: Sequence[Sample]) -> str:
    """AWS calls per run: one number when every run made the same, else the range."""
    totals = sorted({s.aws_total for s in samples})
    if not totals:
        return "-"
    return str(totals[0]) if len(totals) == 1 else f"{totals[0]}-{totals[-1]}"


def aws_actions(samples: Sequence[Sample]) -> str:
    """The actions of the last run, e.g. `DescribeInstances 1`."""
    if not samples or not samples[-1].aws:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in sorted(samples[-1].aws.items()))


def _s(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


# --- rendering ----------------------------------------------------------------------------------


def render(results: Any) -> str:
    """The whole RESULTS.md."""
    plan = results.plan
    out: list[str] = []
    add = out.append
    add("# Benchmark: ohf vs Open Resource Broker on moto_server\n")
    add(
        f"Written by `benchmarks/run.py` (`nox -s bench`, {plan.mode} run) on {results.started}, "
        f"in {results.seconds / 60:.1f} min. Rerun: see `benchmarks/README.md`.\n"
    )
    add(_load_note(results))
    add(_machine_section(results))
    add(_scenario_section(results))
    if results.orb_failure:
        add(f"**ORB could not be measured:** {results.orb_failure}\n")
    add(_calls_section(results))
    add(_ratios_section(results))
    add(_issue_17_section(results))
    add(_targets_section(results))
    add(_scaling_section(results))
    add(_imports_section(results))
    add(notes.section(results))
    return "\n".join(out).rstrip() + "\n"


def _load_note(results: Any) -> str:
    loads = results.loads
    worst = max((load[0] for _, load in loads), default=0.0)
    cores = results.machine.get("cores") or 1
    text = "Load average (1/5/15 min): " + "; ".join(
        f"{name} {a:.2f}/{b:.2f}/{c:.2f}"
        for name, (a, b, c) in loads
        if name in ("before", "after")
    )
    text += (
        f"; highest 1-min value between calls {worst:.2f} on {cores} cores. The benchmark itself "
        "keeps about one process busy (a call, or moto serving it), so a 1-min load near 1 is "
        "its own."
    )
    if worst > cores * 0.75:
        text += (
            " **The machine was under load from other work during this run**: absolute times "
            "are inflated and noisy; ratios between tools run in alternation are fairer, but "
            "rerun on a quiet machine before quoting figures."
        )
    return text + "\n"


def _machine_section(results: Any) -> str:
    m = results.machine
    ohf = m["ohf"]
    orb = m["orb"]
    lines = [
        "## Machine\n",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['cores']} cores |",
        f"| RAM | {m['ram']} |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} (the same interpreter for both tools' virtualenvs) |",
        f"| ohf | ohf-aws {ohf.get('ohf-aws', '?')} (`{m['ohf_commit']}`), "
        + ", ".join(f"{k} {v}" for k, v in ohf.items() if k != "ohf-aws")
        + " |",
        "| ORB | "
        + (
            f"orb-py {orb.get('orb-py')}, "
            + ", ".join(f"{k} {v}" for k, v in orb.items() if k != "orb-py")
            if orb
            else "not installed"
        )
        + " |",
        f"| AWS | moto {m['moto']} server (`benchmarks/moto_bench.py`), one per tool, "
        "on 127.0.0.1 |",
        "",
    ]
    return "\n".join(lines)


def _scenario_section(results: Any) -> str:
    plan = results.plan
    net = results.network
    lines = [
        "## Scenario\n",
        f"One template `bench-c5`: RunInstances, c5.large, subnet {net.get('subnet', '?')} "
        "(a /17 added to the default VPC: its default /20 subnets hold 4,091 addresses, fewer "
        "than the 5,000-machine scaling point), the default VPC's default security group, AMI "
        f"{net.get('image', '?')}, maxNumber 10,000. "
        f"Then {plan.requests} requestMachines of {plan.machines_each} machines "
        f"({plan.machines:,} machines), made through each tool's own code, and one "
        "getRequestStatus for all of them, as HF polls. How, and what each tool then held:\n",
    ]
    for name, text in results.scenario_check.items():
        build = results.builds.get(name)
        took = f", in {build:.0f} s" if build is not None else ""
        how = results.built_how.get(name, "?")
        lines.append(f"- {name}: built by {how}{took}. Held: {text}.")
    lines += [
        "",
        f"Each call ran {plan.reps} times per tool ({plan.heavy_reps} for the calls whose time "
        "is moto moving 1,000s of instances), ohf and ORB alternating (ohf first on even runs, "
        "ORB first on odd runs), after one unmeasured warm-up each (small input). The three "
        "floors (`python -c pass`, importing ohf's dependencies, a bare `boto3.client('ec2')`; "
        "ohf's venv interpreter and environment) ran once per round of the light calls. Wall "
        "time is fork to "
        "reap; CPU is the child's user+system time; peak RSS is the child's `ru_maxrss` "
        "(`os.wait4`), the largest over the runs; AWS calls are the requests moto_server's "
        "recorder saw during the run (the same counter for both tools); moto CPU is the server "
        "process's CPU time during the run, i.e. how much of the wall time AWS (moto) spent.\n",
    ]
    return "\n".join(lines)


def _outcomes(results: Any) -> list[tuple[Any, dict[str, Any]]]:
    return list(results.cases)


def floor_wall(results: Any, name: str) -> float:
    """The median wall time of a floor (0 if it was not measured)."""
    return median(walls(results.floors.get(name, [])))


def floor_rss(results: Any, name: str) -> float:
    """The largest peak RSS of a floor, MiB."""
    return peak_rss(results.floors.get(name, []))


def _calls_section(results: Any) -> str:
    lines = [
        "## Every HF call\n",
        "| call | tool | median s | min s | max s | CPU s | peak RSS MiB | AWS calls | "
        "moto CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name in floors.FLOORS:
        samples = results.floors.get(name, [])
        if samples:
            w = walls(samples)
            lines.append(
                f"| {floors.label(name)} | python | {_s(median(w))} | {_s(min(w))} | "
                f"{_s(max(w))} | {_s(median([s.cpu for s in samples]))} | "
                f"{peak_rss(samples):.1f} | 0 | - |"
            )
    for case, outcomes in _outcomes(results):
        for name, outcome in outcomes.items():
            samples = outcome.samples
            if not samples:
                lines.append(f"| {case.label} | {name} | failed: see below | | | | | | |")
                continue
            w = walls(samples)
            lines.append(
                f"| {case.label} | {name} | {_s(median(w))} | {_s(min(w))} | {_s(max(w))} | "
                f"{_s(median([s.cpu for s in samples]))} | {peak_rss(samples):.1f} | "
                f"{aws_calls(samples)} ({aws_actions(samples)}) | "
                f"{_s(median([s.server_cpu for s in samples]))} |"
            )
    failures = [
        f"- {case.label}, {name}: {outcome.failure}"
        for case, outcomes in _outcomes(results)
        for name, outcome in outcomes.items()
        if outcome.failure
    ]
    if failures:
        lines += ["", "Failures:", "", *failures]
    return "\n".join(lines) + "\n"


def _ratios_section(results: Any) -> str:
    deps, boto3 = floor_wall(results, "deps"), floor_wall(results, "boto3")
    boto3_rss = floor_rss(results, "boto3")
    lines = [
        "## Ratios (medians; peak RSS: largest)\n",
        f"Floors of this run: dependency imports {_s(deps)} s; bare boto3 EC2 client "
        f"{_s(boto3)} s, {boto3_rss:.1f} MiB.\n",
        "| call | ohf / ORB wall | ORB / ohf wall | ohf / ORB CPU | ohf / ORB peak RSS | "
        "ohf / deps floor wall | ohf / boto3 floor wall | ohf / boto3 floor peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, outcomes in _outcomes(results):
        ohf = outcomes.get("ohf")
        orb = outcomes.get("ORB")
        if ohf is None or not ohf.samples:
            continue
        ow = median(walls(ohf.samples))
        oc = median([s.cpu for s in ohf.samples])
        if orb is not None and orb.samples:
            rw = median(walls(orb.samples))
            rc = median([s.cpu for s in orb.samples])
            vs_orb = (
                _ratio(ow, rw),
                _ratio(rw, ow),
                _ratio(oc, rc),
                _ratio(peak_rss(ohf.samples), peak_rss(orb.samples)),
            )
        else:
            vs_orb = ("-", "-", "-", "-")
        lines.append(
            f"| {case.label} | {' | '.join(vs_orb)} | {_ratio(ow, deps)} | {_ratio(ow, boto3)} | "
            f"{_ratio(peak_rss(ohf.samples), boto3_rss)} |"
        )
    return "\n".join(lines) + "\n"


def _case(results: Any, key: str) -> dict[str, Any]:
    return next((o for c, o in results.cases if c.key == key), {})


def _targets_section(results: Any) -> str:
    floor = floor_wall(results, "pass")
    rows: list[str] = []

    def row(target: str, verdict: bool | None, figure: str) -> None:
        mark = "n/a" if verdict is None else ("met" if verdict else "**not met**")
        rows.append(f"| {target} | {mark} | {figure} |")

    templates = _case(results, "templates")
    ohf_t = templates.get("ohf")
    orb_t = templates.get("ORB")
    if ohf_t and ohf_t.samples and floor:
        ow = median(walls(ohf_t.samples))
        row(
            f"getAvailableTemplates <= {TEMPLATES_VS_BARE}x `python -c pass`",
            ow <= TEMPLATES_VS_BARE * floor,
            f"{_s(ow)} s vs {_s(floor)} s = {ow / floor:.2f}x",
        )
        if orb_t and orb_t.samples:
            rw = median(walls(orb_t.samples))
            row(
                f"getAvailableTemplates >= {TEMPLATES_VS_ORB:.0f}x faster than ORB",
                rw >= TEMPLATES_VS_ORB * ow,
                f"ORB {_s(rw)} s / ohf {_s(ow)} s = {rw / ow:.1f}x",
            )
        else:
            row(f"getAvailableTemplates >= {TEMPLATES_VS_ORB:.0f}x faster than ORB", None, "no ORB")
    status = _case(results, "status")
    ohf_s = status.get("ohf")
    if ohf_s and ohf_s.samples:
        most = max(s.aws_total for s in ohf_s.samples)
        orb_s = status.get("ORB")
        vs = ""
        if orb_s and orb_s.samples:
            vs = (
                f"; wall {_s(median(walls(ohf_s.samples)))} s vs ORB "
                f"{_s(median(walls(orb_s.samples)))} s, peak RSS "
                f"{peak_rss(ohf_s.samples):.0f} vs {peak_rss(orb_s.samples):.0f} MiB"
            )
        label = results.plan.requests, results.plan.machines
        row(
            f"getRequestStatus, {label[0]} requests / {label[1]:,} machines: "
            f"<= {STATUS_CALLS} AWS calls",
            most <= STATUS_CALLS,
            f"{most} ({aws_actions(ohf_s.samples)}){vs}",
        )
    rss_rows = []
    all_met = True
    for case, outcomes in results.cases:
        ohf, orb = outcomes.get("ohf"), outcomes.get("ORB")
        if ohf and ohf.samples and orb and orb.samples:
            share = peak_rss(ohf.samples) / peak_rss(orb.samples)
            all_met &= share <= RSS_SHARE
            rss_rows.append(
                f"{case.call if case.key != 'request_big' else 'big request'} {share:.2f}"
            )
    if rss_rows:
        row("peak RSS of every call <= half of ORB's", all_met, "ohf/ORB: " + ", ".join(rss_rows))
    big, small = (
        _case(results, "request_big").get("ohf"),
        _case(results, "request_small").get("ohf"),
    )
    if big and big.samples and small and small.samples:
        big_calls = max(s.aws_total for s in big.samples)
        small_calls = max(s.aws_total for s in small.samples)
        row(
            f"requestMachines {results.plan.big:,}: batched (no more AWS calls than for "
            f"{results.plan.small})",
            big_calls <= small_calls,
            f"{big_calls} call(s) ({aws_actions(big.samples)}), {_s(median(walls(big.samples)))} s",
        )
    return "\n".join(
        ["## Issue 6 targets\n", "| target | verdict | figure |", "|---|---|---|", *rows, ""]
    )


def _issue_17_section(results: Any) -> str:
    rows = targets.issue_17(results)
    lines = [
        "## Issue 17 targets\n",
        "Against the floors measured in this run (medians; peak RSS: largest of the runs). A "
        "target not met says what it takes.\n",
        "| target | verdict | figure | why not, and what would close it |",
        "|---|---|---|---|",
    ]
    for row in rows:
        mark = "n/a" if row.met is None else ("met" if row.met else "**not met**")
        why = "" if row.met else row.why
        lines.append(f"| {row.target} | {mark} | {row.figure} | {why} |")
    return "\n".join(lines) + "\n"


def _scaling_section(results: Any) -> str:
    lines = [
        "## Scaling: ohf getRequestStatus\n",
        "Each point on a fresh moto_server (the state built through ohf, one poll, then the "
        "measured polls); the point equal to the scenario above reuses its runs. ORB is not "
        "in this table: its getRequestStatus makes no AWS call at any size (see the notes), "
        "and building its state costs ~2 s of start-up per request.\n",
        "| machines | requests | median s | min s | max s | CPU s | peak RSS MiB | AWS calls | "
        "moto CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for machines, requests, outcome in results.scaling:
        samples = outcome.samples
        if not samples:
            lines.append(f"| {machines:,} | {requests} | failed: {outcome.failure} | | | | | | |")
            continue
        w = walls(samples)
        lines.append(
            f"| {machines:,} | {requests} | {_s(median(w))} | {_s(min(w))} | {_s(max(w))} | "
            f"{_s(median([s.cpu for s in samples]))} | {peak_rss(samples):.1f} | "
            f"{aws_calls(samples)} ({aws_actions(samples)}) | "
            f"{_s(median([s.server_cpu for s in samples]))} |"
        )
    return "\n".join(lines) + "\n"


def _imports_section(results: Any) -> str:
    if not results.imports:
        return ""
    rows = [f"| `{name}` | {ms:.1f} |" for name, ms in results.imports]
    return "\n".join(
        [
            "## What ohf's getAvailableTemplates imports\n",
            "One run under `python -X importtime` (top-level imports and their direct children, "
            "by cumulative time; the timings of this single run are noisy, the names are not).\n",
            "| module | cumulative ms |",
            "|---|---:|",
            *rows,
            "",
        ]
    )


def raw(results: Any) -> dict[str, Any]:
    """Every sample (without outputs), for comparing runs."""

    def sample(s: Sample) -> dict[str, Any]:
        return {
            "wall": round(s.wall, 4),
            "cpu": round(s.cpu, 4),
            "rss_mib": round(s.rss_mib, 1),
            "aws": dict(s.aws),
            "moto_cpu": round(s.server_cpu, 3),
        }

    return {
        "started": results.started,
        "mode": results.plan.mode,
        "machine": results.machine,
        "loads": results.loads,
        "orb_failure": results.orb_failure,
        "floors": {name: [sample(s) for s in got] for name, got in results.floors.items()},
        "cases": {
            case.label: {
                name: {"samples": [sample(s) for s in o.samples], "failure": o.failure}
                for name, o in outcomes.items()
            }
            for case, outcomes in results.cases
        },
        "scaling": [
            {
                "machines": m,
                "requests": r,
                "samples": [sample(s) for s in o.samples],
                "failure": o.failure,
            }
            for m, r, o in results.scaling
        ],
    }
