"""Observing requests, pure: fold what the cloud reports into requests, machines and HF statuses.

One provider's share of a getRequestStatus poll (`observe_group`), the HF shape of a request
and of a return; `ohf.parts` runs it on every provider a request lives on.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping

import msgspec
from returns.result import Failure, Success

from ohf.fleets import clean_up, cleanup_due, follow_fleets
from ohf.intents import (
    DescribeInstances,
    Intent,
    TerminateInstances,
)
from ohf.messages import MachineOut, RequestStatusOut
from ohf.model import (
    ENDED_STATES,
    LOST_STATES,
    Instance,
    InstanceState,
    Machine,
    MachineResult,
    Request,
    RequestStatus,
    ReturnRequest,
    State,
)
from ohf.program import Answer, on
from ohf.upkeep import tag_running

# DescribeInstances is eventually consistent: a just-launched instance can be missing for a
# while. Within this window a missing, never-seen-running machine is not declared gone.
VISIBILITY_GRACE_SECONDS = 300
TERMINAL: frozenset[str] = frozenset({"complete", "complete_with_error"})


def acquire_result(machine: Machine) -> MachineResult:
    """An acquired machine's result: sticky once decided, else read from its state."""
    if machine.result != "executing":
        return machine.result
    if machine.state == "running" and machine.private_ip:
        return "succeed"
    if machine.state in LOST_STATES:
        return "fail"
    return "executing"


def return_result(machine: Machine) -> MachineResult:
    """A returned machine's result: succeed once terminated or gone."""
    return "succeed" if machine.state in ENDED_STATES else "executing"


def observe(machine: Machine, seen: Instance | None, now: int) -> Machine:
    """The machine updated with what the cloud says (absent = gone, after a grace period)."""
    if seen is None:
        young = now - machine.launch_time < VISIBILITY_GRACE_SECONDS
        if machine.state == "pending" and young:
            return machine
        updated = msgspec.structs.replace(
            machine, state="gone", message=machine.message or "no longer listed by EC2"
        )
    else:
        updated = msgspec.structs.replace(
            machine,
            state=seen.state,
            name=seen.private_dns or machine.name,
            private_ip=seen.private_ip or machine.private_ip,
            public_ip=seen.public_ip,
            launch_time=seen.launch_time or machine.launch_time,
            instance_type=seen.instance_type or machine.instance_type,
            message=seen.state_reason if seen.state in LOST_STATES else machine.message,
        )
    return msgspec.structs.replace(updated, result=acquire_result(updated))


def adopt(request: Request, instances: Iterable[Instance], units: Mapping[str, int]) -> Request:
    """Add instances tagged with this request's id that the state does not hold yet."""
    known = {m.machine_id for m in request.machines}
    found = [i for i in instances if i.instance_id not in known]
    if not found:
        return request
    adopted = tuple(
        Machine(
            machine_id=i.instance_id,
            name=i.private_dns,
            instance_type=i.instance_type,
            units=units.get(i.instance_type, 1),
            state=i.state,
            private_ip=i.private_ip,
            public_ip=i.public_ip,
            launch_time=i.launch_time,
            lifecycle=i.lifecycle,
            message="adopted: found by its ohf:request-id tag",
        )
        for i in found
    )
    if request.fleet_id is not None:
        # A fleet's machines are expected to turn up this way: they are not orphans.
        adopted = tuple(msgspec.structs.replace(m, message="") for m in adopted)
        return msgspec.structs.replace(request, machines=request.machines + adopted)
    note = f"adopted {len(adopted)} instance(s) found by tag but missing from the state"
    return msgspec.structs.replace(
        request,
        phase="launched",
        machines=request.machines + adopted,
        message="; ".join(m for m in (request.message, note) if m),
    )


def acquire_status(request: Request) -> tuple[RequestStatus, str]:
    """The HF status of an acquire request (sticky once terminal) and its message."""
    if request.status in TERMINAL:
        return request.status, request.message
    if request.phase == "failed":
        return "complete_with_error", request.message
    if request.phase == "launching":
        return "running", request.message
    results = [acquire_result(m) for m in request.machines]
    if "executing" in results:
        return "running", request.message
    good = sum(m.units for m in request.machines if acquire_result(m) == "succeed")
    if good >= request.machine_count:
        extra = good - request.machine_count
        over = f"{good} units for the {request.machine_count} asked (whole instances)"
        return "complete", "; ".join(x for x in (request.message, over if extra else "") if x)
    if request.fleet_id is not None and not request.fleet_done:
        return "running", request.message
    failed = [m for m in request.machines if acquire_result(m) == "fail"]
    reasons = "; ".join(dict.fromkeys(f"{m.machine_id}: {m.message or m.state}" for m in failed))
    message = f"{good} of {request.machine_count} units usable"
    return "complete_with_error", "; ".join(x for x in (request.message, message, reasons) if x)


