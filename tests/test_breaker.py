"""The circuit breaker: its pure rules, and across separate HF calls through its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from ohf.breaker import CLOSED, Breaker, allows, is_transient, open_error, record
from ohf.config import AwsConfig, Config
from ohf.effects import fake
from ohf.effects.circuit import BREAKER_FILE, BreakerFile, endpoint_key
from ohf.model import OhfError, Template
from ohf.testing import FakeProvider, call, fake_provider

RULES = {"threshold": 3, "window": 100, "cooldown": 60}


def fail(breaker: Breaker, now: int) -> Breaker:
    return record(breaker, True, now, **RULES)


# --- Pure rules --------------------------------------------------------------------------------


def test_the_breaker_opens_after_threshold_failures_in_a_row() -> None:
    breaker = CLOSED
    for at in (0, 1):
        breaker = fail(breaker, at)
        assert allows(breaker, at)
    breaker = fail(breaker, 2)
    assert breaker.open_until == 62
    assert not allows(breaker, 2)
    assert not allows(breaker, 61)


def test_a_success_closes_it_and_resets_the_count() -> None:
    breaker = fail(fail(CLOSED, 0), 1)
    breaker = record(breaker, False, 2, **RULES)
    assert breaker == CLOSED
    breaker = fail(fail(breaker, 3), 4)
    assert allows(breaker, 5)


def test_failures_spread_over_more_than_the_window_do_not_open_it() -> None:
    breaker = fail(fail(CLOSED, 0), 50)
    breaker = fail(breaker, 150)  # the run started at 0 is older than the window: a new run
    assert breaker.failures == 1
    assert breaker.open_until is None


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_it() -> None:
    breaker = fail(fail(fail(CLOSED, 0), 1), 2)
    assert allows(breaker, 62)  # half-open
    assert record(breaker, False, 62, **RULES) == CLOSED


def test_a_failed_probe_opens_it_again_for_a_whole_cooldown() -> None:
    breaker = fail(fail(fail(CLOSED, 0), 1), 2)
    again = fail(breaker, 70)
    assert again.open_until == 130
    assert not allows(again, 71)
    assert again.failures == 4


@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=50)), max_size=40),
)
def test_the_breaker_is_open_exactly_after_threshold_failures_without_a_success(
    outcomes: list[tuple[bool, int]],
) -> None:
    breaker, now, run = CLOSED, 0, 0
    for failed, gap in outcomes:
        now += gap
        if not allows(breaker, now):
            continue  # refused calls are not recorded
        breaker = record(breaker, failed, now, **RULES)
        run = run + 1 if failed else 0
        if not failed:
            assert breaker == CLOSED
        if breaker.open_until is not None:
            assert run >= 1
            assert breaker.open_until == now + RULES["cooldown"]
        else:
            assert breaker.failures < RULES["threshold"]


def test_only_throttling_aws_side_and_connection_errors_count() -> None:
    for code in ("RequestLimitExceeded", "Throttling", "InternalError", "connection"):
        assert is_transient(OhfError(message="", code=code))
    for code in ("InsufficientInstanceCapacity", "UnauthorizedOperation", "input", "error"):
        assert not is_transient(OhfError(message="", code=code))


def test_the_open_message_names_the_endpoint_the_count_and_the_time() -> None:
    error = open_error("eu-west-1", Breaker(failures=5, first_failure_at=0, open_until=3723))
    assert error.code == "circuit_open"
    assert error.message.startswith("AWS eu-west-1 circuit open after 5 failure(s)")
    assert "retrying after 01:02:03 UTC" in error.message


def test_the_breaker_key_is_the_endpoint_else_the_region() -> None:
    assert endpoint_key(AwsConfig(endpoint_url="http://x:1", region="r"), {}) == "http://x:1"
    assert endpoint_key(AwsConfig(region="eu-west-1"), {}) == "eu-west-1"
    assert endpoint_key(AwsConfig(), {"AWS_DEFAULT_REGION": "ap-south-1"}) == "ap-south-1"


# --- Across separate HF calls --------------------------------------------------------------------

TEMPLATE = Template(
    template_id="t1",
    max_number=10,
    image_id="ami-0123456789abcdef0",
    vm_type="c5.large",
    attributes={
        "type": ("String", "X86_64"),
        "ncpus": ("Numeric", "2"),
        "nram": ("Numeric", "4096"),
    },
)


def provider(tmp_path: Path) -> FakeProvider:
    made = fake_provider([TEMPLATE], tmp_path)
    # Region set so the breaker's key does not depend on the environment.
    config = Config(aws=AwsConfig(region="us-east-1"), templates=(TEMPLATE,))
    settings = msgspec.structs.replace(made.shell.settings, config=config)
    return msgspec.structs.replace(
        made, shell=msgspec.structs.replace(made.shell, settings=settings)
    )


def saved(tmp_path: Path) -> Breaker:
    path = tmp_path / BREAKER_FILE
    if not path.exists():
        return CLOSED
    return msgspec.json.decode(path.read_bytes(), type=BreakerFile).breakers["us-east-1"]


def status(p: FakeProvider, rid: str) -> tuple[int, Any]:
    return call(p, "getRequestStatus", {"requests": [{"requestId": rid}]})


def throttle(p: FakeProvider, operation: str, times: int) -> None:
    faults = [fake.Fault(operation=operation, code="RequestLimitExceeded")] * times
    p.ref.cloud = fake.inject(p.ref.cloud, *faults)


def test_five_throttled_calls_open_the_breaker_and_later_calls_fail_fast(tmp_path: Path) -> None:
    p = provider(tmp_path)
    code, asked = call(p, "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}})
    assert code == 0, asked
    rid = asked["requestId"]
    throttle(p, "DescribeInstances", 5)
    for n in range(1, 6):
        # getRequestStatus shows the last known state, with AWS's refusal as the message.
        code, reply = status(p, rid)
        assert code == 0
        assert "RequestLimitExceeded" in reply["message"]
        assert saved(tmp_path).failures == n
        assert (saved(tmp_path).open_until is None) == (n < 5)
    assert saved(tmp_path).open_until == p.ref.cloud.now + 60

    calls = len(p.ref.cloud.calls)
    code, reply = status(p, rid)
    assert "AWS us-east-1 circuit open after 5 failure(s)" in reply["message"]
    assert reply["requests"][0]["status"] == "running"
    code, reply = call(p, "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}})
    assert code == 1
    assert "no machine launched: AWS us-east-1 circuit open" in reply["message"]
    code, reply = call(p, "getReturnRequests", {"machines": [{"name": "x", "machineId": "i-1"}]})
    assert code == 1
    assert "circuit open" in reply["message"]
    assert len(p.ref.cloud.calls) == calls  # nothing reached AWS while open

    # After the cool-down one call probes; it succeeds and closes the breaker.
    p.ref.cloud = msgspec.structs.replace(p.ref.cloud, now=p.ref.cloud.now + 60)
    code, reply = status(p, rid)
    assert code == 0, reply
    assert saved(tmp_path) == CLOSED
    assert len(p.ref.cloud.calls) > calls


def test_a_failed_probe_keeps_it_open(tmp_path: Path) -> None:
    p = provider(tmp_path)
    code, asked = call(p, "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}})
    assert code == 0, asked
    rid = asked["requestId"]
    throttle(p, "DescribeInstances", 6)
    for _ in range(5):
        status(p, rid)
    p.ref.cloud = msgspec.structs.replace(p.ref.cloud, now=p.ref.cloud.now + 61)
    _, reply = status(p, rid)
    assert "RequestLimitExceeded" in reply["message"]  # the probe went to AWS and failed
    assert saved(tmp_path).open_until == p.ref.cloud.now + 60
    _, reply = status(p, rid)
    assert "circuit open" in reply["message"]


def test_capacity_errors_and_successes_do_not_open_it(tmp_path: Path) -> None:
    p = provider(tmp_path)
    faults = [fake.Fault(operation="RunInstances", code="InsufficientInstanceCapacity")] * 6
    p.ref.cloud = fake.inject(p.ref.cloud, *faults)
    for _ in range(6):
        call(p, "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}})
    assert saved(tmp_path) == CLOSED
    assert not (tmp_path / BREAKER_FILE).exists()  # never changed, never written
