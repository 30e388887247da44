"""What the MCP tools take and give, as structs, and the answers built from the door's, pure.

Each tool's input and output schema is the JSON Schema of a struct here or of one ohf already
has (`ohf.listings`, `ohf.schema.RequestShow`, `ohf.explain.Explanation`, `ohf.messages`), so
an assistant sees the same shapes as `ohf ... --json` and `schemas/`. Arguments are decoded
strictly (unknown keys refused, with msgspec's path in the message).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ohf.breaker import Breaker
from ohf.effects.health import Check, Report
from ohf.events import Event
from ohf.listings import MachineRow, RequestRow, TemplateRow
from ohf.model import LOST_STATES, InstanceState, Machine, RequestStatus, TemplateId
from ohf.placement import label
from ohf.validation import Validation

PriceType = Literal["on-demand", "spot"]
RequestId = Annotated[str, Meta(min_length=1, max_length=200, description="an HF request id")]
Since = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        description="only newer: 30m, 6h, 2d (ago), an epoch time, or a UTC date "
        "(2026-12-01 or 2026-12-01T08:00)",
    ),
]
ProviderLabel = Annotated[
    str, Meta(min_length=1, max_length=32, description='a provider\'s name ("aws" for [aws])')
]


class _Ask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class NoArguments(_Ask, frozen=True, kw_only=True):
    """This tool takes no argument."""


class RequestsAsk(_Ask, frozen=True, kw_only=True):
    """Which requests to list (every one by default)."""

    status: RequestStatus | None = None
    template: TemplateId | None = None
    since: Since | None = None


class RequestAsk(_Ask, frozen=True, kw_only=True):
    """One request, by the id HF knows it by."""

    request_id: RequestId


class MachinesAsk(_Ask, frozen=True, kw_only=True):
    """Which machines to list (every one by default), as `ohf machines` filters them."""

    request: RequestId | None = None
    state: InstanceState | None = None
    provider: ProviderLabel | None = None
    price_type: PriceType | None = None


class EventsAsk(_Ask, frozen=True, kw_only=True):
    """The events of one request (all its parts), oldest first; `last`: only the newest few."""

    request_id: RequestId
    last: Annotated[int, Meta(ge=1, le=10_000)] | None = None


class HealthAsk(_Ask, frozen=True, kw_only=True):
    """Every provider's health, or one's."""

    provider: ProviderLabel | None = None


class LostAsk(_Ask, frozen=True, kw_only=True):
    """Machines lost since when (default: the last 24 hours), of which price type and provider."""

    since: Since = "24h"
    price_type: PriceType | None = None
    provider: ProviderLabel | None = None


class RequestMachinesAsk(_Ask, frozen=True, kw_only=True):
    """What to launch: `count` units of a template (as HF's requestMachines)."""

    template_id: TemplateId
    count: Annotated[int, Meta(ge=1, le=10_000, description="units (machines, or fleet units)")]


class ReturnMachinesAsk(_Ask, frozen=True, kw_only=True):
    """Which machines to terminate, by instance id (as HF's requestReturnMachines)."""

    machine_ids: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64)]],
        Meta(min_length=1, max_length=1000, description="instance ids, e.g. i-0abc..."),
    ]


class EventList(msgspec.Struct, frozen=True, kw_only=True):
    """A request's events (every part's), oldest first."""

    request_id: str
    events: list[Event]


class BreakerView(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's circuit breaker as last saved: closed, open (no AWS call until
    `open_until`) or half-open (the next call probes AWS)."""

    state: Literal["closed", "open", "half-open"]
    failures: int
    open_until: int | None = None
    open_until_utc: str | None = None


class ProviderHealth(msgspec.Struct, frozen=True, kw_only=True):
    """One provider: its checks against AWS (region, credentials, role, templates) and breaker."""

    provider: str
    ok: bool
    skipped: bool
    checks: list[Check]
    breaker: BreakerView


class HealthAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf health`, per provider, with each provider's breaker; `store`: the state store."""

    ok: bool
    providers: list[ProviderHealth]
    store: list[Check]


class ValidationAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf validate`: ok when every template and the templates listing are fine."""

    ok: bool
    validation: Validation


class LostMachine(msgspec.Struct, frozen=True, kw_only=True):
    """A machine that ended without HF returning it (spot interruption, terminated outside
    ohf, stopped), and when ohf first saw it so."""

    machine_id: str
    instance_type: str
    price_type: PriceType
    state: InstanceState
    request_id: str
    provider: str
    launch_time: int
    lost_at: int
    lost_at_utc: str
    message: str = ""


class LostMachines(msgspec.Struct, frozen=True, kw_only=True):
    """Machines lost since `since` (epoch seconds), newest last, from the event log."""

    since: int
    count: int
    machines: list[LostMachine]


class StateSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What ohf holds, counted: requests by status, machines by state, provider and price,
    units in use per template, open breakers, and the requests still running."""

    store: str
    requests: dict[str, int]
    returns: dict[str, int]
    machines_by_state: dict[str, int]
    machines_by_provider: dict[str, int]
    machines_by_price_type: dict[str, int]
    units_in_use: dict[str, int]
    open_breakers: list[str]
    running: list[str]


def utc(epoch: int) -> str:
    """An epoch time as ISO 8601 UTC (2026-12-01T08:00:00Z)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def breaker_view(breaker: Breaker | None, now: int) -> BreakerView:
    """How a saved breaker stands at `now` (None: never tripped, closed)."""
    if breaker is None or breaker.open_until is None:
        return BreakerView(state="closed", failures=breaker.failures if breaker else 0)
    return BreakerView(
        state="open" if breaker.open_until > now else "half-open",
        failures=breaker.failures,
        open_until=breaker.open_until,
        open_until_utc=utc(breaker.open_until),
    )


def health_answer(
    report: Report, breakers: Mapping[str, Breaker], now: int, only: str | None = None
) -> HealthAnswer:
    """The health report per provider (`only`: that one), each with its breaker."""
    by_label = {label(name): b for name, b in breakers.items()}
    providers = [
        ProviderHealth(
            provider=name,
            ok=all(c.ok for c in checks),
            skipped=any(c.skipped for c in checks),
            checks=checks,
            breaker=breaker_view(by_label.get(name), now),
        )
        for name in report.providers
        if only is None or name == only
        for checks in [[c for c in report.checks if c.provider == name]]
    ]
    store = [c for c in report.checks if c.provider is None]
    return HealthAnswer(
        ok=all(p.ok for p in providers) and all(c.ok for c in store),
        providers=providers,
        store=store,
    )


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def state_summary(
    store: str,
    requests: list[RequestRow],
    machines: list[MachineRow],
    templates: list[TemplateRow],
    breakers: Mapping[str, Breaker],
    now: int,
) -> StateSummary:
    """The state, counted (from the door's rows: no AWS call)."""
    return StateSummary(
        store=store,
        requests=_count(r.status for r in requests if r.kind == "acquire"),
        returns=_count(r.status for r in requests if r.kind == "return"),
        machines_by_state=_count(m.state for m in machines),
        machines_by_provider=_count(m.provider for m in machines),
        machines_by_price_type=_count(m.price_type for m in machines),
        units_in_use={t.template_id: t.in_use for t in templates},
        open_breakers=[
            label(name) for name, b in breakers.items() if breaker_view(b, now).state != "closed"
        ],
        running=[r.request_id for r in requests if r.status == "running"],
    )


def _lost(machine: Machine) -> bool:
    return machine.state in LOST_STATES and machine.returned_by is None


def lost_machines(
    events: Iterable[Event],
    since: int,
    *,
    price_type: PriceType | None = None,
    provider: str | None = None,
) -> LostMachines:
    """Machines that ended, HF not having returned them, from `since` on, read from the event
    log: each one's latest record, and when it was first seen lost (reset if it came back)."""
    owners: dict[str, tuple[str, str]] = {}  # part id -> (HF id, provider label)
    latest: dict[str, tuple[str, Machine]] = {}  # machine id -> (part id, machine)
    lost_at: dict[str, int] = {}
    for event in sorted(events, key=lambda e: e.at):
        if event.request is not None:
            header = event.request
            owners[event.request_id] = (header.parent or header.request_id, label(header.provider))
        for machine in event.machines:
            latest[machine.machine_id] = (event.request_id, machine)
            if not _lost(machine):
                lost_at.pop(machine.machine_id, None)
            else:
                lost_at.setdefault(machine.machine_id, event.at)
    found = []
    for machine_id, at in lost_at.items():
        part, machine = latest[machine_id]
        hf_id, where = owners.get(part, (part, "?"))
        if (
            at < since
            or not _lost(machine)
            or (price_type is not None and machine.lifecycle != price_type)
            or (provider is not None and where != provider)
        ):
            continue
        found.append(
            LostMachine(
                machine_id=machine_id,
                instance_type=machine.instance_type,
                price_type=machine.lifecycle,
                state=machine.state,
                request_id=hf_id,
                provider=where,
                launch_time=machine.launch_time,
                lost_at=at,
                lost_at_utc=utc(at),
                message=machine.message,
            )
        )
    found.sort(key=lambda m: (m.lost_at, m.machine_id))
    return LostMachines(since=since, count=len(found), machines=found)
