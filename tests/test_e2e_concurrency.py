"""16 HF calls at once (separate processes, one store) leave a state some serial order explains.

Run for each store (`ohf.toml` with `[storage] type`). After the burst the state is checked
against AWS (instances by their `ohf:request-id` tag) and against the replies: nothing lost,
nothing duplicated, no template over its maxNumber, and the event log replays to the state. Run
with `-rP` to see the figures of each store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ohf.events import replay
from tests.support.stores import (
    STORES,
    atomic_dynamodb,  # noqa: F401 (a fixture)
    c5_template,
    finish,
    init_store,
    read_events,
    read_state,
    spawn,
    store_conf,
    tagged_instances,
)

pytestmark = pytest.mark.e2e

ROOMY_MAX = 40
TIGHT_MAX = 2
SEED = 4


def _ask(template_id: str, count: int) -> tuple[str, object]:
    return "requestMachines", {"template": {"templateId": template_id, "machineCount": count}}


def _conf(tmp_path: Path, aws: str, store: str, request: pytest.FixtureRequest) -> Path:
    templates = [
        c5_template(aws, max_number=ROOMY_MAX, template_id="Roomy"),
        c5_template(aws, max_number=TIGHT_MAX, template_id="Tight"),
    ]
    # DynamoDB on a moto whose conditional writes are atomic, as AWS's are: with plain moto two
    # of the 16 calls can both win the lease now and then, and one then fails its commit.
    storage_url = request.getfixturevalue("atomic_dynamodb") if store == "dynamodb" else None
    # No kill here: a lease long enough for a starved process on a busy machine, and a lock
    # wait long enough for 16 calls queued on a machine shared with other test runs.
    return store_conf(
        tmp_path / "conf",
        aws,
        store,
        templates=templates,
        storage_url=storage_url,
        lock_timeout=600,
        lease_seconds=120,
    )


@pytest.mark.parametrize("store", STORES)
def test_sixteen_mixed_calls_at_once_lose_and_duplicate_nothing(
    tmp_path: Path, aws: str, store: str, request: pytest.FixtureRequest
) -> None:
    conf = _conf(tmp_path, aws, store, request)
    init_store(conf)
    code, seed, err = finish(spawn(conf, *_as_args(_ask("Roomy", SEED)), "seed"))
    assert code == 0, (seed, err)
    seed_id = seed["requestId"]
    seeded = [m.machine_id for m in read_state(conf).requests[seed_id].machines]
    assert len(seeded) == SEED

    # All started before any can finish: 4 asks that fit (Roomy), 4 asks of 1 where only
    # TIGHT_MAX fit (Tight), 4 polls, and 4 returns of one seeded machine each.
    calls = [_ask("Roomy", 1 + n % 2) for n in range(4)] + [_ask("Tight", 1) for _ in range(4)]
    calls += [
        ("getRequestStatus", {"requests": [{"requestId": seed_id}, {"requestId": "req-unknown"}]})
    ] * 4
    calls += [
        ("requestReturnMachines", {"machines": [{"name": "", "machineId": m}]}) for m in seeded
    ]
    procs = [spawn(conf, [call], body, f"burst{n}") for n, (call, body) in enumerate(calls)]
    results = [(call, body, *finish(p)) for (call, body), p in zip(calls, procs, strict=True)]

    # Every call answered with one JSON document; every failure says why.
    for call, _, code, reply, err in results:
        assert isinstance(reply, dict), (call, code, err)
        if code != 0:
            assert code == 1, (call, reply, err)
            assert isinstance(reply.get("message"), str), (call, reply)
            assert reply["message"], (call, reply)
    asks = [
        (body, code, reply) for call, body, code, reply, _ in results if call == "requestMachines"
    ]
    roomy = [(code, reply) for body, code, reply in asks if _template(body) == "Roomy"]
    tight = [(code, reply) for body, code, reply in asks if _template(body) == "Tight"]
    accepted = {reply["requestId"] for _, code, reply in asks if code == 0}
    # In any serial order the Roomy asks fit and exactly TIGHT_MAX of the Tight ones do.
    assert all(code == 0 for code, _ in roomy), [r["message"] for c, r in roomy if c]
    assert sorted(code for code, _ in tight) == [0] * TIGHT_MAX + [1] * (4 - TIGHT_MAX), tight
    assert all("available" in reply["message"] for code, reply in tight if code == 1), tight
    assert len(accepted) == 4 + TIGHT_MAX

    state = read_state(conf)
    cloud = tagged_instances(aws)
    # Nothing lost, nothing invented: the state holds the seed and exactly the accepted asks.
    assert set(state.requests) == accepted | {seed_id}
    # Every instance in AWS is in exactly one request of the state, the one its tag names.
    holders: dict[str, list[str]] = {}
    for rid, held in state.requests.items():
        for machine in held.machines:
            holders.setdefault(machine.machine_id, []).append(rid)
    assert set(holders) == set(cloud)
    assert all(holders[i] == [tag] for i, (tag, _) in cloud.items())
    units = {
        t: sum(1 for i, (tag, _) in cloud.items() if state.requests[tag].template_id == t)
        for t in ("Roomy", "Tight")
    }
    assert units == {"Roomy": SEED + sum(1 + n % 2 for n in range(4)), "Tight": TIGHT_MAX}

    # Each return recorded once, under the id its reply gave, naming its own machine.
    returned = {
        body["machines"][0]["machineId"]: reply["requestId"]  # type: ignore[index]
        for call, body, code, reply, _ in results
        if call == "requestReturnMachines"
    }
    assert all(code == 0 for call, _, code, _, _ in results if call == "requestReturnMachines")
    assert returned.keys() == set(seeded)
    assert set(state.returns) == set(returned.values())
    by_id = {m.machine_id: m for r in state.requests.values() for m in r.machines}
    for machine_id, ret_id in returned.items():
        assert state.returns[ret_id].machine_ids == (machine_id,)
        assert by_id[machine_id].returned_by == ret_id
        assert cloud[machine_id][1] in ("shutting-down", "terminated")

    # The polls ran before, between or after the returns: each saw the whole seed.
    polls = [reply for call, _, code, reply, _ in results if call == "getRequestStatus"]
    assert all(code == 0 for call, _, code, _, _ in results if call == "getRequestStatus")
    for reply in polls:
        mine, unknown = reply["requests"]
        assert {m["machineId"] for m in mine["machines"]} == set(seeded)
        assert unknown["status"] == "complete_with_error"

    # The log rebuilds the state: no event lost or doubled under contention.
    events = read_events(conf)
    assert replay(events) == state
    print(
        f"concurrency[{store}]: 16 processes at once (after 1 seed call): "
        f"{len(accepted)} of 8 requestMachines accepted, {8 - len(accepted)} refused over "
        f"maxNumber as any serial order would, {len(returned)} returns and {len(polls)} polls "
        f"answered; {len(cloud)} instances in AWS, each in exactly one request; "
        f"{len(events)} events replay to the state"
    )


def _template(body: Any) -> str:
    return str(body["template"]["templateId"])


def _as_args(call: tuple[str, object]) -> tuple[list[str], object]:
    return [call[0]], call[1]
