"""Benchmark driver: ohf against Open Resource Broker (ORB) on moto_server; writes RESULTS.md.

Run through nox (`nox -s bench`, which makes the three virtualenvs), or by hand:

    python benchmarks/run.py --ohf-python VENV/bin/python --orb VENV2/bin/orb [--quick]

The driver's own interpreter needs moto[server,ec2,ssm] (it runs the moto_servers). Every HF call
runs as a fresh process, as HF runs it; ohf and ORB are run in alternation, each against its
own moto_server holding the same scenario. `--quick` (or BENCH_QUICK=1) is a smoke run: fewer
repetitions and machines, minutes instead of a quarter of an hour.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import floors
import imports
import machine
import report
import scenario
from measure import Sample, counted
from scenario import BenchError, Tool

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    """How big and how repeated a run is."""

    mode: str
    reps: int  # runs per tool of a call whose cost is the tool's own
    heavy_reps: int  # runs per tool of a call whose cost is moto moving 1,000s of instances
    requests: int  # open requests in the scenario
    machines_each: int  # machines per request
    small: int  # machines of the small requestMachines / requestReturnMachines
    big: int  # machines of the big requestMachines
    scale: tuple[tuple[int, int], ...]  # (machines, requests) points of the scaling table
    workers: int = 2

    @property
    def machines(self) -> int:
        """Machines the scenario holds."""
        return self.requests * self.machines_each


FULL = Plan(
    mode="full",
    reps=7,
    heavy_reps=3,
    requests=100,
    machines_each=10,
    small=10,
    big=1000,
    scale=((10, 10), (100, 10), (1000, 100), (5000, 100)),
)
QUICK = Plan(
    mode="quick",
    reps=2,
    heavy_reps=1,
    requests=20,
    machines_each=5,
    small=5,
    big=100,
    scale=((10, 10), (100, 20), (500, 20)),
)


@dataclass(frozen=True)
class Case:
    """One HF call measured for every tool."""

    key: str
    label: str
    call: str
    heavy: bool
    payload: Callable[[Tool, int], Any]  # (tool, rep) -> input; rep -1 is the warm-up
    warmup: bool = True
    full: Callable[[Tool], Counter[tuple[str, str]]] | None = None  # a full status answer


@dataclass
class Outcome:
    """What a tool did in one case: its samples, or why it could not be measured."""

    samples: list[Sample] = field(default_factory=list)
    failure: str | None = None


@dataclass
class Results:
    """Everything the report is written from."""

    plan: Plan
    started: str
    machine: dict[str, Any]
    network: dict[str, str] = field(default_factory=dict)
    loads: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)
    builds: dict[str, float] = field(default_factory=dict)
    built_how: dict[str, str] = field(default_factory=dict)
    scenario_check: dict[str, str] = field(default_factory=dict)
    cases: list[tuple[Case, dict[str, Outcome]]] = field(default_factory=list)
    floors: dict[str, list[Sample]] = field(default_factory=dict)  # floors.FLOORS name -> runs
    scaling: list[tuple[int, int, Outcome]] = field(default_factory=list)
    orb_failure: str | None = None
    notes: list[str] = field(default_factory=list)
    imports: list[tuple[str, float]] = field(default_factory=list)
    rss_floor: float = 0.0
    seconds: float = 0.0
    previous: dict[str, Any] | None = None  # the RESULTS.json this run replaces


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def measured(tool: Tool, call: str, payload: Any) -> Sample:
    """One counted run of an HF call."""
    path = tool.write_input(call, payload)
    return counted(
        tool.argv(call, path), tool.env, tool.root, tool.server.recorder, tool.server.pid
    )


def measure_floors(python: str, tool: Tool, results: Results) -> None:
    """One run of each floor (floors.py), in ohf's environment."""
    for name, sample in floors.measure(python, tool.root, tool.env).items():
        results.floors.setdefault(name, []).append(sample)


