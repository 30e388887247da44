"""A year (or a few days) of Host Factory at a busy site, on the fake cloud with its clock moved.

HF is simulated as it drives a provider: it asks for machines, polls every 30 s with every open
request and return id (getRequestStatus) and every machine it holds (getReturnRequests), gives
back what the cloud took and what it no longer needs, and reads getAvailableTemplates. Each call
goes through the front door (`ohf.testing`: `Provider.over`), with the JSON store and a rotated
`ohf.log` in a temp dir, as HF's one-process-per-call would, on two providers (`east`, `west`,
requests placed round robin, failover on).

A simulated day is a busy stretch of `busy_hours` polled every 30 s (new requests over the
templates, returns of machines held a day or so, spot reclaims, a burst of throttling on
DescribeInstances and, every fifth day, no c5.large capacity in `east` for the busy stretch),
then the quiet rest of the day advanced `quiet_step` seconds at a time with one poll each (no
new demand: fleets settle, notices land, ended requests age into pruning and compaction). A
full year of 30-s polls would be ~1M calls; this makes the busy hours exact and samples the
quiet ones. After each day: no machine lost or held twice, `availableNumber` right for every
template, and the sizes of the state file, the event log and `ohf.log` (with its backups) are
recorded with the median wall (and CPU) time of a poll.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ohf.config import PlacementConfig, ProviderConfig, StorageConfig
from ohf.effects import fake, logs, store
from ohf.model import State, Template
from ohf.testing import FakeProviders, advance, call_all, fake_providers

DAY = 86_400
POLL = 30
PROVIDERS = ("east", "west")
AMI = "ami-0fa1ce0000000001"
ROLE = "arn:aws:iam::123456789012:role/spot-fleet"


@dataclass(frozen=True)
class Size:
    """How much to simulate."""

    days: int
    busy_hours: float
    quiet_step: int
    requests_per_day: int
    templates: int
    retention_days: float = 7.0
    compact_bytes: int = 4 << 20
    compact_days: float = 1.0
    log_max_bytes: int = 10 << 20
    log_backups: int = 5
    seed: int = 20


# The nox session: 365 days, each with 8 working hours polled every 30 s and 16 quiet hours
# polled every 10 minutes; 30 requests a day over 12 templates. ohf's default settings.
FULL = Size(days=365, busy_hours=8.0, quiet_step=600, requests_per_day=30, templates=12)
# CI: two weeks, with the retention and compaction thresholds shrunk so that pruning,
# compaction by age and by size, and log rotation all happen several times, in seconds.
CI = Size(
    days=14,
    busy_hours=1.0,
    quiet_step=3 * 3600,
    requests_per_day=14,
    templates=6,
    retention_days=1.5,
    compact_bytes=96 << 10,
    compact_days=0.5,
    log_max_bytes=64 << 10,
    log_backups=3,
)


@dataclass
class Day:
    """What one simulated day did, and how big the files were at its end."""

    day: int
    calls: int
    polls: int
    requests: int
    machines_live: int
    reclaimed: int
    throttled: int
    state_bytes: int
    events_bytes: int
    log_bytes: int
    poll_ms: float
    poll_cpu_ms: float
    open_requests: int


def templates(count: int) -> list[Template]:
    """`count` templates over RunInstances, EC2 Fleet (request) and Spot Fleet, half spot."""
    kinds: list[dict[str, Any]] = [
        {"vm_type": "c5.large"},
        {"vm_type": "m5.large", "price_type": "spot"},
        {
            "vm_types": {"c5.large": 1, "c5.xlarge": 2},
            "provider_api": "EC2Fleet",
            "fleet_type": "request",
            "price_type": "spot",
        },
        {
            "vm_types": {"m5.large": 1, "c5.large": 1},
            "provider_api": "EC2Fleet",
            "fleet_type": "instant",
        },
        {
            "vm_types": {"c5.large": 1},
            "provider_api": "SpotFleet",
            "fleet_type": "request",
            "price_type": "spot",
            "fleet_role": ROLE,
        },
        {"vm_type": "c5.xlarge"},
    ]
    return [
        Template(template_id=f"T{n:02d}", max_number=120, image_id=AMI, **kinds[n % len(kinds)])
        for n in range(count)
    ]


@dataclass
class Hf:
    """Host Factory's side: what it asked, what it holds, what it polls."""

    fp: FakeProviders
    rng: random.Random
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_requests: set[str] = field(default_factory=set)
    open_returns: set[str] = field(default_factory=set)
    calls: int = 0
    poll_times: list[float] = field(default_factory=list)
    # CPU time of the same polls: what the wall time is once a busy machine's waits are taken
    # out (the store's fsync among them).
    poll_cpu: list[float] = field(default_factory=list)

    def call(self, name: str, body: Any) -> Any:
        self.calls += 1
        code, out = call_all(self.fp, name, body)
        # A call may be refused (an open breaker, the store busy): HF just calls again later.
        return out if code == 0 else None

    def now(self) -> int:
        return next(iter(self.fp.refs.values())).cloud.now

    def poll(self) -> None:
        """One HF poll: status of every open request and return, then what the cloud took."""
        ids = sorted(self.open_requests | self.open_returns)
        if ids:
            started, cpu = time.perf_counter(), time.process_time()
            out = self.call("getRequestStatus", {"requests": [{"requestId": r} for r in ids]})
            self.poll_times.append(time.perf_counter() - started)
            self.poll_cpu.append(time.process_time() - cpu)
            if out is not None:
                self.statuses(out["requests"])
        if self.held:
            machines = [{"name": h["name"], "machineId": m} for m, h in self.held.items()]
            out = self.call("getReturnRequests", {"machines": machines})
            if out is not None and out["requests"]:
                self.give_back([r["machineId"] for r in out["requests"]])

    def statuses(self, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            rid, final = reply["requestId"], reply["status"] != "running"
            if rid in self.open_requests:
                for machine in reply["machines"]:
                    if machine["result"] == "succeed" and machine["machineId"] not in self.held:
                        self.held[machine["machineId"]] = {
                            "name": machine["name"],
                            "since": self.now(),
                        }
                if final:
                    self.open_requests.discard(rid)
            elif final:
                self.open_returns.discard(rid)

    def ask(self, template: str, count: int) -> None:
        out = self.call(
            "requestMachines", {"template": {"templateId": template, "machineCount": count}}
        )
        if out is not None:
            self.open_requests.add(out["requestId"])

    def give_back(self, machine_ids: list[str]) -> None:
        mine = [m for m in machine_ids if m in self.held]
        if not mine:
            return
        body = {"machines": [{"name": self.held[m]["name"], "machineId": m} for m in mine]}
        out = self.call("requestReturnMachines", body)
        if out is not None:
            for machine in mine:
                del self.held[machine]
            self.open_returns.add(out["requestId"])


def _sizes(work: Path) -> tuple[int, int, int]:
    state = work / "ohf-state.json"
    events = sum(p.stat().st_size for p in work.glob("ohf-state.events*.jsonl"))
    log = sum(p.stat().st_size for p in work.glob("ohf.log*") if not p.name.endswith(".lock"))
    return (state.stat().st_size if state.exists() else 0), events, log


def _disturb(fp: FakeProviders, rng: random.Random, day: int) -> tuple[int, int]:
    """The cloud's day: spot reclaims and a burst of throttling (counts of each)."""
    reclaimed = 0
    for ref in fp.refs.values():
        spot = [i for i, x in fake.live_instances(ref.cloud).items() if x.lifecycle == "spot"]
        for iid in rng.sample(spot, min(len(spot), rng.randint(0, 3))):
            ref.cloud = fake.interrupt(ref.cloud, iid)
            reclaimed += 1
    burst = rng.randint(2, 6)
    victim = fp.refs[PROVIDERS[day % 2]]
    victim.cloud = fake.inject(
        victim.cloud,
        *(
            fake.Fault(operation="DescribeInstances", code="RequestLimitExceeded")
            for _ in range(burst)
        ),
    )
    return reclaimed, burst


def check(hf: Hf, state: State, listing: dict[str, Any], shown: list[Template]) -> list[str]:
    """What is wrong after a day: lost or doubly held machines, a wrong availableNumber."""
    wrong: list[str] = []
    owners: dict[str, list[str]] = {}
    for rid, request in state.requests.items():
        for machine in request.machines:
            owners.setdefault(machine.machine_id, []).append(rid)
    wrong += [f"{m} is in {len(r)} requests" for m, r in owners.items() if len(r) > 1]
    used: dict[tuple[str, str], int] = {}
    for name, ref in hf.fp.refs.items():
        for iid, item in ref.cloud.instances.items():
            if item.instance.state not in ("pending", "running"):
                continue
            if iid not in owners:
                wrong.append(f"{iid} runs in {name} but is in no request (lost)")
                continue
            key = (item.instance.template_id or "", name)
            used[key] = used.get(key, 0) + item.units
    live = {i for ref in hf.fp.refs.values() for i in fake.live_instances(ref.cloud)}
    wrong += [f"HF holds {m}, which is no longer running" for m in hf.held if m not in live]
    for entry in listing["templates"]:
        template = next(t for t in shown if t.template_id == entry["templateId"])
        expected = sum(
            max(0, template.max_number - used.get((template.template_id, p), 0)) for p in PROVIDERS
        )
        if entry["availableNumber"] != expected:
            wrong.append(
                f"{template.template_id}: availableNumber {entry['availableNumber']}, "
                f"expected {expected}"
            )
    return wrong


def run(size: Size, work: Path, on_day: Callable[[Day], None] = lambda _: None) -> list[Day]:
    """Simulate `size.days` days in `work`; every day checked, one `Day` each."""
    shown = templates(size.templates)
    fp = fake_providers(
        shown,
        work,
        [ProviderConfig(name=p) for p in PROVIDERS],
        placement=PlacementConfig(policy="round_robin", failover=True),
    )
    config = fp.shell.settings.config
    storage = StorageConfig(
        retention_days=size.retention_days,
        compact_bytes=size.compact_bytes,
        compact_days=size.compact_days,
    )
    settings = msgspec.structs.replace(
        fp.shell.settings, config=msgspec.structs.replace(config, storage=storage)
    )
    fp = msgspec.structs.replace(fp, shell=msgspec.structs.replace(fp.shell, settings=settings))
    logs.setup(
        str(work / "ohf.log"),
        "INFO",
        "soak",
        "soak",
        max_bytes=size.log_max_bytes,
        backups=size.log_backups,
    )
    rng = random.Random(size.seed)
    hf = Hf(fp=fp, rng=rng)
    days: list[Day] = []
    busy = int(size.busy_hours * 3600) // POLL
    for day in range(1, size.days + 1):
        start = hf.now()
        calls_before, hf.poll_times, hf.poll_cpu = hf.calls, [], []
        made = 0
        asks = sorted(rng.sample(range(busy), min(busy, size.requests_per_day)))
        reclaimed, throttled = _disturb(fp, rng, day)
        short = day % 5 == 0
        if short:
            fp.refs["east"].cloud = fake.exhaust(fp.refs["east"].cloud, "c5.large")
        for tick in range(busy):
            while asks and asks[0] == tick:
                asks.pop(0)
                template = shown[rng.randrange(len(shown))]
                hf.ask(template.template_id, rng.randint(1, 8))
                made += 1
            if tick == busy // 2:
                # HF gives back what it has held for more than a day.
                old = [m for m, h in hf.held.items() if hf.now() - h["since"] > DAY]
                hf.give_back(old)
            hf.poll()
            advance(fp.refs, POLL)
        if short:
            fp.refs["east"].cloud = msgspec.structs.replace(fp.refs["east"].cloud, exhausted=())
        while hf.now() < start + DAY:
            hf.poll()
            advance(fp.refs, min(size.quiet_step, start + DAY - hf.now()))
        for ref in fp.refs.values():
            ref.cloud = fake.forget(ref.cloud)
        hf.poll()  # the day's last poll: what the cloud did meanwhile is in the state
        listing = hf.call("getAvailableTemplates", {})
        state = store.read(settings).unwrap()
        problems = check(hf, state, listing, shown)
        if problems:
            raise AssertionError(f"day {day}: " + "; ".join(problems[:10]))
        state_bytes, events_bytes, log_bytes = _sizes(work)
        row = Day(
            day=day,
            calls=hf.calls - calls_before,
            polls=len(hf.poll_times),
            requests=made,
            machines_live=len(hf.held),
            reclaimed=reclaimed,
            throttled=throttled,
            state_bytes=state_bytes,
            events_bytes=events_bytes,
            log_bytes=log_bytes,
            poll_ms=1000 * statistics.median(hf.poll_times) if hf.poll_times else 0.0,
            poll_cpu_ms=1000 * statistics.median(hf.poll_cpu) if hf.poll_cpu else 0.0,
            open_requests=len(hf.open_requests),
        )
        days.append(row)
        on_day(row)
    return days
