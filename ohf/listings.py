"""What ohf holds, as rows for people and scripts, pure: templates, requests, machines.

Read from the state alone (no AWS call): what the last HF call learnt. A request HF knows by
one id may be placed in parts on several providers; its row sums them, its detail lists them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ohf.catalogue import Catalogue
from ohf.config import Config
from ohf.fleets import unit_weights
from ohf.model import (
    InstanceState,
    Machine,
    MachineResult,
    Request,
    RequestStatus,
    State,
    Template,
)
from ohf.parts import combined_status, hf_parts, parts_index
from ohf.placement import effective, label, providers_of, rooms
from ohf.room import Room, Unlimited, total
from ohf.status import acquire_result, machines_by_id, return_status
from ohf.templates import attributes, live_units, provider_api, units_held

RequestKind = Literal["acquire", "return"]


class TemplateRow(msgspec.Struct, frozen=True, kw_only=True):
    """One template: how it launches, its cap, what is in use, and its room (None: unlimited)."""

    template_id: str
    api: str
    price_type: str
    types: dict[str, int]
    max_number: int
    in_use: int
    available: int | None
    rooms: dict[str, int | None]
    ncpus: int | None
    nram: int | None
    providers: list[str]


def _free(room: Room) -> int | None:
    return None if isinstance(room, Unlimited) else room


def _number(attrs: dict[str, tuple[str, str]], name: str) -> int | None:
    value = attrs.get(name, ("", ""))[1]
    try:
        return int(float(value))
    except ValueError:
        return None


def template_row(
    config: Config, template: Template, state: State, catalogue: Catalogue
) -> TemplateRow:
    """One template as `ohf templates` shows it (its own view, or the first provider's)."""
    view = effective(template, providers_of(config)[0]).value_or(template)
    per = rooms(template, providers_of(config), state)
    attrs = attributes(view, catalogue).value_or({})
    return TemplateRow(
        template_id=template.template_id,
        api=provider_api(view),
        price_type=view.price_type,
        types=unit_weights(view),
        max_number=template.max_number,
        in_use=units_held(state, template.template_id),
        available=_free(total(per.values())),
        rooms={label(name): _free(room) for name, room in per.items()},
        ncpus=_number(attrs, "ncpus"),
        nram=_number(attrs, "nram"),
        providers=[label(name) for name in per],
    )


def template_rows(config: Config, state: State, catalogue: Catalogue) -> list[TemplateRow]:
    """Every template of the config, in its order."""
    return [template_row(config, t, state, catalogue) for t in config.templates]


class RequestRow(msgspec.Struct, frozen=True, kw_only=True):
    """One HF request: what was asked, what it holds now, where, and how it stands."""

    request_id: str
    kind: RequestKind
    template_id: str | None
    providers: list[str]
    asked: int
    held: int
    machines: int
    status: RequestStatus
    created_at: int
    age: int
    message: str = ""


class PartRow(msgspec.Struct, frozen=True, kw_only=True):
    """One part of a request: the provider it went to and the AWS resources behind it."""

    request_id: str
    provider: str
    api: str
    asked: int
    held: int
    status: RequestStatus
    fleet_id: str | None = None
    fleet_type: str | None = None
    launch_template_id: str | None = None
    message: str = ""


class MachineRow(msgspec.Struct, frozen=True, kw_only=True):
    """One machine ohf launched, as last observed."""

    machine_id: str
    name: str
    private_ip: str | None
    public_ip: str | None
    instance_type: str
    price_type: Literal["on-demand", "spot"]
    state: InstanceState
    result: MachineResult
    request_id: str
    provider: str
    units: int
    launch_time: int
    age: int
    returned_by: str | None = None
    message: str = ""


class RequestDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One request in full: its row, its parts, its machines."""

    request: RequestRow
    parts: list[PartRow]
    machines: list[MachineRow]


def _hf_id(request: Request) -> str:
    return request.parent or request.request_id


def machine_row(request: Request, machine: Machine, now: int) -> MachineRow:
    """One machine of `request` as a row."""
    return MachineRow(
        machine_id=machine.machine_id,
        name=machine.name,
        private_ip=machine.private_ip,
        public_ip=machine.public_ip,
        instance_type=machine.instance_type,
        price_type=machine.lifecycle,
        state=machine.state,
        result=acquire_result(machine),
        request_id=_hf_id(request),
        provider=label(request.provider),
        units=machine.units,
        launch_time=machine.launch_time,
        age=max(now - machine.launch_time, 0) if machine.launch_time else 0,
        returned_by=machine.returned_by,
        message=machine.message,
    )


def _acquire_row(parts: list[Request], now: int) -> RequestRow:
    root = parts[0]
    status, message = combined_status(parts)
    return RequestRow(
        request_id=root.request_id,
        kind="acquire",
        template_id=root.template_id,
        providers=list(dict.fromkeys(label(p.provider) for p in parts)),
        asked=sum(p.machine_count for p in parts),
        held=sum(live_units(p) for p in parts),
        machines=sum(len(p.machines) for p in parts),
        status=status,
        created_at=root.created_at,
        age=max(now - root.created_at, 0),
        message=message,
    )


def request_rows(
    state: State,
    now: int,
    *,
    status: RequestStatus | None = None,
    template: str | None = None,
    since: int | None = None,
) -> list[RequestRow]:
    """Every HF request (acquire and return), oldest first, filtered as asked."""
    index = parts_index(state)
    rows = [
        _acquire_row(hf_parts(state, rid, index), now)
        for rid, request in state.requests.items()
        if request.parent is None
    ]
    machines = machines_by_id(state)
    for ret in state.returns.values():
        out = return_status(ret, machines)
        owners = [machines[m][0] for m in ret.machine_ids if m in machines]
        rows.append(
            RequestRow(
                request_id=ret.request_id,
                kind="return",
                template_id=None,
                providers=list(dict.fromkeys(label(state.requests[o].provider) for o in owners)),
                asked=len(ret.machine_ids),
                held=sum(1 for m in out.machines if m.result != "succeed"),
                machines=len(ret.machine_ids),
                status=out.status,
                created_at=ret.created_at,
                age=max(now - ret.created_at, 0),
                message=ret.message,
            )
        )
    wanted = [
        r
        for r in rows
        if (status is None or r.status == status)
        and (template is None or r.template_id == template)
        and (since is None or r.created_at >= since)
    ]
    return sorted(wanted, key=lambda r: (r.created_at, r.request_id))


def machine_rows(
    state: State,
    now: int,
    *,
    request: str | None = None,
    machine_state: str | None = None,
    provider: str | None = None,
) -> list[MachineRow]:
    """Every machine ohf launched, by launch time, filtered as asked (`request`: an HF id)."""
    rows = [
        machine_row(r, m, now)
        for r in state.requests.values()
        for m in r.machines
        if (request is None or _hf_id(r) == request)
        and (machine_state is None or m.state == machine_state)
        and (provider is None or label(r.provider) == provider)
    ]
    return sorted(rows, key=lambda m: (m.launch_time, m.machine_id))


def request_detail(state: State, request_id: str, now: int) -> RequestDetail | None:
    """One HF request in full (None if ohf holds no such id)."""
    rows = [r for r in request_rows(state, now) if r.request_id == request_id]
    if not rows:
        return None
    if rows[0].kind == "return":
        machines = machines_by_id(state)
        held = [machines[m] for m in state.returns[request_id].machine_ids if m in machines]
        return RequestDetail(
            request=rows[0],
            parts=[],
            machines=[machine_row(state.requests[o], m, now) for o, m in held],
        )
    parts = hf_parts(state, request_id, parts_index(state))
    return RequestDetail(
        request=rows[0],
        parts=[
            PartRow(
                request_id=p.request_id,
                provider=label(p.provider),
                api=p.provider_api,
                asked=p.machine_count,
                held=live_units(p),
                status=combined_status([p])[0],
                fleet_id=p.fleet_id,
                fleet_type=p.fleet_type,
                launch_template_id=p.launch_template_id,
                message=p.message,
            )
            for p in parts
        ],
        machines=[machine_row(p, m, now) for p in parts for m in p.machines],
    )


class TemplateList(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf templates --json`."""

    templates: list[TemplateRow]


class RequestList(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf requests --json`."""

    requests: list[RequestRow]


class MachineList(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf machines --json`."""

    machines: list[MachineRow]
