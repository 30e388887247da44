"""`kill -9` at any step of requestMachines orphans nothing: the next poll finds every instance.

Each case is its own conf dir and store (so a DynamoDB lease left by one killed call does not
hold up the others), all on one moto_server: the union of the states is checked against every
instance in AWS that carries an `ohf:request-id` tag. Fixed kill points come from
`tests.support.killer` (the process SIGKILLs itself right before or after an intent, or right
before printing its reply); a few more kills land at random moments of a plain `python -m ohf`,
wherever the call happens to be. A kill inside the json store's commit and a kill seen from HF's
side (it never learns the request id) are pinned as strict xfails: known gaps, named in them.
Run with `-rP` to see the figures of each store.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ohf.events import replay
from ohf.intents import RunInstances
from ohf.model import Template
from ohf.testing import call, fake_provider
from tests.support.stores import (
    STORES,
    c5_template,
    finish,
    read_events,
    read_state,
    settings_of,
    spawn,
    store_conf,
    tagged_instances,
)

pytestmark = pytest.mark.e2e

# (kill point, what has happened by then). The request's image is an SSM path, so its intents
# are SaveState (the record), ResolveImage, RunInstances; the final write is the store's commit.
KILL_POINTS = (
    ("before:SaveState:1", "nothing-recorded"),
    ("after:SaveState:1", "recorded-not-launched"),
    ("after:RunInstances:1", "launched-not-recorded"),
    ("before-reply", "recorded-with-machines"),
)
# Kills at random moments of a plain call: fractions of how long a whole call took here.
RANDOM_KILLS = 2
ASK = {"template": {"templateId": "OnDemand-c5", "machineCount": 2}}
KILLED = -signal.SIGKILL


def _init(conf: Path) -> None:
    from ohf.effects import store

    store.init(settings_of(conf)).unwrap()


def _outcome(state: Any, cloud: dict[str, tuple[str, str]]) -> str:
    """Where a killed requestMachines stopped, read from its store and from AWS."""
    if not state.requests:
        return "nothing-recorded"
    (request,) = state.requests.values()
    launched = {i for i, (rid, _) in cloud.items() if rid == request.request_id}
    if request.machines:
        return "recorded-with-machines"
    return "launched-not-recorded" if launched else "recorded-not-launched"


@pytest.mark.parametrize("store", STORES)
def test_sigkill_at_every_step_of_request_machines_orphans_nothing(
    tmp_path: Path, aws: str, store: str
) -> None:
    confs = [
        store_conf(tmp_path / f"case{n}", aws, store, templates=[c5_template(aws, max_number=10)])
        for n in range(len(KILL_POINTS) + RANDOM_KILLS)
    ]
    for conf in confs:
        _init(conf)
    started = time.monotonic()
    procs = [
        spawn(conf, ["requestMachines"], ASK, "ask", kill_at=when)
        for conf, (when, _) in zip(confs, KILL_POINTS, strict=False)
    ]
    ends = [finish(p) for p in procs]
    # The last fixed case ran the whole call (it died only before printing): its length here
    # bounds the random moments.
    whole = time.monotonic() - started
    rng = random.Random()
    delays = sorted(rng.uniform(0.1, 1.0) * whole for _ in range(RANDOM_KILLS))
    plain = [spawn(conf, ["requestMachines"], ASK, "ask") for conf in confs[len(KILL_POINTS) :]]
    timers = [threading.Timer(d, p.kill) for d, p in zip(delays, plain, strict=True)]
    for timer in timers:
        timer.start()
    ends += [finish(p) for p in plain]
    for timer in timers:
        timer.join()
    procs += plain

    cloud = tagged_instances(aws)
    before = [read_state(conf) for conf in confs]
    outcomes = [_outcome(state, cloud) for state in before]
    for (when, _), (code, reply, err) in zip(KILL_POINTS, ends, strict=False):
        assert code == KILLED, (when, code, reply, err)
        assert reply is None, (when, reply)
    assert outcomes[: len(KILL_POINTS)] == [o for _, o in KILL_POINTS]

    # The next call HF makes, with every request id the store holds (or one it does not).
    polls = [
        spawn(
            conf,
            ["getRequestStatus"],
            {"requests": [{"requestId": r} for r in state.requests] or [{"requestId": "req-x"}]},
            "poll",
        )
        for conf, state in zip(confs, before, strict=True)
    ]
    answers = [finish(p) for p in polls]
    after = [read_state(conf) for conf in confs]
    cloud = tagged_instances(aws)

    held = {rid for state in after for rid in state.requests}
    assert {rid for rid, _ in cloud.values()} <= held, "an instance's request is in no store"
    adopted = 0
    for conf, state0, state1, (code, reply, err) in zip(confs, before, after, answers, strict=True):
        assert code == 0, (reply, err)
        # The store is whole: its event log rebuilds exactly the state it holds.
        assert replay(read_events(conf)) == state1
        reported = {r["requestId"]: r for r in reply["requests"]}
        for rid, request in state1.requests.items():
            launched = {i for i, (tag, _) in cloud.items() if tag == rid}
            kept = {m.machine_id for m in request.machines}
            assert kept == launched, (rid, kept, launched)
            assert {m["machineId"] for m in reported[rid]["machines"]} == launched
            new = launched - {m.machine_id for m in state0.requests[rid].machines}
            if new:
                adopted += len(new)
                assert "adopted" in reported[rid]["message"], reported[rid]
                assert all(
                    "adopted" in m["message"]
                    for m in reported[rid]["machines"]
                    if m["machineId"] in new
                )
            if not state0.requests[rid].answered:
                # HF never learnt this request's id: what it launched is terminated, not left
                # running for good.
                assert all(
                    m["status"] in ("shutting-down", "terminated") and "cut off" in m["message"]
                    for m in reported[rid]["machines"]
                ), reported[rid]
    late = [code for code, _, _ in ends[len(KILL_POINTS) :]]
    for code, reply, err in ends[len(KILL_POINTS) :]:
        if code != KILLED:
            assert code == 0, (reply, err)
            assert reply["requestId"] in held
    counts = Counter(outcomes)
    print(
        f"crash[{store}]: {len(procs) + len(polls)} processes, "
        f"{sum(c == KILLED for c, _, _ in ends)} SIGKILLs ({len(KILL_POINTS)} at fixed steps, "
        f"{sum(c == KILLED for c in late)} of {len(late)} at random moments "
        f"({', '.join(f'{d:.2f}' for d in delays)} s of a {whole:.2f} s call; the others had "
        "finished); outcomes: "
        + ", ".join(f"{k} {counts[k]}" for _, k in KILL_POINTS)
        + f"; {adopted} instance(s) adopted by the next poll, {len(cloud)} tagged instance(s) "
        "in AWS, 0 orphaned"
    )


@pytest.mark.parametrize("store", STORES)
def test_a_return_killed_after_terminating_can_be_retried(
    tmp_path: Path, aws: str, store: str
) -> None:
    conf = store_conf(tmp_path / "conf", aws, store, templates=[c5_template(aws, max_number=10)])
    _init(conf)
    code, seed, err = finish(spawn(conf, ["requestMachines"], ASK, "seed"))
    assert code == 0, (seed, err)
    first, second = (m.machine_id for m in read_state(conf).requests[seed["requestId"]].machines)
    give_back = {"machines": [{"name": "", "machineId": first}]}

    # Killed once AWS has terminated the machine, before the return is recorded: HF got no
    # reply, so it asks again; the retry must be accepted and recorded once.
    code, reply, err = finish(
        spawn(
            conf, ["requestReturnMachines"], give_back, "ret", kill_at="after:TerminateInstances:1"
        )
    )
    assert (code, reply) == (KILLED, None), err
    assert tagged_instances(aws)[first][1] == "terminated"
    assert read_state(conf).returns == {}
    code, retried, err = finish(spawn(conf, ["requestReturnMachines"], give_back, "retry"))
    assert code == 0, (retried, err)

    asked = {"requests": [{"requestId": seed["requestId"]}, {"requestId": retried["requestId"]}]}
    code, polled, err = finish(spawn(conf, ["getRequestStatus"], asked, "poll"))
    assert code == 0, (polled, err)
    state = read_state(conf)
    assert list(state.returns) == [retried["requestId"]]
    machines = {m.machine_id: m for m in state.requests[seed["requestId"]].machines}
    assert machines[first].returned_by == retried["requestId"]
    assert machines[second].returned_by is None
    acquired, returned = polled["requests"]
    assert {m["machineId"]: m["status"] for m in acquired["machines"]} == {
        first: "terminated",
        second: "running",
    }
    assert returned["status"] == "complete"
    assert replay(read_events(conf)) == state
    print(
        f"crash[{store}]: 4 processes, 1 SIGKILL (requestReturnMachines after "
        "TerminateInstances); the retry was recorded once"
    )


def test_json_store_kill_between_log_and_state_keeps_them_in_step(tmp_path: Path, aws: str) -> None:
    conf = store_conf(tmp_path / "conf", aws, "json", templates=[c5_template(aws, max_number=10)])
    kill_at = "before-call:ohf.effects.store_json.save:1"
    code, reply, err = finish(spawn(conf, ["requestMachines"], ASK, "ask", kill_at=kill_at))
    assert (code, reply) == (KILLED, None), err
    assert read_state(conf).requests == {}
    assert tagged_instances(aws) == {}
    code, reply, err = finish(spawn(conf, ["requestMachines"], ASK, "again"))
    assert code == 0, (reply, err)
    state = read_state(conf)
    assert list(state.requests) == [reply["requestId"]]
    assert replay(read_events(conf)) == state


class _Killed(BaseException):
    """Stands for SIGKILL inside one test process: nothing after it in the call runs."""


def test_a_request_killed_before_launching_frees_its_units_after_the_grace(tmp_path: Path) -> None:
    template = Template(
        template_id="T", max_number=4, image_id="ami-0fa1ce0000000001", vm_type="c5.large"
    )
    provider = fake_provider([template], tmp_path)
    cloud = provider.shell.cloud

    def dies_at_launch(intent: Any) -> Any:
        if isinstance(intent, RunInstances):
            raise _Killed
        return cloud(intent)

    killed = msgspec.structs.replace(
        provider, shell=msgspec.structs.replace(provider.shell, cloud=dies_at_launch)
    )
    with pytest.raises(_Killed):
        call(killed, "requestMachines", {"template": {"templateId": "T", "machineCount": 4}})
    assert call(provider, "getAvailableTemplates", {})[1]["templates"][0]["availableNumber"] == 0

    # An hour on, past any visibility grace: HF polls the requests it knows of (not this one).
    provider.ref.cloud = msgspec.structs.replace(
        provider.ref.cloud, now=provider.ref.cloud.now + 3600
    )
    assert call(provider, "getRequestStatus", {"requests": [{"requestId": "req-other"}]})[0] == 0
    assert call(provider, "getAvailableTemplates", {})[1]["templates"][0]["availableNumber"] == 4
