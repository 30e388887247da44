"""AWS errors: throttling retried within a budget, capacity and permission errors not, timeouts.

The boto3 interpreter is driven through botocore's Stubber (moto cannot throttle) with an
injected sleep that records each backoff, so no test sleeps; the core's handling of the final
errors is driven through the fake cloud's injected faults and the real HF calls.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Success

from ohf.config import AwsConfig
from ohf.effects import aws, fake
from ohf.effects.aws import clients as aws_clients
from ohf.intents import DescribeInstances, LaunchSpec, RunInstances
from ohf.model import OhfError, Template
from ohf.program import Answer
from ohf.testing import call, fake_provider
from tests.conftest import REGION

TOKEN = "req-1-0a"
SPEC = LaunchSpec(
    image_id="ami-0123456789abcdef0",
    instance_type="c5.large",
    min_count=1,
    max_count=1,
    client_token=TOKEN,
)
LAUNCHED = {"Instances": [{"InstanceId": "i-0123456789abcdef0", "State": {"Name": "pending"}}]}


class Recorder:
    """An injected sleep: records every backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def stubbed(
    service: str,
    script: list[tuple[str, Any]],
    *,
    jitter: Callable[[], float] = lambda: 1.0,
    **config: Any,
) -> tuple[Callable[[Any], Answer], Recorder, Any]:
    """The real interpreter over a stubbed `service` client answering `script` in order:
    (operation, response dict or (error code, HTTP status, message))."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name=REGION)
    stubber = Stubber(client)
    for operation, answer in script:
        if isinstance(answer, tuple):
            code, status, message = answer
            stubber.add_client_error(
                operation,
                service_error_code=code,
                service_message=message,
                http_status_code=status,
            )
        else:
            stubber.add_response(operation, answer)
    stubber.activate()
    sleep = Recorder()
    interpret = aws.make_interpreter(
        AwsConfig(region=REGION, **config),
        clients=lambda _: client,
        sleep=sleep,
        monotonic=lambda: 0.0,
        jitter=jitter,
    )
    return interpret, sleep, stubber


def failure(answer: Answer) -> OhfError:
    assert isinstance(answer, Failure), answer
    error: OhfError = answer.failure()
    return error


def throttled(code: str = "RequestLimitExceeded", status: int = 503) -> tuple[str, int, str]:
    return (code, status, "Request limit exceeded.")


# --- Throttling and 5xx: retried with backoff ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("RequestLimitExceeded", 503),
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("TooManyRequestsException", 429),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("SomethingNew", 502),
    ],
)
def test_a_transient_error_is_retried_and_the_launch_succeeds(code: str, status: int) -> None:
    interpret, sleep, stubber = stubbed(
        "ec2", [("run_instances", throttled(code, status))] * 2 + [("run_instances", LAUNCHED)]
    )
    answer = interpret(RunInstances(spec=SPEC))
    assert isinstance(answer, Success), answer
    assert [i.instance_id for i in answer.unwrap()] == ["i-0123456789abcdef0"]
    assert len(sleep.delays) == 2
    stubber.assert_no_pending_responses()


def test_every_retry_of_a_launch_carries_the_same_client_token() -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(client)
    expected = aws.run_instances_params(SPEC, None)
    for _ in range(2):
        stubber.add_client_error(
            "run_instances", "RequestLimitExceeded", http_status_code=503, expected_params=expected
        )
    stubber.add_response("run_instances", LAUNCHED, expected_params=expected)
    stubber.activate()
    sleep = Recorder()
    interpret = aws.make_interpreter(
        AwsConfig(region=REGION), clients=lambda _: client, sleep=sleep, monotonic=lambda: 0.0
    )
    assert isinstance(interpret(RunInstances(spec=SPEC)), Success)
    assert expected["ClientToken"] == TOKEN
    stubber.assert_no_pending_responses()


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    attempts = 8
    interpret, sleep, _ = stubbed(
        "ec2",
        [("run_instances", throttled())] * attempts,
        max_attempts=attempts,
        retry_budget=300.0,
    )
    error = failure(interpret(RunInstances(spec=SPEC)))
    assert error.code == "RequestLimitExceeded"
    # jitter 1.0 draws the ceiling itself: 0.5, 1, 2, 4, then the 8 s cap.
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_draws_below_the_ceiling() -> None:
    draws = iter([0.5, 0.25, 0.0])
    interpret, sleep, _ = stubbed(
        "ec2", [("run_instances", throttled())] * 4, jitter=lambda: next(draws)
    )
    failure(interpret(RunInstances(spec=SPEC)))
    assert sleep.delays == [0.25, 0.25, 0.0]


def test_a_throttled_call_gives_up_after_max_attempts_with_the_aws_code() -> None:
    interpret, sleep, stubber = stubbed(
        "ec2", [("describe_instances", throttled())] * 4, max_attempts=4
    )
    error = failure(interpret(DescribeInstances(request_ids=("req-1",))))
    assert error.code == "RequestLimitExceeded"
    assert error.message.startswith("DescribeInstances: RequestLimitExceeded")
    assert len(sleep.delays) == 3
    stubber.assert_no_pending_responses()


def test_total_backoff_never_exceeds_the_budget_across_the_calls_of_one_hf_call() -> None:
    budget = 3.0
    interpret, sleep, _ = stubbed(
        "ec2",
        [("describe_instances", throttled())] * 40,
        max_attempts=20,
        retry_budget=budget,
    )
    for _ in range(3):
        failure(interpret(DescribeInstances(request_ids=("req-1",))))
    assert sum(sleep.delays) <= budget
    assert sum(sleep.delays) == pytest.approx(budget)
    # 0.5 + 1 + 1.5 (cut to the budget): the next calls of the same HF call do not wait at all.
    assert sleep.delays == [0.5, 1.0, 1.5]


def test_the_budget_counts_time_spent_waiting_for_aws_too() -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(5):
        stubber.add_client_error("describe_instances", "RequestLimitExceeded", http_status_code=503)
    stubber.activate()
    clock = iter([0.0, 0.0, 6.0, 12.0, 30.0, 30.0])
    sleep = Recorder()
    interpret = aws.make_interpreter(
        AwsConfig(region=REGION, max_attempts=5, retry_budget=20.0),
        clients=lambda _: client,
        sleep=sleep,
        monotonic=lambda: next(clock),
        jitter=lambda: 1.0,
    )
    failure(interpret(DescribeInstances(request_ids=("req-1",))))
    # Slow answers ate the budget: after 12 s only 8 s remain, after 30 s none.
    assert sleep.delays == [0.5, 1.0, 2.0]


def test_botocore_does_not_retry_what_ohf_retries() -> None:
    config = AwsConfig(region=REGION, max_attempts=6)
    for service in ("ec2", "ssm", "autoscaling"):
        client = aws_clients._make_client(config, service, None)
        assert client.meta.config.retries["total_max_attempts"] == 1
    dynamodb = aws_clients._make_client(config, "dynamodb", None)
    assert dynamodb.meta.config.retries["total_max_attempts"] == 7  # botocore: 1 + retries


# --- Capacity, quota and permission errors: never retried ------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "MaxSpotInstanceCountExceeded",
        "VcpuLimitExceeded",
        "Unsupported",
    ],
)
def test_capacity_and_quota_errors_are_not_retried(code: str) -> None:
    interpret, sleep, stubber = stubbed(
        "ec2", [("run_instances", (code, 400, "We currently do not have sufficient capacity."))]
    )
    error = failure(interpret(RunInstances(spec=SPEC)))
    assert error.code == code
    assert "sufficient capacity" in error.message
    assert sleep.delays == []
    stubber.assert_no_pending_responses()


def test_a_denied_launch_names_the_permission_aws_names() -> None:
    message = (
        "You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/hf "
        "is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1::image/x"
    )
    interpret, sleep, _ = stubbed(
        "ec2", [("run_instances", ("UnauthorizedOperation", 403, message))]
    )
    error = failure(interpret(RunInstances(spec=SPEC)))
    assert error.code == "UnauthorizedOperation"
    assert "lacks ec2:RunInstances" in error.message
    assert "permission denied" in error.message
    assert sleep.delays == []


def test_a_denied_pass_role_names_iam_pass_role() -> None:
    message = "User: arn:aws:sts::1:assumed-role/hf is not authorized to perform: iam:PassRole"
    interpret, _, _ = stubbed("ec2", [("run_instances", ("UnauthorizedOperation", 403, message))])
    assert "lacks iam:PassRole" in failure(interpret(RunInstances(spec=SPEC))).message


def test_a_denied_call_without_an_action_in_the_message_names_the_operation() -> None:
    from ohf.intents import DescribeFleets

    interpret, sleep, _ = stubbed(
        "autoscaling",
        [("describe_auto_scaling_groups", ("AccessDenied", 403, "User is not authorized"))],
    )
    error = failure(interpret(DescribeFleets(fleets=(("ASG", "ohf-req-1"),))))
    assert "lacks autoscaling:DescribeAutoScalingGroups" in error.message
    assert sleep.delays == []


@pytest.mark.parametrize("code", ["AuthFailure", "InvalidClientTokenId", "ExpiredToken"])
def test_rejected_credentials_say_so(code: str) -> None:
    interpret, sleep, _ = stubbed(
        "ec2", [("describe_instances", (code, 401, "The security token has expired."))]
    )
    error = failure(interpret(DescribeInstances(request_ids=("req-1",))))
    assert error.code == code
    assert "AWS rejected the credentials" in error.message
    assert sleep.delays == []


def test_iam_action_maps_operations_to_their_service() -> None:
    assert aws.iam_action("RunInstances") == "ec2:RunInstances"
    assert aws.iam_action("GetParameter") == "ssm:GetParameter"
    assert aws.iam_action("CreateAutoScalingGroup") == "autoscaling:CreateAutoScalingGroup"
    assert aws.iam_action("RunInstances", "not authorized to perform: ec2:CreateTags on") == (
        "ec2:CreateTags"
    )


# --- Nothing crashes ---------------------------------------------------------------------------


def _raising(exc: Exception) -> Callable[[str], Any]:
    """A client getter whose ec2 client raises `exc` on every call."""
    import boto3

    client = boto3.client("ec2", region_name=REGION)

    def boom(**_: Any) -> None:
        raise exc

    client.meta.events.register("before-call.ec2.*", boom)
    return lambda _: client


def _exceptions() -> list[Exception]:
    from botocore.exceptions import (
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    url = "https://ec2.us-east-1.amazonaws.com/"
    return [
        EndpointConnectionError(endpoint_url=url),
        ReadTimeoutError(endpoint_url=url),
        ConnectionClosedError(endpoint_url=url),
        ResponseParserError("Unable to parse response (no element found), invalid XML"),
        NoCredentialsError(),
    ]


@pytest.mark.parametrize("exc", _exceptions(), ids=lambda e: type(e).__name__)
def test_every_botocore_exception_becomes_a_failure(exc: Exception) -> None:
    sleep = Recorder()
    interpret = aws.make_interpreter(
        AwsConfig(region=REGION, max_attempts=3),
        clients=_raising(exc),
        sleep=sleep,
        monotonic=lambda: 0.0,
    )
    error = failure(interpret(RunInstances(spec=SPEC)))
    assert error.message.startswith("RunInstances: ")
    transient = type(exc).__name__ in {
        "EndpointConnectionError",
        "ReadTimeoutError",
        "ConnectionClosedError",
    }
    assert error.code == ("connection" if transient or "Parser" in repr(exc) else "credentials")
    assert len(sleep.delays) == (2 if transient else 0)


# --- The core's answer to the final errors (fake cloud, real HF calls) -------------------------

TEMPLATE = Template(
    template_id="t1",
    max_number=10,
    image_id="ami-0123456789abcdef0",
    vm_types={"c5.large": 1, "m5.large": 1},
    attributes={
        "type": ("String", "X86_64"),
        "ncpus": ("Numeric", "2"),
        "nram": ("Numeric", "4096"),
    },
)


def _ask(count: int) -> dict[str, Any]:
    return {"template": {"templateId": "t1", "machineCount": count}}


def test_capacity_errors_move_to_the_next_pool_and_end_the_request_with_aws_reason(
    tmp_path: Path,
) -> None:
    faults = [
        fake.Fault(operation="RunInstances", code="InsufficientInstanceCapacity", message="no c5")
    ]
    provider = fake_provider(
        [TEMPLATE], tmp_path, cloud=fake.inject(fake.new_cloud(capacity={"m5.large": 1}), *faults)
    )
    code, asked = call(provider, "requestMachines", _ask(3))
    assert code == 0, asked
    rid = asked["requestId"]
    launches = [c for c in provider.ref.cloud.calls if c == "RunInstances"]
    assert len(launches) >= 2  # c5.large refused, m5.large tried next
    code, status = call(provider, "getRequestStatus", {"requests": [{"requestId": rid}]})
    assert code == 0
    (request,) = status["requests"]
    assert request["status"] in ("running", "complete_with_error")
    for _ in range(3):
        if request["status"] != "running":
            break
        _, status = call(provider, "getRequestStatus", {"requests": [{"requestId": rid}]})
        (request,) = status["requests"]
    assert request["status"] == "complete_with_error"
    assert "InsufficientInstanceCapacity" in request["message"]
    assert len(request["machines"]) == 1  # the partial fulfilment is kept


def test_a_launch_still_throttled_after_retries_ends_with_the_reason_and_valid_json(
    tmp_path: Path,
) -> None:
    faults = [fake.Fault(operation="RunInstances", code="RequestLimitExceeded")]
    provider = fake_provider([TEMPLATE], tmp_path, cloud=fake.inject(fake.new_cloud(), *faults))
    code, asked = call(provider, "requestMachines", _ask(1))
    message = asked.get("message", "")
    if code == 0:
        _, status = call(
            provider, "getRequestStatus", {"requests": [{"requestId": asked["requestId"]}]}
        )
        message = status["requests"][0]["message"]
    assert "RequestLimitExceeded" in message


# --- Timeouts: a hung endpoint never hangs HF ----------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP server that accepts connections and never answers: (URL, accepted sockets)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


def test_a_hung_endpoint_gives_a_failure_after_the_read_timeout(
    silent_endpoint: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = silent_endpoint
    config = AwsConfig(
        region=REGION, endpoint_url=url, connect_timeout=1.0, read_timeout=0.5, retry_budget=0.0
    )
    interpret = aws.make_interpreter(config)
    error = failure(interpret(DescribeInstances(request_ids=("req-1",))))
    assert error.code == "connection"
    assert "did not answer in time" in error.message
    assert len(accepted) == 1  # one attempt: no botocore retry, no budget left for ohf's


def test_a_hung_endpoint_is_retried_only_within_the_budget(
    silent_endpoint: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = silent_endpoint
    config = AwsConfig(
        region=REGION,
        endpoint_url=url,
        connect_timeout=1.0,
        read_timeout=0.3,
        retry_budget=1.0,
        max_attempts=20,
    )
    sleep = Recorder()
    interpret = aws.make_interpreter(config, sleep=sleep)
    error = failure(interpret(DescribeInstances(request_ids=("req-1",))))
    assert error.code == "connection"
    # Each attempt spends >= 0.3 s of the 1 s budget: a few attempts, far from max_attempts.
    assert 2 <= len(accepted) <= 5
    assert sum(sleep.delays) <= 1.0


def test_every_client_ohf_makes_has_the_configured_timeouts() -> None:
    from ohf.config import Config, StorageConfig
    from ohf.effects import store_dynamodb
    from ohf.effects.files import Settings

    config = AwsConfig(region=REGION, connect_timeout=3.0, read_timeout=7.0)
    getter = aws.client_getter(config, None)
    settings = Settings(
        config=Config(aws=config, storage=StorageConfig(type="dynamodb", table="ohf-state")),
        source="<test>",
        conf_dir=".",
        state_path="ohf-state.json",
        log_path=None,
    )
    clients = [getter(s) for s in ("ec2", "ssm", "autoscaling")]
    clients.append(store_dynamodb._client(settings))
    for client in clients:
        assert client.meta.config.connect_timeout == 3.0
        assert client.meta.config.read_timeout == 7.0
