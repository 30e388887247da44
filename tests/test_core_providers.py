"""Several providers through the real HF calls on fake clouds: placement, failover, routing.

Each provider gets its own fake cloud (`ohf.testing.fake_providers`), so a test can see which
account an instance was launched in, terminated in, or looked for in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from returns.result import Success

from ohf.breaker import Breaker
from ohf.config import PlacementConfig, ProviderConfig
from ohf.effects import fake
from ohf.effects.circuit import BREAKER_FILE, BreakerFile
from ohf.intents import At, Intent, RunInstances, SaveState
from ohf.messages import RequestMachinesIn
from ohf.model import State, Template
from ohf.parts import request_machines
from ohf.placement import Placement
from ohf.program import Answer, run
from ohf.testing import FakeProviders, advance, call_all, fake_providers

AMI = "ami-0fa1ce0000000001"
T1 = Template(template_id="t1", max_number=10, image_id=AMI, vm_type="t3.micro")
A, B, C = ProviderConfig(name="a"), ProviderConfig(name="b"), ProviderConfig(name="c")


def ask(template_id: str, count: int) -> dict[str, Any]:
    return {"template": {"templateId": template_id, "machineCount": count}}


def live(fp: FakeProviders, name: str) -> dict[str, str]:
    return {i: m.state for i, m in fake.live_instances(fp.refs[name].cloud).items()}


def poll(fp: FakeProviders, request_id: str, seconds: int = 30) -> dict[str, Any]:
    advance(fp.refs, seconds)
    code, out = call_all(fp, "getRequestStatus", {"requests": [{"requestId": request_id}]})
    assert code == 0, out
    return out["requests"][0]  # type: ignore[no-any-return]


def state_of(tmp_path: Path) -> State:
    return msgspec.json.decode((tmp_path / "ohf-state.json").read_bytes(), type=State)


def test_overflow_of_the_first_provider_completes_on_the_second(tmp_path: Path) -> None:
    fp = fake_providers(
        [T1], tmp_path, [A, B], clouds={"a": fake.new_cloud(capacity={"t3.micro": 3})}
    )
    code, out = call_all(fp, "requestMachines", ask("t1", 5))
    assert code == 0, out
    rid = out["requestId"]
    assert "a 3/3" in out["message"] and "b 2/2" in out["message"]
    assert len(live(fp, "a")) == 3 and len(live(fp, "b")) == 2

    status = poll(fp, rid)
    assert status["status"] == "complete"
    ids = {m["machineId"] for m in status["machines"]}
    assert ids == set(live(fp, "a")) | set(live(fp, "b"))
    # B's instances carry the part's id; the part belongs to the HF request.
    b_tags = {i.request_id for i in fake.live_instances(fp.refs["b"].cloud).values()}
    assert b_tags == {f"{rid}.2"}
    state = state_of(tmp_path)
    assert state.requests[f"{rid}.2"].parent == rid
    assert state.requests[f"{rid}.2"].provider == "b"
    assert state.requests[rid].provider == "a"
    assert all(r.answered for r in state.requests.values())

    code, listing = call_all(fp, "getAvailableTemplates", {})
    assert listing["templates"][0]["availableNumber"] == 20 - 5


def test_returns_terminate_each_machine_in_its_own_account(tmp_path: Path) -> None:
    fp = fake_providers(
        [T1], tmp_path, [A, B], clouds={"a": fake.new_cloud(capacity={"t3.micro": 3})}
    )
    _, out = call_all(fp, "requestMachines", ask("t1", 5))
    machines = poll(fp, out["requestId"])["machines"]
    in_a, in_b = sorted(live(fp, "a")), sorted(live(fp, "b"))
    give_back = [in_a[0], in_b[0]]
    refs = [m for m in machines if m["machineId"] in give_back]
    code, ret = call_all(
        fp,
        "requestReturnMachines",
        {"machines": [{"name": m["name"], "machineId": m["machineId"]} for m in refs]},
    )
    assert code == 0, ret
    after_a, after_b = live(fp, "a"), live(fp, "b")
    assert in_a[0] not in after_a and set(in_a[1:]) == set(after_a)
    assert in_b[0] not in after_b and set(in_b[1:]) == set(after_b)
    # Each TerminateInstances went to the account that holds the machine, and only there.
    assert fp.refs["a"].cloud.calls.count("TerminateInstances") == 1
    assert fp.refs["b"].cloud.calls.count("TerminateInstances") == 1
    statuses = []
    for _ in range(3):
        advance(fp.refs, 60)
        code, status = call_all(
            fp, "getRequestStatus", {"requests": [{"requestId": ret["requestId"]}]}
        )
        statuses.append(status["requests"][0]["status"])
    # Terminating takes a poll (shutting-down), then the return is complete, in both accounts.
    assert statuses[-1] == "complete", statuses
    assert {m["status"] for m in status["requests"][0]["machines"]} == {"terminated"}


def test_a_request_over_every_provider_together_is_refused_and_launches_nothing(
    tmp_path: Path,
) -> None:
    fp = fake_providers([T1], tmp_path, [A, B])
    code, out = call_all(fp, "requestMachines", ask("t1", 21))
    assert code == 1
    assert "over what is available" in out["message"] and "a 10, b 10" in out["message"]
    assert live(fp, "a") == {} and live(fp, "b") == {}
    assert not (tmp_path / "ohf-state.json").exists() or state_of(tmp_path).requests == {}


def test_disabled_provider_is_skipped_but_its_machines_are_still_served(tmp_path: Path) -> None:
    fp = fake_providers([T1], tmp_path, [A, B])
    _, first = call_all(fp, "requestMachines", ask("t1", 2))
    assert len(live(fp, "a")) == 2
    disabled = msgspec.structs.replace(A, enabled=False)
    config = msgspec.structs.replace(fp.shell.settings.config, providers=(disabled, B))
    shell = msgspec.structs.replace(
        fp.shell, settings=msgspec.structs.replace(fp.shell.settings, config=config)
    )
    fp2 = FakeProviders(shell=shell, refs=fp.refs)
    code, listing = call_all(fp2, "getAvailableTemplates", {})
    assert listing["templates"][0]["availableNumber"] == 10
    code, out = call_all(fp2, "requestMachines", ask("t1", 3))
    assert code == 0, out
    assert len(live(fp, "a")) == 2 and len(live(fp, "b")) == 3
    # The disabled provider's machines are still polled and returned in their account.
    status = poll(fp2, first["requestId"])
    assert status["status"] == "complete" and len(status["machines"]) == 2
    victim = status["machines"][0]
    code, _ = call_all(
        fp2, "requestReturnMachines", {"machines": [{"name": "", "machineId": victim["machineId"]}]}
    )
    assert code == 0 and victim["machineId"] not in live(fp, "a")


def test_an_open_circuit_sends_new_requests_elsewhere(tmp_path: Path) -> None:
    fp = fake_providers([T1], tmp_path, [A, B])
    now = fp.refs["a"].cloud.now
    opened = Breaker(failures=5, first_failure_at=now - 10, open_until=now + 60)
    (tmp_path / BREAKER_FILE).write_bytes(
        msgspec.json.encode(BreakerFile(breakers={"provider:a": opened}))
    )
    code, out = call_all(fp, "requestMachines", ask("t1", 4))
    assert code == 0, out
    assert live(fp, "a") == {} and len(live(fp, "b")) == 4
    assert "RunInstances" not in fp.refs["a"].cloud.calls


def test_throttling_on_the_first_provider_fails_over_in_the_same_call(tmp_path: Path) -> None:
    throttled = fake.inject(
        fake.new_cloud(),
        fake.Fault(operation="RunInstances", code="RequestLimitExceeded", message="slow down"),
    )
    fp = fake_providers([T1], tmp_path, [A, B], clouds={"a": throttled})
    code, out = call_all(fp, "requestMachines", ask("t1", 2))
    assert code == 0, out
    assert live(fp, "a") == {} and len(live(fp, "b")) == 2
    assert poll(fp, out["requestId"])["status"] == "complete"


def test_a_permission_error_does_not_fail_over(tmp_path: Path) -> None:
    denied = fake.inject(
        fake.new_cloud(),
        fake.Fault(operation="RunInstances", code="UnauthorizedOperation", message="no"),
    )
    fp = fake_providers([T1], tmp_path, [A, B], clouds={"a": denied})
    code, out = call_all(fp, "requestMachines", ask("t1", 2))
    assert code == 1 and "UnauthorizedOperation" in out["message"]
    assert live(fp, "b") == {}


def test_nothing_anywhere_is_one_error_naming_every_provider(tmp_path: Path) -> None:
    fp = fake_providers(
        [T1],
        tmp_path,
        [A, B],
        clouds={
            "a": fake.new_cloud(capacity={"t3.micro": 0}),
            "b": msgspec.structs.replace(fake.new_cloud(capacity={"t3.micro": 0}), counter=31_250),
        },
    )
    code, out = call_all(fp, "requestMachines", ask("t1", 2))
    assert code == 1
    assert "no machine launched" in out["message"]
    assert "a 0/0" in out["message"] and "b 0/2" in out["message"]
    rid = out["message"].split()[1].rstrip(":")
    assert poll(fp, rid)["status"] == "complete_with_error"


def test_round_robin_alternates_between_providers(tmp_path: Path) -> None:
    fp = fake_providers([T1], tmp_path, [A, B, C], placement=PlacementConfig(policy="round_robin"))
    for _ in range(6):
        code, _ = call_all(fp, "requestMachines", ask("t1", 1))
        assert code == 0
    state = state_of(tmp_path)
    order = [r.provider for r in sorted(state.requests.values(), key=lambda r: r.request_id)]
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_weighted_spreads_requests_by_weight(tmp_path: Path) -> None:
    heavy = msgspec.structs.replace(A, weight=3)
    big = msgspec.structs.replace(T1, max_number=100)
    fp = fake_providers([big], tmp_path, [heavy, B], placement=PlacementConfig(policy="weighted"))
    for _ in range(8):
        call_all(fp, "requestMachines", ask("t1", 1))
    counts: dict[str, int] = {}
    for r in state_of(tmp_path).requests.values():
        counts[r.provider] = counts.get(r.provider, 0) + 1
    assert counts == {"a": 6, "b": 2}


def test_per_provider_listing_lets_hf_choose(tmp_path: Path) -> None:
    b_view = msgspec.structs.replace(B, templates={"t1": {"maxNumber": 4}})
    fp = fake_providers(
        [T1], tmp_path, [A, b_view], placement=PlacementConfig(list_per_provider=True)
    )
    _, listing = call_all(fp, "getAvailableTemplates", {})
    shown = {t["templateId"]: t["availableNumber"] for t in listing["templates"]}
    assert shown == {"t1": 14, "t1.a": 10, "t1.b": 4}
    code, out = call_all(fp, "requestMachines", ask("t1.b", 3))
    assert code == 0, out
    assert live(fp, "a") == {} and len(live(fp, "b")) == 3
    # Pinned: over the chosen provider's room is refused even though others have room.
    code, out = call_all(fp, "requestMachines", ask("t1.b", 2))
    assert code == 1 and "over what is available" in out["message"]


def place_on_two_fakes(
    template: Template, providers: tuple[ProviderConfig, ...], count: int
) -> tuple[Any, list[Intent]]:
    """requestMachines as a pure program on fakes "a" (room for 1 instance) and "b"; the result
    and every intent it yielded (SaveState included), in order."""
    clouds = {
        "a": fake.CloudRef(cloud=fake.new_cloud(capacity={"t3.micro": 1})),
        "b": fake.CloudRef(cloud=msgspec.structs.replace(fake.new_cloud(), counter=31_250)),
    }
    seen: list[Intent] = []

    def interpret(intent: Intent) -> Answer:
        seen.append(intent)
        if isinstance(intent, SaveState):
            return Success(None)
        assert isinstance(intent, At)
        return fake.interpreter(clouds[intent.provider])(intent.intent)

    message = msgspec.convert(ask(template.template_id, count), RequestMachinesIn)
    program = request_machines(
        (template,),
        State(),
        message,
        request_id="req-1",
        now=1_700_000_000,
        placement=Placement(providers=providers),
    )
    return run(program, interpret), seen


def test_provider_defaults_fill_the_template_per_account() -> None:
    bare = Template(template_id="t1", max_number=10, vm_type="t3.micro", key_name="own-key")
    a = msgspec.structs.replace(
        A,
        defaults={
            "imageId": "ami-0aaaaaaaaaaaaaaa1",
            "subnetId": "subnet-a",
            "keyName": "not-used",
        },
    )
    b = msgspec.structs.replace(
        B,
        defaults={"imageId": "ami-0bbbbbbbbbbbbbbb2", "subnetId": "subnet-b"},
        templates={"t1": {"subnetId": "subnet-b2"}},
    )
    result, seen = place_on_two_fakes(bare, (a, b), 2)
    launches = [
        (i.provider, i.intent.spec.image_id, i.intent.spec.subnet_id, i.intent.spec.key_name)
        for i in seen
        if isinstance(i, At) and isinstance(i.intent, RunInstances)
    ]
    assert isinstance(result, Success)
    # Defaults fill what the template leaves unset (never its own keyName); overrides win.
    assert set(launches) == {
        ("a", "ami-0aaaaaaaaaaaaaaa1", "subnet-a", "own-key"),
        ("b", "ami-0bbbbbbbbbbbbbbb2", "subnet-b2", "own-key"),
    }


FLEET = Template(
    template_id="f1",
    max_number=10,
    image_id=AMI,
    vm_types={"t3.micro": 1},
    provider_api="EC2Fleet",
    fleet_type="request",
    subnet_id="subnet-1",
)


def test_a_fleet_that_stops_short_hands_the_rest_to_the_next_provider(tmp_path: Path) -> None:
    fp = fake_providers(
        [FLEET], tmp_path, [A, B], clouds={"a": fake.new_cloud(capacity={"t3.micro": 2})}
    )
    code, out = call_all(fp, "requestMachines", ask("f1", 5))
    assert code == 0, out
    rid = out["requestId"]
    seen: list[str] = []
    status: dict[str, Any] = {}
    for _ in range(6):
        status = poll(fp, rid)
        seen.append(status["status"])
        if status["status"] != "running":
            break
    assert status["status"] == "complete", (seen, status["message"])
    assert len(status["machines"]) == 5
    assert len(live(fp, "a")) == 2 and len(live(fp, "b")) == 3
    state = state_of(tmp_path)
    part = state.requests[f"{rid}.2"]
    assert part.provider == "b" and part.parent == rid and part.machine_count == 3
    assert state.requests[rid].machine_count == 2


def test_parts_stay_unanswered_until_the_whole_request_is_placed() -> None:
    """A kill between parts must leave every part looking cut off (HF never got the id)."""
    result, seen = place_on_two_fakes(T1, (A, B), 3)
    checkpoints = [i.state for i in seen if isinstance(i, SaveState)]
    assert isinstance(result, Success)
    assert len(checkpoints) == 2
    assert [sorted(c.requests) for c in checkpoints] == [["req-1"], ["req-1", "req-1.2"]]
    assert not any(r.answered for c in checkpoints for r in c.requests.values())
    final = result.unwrap().state
    assert all(r.answered for r in final.requests.values())


@pytest.mark.parametrize("policy", ["first_available", "priority", "least_used"])
def test_one_provider_with_room_takes_it_all_whatever_the_policy(
    tmp_path: Path, policy: Any
) -> None:
    full_a = msgspec.structs.replace(A, templates={"t1": {"maxNumber": 0}})
    fp = fake_providers([T1], tmp_path, [full_a, B], placement=PlacementConfig(policy=policy))
    code, out = call_all(fp, "requestMachines", ask("t1", 3))
    assert code == 0, out
    assert live(fp, "a") == {} and len(live(fp, "b")) == 3


def test_reclaims_are_looked_for_in_each_machines_account(tmp_path: Path) -> None:
    fp = fake_providers(
        [T1], tmp_path, [A, B], clouds={"a": fake.new_cloud(capacity={"t3.micro": 1})}
    )
    _, out = call_all(fp, "requestMachines", ask("t1", 2))
    machines = poll(fp, out["requestId"])["machines"]
    (in_b,) = live(fp, "b")
    fp.refs["b"].cloud = fake.terminate_outside(fp.refs["b"].cloud, in_b)
    code, reclaims = call_all(fp, "getReturnRequests", {"machines": []})
    assert code == 0, reclaims
    assert [r["machineId"] for r in reclaims["requests"]] == [in_b]
    assert {m["machineId"] for m in machines} == set(live(fp, "a")) | {in_b}
