"""Event log compaction: snapshot + tail replays exactly the state the whole log gives.

The laws are property-tested on drawn histories (`ohf.strategies.state_histories`) with drawn
times and policies; then each store (json, sqlite, DynamoDB on moto) compacts under its lock,
keeps `retention_days` of events readable, exports its snapshot in the JSON lines and imports
it back exactly, and a compaction stopped at any of its steps (an exception standing for a
kill, in-process; `tests/test_crash_compaction.py` sends real SIGKILLs) loses nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from returns.result import Failure, Success

from ohf.compaction import (
    Log,
    LogSize,
    Policy,
    compact,
    disagreements,
    due,
    fold,
    log_bytes,
    rebuild,
)
from ohf.effects import fake, store
from ohf.effects.files import Settings
from ohf.effects.store_lines import decode_lines, encode_lines
from ohf.events import Event, diff, replay
from ohf.model import State
from ohf.strategies import state_histories
from tests.test_stores import STORES, hf, lifecycle, make_settings, with_requests

DAY = 86_400
START = 1_700_000_000
# Histories are costly to draw: fewer examples than the profile's, enough for these laws.
SOME = hsettings(max_examples=40)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[State], tuple[Event, ...]]:
    """A history of states and its log, each step stamped at a drawn, mostly rising time
    (commits may land a little out of time order, as concurrent calls' do)."""
    history = draw(state_histories(max_steps=6))
    at = START
    events: list[Event] = []
    for before, after in itertools.pairwise(history):
        at += draw(st.sampled_from((-5, 0, 30, 3600, DAY, 3 * DAY)))
        events += diff(before, after, at=at, correlation="c", call="test")
    return history, tuple(events)


policies = st.builds(
    Policy,
    now=st.integers(START, START + 30 * DAY),
    retention=st.sampled_from((0, DAY, 7 * DAY)),
    max_bytes=st.sampled_from((0, 600, 4_000, 1 << 22)),
    every=st.just(DAY),
)


@SOME
@given(logs(), policies)
def test_compact_then_replay_equals_replay_of_the_whole_log(
    drawn: tuple[list[State], tuple[Event, ...]], policy: Policy
) -> None:
    history, events = drawn
    compacted = compact(Log(events=events), policy)
    assert rebuild(compacted) == replay(events) == history[-1]
    # Only a prefix moves into the snapshot: the tail is the log's own end, unchanged.
    assert events[len(events) - len(compacted.events) :] == compacted.events


@SOME
@given(logs(), policies, policies)
def test_compacting_again_later_still_replays_exactly(
    drawn: tuple[list[State], tuple[Event, ...]], first: Policy, second: Policy
) -> None:
    history, events = drawn
    once = compact(Log(events=events), first)
    twice = compact(once, second)
    assert rebuild(twice) == history[-1]
    folded = 0 if twice.snapshot is None else twice.snapshot.folded
    assert folded + len(twice.events) == len(events)
    # Compacting with the same policy again folds nothing more.
    assert compact(twice, second) == twice


@SOME
@given(logs(), policies)
def test_the_tail_keeps_the_retention_unless_it_alone_passes_half_the_cap(
    drawn: tuple[list[State], tuple[Event, ...]], policy: Policy
) -> None:
    _, events = drawn
    cutoff = policy.now - policy.retention
    old = len(list(itertools.takewhile(lambda e: e.at < cutoff, events)))
    tail = compact(Log(events=events), policy).events
    assert log_bytes(tail) <= policy.max_bytes // 2 or tail == events[old:]
    if log_bytes(events[old:]) <= policy.max_bytes // 2:
        assert tail == events[old:]


@SOME
@given(logs())
def test_folding_any_prefix_rebuilds_the_same_state(
    drawn: tuple[list[State], tuple[Event, ...]],
) -> None:
    history, events = drawn
    for count in range(len(events) + 1):
        assert rebuild(fold(Log(events=events), count)) == history[-1]


@pytest.mark.parametrize(
    ("size", "now", "expected"),
    [
        (LogSize(bytes=None, oldest=None), START, True),  # a store that cannot tell: count it
        (LogSize(bytes=0, oldest=None), START + 365 * DAY, False),  # nothing logged
        (LogSize(bytes=5_000, oldest=START), START + 8 * DAY - 1, False),
        (LogSize(bytes=5_000, oldest=START), START + 8 * DAY + 1, True),  # a day past retention
        (LogSize(bytes=10_001, oldest=START), START, True),  # over the size
    ],
)
def test_compaction_is_due_by_size_or_by_age(size: LogSize, now: int, expected: bool) -> None:
    policy = Policy(now=now, retention=7 * DAY, max_bytes=10_000, every=DAY)
    assert due(size, policy) is expected


def test_disagreements_name_the_request_that_differs() -> None:
    state = with_requests("req-a")
    assert not disagreements(
        state, Log(events=diff(State(), state, at=1, correlation="c", call="t"))
    )
    assert disagreements(state, Log()) == ("request req-a is in the state but not in the log",)


# --- each store --------------------------------------------------------------------------------


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An initialised, empty store of each kind (DynamoDB inside moto's in-process mock)."""
    made = make_settings(request.param, tmp_path)
    if request.param != "dynamodb":
        store.init(made).unwrap()
        yield made
        return
    from moto import mock_aws

    with mock_aws():
        store.init(made).unwrap()
        yield made


def commit_at(settings: Settings, state: State, at: int) -> tuple[Event, ...]:
    """Commit `state` with its events stamped at `at`."""
    with store.transaction(settings, owner="test") as opened:
        txn = opened.unwrap()
        events = diff(txn.state, state, at=at, correlation="c", call="test")
        assert txn.commit(state, events) == Success(None)
    return events


def ten_days(settings: Settings) -> tuple[State, tuple[Event, ...]]:
    """A request a day for ten days, each ended and dropped a day later: state and log."""
    state, events = State(), ()
    for day in range(10):
        rids = [f"req-{day:02d}"] + ([f"req-{day - 1:02d}"] if day else [])
        state = with_requests(*rids)
        events += commit_at(settings, state, START + day * DAY)
    return state, events


def test_a_store_compacts_to_a_snapshot_and_keeps_the_retention(settings: Settings) -> None:
    state, events = ten_days(settings)
    now = START + 9 * DAY + 60
    figures = store.compact(settings, now, owner="test").unwrap()
    log = store.read_log(settings).unwrap()
    assert rebuild(log) == store.read(settings).unwrap() == state
    # Seven days kept: the events of days 3..9 (the cut is at now - 7 days).
    kept = tuple(e for e in events if e.at >= now - 7 * DAY)
    assert store.read_events(settings).unwrap() == log.events == kept
    assert figures.folded == len(events) - len(kept)
    assert log.snapshot is not None
    assert (log.snapshot.folded, log.snapshot.through) == (figures.folded, START + 2 * DAY)
    assert store.check(settings).ok
    # Later commits land after the snapshot, and a second compaction keeps it exact.
    more = with_requests("req-09", "req-10")
    commit_at(settings, more, START + 10 * DAY)
    store.compact(settings, START + 12 * DAY, owner="test").unwrap()
    again = store.read_log(settings).unwrap()
    assert rebuild(again) == store.read(settings).unwrap() == more
    assert again.snapshot is not None
    assert again.snapshot.folded + len(again.events) == len(events) + 2


def test_a_compacted_store_exports_its_snapshot_and_imports_it_exactly(
    settings: Settings, tmp_path: Path
) -> None:
    ten_days(settings)
    store.compact(settings, START + 9 * DAY + 60, owner="test").unwrap()
    lines = store.export_lines(settings).unwrap()
    kinds = [msgspec.json.decode(line)["kind"] for line in lines]
    assert kinds[0] == "header" and msgspec.json.decode(lines[0])["format"] == 2
    assert kinds.count("snapshot") == 1
    assert kinds.index("snapshot") < kinds.index("event")
    # Into every kind of store: the same lines come back out.
    for kind in ("json", "sqlite"):
        other = make_settings(kind, tmp_path / f"into-{kind}")
        assert store.import_lines(other, lines).unwrap().lines == len(lines)
        assert store.export_lines(other).unwrap() == lines
        assert store.check(other).ok
    assert store.import_lines(settings, lines, force=True).unwrap().kept_aside is None
    assert store.export_lines(settings).unwrap() == lines


@SOME
@given(logs())
def test_export_lines_with_a_snapshot_decode_to_the_same_log(
    drawn: tuple[list[State], tuple[Event, ...]],
) -> None:
    history, events = drawn
    log = fold(Log(events=events), len(events) // 2)
    lines = encode_lines(history[-1], log.events, log.snapshot)
    assert decode_lines(lines) == Success((history[-1], log))


def test_a_snapshot_line_out_of_place_is_refused() -> None:
    events = diff(State(), with_requests("req-a"), at=START, correlation="c", call="t")
    log = fold(Log(events=events), 1)
    lines = encode_lines(with_requests("req-a"), (), log.snapshot)
    one = [lines[0].replace(b'"format":2', b'"format":1'), *lines[1:]]
    assert isinstance(decode_lines(one), Failure)
    assert "snapshot line" in decode_lines(one).failure().message


def test_log_size_counts_commits_without_reading_the_log(settings: Settings) -> None:
    events = commit_at(settings, with_requests("req-a"), START)
    events += commit_at(settings, with_requests("req-a", "req-b"), START + 10)
    with store.transaction(settings, owner="test") as opened:
        size = opened.unwrap().log_size().unwrap()
    assert size == LogSize(bytes=log_bytes(events), oldest=START)


class _Killed(BaseException):
    """Stands for SIGKILL inside one test process: nothing after it runs."""


# Module functions a compaction goes through, per store: it is stopped before each call.
STEPS: dict[str, list[tuple[str, str]]] = {
    "json": [
        ("ohf.effects.store_json", "write_log"),
        ("ohf.effects.store_json", "save"),
        ("ohf.effects.store_json", "drop_log"),
    ],
    "sqlite": [("ohf.effects.store_sqlite", "_exec")],
    "dynamodb": [("ohf.effects.store_dynamodb_commit", "_transact")],
}


def _stopping(function: Callable[..., Any], at: int) -> Callable[..., Any]:
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == at:
            raise _Killed
        return function(*args, **kwargs)

    return wrapped


def test_a_compaction_stopped_at_any_step_loses_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    kind = settings.config.storage.type
    now = START + 9 * DAY + 60
    stopped = 0
    for module_name, name in STEPS[kind]:
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        for at in itertools.count(1):
            # A store of its own for each stop (a DynamoDB table of its own: no lease left).
            fresh = make_settings(kind, tmp_path / f"{name}-{at}")
            store.init(fresh).unwrap()
            state, events = ten_days(fresh)
            monkeypatch.setattr(module, name, _stopping(original, at))
            try:
                store.compact(fresh, now, owner=f"stop-{at}")
            except _Killed:
                stopped += 1
            else:
                break
            finally:
                monkeypatch.setattr(module, name, original)
            # Whatever step it stopped at: the state is whole and is the log's rebuild, and
            # every event of the retention is still readable.
            log = store.read_log(fresh).unwrap()
            assert rebuild(log) == store.read(fresh).unwrap() == state
            assert {e for e in events if e.at >= now - 7 * DAY} <= set(log.events)
            assert store.check(fresh).ok
            if kind == "dynamodb":
                _expire_lease(fresh)
            # The next compaction completes, whatever the stopped one left behind.
            store.compact(fresh, now, owner="next").unwrap()
            assert rebuild(store.read_log(fresh).unwrap()) == state
            assert store.check(fresh).ok
            if kind == "json":
                files = sorted(p.name for p in Path(fresh.state_path).parent.glob("*.jsonl"))
                assert len(files) == 1, files
    assert stopped >= 3


def _expire_lease(settings: Settings) -> None:
    """The stopped call's lease would keep the table for `lease_seconds`: end it."""
    import boto3

    boto3.client("dynamodb", region_name="us-east-1").delete_item(
        TableName=str(settings.config.storage.table),
        Key={"pk": {"S": "state"}, "sk": {"S": "!lease"}},
    )


# --- through the HF calls ----------------------------------------------------------------------


def test_hf_calls_compact_the_log_once_it_is_a_day_past_the_retention(
    settings: Settings,
) -> None:
    from tests.test_stores import fake_shell

    ref = fake.CloudRef(cloud=fake.new_cloud(now=START))
    shell = fake_shell(settings, ref)
    lifecycle(shell)
    poll = {"requests": [{"requestId": "req-unknown"}]}
    # Seven days on, plus less than a day: the ended request is pruned, the log kept whole.
    ref.cloud = msgspec.structs.replace(ref.cloud, now=START + 7 * DAY + 3600)
    assert hf(shell, "getRequestStatus", poll)[0] == 0
    assert store.read_log(settings).unwrap().snapshot is None
    # A day later still: the next state-changing call folds what is older than seven days.
    ref.cloud = msgspec.structs.replace(ref.cloud, now=START + 8 * DAY + 7200)
    assert hf(shell, "getRequestStatus", poll)[0] == 0
    log = store.read_log(settings).unwrap()
    assert log.snapshot is not None
    assert all(e.at >= START + DAY + 7200 for e in log.events)
    assert rebuild(log) == store.read(settings).unwrap() == State()
    assert store.check(settings).ok