def check(tool: Tool, case: Case, sample: Sample, warmup: bool = False) -> str | None:
    """Why a run does not count (a failed call, a status answer missing machines), or None."""
    try:
        answer = scenario.reply(tool, case.call, sample)
    except BenchError as exc:
        return str(exc)
    if case.full is None or warmup:
        return None
    return scenario.incomplete(tool, answer, case.full(tool))


def alternate(tools: list[Tool], rep: int) -> list[Tool]:
    """ohf first on even runs, ORB first on odd runs, so neither always runs warm or cold."""
    return tools if rep % 2 == 0 else list(reversed(tools))


def run_case(
    case: Case, tools: list[Tool], plan: Plan, python: str, results: Results
) -> dict[str, Outcome]:
    """A warm-up per tool, then the measured runs in alternation (with the bare floor)."""
    outcomes = {t.name: Outcome() for t in tools}
    reps = plan.heavy_reps if case.heavy else plan.reps
    _say(f"{case.label}: {reps} run(s) per tool")
    if case.warmup:
        for tool in tools:
            sample = measured(tool, case.call, case.payload(tool, -1))
            if (why := check(tool, case, sample, warmup=True)) is not None:
                outcomes[tool.name].failure = f"warm-up failed: {why}"
    for rep in range(reps):
        if not case.heavy:
            measure_floors(python, tools[0], results)
        for tool in alternate(tools, rep):
            outcome = outcomes[tool.name]
            if outcome.failure is not None:
                continue
            sample = measured(tool, case.call, case.payload(tool, rep))
            if (why := check(tool, case, sample)) is not None:
                outcome.failure = why
            else:
                outcome.samples.append(sample)
    for name, outcome in outcomes.items():
        if outcome.samples:
            walls = sorted(s.wall for s in outcome.samples)
            calls = sorted({s.aws_total for s in outcome.samples})
            _say(f"  {name}: median {walls[len(walls) // 2]:.3f} s, AWS calls {calls}")
        if outcome.failure:
            _say(f"  {name}: FAILED: {outcome.failure[:300]}")
    return outcomes


@dataclass
class World:
    """Per tool: its requests and the machines each holds."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    held: dict[str, dict[str, list[dict[str, str]]]] = field(default_factory=dict)
    states: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    extra: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def build_world(tool: Tool, plan: Plan, world: World, results: Results) -> None:
    """The scenario's requests through the tool, then one status poll (as HF would)."""
    _say(f"{tool.name}: building {plan.requests} requests x {plan.machines_each} machines")
    start = time.perf_counter()
    ids = _requests(tool, plan, results)
    poll = tool.run("getRequestStatus", scenario.status_payload(ids))
    answer = scenario.reply(tool, "getRequestStatus", poll)
    results.builds[tool.name] = time.perf_counter() - start
    held = scenario.held_machines(answer)
    total = sum(len(held.get(i, [])) for i in ids)
    statuses = sorted({str(r.get("status")) for r in answer.get("requests", [])})
    machine_states = sorted(
        {f"{m.get('status')}/{m.get('result')}" for r in answer["requests"] for m in r["machines"]}
    )
    results.scenario_check[tool.name] = (
        f"{len(ids)} requests, {total} machines; request status {', '.join(statuses)}; "
        f"machine status/result {', '.join(machine_states)}"
    )
    _say(f"  {tool.name}: {results.scenario_check[tool.name]} ({results.builds[tool.name]:.0f} s)")
    if total != plan.machines:
        raise BenchError(
            f"{tool.name} holds {total} machines after building, expected {plan.machines}"
        )
    world.ids[tool.name] = ids
    world.held[tool.name] = held
    world.states[tool.name] = scenario.machine_states(answer)


