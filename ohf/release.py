"""requestReturnMachines and getReturnRequests, pure: give machines back, spot what AWS took."""

from __future__ import annotations

from collections.abc import Generator, Mapping

import msgspec
from returns.result import Failure, Result, Success
from toolz import unique

from ohf.effects.intents import DescribeInstances, Intent, TerminateInstances
from ohf.messages import (
    MachineRef,
    ReclaimOut,
    RequestAccepted,
    ReturnMachinesIn,
    ReturnRequestsIn,
    ReturnRequestsOut,
)
from ohf.model import TERMINAL_STATES, InstanceState, Machine, OhfError, ReturnRequest, State
from ohf.outcome import Done
from ohf.program import Answer
from ohf.status import machines_by_id

# States in which HF has lost (or is losing) the host without having asked for it back.
LOST_STATES: frozenset[str] = TERMINAL_STATES | {"stopping", "stopped"}


def ids_by_name(index: Mapping[str, tuple[str, Machine]]) -> dict[str, str]:
    """Machine ids by host name (HF may name a machine by its private DNS name only)."""
    return {m.name: m.machine_id for _, m in index.values() if m.name}


def resolve_refs(
    state: State, refs: list[MachineRef]
) -> tuple[list[tuple[MachineRef, str]], list[MachineRef]]:
    """Match HF's machine refs to ohf's machines by id, else by name: (known, unknown)."""
    index = machines_by_id(state)
    by_name = ids_by_name(index)
    known: list[tuple[MachineRef, str]] = []
    unknown: list[MachineRef] = []
    for ref in refs:
        machine_id = ref.machine_id if ref.machine_id in index else by_name.get(ref.name)
        if machine_id is None:
            unknown.append(ref)
        else:
            known.append((ref, machine_id))
    return known, unknown


def mark_returned(state: State, return_id: str, states: Mapping[str, InstanceState]) -> State:
    """The state with the machines in `states` returned by `return_id`, at their new states."""

    def update(machine: Machine) -> Machine:
        if machine.machine_id not in states:
            return machine
        return msgspec.structs.replace(
            machine, returned_by=return_id, state=states[machine.machine_id]
        )

    requests = {
        rid: msgspec.structs.replace(r, machines=tuple(update(m) for m in r.machines))
        if any(m.machine_id in states for m in r.machines)
        else r
        for rid, r in state.requests.items()
    }
    return msgspec.structs.replace(state, requests=requests)


def return_machines(
    state: State, ask: ReturnMachinesIn, *, return_id: str, now: int
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The requestReturnMachines program: terminate ohf's machines and record the return."""
    known, unknown = resolve_refs(state, ask.machines)
    if unknown:
        names = ", ".join(r.machine_id or r.name or "<empty>" for r in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        return Failure(
            OhfError(
                message=(
                    f"{len(unknown)} machine(s) are not ohf's and were not returned: "
                    f"{names}{more}; nothing was terminated"
                ),
                code="input",
            )
        )
    ids = tuple(unique(machine_id for _, machine_id in known))
    answer = yield TerminateInstances(instance_ids=ids)
    if isinstance(answer, Failure):
        return Failure(
            OhfError(message=f"TerminateInstances failed: {answer.failure().message}", code="aws")
        )
    new_states: Mapping[str, InstanceState] = answer.unwrap()
    states = {i: new_states.get(i, "shutting-down") for i in ids}
    ret = ReturnRequest(request_id=return_id, created_at=now, machine_ids=ids)
    new_state = mark_returned(state, return_id, states)
    new_state = msgspec.structs.replace(new_state, returns={**new_state.returns, return_id: ret})
    gone = sum(1 for s in states.values() if s == "gone")
    note = f" ({gone} already gone)" if gone else ""
    return Success(
        Done(
            reply=RequestAccepted(
                request_id=return_id, message=f"terminating {len(ids)} machine(s){note}"
            ),
            state=new_state,
        )
    )


def return_requests(
    state: State, ask: ReturnRequestsIn
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The getReturnRequests program: which of HF's hosts the cloud is taking or has taken."""
    index = machines_by_id(state)
    by_name = ids_by_name(index)
    # Without HF's list: every machine HF was given (succeed) and did not give back, including
    # ones a status poll already saw ending, since those are exactly the reclaims to report.
    refs = ask.machines or [
        MachineRef(name=m.name, machine_id=m.machine_id)
        for _, m in index.values()
        if m.returned_by is None and m.result == "succeed"
    ]
    wanted: dict[str, str] = {}
    for ref in refs:
        machine_id = ref.machine_id or by_name.get(ref.name, "")
        if machine_id:
            wanted.setdefault(machine_id, ref.name)
    # Hosts HF itself returned are not the cloud's doing; they are not reclaims.
    candidates = {
        i: n for i, n in wanted.items() if i not in index or index[i][1].returned_by is None
    }
    unnamed = [r for r in refs if not (r.machine_id or by_name.get(r.name))]
    if not candidates:
        return Success(
            Done(reply=ReturnRequestsOut(requests=[], message=_note(unnamed)), state=state)
        )
    answer = yield DescribeInstances(instance_ids=tuple(sorted(candidates)))
    if isinstance(answer, Failure):
        return Failure(
            OhfError(message=f"DescribeInstances failed: {answer.failure().message}", code="aws")
        )
    seen = {i.instance_id: i for i in answer.unwrap()}
    lost = [
        ReclaimOut(
            machine=name or (index[mid][1].name if mid in index else "") or mid,
            machine_id=mid,
            grace_period=0,
        )
        for mid, name in candidates.items()
        if mid not in seen or seen[mid].state in LOST_STATES
    ]
    foreign = [mid for mid in candidates if mid not in index]
    notes = [_note(unnamed)] + (
        [f"{len(foreign)} machine(s) unknown to ohf were checked too: {', '.join(foreign[:20])}"]
        if foreign
        else []
    )
    message = "; ".join(n for n in notes if n) or f"{len(lost)} machine(s) reclaimed by the cloud"
    return Success(Done(reply=ReturnRequestsOut(requests=lost, message=message), state=state))


def _note(unnamed: list[MachineRef]) -> str:
    if not unnamed:
        return ""
    return f"{len(unnamed)} machine(s) had neither a known machineId nor a known name"
