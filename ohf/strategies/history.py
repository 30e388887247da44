"""Related pairs and runs of states, and states aged over a month: for the event log and pruning."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from hypothesis import strategies as st

from ohf.model import Machine, Phase, Request, RequestStatus, ReturnRequest, State
from ohf.strategies.records import machines, requests, return_requests, states
from ohf.strategies.values import _EPOCH

_DAY = 86_400


def _unique_machines(machines: Sequence[Machine]) -> tuple[Machine, ...]:
    seen: set[str] = set()
    out: list[Machine] = []
    for machine in machines:
        if machine.machine_id not in seen:
            seen.add(machine.machine_id)
            out.append(machine)
    return tuple(out)


@st.composite
def _changed_request(draw: st.DrawFn, request: Request) -> Request:
    """`request` after some call: machines changed, added, dropped or reordered; fields moved."""
    kept = [
        draw(machines(machine_id=m.machine_id)) if draw(st.booleans()) else m
        for m in request.machines
        if draw(st.integers(0, 5)) > 0
    ]
    added = draw(st.lists(machines(), max_size=2))
    moved = draw(st.permutations(kept + added)) if draw(st.booleans()) else kept + added
    status: RequestStatus = draw(st.sampled_from(("running", "complete", "complete_with_error")))
    phase: Phase = draw(st.sampled_from(("launched", "launching", "failed")))
    return msgspec.structs.replace(
        request,
        machines=_unique_machines(moved),
        status=draw(st.sampled_from((request.status, status))),
        phase=draw(st.sampled_from((request.phase, phase))),
        message=draw(st.sampled_from((request.message, "adopted 1 instance(s)"))),
        fleet_id=draw(st.sampled_from((request.fleet_id, "fleet-0abc"))),
        cleaned_up=draw(st.sampled_from((request.cleaned_up, True))),
        ended_at=draw(st.sampled_from((request.ended_at, _EPOCH + 10))),
    )


@st.composite
def changed_states(draw: st.DrawFn, state: State) -> State:
    """`state` after an arbitrary call: requests and returns created, changed or removed."""
    held: dict[str, Request] = {}
    for rid, request in state.requests.items():
        fate = draw(st.sampled_from(("keep", "change", "change", "drop")))
        if fate != "drop":
            held[rid] = draw(_changed_request(request)) if fate == "change" else request
    for request in draw(st.lists(requests(), max_size=2)):
        held.setdefault(request.request_id, request)
    returns: dict[str, ReturnRequest] = {}
    for rid, ret in state.returns.items():
        fate = draw(st.sampled_from(("keep", "change", "drop")))
        if fate == "change":
            returns[rid] = msgspec.structs.replace(
                ret, status="complete", ended_at=_EPOCH + 20, message="all machines gone"
            )
        elif fate == "keep":
            returns[rid] = ret
    known = sorted({m.machine_id for r in held.values() for m in r.machines})
    for ret in draw(st.lists(return_requests(known), max_size=1)):
        returns.setdefault(ret.request_id, ret)
    return msgspec.structs.replace(state, requests=held, returns=returns)


@st.composite
def state_changes(draw: st.DrawFn) -> tuple[State, State]:
    """A state and the state some call left after it (`before`, `after`)."""
    before = draw(states())
    return before, draw(changed_states(before))


@st.composite
def state_histories(draw: st.DrawFn, *, max_steps: int = 5) -> list[State]:
    """A run of states, each one call after the previous, starting from the empty state."""
    history = [State()]
    for _ in range(draw(st.integers(1, max_steps))):
        history.append(draw(changed_states(history[-1])))
    return history


@st.composite
def aged_states(draw: st.DrawFn) -> State:
    """A state whose requests and returns ended at various times in the last 30 days (or not).

    Some requests are settled (final, every machine ended, a fleet's resources deleted) with an
    `ended_at`; some carry an `ended_at` while a machine still runs, as a state damaged by hand
    might.
    """
    state = draw(states())
    ended_at = st.integers(_EPOCH - 30 * _DAY, _EPOCH)
    aged: dict[str, Request] = {}
    for rid, request in state.requests.items():
        kind = draw(st.sampled_from(("open", "settled", "settled", "stamped-open")))
        aged[rid] = request
        if kind == "settled":
            aged[rid] = msgspec.structs.replace(
                request,
                phase="launched" if request.machines else "failed",
                status=draw(st.sampled_from(("complete", "complete_with_error"))),
                machines=tuple(
                    msgspec.structs.replace(m, state=draw(st.sampled_from(("terminated", "gone"))))
                    for m in request.machines
                ),
                fleet_done=request.fleet_done or request.fleet_id is not None,
                cleaned_up=bool(request.fleet_id or request.launch_template_id),
                ended_at=draw(ended_at),
            )
        elif kind == "stamped-open":
            aged[rid] = msgspec.structs.replace(request, ended_at=draw(ended_at))
    returns = {
        rid: msgspec.structs.replace(ret, status="complete", ended_at=draw(ended_at))
        if draw(st.booleans())
        else ret
        for rid, ret in state.returns.items()
    }
    return msgspec.structs.replace(state, requests=aged, returns=returns)