def _requests(tool: Tool, plan: Plan, results: Results) -> list[str]:
    if tool.name == "ohf":
        results.built_how[tool.name] = f"`python -m ohf requestMachines`, {plan.workers} at a time"
        return scenario.build(tool, plan.requests, plan.machines_each, plan.workers)
    # ORB's JSON store lost updates when two `orb` calls overlapped (see the report's notes),
    # and a process per request costs it ~2 s of start-up: one process, one call at a time.
    try:
        ids = scenario.build_orb_in_process(tool, plan.requests, plan.machines_each)
        results.built_how[tool.name] = (
            "ORB's CLI entry point (`orb machines request`), one call at a time in one process "
            "(`orb_build.py`)"
        )
        return ids
    except BenchError as exc:
        _say(f"  ORB in one process failed ({exc}); one `orb` process per request instead")
        results.built_how[tool.name] = "`orb machines request`, one process per request, in turn"
        return scenario.build(tool, plan.requests, plan.machines_each, workers=1)


def cases(plan: Plan, world: World) -> list[Case]:
    """The calls measured, read-only ones first so the scenario is the same for them."""
    small = {"template": {"templateId": scenario.TEMPLATE_ID, "machineCount": plan.small}}
    big = {"template": {"templateId": scenario.TEMPLATE_ID, "machineCount": plan.big}}

    def status(tool: Tool, rep: int) -> Any:
        ids = world.ids[tool.name]
        return scenario.status_payload(ids[:1] if rep < 0 else ids)

    def holding(tool: Tool, rep: int) -> Any:
        machines = [m for i in world.ids[tool.name] for m in world.held[tool.name][i]]
        return {"machines": machines[: plan.machines_each] if rep < 0 else machines}

    def returning(tool: Tool, rep: int) -> Any:
        # Each run returns another request's machines: nothing is returned twice.
        request = world.ids[tool.name][rep + 1]
        return {"machines": world.held[tool.name][request][: plan.small]}

    n, m = plan.requests, plan.machines
    return [
        Case("templates", "getAvailableTemplates", "getAvailableTemplates", False, lambda t, r: {}),
        Case(
            "status",
            f"getRequestStatus ({n} requests, {m:,} machines)",
            "getRequestStatus",
            False,
            status,
            full=lambda t: world.states[t.name],
        ),
        Case(
            "returns",
            f"getReturnRequests ({m:,} machines HF holds)",
            "getReturnRequests",
            True,
            holding,
        ),
        Case(
            "request_small",
            f"requestMachines ({plan.small} machines)",
            "requestMachines",
            False,
            lambda t, r: small,
        ),
        Case(
            "return",
            f"requestReturnMachines ({min(plan.small, plan.machines_each)} machines)",
            "requestReturnMachines",
            False,
            returning,
        ),
        Case(
            "request_big",
            f"requestMachines ({plan.big:,} machines)",
            "requestMachines",
            True,
            lambda t, r: big,
            warmup=False,
        ),
    ]


def scaling(
    plan: Plan, python: str, root: Path, results: Results, main_status: Outcome | None
) -> None:
    """ohf getRequestStatus at each (machines, requests) point, each on a fresh moto_server."""
    for machines, requests in plan.scale:
        if (machines, requests) == (plan.machines, plan.requests) and main_status is not None:
            results.scaling.append((machines, requests, main_status))
            continue
        _say(f"scaling: {machines:,} machines in {requests} requests")
        outcome = Outcome()
        try:
            with scenario.moto_server(root, f"scale-{machines}") as server:
                network = scenario.discover(server.url)
                tool = scenario.ohf_tool(python, root / f"scale-{machines}", server, network)
                each = machines // requests
                ids = scenario.build(tool, requests, each, plan.workers)
                first = scenario.reply(
                    tool,
                    "getRequestStatus",
                    tool.run("getRequestStatus", scenario.status_payload(ids)),
                )
                full = scenario.machine_states(first)
                if sum(full.values()) != machines:
                    raise BenchError(f"ohf holds {dict(full)} machines, expected {machines}")
                reps = plan.heavy_reps if machines > plan.machines else plan.reps
                for _ in range(reps):
                    sample = measured(tool, "getRequestStatus", scenario.status_payload(ids))
                    answer = scenario.reply(tool, "getRequestStatus", sample)
                    if (why := scenario.incomplete(tool, answer, full)) is not None:
                        raise BenchError(why)
                    outcome.samples.append(sample)
        except BenchError as exc:
            outcome.failure = str(exc)
        results.scaling.append((machines, requests, outcome))


