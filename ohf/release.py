"""requestReturnMachines and getReturnRequests, pure: give machines back, spot what AWS took."""

from __future__ import annotations

from collections.abc import Generator, Mapping

import msgspec
from returns.result import Failure, Result, Success

from ohf.fleets import set_target
from ohf.intents import (
    DescribeInstances,
    DescribeSpotSignals,
    Intent,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.messages import (
    ErrorOut,
    MachineRef,
    ReclaimOut,
    RequestAccepted,
    ReturnMachinesIn,
    ReturnRequestsIn,
    ReturnRequestsOut,
)
from ohf.model import (
    ENDED_STATES,
    LOST_STATES,
    Instance,
    InstanceState,
    Machine,
    OhfError,
    ReturnRequest,
    SpotSignal,
    State,
)
from ohf.outcome import Done
from ohf.program import Answer, on, perform
from ohf.status import clean_up_finished, machines_by_id
from ohf.upkeep import end_noticed


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


def lower_fleets(
    state: State, ids: tuple[str, ...]
) -> Generator[Intent, Answer, tuple[State, OhfError | None]]:
    """Lower each affected fleet's target by the units HF returns, before anything terminates.

    A `maintain` EC2 Fleet or Spot Fleet would otherwise replace what ohf terminates. Groups are
    lowered by TerminateInGroup itself; `instant` and `request` fleets never replace anything.
    """
    index = machines_by_id(state)
    returned: dict[str, int] = {}
    for machine_id in ids:
        owner, machine = index[machine_id]
        if machine.returned_by is None and machine.state not in ENDED_STATES:
            returned[owner] = returned.get(owner, 0) + machine.units
    requests = dict(state.requests)
    for owner, units in sorted(returned.items()):
        request = requests[owner]
        # Only `maintain` fleets replace what ends (and AWS lets only those be modified).
        if (
            request.provider_api not in ("EC2Fleet", "SpotFleet")
            or request.fleet_id is None
            or request.fleet_type != "maintain"
            or request.cleaned_up
            or request.fleet_target == 0
        ):
            continue
        # Never below what HF keeps of the fleet: a return retried after TerminateInstances
        # failed finds its fleet lowered already and must not lower it again.
        kept = sum(
            m.units
            for m in request.machines
            if m.returned_by is None and m.state not in ENDED_STATES and m.machine_id not in ids
        )
        target = max(request.fleet_target - units, min(kept, request.fleet_target), 0)
        if target == request.fleet_target:
            continue
        intent, lowered = set_target(request, target)
        answer = yield from on(request.provider, perform(intent))
        if isinstance(answer, Failure):
            error = OhfError(
                message=(
                    f"could not lower {request.fleet_id} to {target} unit(s) "
                    f"({answer.failure().message}); nothing was terminated, so AWS does not "
                    "replace the machines"
                ),
                code="aws",
            )
            return msgspec.structs.replace(state, requests=requests), error
        requests[owner] = lowered
    return msgspec.structs.replace(state, requests=requests), None


def terminate_all(
    state: State, ids: tuple[str, ...]
) -> Generator[Intent, Answer, tuple[dict[str, InstanceState], OhfError | None]]:
    """Terminate `ids`: in their Auto Scaling group (lowering it) or with TerminateInstances."""
    index = machines_by_id(state)
    by_group: dict[tuple[str, str], list[str]] = {}
    plain: dict[str, list[str]] = {}
    for machine_id in ids:
        request = state.requests[index[machine_id][0]]
        if request.provider_api == "ASG" and request.fleet_id and not request.cleaned_up:
            by_group.setdefault((request.provider, request.fleet_id), []).append(machine_id)
        else:
            plain.setdefault(request.provider, []).append(machine_id)
    # Each machine is terminated in the account and region its request lives in.
    batches: list[tuple[str, TerminateInGroup | TerminateInstances]] = [
        (provider, TerminateInGroup(group=group, instance_ids=tuple(members)))
        for (provider, group), members in sorted(by_group.items())
    ] + [
        (provider, TerminateInstances(instance_ids=tuple(members)))
        for provider, members in sorted(plain.items())
    ]
    states: dict[str, InstanceState] = {}
    for provider, batch in batches:
        answer = yield from on(provider, perform(batch))
        if isinstance(answer, Failure):
            what = (
                "TerminateInstanceInAutoScalingGroup"
                if isinstance(batch, TerminateInGroup)
                else "TerminateInstances"
            )
            return states, OhfError(
                message=f"{what} failed: {answer.failure().message}", code="aws"
            )
        asked = batch.instance_ids
        new_states: Mapping[str, InstanceState] = answer.unwrap()
        states.update({i: new_states.get(i, "shutting-down") for i in asked})
    return states, None


def lower_groups(state: State, states: Mapping[str, InstanceState]) -> State:
    """Groups lowered their desired capacity as TerminateInGroup ended their machines."""
    index = machines_by_id(state)
    lowered: dict[str, int] = {}
    for machine_id in states:
        owner, machine = index[machine_id]
        request = state.requests[owner]
        if request.provider_api == "ASG" and machine.returned_by is None:
            lowered[owner] = lowered.get(owner, 0) + machine.units
    requests = dict(state.requests)
    for owner, units in lowered.items():
        request = requests[owner]
        target = max(request.fleet_target - units, 0)
        requests[owner] = msgspec.structs.replace(
            request,
            fleet_target=target,
            fleet_on_demand=min(request.fleet_on_demand, target),
            fleet_done=request.fleet_done or target == 0,
        )
    return msgspec.structs.replace(state, requests=requests)


def return_machines(
    state: State, ask: ReturnMachinesIn, *, return_id: str, now: int
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The requestReturnMachines program: lower fleets, terminate, record, clean up."""
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
    ids = tuple(dict.fromkeys(machine_id for _, machine_id in known))
    lowered, error = yield from lower_fleets(state, ids)
    if error is not None:
        if lowered == state:
            return Failure(error)
        return Success(Done(reply=ErrorOut(message=error.message), state=lowered, exit_code=1))
    states, error = yield from terminate_all(lowered, ids)
    if not states and error is not None:
        if lowered == state:
            return Failure(error)
        message = (
            f"{error.message}; nothing was terminated (the fleets were lowered first and stay "
            "lowered, so AWS does not replace the machines: return them again)"
        )
        return Success(Done(reply=ErrorOut(message=message), state=lowered, exit_code=1))
    done_ids = tuple(i for i in ids if i in states)
    ret = ReturnRequest(request_id=return_id, created_at=now, machine_ids=done_ids)
    new_state = mark_returned(lower_groups(lowered, states), return_id, states)
    new_state = msgspec.structs.replace(new_state, returns={**new_state.returns, return_id: ret})
    owners = sorted({machines_by_id(state)[i][0] for i in done_ids})
    new_state = yield from clean_up_finished(new_state, owners)
    gone = sum(1 for s in states.values() if s == "gone")
    note = f" ({gone} already gone)" if gone else ""
    if error is not None:
        message = (
            f"request {return_id}: terminating {len(done_ids)} of {len(ids)} machine(s) "
            f"started, then {error.message}"
        )
        return Success(Done(reply=ErrorOut(message=message), state=new_state, exit_code=1))
    return Success(
        Done(
            reply=RequestAccepted(
                request_id=return_id, message=f"terminating {len(ids)} machine(s){note}"
            ),
            state=new_state,
        )
    )


# A spot interruption notice comes two minutes before AWS takes the instance.
SPOT_NOTICE_SECONDS = 120


def grace_period(signal: SpotSignal, now: int) -> int:
    """Seconds left before AWS reclaims a signalled instance (0 if unknown or past)."""
    if signal.kind != "interruption":
        return 0
    return max(signal.at + SPOT_NOTICE_SECONDS - now, 0)


def spot_signals(
    index: Mapping[str, tuple[str, Machine]],
    running: list[str],
    providers: Mapping[str, str] | None = None,
) -> Generator[Intent, Answer, tuple[dict[str, SpotSignal], str]]:
    """Interruption/rebalance notices for the running spot machines among `running`.

    `providers` names each machine's provider (absent: the only one); one call per provider.
    """
    spot = sorted(i for i in running if i in index and index[i][1].lifecycle == "spot")
    by_provider: dict[str, list[str]] = {}
    for machine_id in spot:
        by_provider.setdefault((providers or {}).get(machine_id, ""), []).append(machine_id)
    found: dict[str, SpotSignal] = {}
    notes: list[str] = []
    for provider, members in sorted(by_provider.items()):
        answer = yield from on(provider, perform(DescribeSpotSignals(instance_ids=tuple(members))))
        if isinstance(answer, Failure):
            notes.append(f"spot notices not checked ({answer.failure().message})")
            continue
        signals: tuple[SpotSignal, ...] = answer.unwrap()
        found.update((s.instance_id, s) for s in signals)
    return found, "; ".join(notes)


def return_requests(
    state: State,
    ask: ReturnRequestsIn,
    *,
    now: int = 0,
    providers: tuple[str, ...] = ("",),
    terminate_on_notice: bool = False,
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The getReturnRequests program: which of HF's hosts the cloud is taking or has taken.

    `providers` are the names of every configured provider ("" alone: the `[aws]` one). With
    `terminate_on_notice` (`[aws] terminate_spot_on_notice`), the spot machines ohf launched
    that this answer reports for their interruption notice are terminated in the same call,
    batched per provider, and the returned state records it (the call must then save it).
    """
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
    # Each machine is looked for where its request lives; ids ohf does not know, everywhere.
    where = {mid: state.requests[index[mid][0]].provider for mid in candidates if mid in index}
    asked: dict[str, list[str]] = {}
    for mid in sorted(candidates):
        for provider in (where[mid],) if mid in where else providers:
            asked.setdefault(provider, []).append(mid)
    seen: dict[str, Instance] = {}
    for provider, members in sorted(asked.items()):
        answer = yield from on(provider, perform(DescribeInstances(instance_ids=tuple(members))))
        if isinstance(answer, Failure):
            return Failure(
                OhfError(
                    message=f"DescribeInstances failed: {answer.failure().message}", code="aws"
                )
            )
        seen.update((i.instance_id, i) for i in answer.unwrap())
    running = [m for m in candidates if m in seen and seen[m].state not in LOST_STATES]
    signals, signal_note = yield from spot_signals(index, running, where)
    # Every noticed machine is in this answer (HF hears of it here), whatever happens next.
    new_state, end_note = state, ""
    ended: tuple[str, ...] = ()
    if terminate_on_notice:
        new_state, ended, end_note = yield from end_noticed(state, index, signals, where)
    lost = [
        ReclaimOut(
            machine=name or (index[mid][1].name if mid in index else "") or mid,
            machine_id=mid,
            grace_period=grace_period(signals[mid], now) if mid in signals else 0,
        )
        for mid, name in candidates.items()
        if mid not in seen or seen[mid].state in LOST_STATES or mid in signals
    ]
    # Terminated just now: no grace left.
    lost = [
        msgspec.structs.replace(r, grace_period=0) if r.machine_id in ended else r for r in lost
    ]
    foreign = [mid for mid in candidates if mid not in index]
    notes = [_note(unnamed), signal_note, end_note] + (
        [f"{len(foreign)} machine(s) unknown to ohf were checked too: {', '.join(foreign[:20])}"]
        if foreign
        else []
    )
    message = "; ".join(n for n in notes if n) or f"{len(lost)} machine(s) reclaimed by the cloud"
    return Success(Done(reply=ReturnRequestsOut(requests=lost, message=message), state=new_state))


def _note(unnamed: list[MachineRef]) -> str:
    if not unnamed:
        return ""
    return f"{len(unnamed)} machine(s) had neither a known machineId nor a known name"