def settle_launching(request: Request, now: int) -> Request:
    """A request still `launching` when another call sees it: its launch was cut off.

    Calls hold the state lock for their whole run, so no live process is mid-launch here. The
    launch may still have started instances that DescribeInstances does not show yet, so the
    request keeps its reservation and is looked for by tag for a grace period before it fails.
    """
    if request.phase != "launching":
        return request
    if request.machines:
        return msgspec.structs.replace(request, phase="launched")
    if now - request.created_at < VISIBILITY_GRACE_SECONDS:
        return request
    return msgspec.structs.replace(
        request,
        phase="failed",
        status="complete_with_error",
        message="; ".join(
            x
            for x in (
                request.message,
                "no instance of this request appeared: the launch did not happen",
            )
            if x
        ),
    )


def machine_out(machine: Machine, result: MachineResult) -> MachineOut:
    """One machine in HF's shape."""
    return MachineOut(
        machine_id=machine.machine_id,
        name=machine.name or machine.private_ip or machine.machine_id,
        result=result,
        status="terminated" if machine.state == "gone" else machine.state,
        private_ip_address=machine.private_ip,
        public_ip_address=machine.public_ip,
        launchtime=machine.launch_time,
        message=machine.message,
    )


def machines_by_id(state: State) -> dict[str, tuple[str, Machine]]:
    """Every machine ohf knows, by instance id, with the id of the request that launched it."""
    return {m.machine_id: (r.request_id, m) for r in state.requests.values() for m in r.machines}


def return_status(ret: ReturnRequest, index: Mapping[str, tuple[str, Machine]]) -> RequestStatusOut:
    """A return request in HF's shape."""
    machines = [index[i][1] for i in ret.machine_ids if i in index]
    results = [return_result(m) for m in machines]
    status: RequestStatus = (
        "complete"
        if ret.status == "complete" or all(r == "succeed" for r in results)
        else "running"
    )
    return RequestStatusOut(
        request_id=ret.request_id,
        status=status,
        message=ret.message,
        machines=[machine_out(m, r) for m, r in zip(machines, results, strict=True)],
    )


def unknown_request(request_id: str) -> RequestStatusOut:
    """The per-request answer for an id ohf never issued (the call itself still succeeds)."""
    return RequestStatusOut(
        request_id=request_id,
        status="complete_with_error",
        message=f"unknown request id {request_id!r}: ohf has no record of it",
        machines=[],
    )


def apply_observations(
    state: State,
    request_ids: Iterable[str],
    instances: Iterable[Instance],
    weights: Mapping[str, Mapping[str, int]],
    now: int,
) -> State:
    """Update the named acquire requests with the cloud's view: states, adoptions, statuses."""
    by_request: dict[str, list[Instance]] = {}
    for inst in instances:
        if inst.request_id:
            by_request.setdefault(inst.request_id, []).append(inst)
    updated = dict(state.requests)
    for rid in request_ids:
        request = state.requests[rid]
        seen = {i.instance_id: i for i in by_request.get(rid, [])}
        request = adopt(request, seen.values(), weights.get(request.template_id, {}))
        request = settle_launching(request, now)
        request = msgspec.structs.replace(
            request,
            machines=tuple(observe(m, seen.get(m.machine_id), now) for m in request.machines),
        )
        status, message = acquire_status(request)
        updated[rid] = msgspec.structs.replace(request, status=status, message=message)
    return msgspec.structs.replace(state, requests=updated)


def settle_returns(state: State, return_ids: Iterable[str]) -> State:
    """Mark return requests complete once all their machines are gone (sticky)."""
    index = machines_by_id(state)
    returns = dict(state.returns)
    for rid in return_ids:
        out = return_status(state.returns[rid], index)
        if out.status == "complete":
            returns[rid] = msgspec.structs.replace(state.returns[rid], status="complete")
    return msgspec.structs.replace(state, returns=returns)