def measure_all(args: argparse.Namespace, root: Path, results: Results) -> None:
    """Build the scenario for each tool, measure every case, then the scaling table."""
    plan = results.plan
    with ExitStack() as stack:
        tools = list(_tools(stack, args, root, results))
        world = World()
        for tool in list(tools):
            try:
                build_world(tool, plan, world, results)
            except BenchError as exc:
                if tool.name == "ohf":
                    raise
                results.orb_failure = f"building the scenario through `orb`: {exc}"
                _say(f"ORB dropped: {results.orb_failure}")
                tools.remove(tool)
        results.imports = imports.profile(tools[0])
        results.rss_floor = floors.rss_floor(root)
        for case in cases(plan, world):
            results.cases.append((case, run_case(case, tools, plan, args.ohf_python, results)))
            results.loads.append((case.key, load_average()))
    main_status = next((o["ohf"] for c, o in results.cases if c.key == "status"), None)
    scaling(plan, args.ohf_python, root, results, main_status)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report; 0 when ohf's side ran (ORB may have failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ohf-python", required=True, help="python of a venv with ohf installed")
    parser.add_argument("--orb", help="the `orb` command of a venv with orb-py installed")
    parser.add_argument("--orb-install-error", help="why ORB could not be installed (report it)")
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--reps", type=int, help="override the runs per tool per call")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (states, logs)")
    args = parser.parse_args(argv)

    plan = QUICK if args.quick else FULL
    if args.reps:
        plan = Plan(**{**asdict(plan), "reps": args.reps, "heavy_reps": min(args.reps, 3)})
    started = time.perf_counter()
    results = Results(
        plan=plan,
        started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine.machine(args.ohf_python, args.orb),
    )
    results.loads.append(("before", load_average()))
    if args.orb_install_error:
        results.orb_failure = f"installing orb-py {scenario.ORB_VERSION}: {args.orb_install_error}"
    previous = Path(args.out).with_suffix(".json")
    if previous.exists():
        try:
            results.previous = json.loads(previous.read_text(encoding="utf-8"))
        except ValueError:
            results.notes.append(f"The previous {previous.name} could not be read.")
    root = Path(tempfile.mkdtemp(prefix="ohf-bench-"))
    _say(f"{plan.mode} run in {root}; load average {results.loads[0][1]}")
    try:
        measure_all(args, root, results)
    except BenchError as exc:
        results.notes.append(f"The run stopped early: {exc}")
        _say(f"FAILED: {exc}")
    finally:
        results.loads.append(("after", load_average()))
        results.seconds = time.perf_counter() - started
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report.render(results), encoding="utf-8")
        raw = Path(args.out).with_suffix(".json")
        raw.write_text(json.dumps(report.raw(results), indent=1) + "\n", encoding="utf-8")
        _say(f"wrote {args.out} and {raw.name} after {results.seconds:.0f} s")
        if args.keep:
            _say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any("stopped early" in n for n in results.notes) else 0


def _tools(
    stack: ExitStack, args: argparse.Namespace, root: Path, results: Results
) -> Iterator[Tool]:
    server = stack.enter_context(scenario.moto_server(root, "ohf"))
    network = scenario.discover(server.url)
    results.network = {
        "subnet": network.subnet,
        "security group": network.security_group,
        "image": f"{network.image} ({network.image_name})",
    }
    yield scenario.ohf_tool(args.ohf_python, root / "ohf", server, network)
    if not args.orb or results.orb_failure:
        return
    try:
        orb_server = stack.enter_context(scenario.moto_server(root, "orb"))
        yield scenario.orb_tool(
            args.orb, root / "orb", orb_server, scenario.discover(orb_server.url)
        )
    except BenchError as exc:
        results.orb_failure = f"configuring ORB: {exc}"


if __name__ == "__main__":
    sys.exit(main())
