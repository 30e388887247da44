"""The event log's laws: diff then replay is exact, pruning keeps what can still change."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Success

from ohf import release
from ohf.effects import fake
from ohf.events import Event, apply, diff, mark_ended, prune, replay
from ohf.intents import Intent, SaveState
from ohf.messages import (
    MachineRef,
    RequestMachinesIn,
    RequestRef,
    RequestStatusIn,
    ReturnMachinesIn,
    TemplateAsk,
)
from ohf.model import ENDED_STATES, State, Template
from ohf.parts import request_machines
from ohf.poll import request_status
from ohf.program import Answer, run
from ohf.status import settled
from ohf.strategies import SSM_IMAGES, aged_states, state_changes, state_histories, states

STAMP: dict[str, Any] = {"at": 1_700_000_100, "correlation": "abc123", "call": "test"}
DAY = 86_400
_event_json = msgspec.json.Decoder(tuple[Event, ...])


@given(state_changes())
def test_replaying_a_diff_gives_the_new_state(change: tuple[State, State]) -> None:
    before, after = change
    assert replay(diff(before, after, **STAMP), before) == after


@given(states(), states())
def test_replaying_a_diff_between_unrelated_states_gives_the_second(a: State, b: State) -> None:
    assert replay(diff(a, b, **STAMP), a) == b


@given(state_histories())
def test_replaying_the_whole_log_from_empty_gives_the_last_state(history: list[State]) -> None:
    log = [e for a, b in itertools.pairwise(history) for e in diff(a, b, **STAMP)]
    assert replay(log) == history[-1]


@given(state_histories())
def test_the_log_survives_json(history: list[State]) -> None:
    log = tuple(e for a, b in itertools.pairwise(history) for e in diff(a, b, **STAMP))
    assert _event_json.decode(msgspec.json.encode(log)) == log
    assert replay(_event_json.decode(msgspec.json.encode(log))) == history[-1]


@given(states())
def test_no_change_means_no_event(state: State) -> None:
    assert diff(state, state, **STAMP) == ()


@given(state_changes())
def test_diff_is_deterministic_and_stamps_every_event(change: tuple[State, State]) -> None:
    before, after = change
    events = diff(before, after, **STAMP)
    assert events == diff(before, after, **STAMP)
    assert all((e.at, e.correlation, e.call) == (1_700_000_100, "abc123", "test") for e in events)


@given(state_changes())
def test_each_changed_request_or_return_has_events_and_no_other_does(
    change: tuple[State, State],
) -> None:
    before, after = change
    touched = {e.request_id for e in diff(before, after, **STAMP)}
    changed = {
        rid
        for rid in before.requests.keys() | after.requests.keys()
        if before.requests.get(rid) != after.requests.get(rid)
    } | {
        rid
        for rid in before.returns.keys() | after.returns.keys()
        if before.returns.get(rid) != after.returns.get(rid)
    }
    assert touched == changed


@given(state_changes())
def test_event_kinds_name_the_change(change: tuple[State, State]) -> None:
    before, after = change
    for event in diff(before, after, **STAMP):
        rid = event.request_id
        if event.kind == "request_created":
            assert rid not in before.requests and rid in after.requests
        elif event.kind == "request_pruned":
            assert rid in before.requests and rid not in after.requests
        elif event.kind == "instances_launched":
            old = {m.machine_id for m in before.requests[rid].machines}
            assert event.machines and all(m.machine_id not in old for m in event.machines)
        elif event.kind == "machine_changed":
            old = {m.machine_id: m for m in before.requests[rid].machines}
            assert all(m.machine_id in old and old[m.machine_id] != m for m in event.machines)
        elif event.kind == "resources_deleted":
            assert not before.requests[rid].cleaned_up and after.requests[rid].cleaned_up
        elif event.kind == "return_requested":
            assert rid not in before.returns and rid in after.returns
        elif event.kind == "return_pruned":
            assert rid in before.returns and rid not in after.returns


def test_a_cleanup_is_logged_as_resources_deleted() -> None:
    state = fake_lifecycle()[-1]
    rid = next(iter(state.requests))
    cleaned = msgspec.structs.replace(
        state,
        requests={rid: msgspec.structs.replace(state.requests[rid], cleaned_up=True)},
    )
    events = diff(state, cleaned, **STAMP)
    assert [e.kind for e in events] == ["resources_deleted"]
    assert apply(state, events[0]) == cleaned


@given(aged_states(), st.integers(0, 40 * DAY))
def test_prune_never_drops_a_request_that_can_still_change(state: State, retention: int) -> None:
    pruned = prune(state, now=1_700_000_000, retention=retention)
    for rid, request in state.requests.items():
        if rid not in pruned.requests:
            assert settled(request)
            assert all(m.state in ENDED_STATES for m in request.machines)
            assert request.ended_at is not None


@given(aged_states(), st.integers(0, 40 * DAY))
def test_prune_keeps_everything_younger_than_the_retention(state: State, retention: int) -> None:
    now = 1_700_000_000
    pruned = prune(state, now=now, retention=retention)
    for rid, request in state.requests.items():
        if request.ended_at is None or now - request.ended_at <= retention:
            assert pruned.requests[rid] == request
    for rid, ret in state.returns.items():
        if ret.ended_at is None or now - ret.ended_at <= retention:
            assert pruned.returns[rid] == ret


@given(aged_states(), st.integers(0, 40 * DAY))
def test_prune_keeps_a_return_while_its_machines_are_kept(state: State, retention: int) -> None:
    pruned = prune(state, now=1_700_000_000, retention=retention)
    held = {m.machine_id for r in pruned.requests.values() for m in r.machines}
    for rid, ret in state.returns.items():
        if held & set(ret.machine_ids):
            assert rid in pruned.returns


@given(aged_states(), st.integers(0, 40 * DAY))
def test_prune_is_idempotent_and_only_removes(state: State, retention: int) -> None:
    pruned = prune(state, now=1_700_000_000, retention=retention)
    assert prune(pruned, now=1_700_000_000, retention=retention) == pruned
    kinds = {e.kind for e in diff(state, pruned, **STAMP)}
    assert kinds <= {"request_pruned", "return_pruned"}


@given(aged_states())
def test_prune_drops_what_ended_before_the_retention(state: State) -> None:
    # Thirty days of history, a retention of one second: every settled request goes, and every
    # complete return whose machines all went with them.
    pruned = prune(state, now=1_700_000_000 + 2, retention=1)
    assert all(not settled(r) or r.ended_at is None for r in pruned.requests.values())
    held = {m.machine_id for r in pruned.requests.values() for m in r.machines}
    for ret in pruned.returns.values():
        assert ret.ended_at is None or ret.status != "complete" or held & set(ret.machine_ids)


@given(state_changes())
def test_mark_ended_stamps_exactly_what_settled(change: tuple[State, State]) -> None:
    before, after = change
    now = 1_800_000_000
    marked = mark_ended(before, after, now)
    assert marked.requests.keys() == after.requests.keys()
    for rid, request in after.requests.items():
        got = marked.requests[rid]
        assert msgspec.structs.replace(got, ended_at=request.ended_at) == request
        if request.ended_at is not None:
            assert got.ended_at == request.ended_at
        elif settled(request):
            assert got.ended_at == now
        else:
            assert got.ended_at is None
    machines = {m.machine_id: m for r in after.requests.values() for m in r.machines}
    for rid, ret in after.returns.items():
        # Over once complete, or once every machine it returned has ended (HF may never poll).
        over = ret.status == "complete" or all(
            i not in machines or machines[i].state in ("terminated", "gone")
            for i in ret.machine_ids
        )
        want = ret.ended_at if ret.ended_at is not None else (now if over else None)
        assert marked.returns[rid].ended_at == want
    assert mark_ended(before, marked, now + 5) == marked


# The real programs against the fake cloud: the log of an acquire-return lifecycle.

TEMPLATE = Template(
    template_id="OnDemand-c5",
    max_number=10,
    image_id=next(iter(SSM_IMAGES)),
    vm_type="c5.large",
)
START = 1_700_000_000


def _perform(ref: fake.CloudRef) -> Any:
    cloud = fake.interpreter(ref)

    def interpret(intent: Intent) -> Answer:
        # Checkpoints are the store's business; here only the final states are compared.
        return Success(None) if isinstance(intent, SaveState) else cloud(intent)

    return interpret


def _step(ref: fake.CloudRef, program: Generator[Intent, Answer, Any]) -> State:
    result = run(program, _perform(ref))
    return result.unwrap().state  # type: ignore[no-any-return]


def fake_lifecycle() -> list[State]:
    """States after requestMachines, a poll, a return and the polls that see it done."""
    ref = fake.CloudRef(cloud=fake.new_cloud(now=START, parameters=SSM_IMAGES))
    states_seen = [State()]
    ask = RequestMachinesIn(template=TemplateAsk(template_id="OnDemand-c5", machine_count=2))
    states_seen.append(
        _step(ref, request_machines((TEMPLATE,), State(), ask, request_id="req-1", now=START))
    )
    poll = RequestStatusIn(requests=[RequestRef(request_id="req-1")])
    states_seen.append(_step(ref, request_status(states_seen[-1], poll, weights={}, now=START + 5)))
    ids = [m.machine_id for m in states_seen[-1].requests["req-1"].machines]
    give_back = ReturnMachinesIn(machines=[MachineRef(name="", machine_id=i) for i in ids])
    states_seen.append(
        _step(
            ref,
            release.return_machines(states_seen[-1], give_back, return_id="ret-1", now=START + 9),
        )
    )
    both = RequestStatusIn(
        requests=[RequestRef(request_id="req-1"), RequestRef(request_id="ret-1")]
    )
    # The fake shows a terminating instance shutting-down once, then terminated.
    for now in (START + 15, START + 20):
        states_seen.append(_step(ref, request_status(states_seen[-1], both, weights={}, now=now)))
    return states_seen


def test_fake_lifecycle_log_replays_and_prunes_after_retention() -> None:
    history = fake_lifecycle()
    ended = mark_ended(history[-2], history[-1], START + 20)
    assert ended.requests["req-1"].ended_at == START + 20
    assert ended.returns["ret-1"].ended_at == START + 20
    history[-1] = ended
    log = [e for a, b in itertools.pairwise(history) for e in diff(a, b, **STAMP)]
    kinds = [e.kind for e in log]
    assert kinds[0] == "request_created"
    assert "machine_changed" in kinds
    assert "return_requested" in kinds
    assert replay(log) == ended

    week = 7 * DAY
    assert prune(ended, now=START + 20 + week, retention=week) == ended
    gone = prune(ended, now=START + 21 + week, retention=week)
    assert gone == State()
    tail = diff(ended, gone, **STAMP)
    assert sorted(e.kind for e in tail) == ["request_pruned", "return_pruned"]
    assert replay([*log, *tail]) == State()


@pytest.mark.parametrize("open_state", ["running", "pending"])
def test_prune_keeps_a_stamped_request_whose_machine_still_runs(open_state: str) -> None:
    ended = mark_ended(State(), fake_lifecycle()[-1], START + 20)
    request = ended.requests["req-1"]
    first = msgspec.structs.replace(request.machines[0], state=open_state)
    alive = msgspec.structs.replace(request, machines=(first, *request.machines[1:]))
    state = msgspec.structs.replace(ended, requests={"req-1": alive})
    pruned = prune(state, now=START + 365 * DAY, retention=DAY)
    assert pruned.requests == {"req-1": alive}
    # Its machines are still held, so the return that named them stays too.
    assert "ret-1" in pruned.returns


def test_every_hf_call_logs_its_changes_and_the_log_rebuilds_the_store(tmp_path: Path) -> None:
    from ohf.effects import store
    from ohf.testing import call, fake_provider

    provider = fake_provider([TEMPLATE], tmp_path)
    provider.ref.cloud = fake.new_cloud(now=START, parameters=SSM_IMAGES)
    settings = provider.shell.settings

    def hf(name: str, body: Any) -> Any:
        code, out = call(provider, name, body)
        assert code == 0, out
        assert replay(store.read_events(settings).unwrap()) == store.read(settings).unwrap()
        return out

    def tick(seconds: int) -> None:
        cloud = provider.ref.cloud
        provider.ref.cloud = msgspec.structs.replace(cloud, now=cloud.now + seconds)

    rid = hf("requestMachines", {"template": {"templateId": "OnDemand-c5", "machineCount": 2}})[
        "requestId"
    ]
    tick(5)
    (request,) = hf("getRequestStatus", {"requests": [{"requestId": rid}]})["requests"]
    ret = hf("requestReturnMachines", {"machines": request["machines"]})["requestId"]
    both = {"requests": [{"requestId": rid}, {"requestId": ret}]}
    for _ in range(2):
        tick(5)
        hf("getRequestStatus", both)
    ended = store.read(settings).unwrap()
    assert ended.requests[rid].ended_at == ended.returns[ret].ended_at == START + 15

    # A week and a second after both ended, the next call that writes prunes them.
    tick(7 * DAY + 1)
    hf("requestMachines", {"template": {"templateId": "OnDemand-c5", "machineCount": 1}})
    state = store.read(settings).unwrap()
    assert rid not in state.requests
    assert ret not in state.returns
    log = store.read_events(settings).unwrap()
    mine = store.read_events(settings, rid).unwrap()
    assert {e.request_id for e in mine} == {rid}
    assert (mine[0].kind, mine[-1].kind) == ("request_created", "request_pruned")
    assert {e.kind for e in log if e.request_id in (rid, ret)} >= {
        "request_created",
        "machine_changed",
        "return_requested",
        "request_pruned",
        "return_pruned",
    }
    assert {e.call for e in log} == {"requestMachines", "getRequestStatus", "requestReturnMachines"}