def settled(request: Request) -> bool:
    """True when the request is final, its machines can change no more and AWS holds nothing."""
    return (
        request.phase != "launching"
        and request.status in TERMINAL
        and all(m.state in ENDED_STATES for m in request.machines)
        and (request.cleaned_up or not (request.fleet_id or request.launch_template_id))
    )


def restatus(state: State, request_ids: Iterable[str]) -> State:
    """Recompute the HF status of the named requests (after fleet verdicts changed them)."""
    updated = dict(state.requests)
    for rid in request_ids:
        status, message = acquire_status(updated[rid])
        updated[rid] = msgspec.structs.replace(updated[rid], status=status, message=message)
    return msgspec.structs.replace(state, requests=updated)


def end_cut_off(state: State, request_ids: list[str], now: int) -> Generator[Intent, Answer, State]:
    """Terminate what cut-off requests launched, and end them once nothing more can show up.

    HF never got these requests' ids, so it will never use or return their machines: they
    would run (and cost) for good. They are terminated as soon as a poll finds them, and the
    request ends `complete_with_error` once past the visibility grace (its units are freed).
    """
    if not request_ids:
        return state
    live = [
        m.machine_id
        for rid in request_ids
        for m in state.requests[rid].machines
        if m.returned_by is None and m.state not in LOST_STATES
    ]
    ended: Mapping[str, InstanceState] = {}
    if live:
        answer = yield TerminateInstances(instance_ids=tuple(live))
        if isinstance(answer, Success):
            ended = {i: answer.unwrap().get(i, "shutting-down") for i in live}
    updated = dict(state.requests)
    for rid in request_ids:
        updated[rid] = _cut_off(updated[rid], ended, now)
    return msgspec.structs.replace(state, requests=updated)


def _cut_off(request: Request, ended: Mapping[str, InstanceState], now: int) -> Request:
    machines = tuple(
        msgspec.structs.replace(
            m,
            state=ended[m.machine_id],
            returned_by="cut-off",
            message="; ".join(
                x
                for x in (
                    m.message,
                    "terminated: its requestMachines was cut off before answering HF",
                )
                if x
            ),
        )
        if m.machine_id in ended
        else m
        for m in request.machines
    )
    if now - request.created_at < VISIBILITY_GRACE_SECONDS:
        return msgspec.structs.replace(request, machines=machines)
    note = (
        f"requestMachines was cut off before answering HF; the {len(machines)} instance(s) "
        "it launched were terminated"
        if machines
        else "requestMachines was cut off before answering HF; nothing was launched"
    )
    return msgspec.structs.replace(
        request,
        machines=machines,
        phase="failed" if not machines else request.phase,
        status="complete_with_error",
        message="; ".join(x for x in (request.message, note) if x),
    )


def clean_up_finished(state: State, request_ids: Iterable[str]) -> Generator[Intent, Answer, State]:
    """Delete the fleets, groups and launch templates of requests that no longer need them."""
    updated = dict(state.requests)
    for rid in request_ids:
        if cleanup_due(updated[rid]):
            updated[rid] = yield from on(updated[rid].provider, clean_up(updated[rid]))
    return msgspec.structs.replace(state, requests=updated)


def observe_group(
    state: State,
    request_ids: list[str],
    cut: list[str],
    weights: Mapping[str, Mapping[str, int]],
    now: int,
    *,
    tag_ids: bool = False,
) -> Generator[Intent, Answer, tuple[State, str]]:
    """One provider's share of a poll: one describe, fleets, cut-off requests, clean-ups, and
    (`tag_ids`) the InstanceID tags of machines newly running."""
    answer = yield DescribeInstances(request_ids=tuple(request_ids))
    if isinstance(answer, Failure):
        return state, f"AWS did not answer ({answer.failure().message}); last known state shown"
    seen = answer.unwrap()
    new_state = apply_observations(state, request_ids, seen, weights, now)
    new_state, fleet_note = yield from follow_fleets(new_state, request_ids)
    new_state = restatus(new_state, request_ids)
    new_state = yield from end_cut_off(new_state, cut, now)
    new_state = yield from clean_up_finished(new_state, request_ids)
    tag_note = ""
    if tag_ids:
        new_state, tag_note = yield from tag_running(new_state, request_ids, seen)
    return new_state, "; ".join(n for n in (fleet_note, tag_note) if n)
