"""Why a request is where it is, in plain words, pure: from the state, its events and breakers.

For operators (and the assistants and status page that serve them): waiting on a fleet, short
of capacity in which pool, failed over to which provider, behind an open circuit until when,
cut off before HF got its id, machines lost or returned. Every sentence is built from what the
state and the event log hold; nothing here asks AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import msgspec

from ohf.breaker import Breaker, clock_time
from ohf.codes import CAPACITY_CODES, QUOTA_CODES, THROTTLING_CODES
from ohf.events import Event
from ohf.listings import RequestRow, request_rows
from ohf.model import LOST_STATES, Request, RequestStatus, State
from ohf.parts import combined_status, hf_parts, parts_index
from ohf.placement import label
from ohf.status import VISIBILITY_GRACE_SECONDS, acquire_result
from ohf.templates import live_units

# AWS error codes as they appear in ohf's messages ("RunInstances: CODE: text (type/subnet)").
_WORD = re.compile(r"\b[A-Z][A-Za-z]+(?:\.[A-Za-z]+)?\b")
# The pool a fleet error names, at the end of its clause: "(c5.large/subnet-1)".
_POOL = re.compile(r"\(([^()]+)\)\s*$")
# EC2's own words for RunInstances: "... sufficient c5.large capacity in the Availability Zone
# you requested (us-east-1a) ...".
_EC2_POOL = re.compile(
    r"sufficient (\S+) capacity in the Availability Zone you requested \(([^()]+)\)"
)
_MOVED = re.compile(r"(\d+) unit\(s\) placed on provider (\S+) instead")


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """A request's standing: its HF status, one summary sentence, and the reasons behind it."""

    request_id: str
    status: RequestStatus
    summary: str
    reasons: list[str]


def _shortages(text: str) -> list[str]:
    """The capacity, quota and throttling failures named in a request's message."""
    found = []
    for clause in text.split(";"):
        codes = [w for w in _WORD.findall(clause) if w in CAPACITY_CODES | THROTTLING_CODES]
        if not codes:
            continue
        code = codes[0]
        pooled = _POOL.search(clause.strip())
        ec2 = _EC2_POOL.search(clause)
        pool = f"{ec2.group(1)}/{ec2.group(2)}" if ec2 else pooled.group(1) if pooled else None
        if code in QUOTA_CODES:
            found.append(f"an account quota stopped it ({code}{f' in {pool}' if pool else ''})")
        elif code in CAPACITY_CODES:
            where = f" in pool {pool}" if pool else ""
            found.append(f"AWS is short of capacity{where} ({code})")
        elif code in THROTTLING_CODES:
            found.append(f"AWS throttled ohf ({code})")
    return list(dict.fromkeys(found))


def _part_reasons(part: Request, now: int) -> list[str]:
    where = f"on provider {label(part.provider)}"
    held, asked = live_units(part), part.machine_count
    out: list[str] = []
    if part.phase == "launching":
        deadline = part.created_at + VISIBILITY_GRACE_SECONDS
        if part.answered:
            out.append(
                f"the launch {where} is not confirmed: AWS's answer was lost; polls look for "
                f"its tagged instances until {clock_time(deadline)} UTC"
            )
        else:
            out.append(
                f"the requestMachines call {where} was cut off before answering HF; what it "
                "launched is terminated and its units freed"
            )
    elif part.fleet_id is not None and not part.fleet_done and not part.cleaned_up:
        out.append(
            f"waiting on {part.provider_api} {part.fleet_id} {where} to fill: "
            f"{held} of {asked} unit(s) so far"
        )
    elif part.phase == "failed":
        out.append(f"nothing launched {where}")
    pending = sum(1 for m in part.machines if acquire_result(m) == "executing")
    if pending:
        out.append(f"{pending} machine(s) {where} still starting")
    lost = [m for m in part.machines if m.state in LOST_STATES and m.returned_by is None]
    if lost:
        why = "; ".join(dict.fromkeys(f"{m.machine_id}: {m.message or m.state}" for m in lost))
        out.append(f"{len(lost)} machine(s) {where} lost before HF returned them ({why})")
    returned = sorted({m.returned_by for m in part.machines if m.returned_by})
    if returned:
        count = sum(1 for m in part.machines if m.returned_by)
        out.append(f"{count} machine(s) {where} returned by {', '.join(returned)}")
    for moved, successor in _MOVED.findall(part.message):
        out.append(f"{moved} unit(s) failed over from {label(part.provider)} to {successor}")
    out += [f"{s} {where}" for s in _shortages(part.message)]
    return out


def _breaker_reasons(
    providers: Iterable[str], breakers: Mapping[str, Breaker], now: int
) -> list[str]:
    out = []
    for name in dict.fromkeys(providers):
        breaker = breakers.get(name)
        if breaker is not None and breaker.open_until is not None and breaker.open_until > now:
            out.append(
                f"provider {label(name)}'s circuit is open until {clock_time(breaker.open_until)}"
                f" UTC after {breaker.failures} failure(s) in a row: no AWS call goes there"
            )
    return out


def _summary(row: RequestRow, parts: list[Request]) -> str:
    where = ", ".join(row.providers)
    if row.status == "complete":
        # Where the units are, not every provider tried: a part that failed over holds none.
        holding = list(dict.fromkeys(label(p.provider) for p in parts if live_units(p) > 0))
        return f"complete: {row.held} of {row.asked} unit(s) held on {', '.join(holding) or where}"
    if row.status == "running":
        return f"running: {row.held} of {row.asked} unit(s) so far, on {where}"
    return f"ended short: {row.held} of {row.asked} unit(s) usable, on {where}"


def explain(
    state: State,
    request_id: str,
    now: int,
    *,
    events: Iterable[Event] = (),
    breakers: Mapping[str, Breaker] | None = None,
) -> Explanation | None:
    """Why `request_id` (an HF id) stands where it does; None if the state does not hold it.

    `breakers` are the providers' circuit breakers by provider name ("" for `[aws]` alone).
    """
    if request_id in state.returns:
        row = next(r for r in request_rows(state, now) if r.request_id == request_id)
        left = row.held
        summary = (
            "complete: every machine is gone"
            if row.status == "complete"
            else f"running: {left} of {row.asked} machine(s) still shutting down"
        )
        return Explanation(request_id=request_id, status=row.status, summary=summary, reasons=[])
    if request_id not in state.requests or state.requests[request_id].parent is not None:
        return None
    parts = hf_parts(state, request_id, parts_index(state))
    row = next(r for r in request_rows(state, now) if r.request_id == request_id)
    reasons = [reason for part in parts for reason in _part_reasons(part, now)]
    reasons += _breaker_reasons((p.provider for p in parts), breakers or {}, now)
    status, message = combined_status(parts)
    if message and not reasons:
        reasons.append(message)
    changes = [e for e in events if e.request_id in {p.request_id for p in parts}]
    if changes:
        last = max(changes, key=lambda e: e.at)
        reasons.append(
            f"last change {now - last.at}s ago: {last.kind.replace('_', ' ')} by {last.call}"
        )
    return Explanation(
        request_id=request_id, status=status, summary=_summary(row, parts), reasons=reasons
    )
