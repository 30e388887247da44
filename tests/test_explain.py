"""`ohf.explain`: a request's standing in plain words, from the state, events and breakers."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ohf.breaker import Breaker
from ohf.config import ProviderConfig
from ohf.effects import fake
from ohf.events import Event
from ohf.explain import explain
from ohf.model import Machine, Request, ReturnRequest, State, Template
from ohf.testing import door, fake_providers

NOW = 1_700_000_000


def request(**changes: object) -> Request:
    base = Request(
        request_id="req-1",
        template_id="t1",
        machine_count=4,
        client_token="req-1",
        created_at=NOW - 100,
        phase="launched",
    )
    return msgspec.structs.replace(base, **changes)


def running(n: int) -> Machine:
    return Machine(machine_id=f"i-{n}", state="running", private_ip=f"10.0.0.{n}")


def reasons(state: State, **kw: object) -> list[str]:
    found = explain(state, "req-1", NOW, **kw)  # type: ignore[arg-type]
    assert found is not None
    return found.reasons


def test_a_filling_fleet_is_waited_on() -> None:
    part = request(
        provider_api="EC2Fleet", fleet_id="fleet-1", fleet_type="request", machines=(running(1),)
    )
    found = explain(State(requests={"req-1": part}), "req-1", NOW)
    assert found is not None and found.status == "running"
    assert found.summary == "running: 1 of 4 unit(s) so far, on aws"
    assert "waiting on EC2Fleet fleet-1 on provider aws to fill: 1 of 4 unit(s) so far" in (
        found.reasons
    )


def test_a_shortage_names_the_pool_and_the_code() -> None:
    part = request(
        provider_api="EC2Fleet",
        fleet_id="fleet-1",
        fleet_done=True,
        machines=(running(1),),
        status="complete_with_error",
        message=(
            "fleet-1 stopped short: InsufficientInstanceCapacity: no c5.large left "
            "(c5.large/subnet-1); VcpuLimitExceeded: over your vCPU limit"
        ),
    )
    found = explain(State(requests={"req-1": part}), "req-1", NOW)
    assert found is not None and found.summary.startswith("ended short: 1 of 4")
    assert (
        "AWS is short of capacity in pool c5.large/subnet-1 (InsufficientInstanceCapacity) "
        "on provider aws" in found.reasons
    )
    assert "an account quota stopped it (VcpuLimitExceeded) on provider aws" in found.reasons


def test_a_failover_names_both_providers_and_an_open_circuit_says_until_when() -> None:
    root = request(
        provider="a",
        machine_count=1,
        machines=(running(1),),
        message="launched 1 of 4 units: x; 3 unit(s) placed on provider b instead",
    )
    part = request(
        request_id="req-1.2", parent="req-1", provider="b", machine_count=3, phase="launching"
    )
    state = State(requests={"req-1": root, "req-1.2": part})
    breakers = {"b": Breaker(failures=5, first_failure_at=NOW - 30, open_until=NOW + 60)}
    said = reasons(state, breakers=breakers)
    assert "3 unit(s) failed over from a to b" in said
    assert (
        "provider b's circuit is open until 22:14:20 UTC after 5 failure(s) in a row: "
        "no AWS call goes there" in said
    )
    assert any(r.startswith("the launch on provider b is not confirmed") for r in said)


def test_a_cut_off_launch_and_lost_and_returned_machines() -> None:
    lost = Machine(machine_id="i-9", state="terminated", message="Server.SpotInstanceTermination")
    gone = msgspec.structs.replace(running(2), returned_by="ret-1", state="terminated")
    part = request(phase="launching", answered=False)
    assert any(
        "was cut off before answering HF" in r for r in reasons(State(requests={"req-1": part}))
    )
    held = request(machines=(running(1), lost, gone), status="complete_with_error")
    said = reasons(State(requests={"req-1": held}))
    assert (
        "1 machine(s) on provider aws lost before HF returned them "
        "(i-9: Server.SpotInstanceTermination)" in said
    )
    assert "1 machine(s) on provider aws returned by ret-1" in said


def test_the_last_event_is_dated_and_unknown_ids_have_no_explanation() -> None:
    state = State(requests={"req-1": request(machines=(running(1),))})
    event = Event(
        at=NOW - 42,
        correlation="c",
        call="getRequestStatus",
        kind="machine_changed",
        request_id="req-1",
    )
    assert "last change 42s ago: machine changed by getRequestStatus" in reasons(
        state, events=[event]
    )
    assert explain(state, "req-nope", NOW) is None


def test_a_return_is_explained_by_what_is_left() -> None:
    ret = ReturnRequest(request_id="ret-1", created_at=NOW, machine_ids=("i-1",))
    state = State(requests={"req-1": request(machines=(running(1),))}, returns={"ret-1": ret})
    found = explain(state, "ret-1", NOW)
    assert found is not None and found.summary == "running: 1 of 1 machine(s) still shutting down"


def test_through_the_front_door_a_request_short_on_one_provider(tmp_path: Path) -> None:
    template = Template(
        template_id="t1", max_number=10, image_id="ami-0123456789abcdef0", vm_type="c5.large"
    )
    providers = [ProviderConfig(name="a"), ProviderConfig(name="b")]
    clouds = fake_providers([template], tmp_path, providers)
    clouds.refs["a"].cloud = fake.exhaust(clouds.refs["a"].cloud, "c5.large")
    provider = door(clouds)
    accepted = provider.request_machines("t1", 2).unwrap()
    found = provider.explain(accepted.request_id).unwrap()
    assert "2 unit(s) failed over from a to b" in found.reasons
    assert any("short of capacity" in r and "provider a" in r for r in found.reasons), found
