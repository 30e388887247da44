"""The fake cloud interpreter answers ohf's intents the way the boto3 interpreter does.

The same intent programs run against `ohf.effects.aws.make_interpreter` inside moto's in-process
`mock_aws` and against `ohf.effects.fake`, and their answers are compared structurally: instance
ids differ, so instances are compared by their position in the launch answer.

Where moto 5.2.5 falls short of EC2 the gap is named in the test (`moto_gap` in the name or the
docstring) and the behaviour is checked against the fake alone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import msgspec
import pytest
from returns.result import Failure, Result, Success

from ohf import acquire, release
from ohf.config import AwsConfig
from ohf.effects import fake
from ohf.intents import (
    DescribeInstances,
    Intent,
    LaunchSpec,
    ResolveImage,
    RunInstances,
    SaveState,
    SpotMarket,
    TerminateInstances,
)
from ohf.messages import (
    MachineRef,
    RequestMachinesIn,
    RequestRef,
    RequestStatusIn,
    ReturnMachinesIn,
    ReturnRequestsIn,
    TemplateAsk,
)
from ohf.model import Instance, OhfError, Request, State, Template
from ohf.parts import request_machines
from ohf.poll import request_status
from ohf.program import run

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
UNKNOWN = "i-0123456789abcdef0"
RID = "req-00000001"
NOW = 1_700_000_000
Answer = Result[Any, OhfError]
Interpreter = Callable[[Intent], Answer]
ENDING = ("shutting-down", "terminated")
TAGS = (("ohf:request-id", RID), ("ohf:template-id", "OnDemand-c5"), ("team", "hpc"))


@pytest.fixture
def moto_cloud() -> Iterator[Interpreter]:
    """The boto3 interpreter inside moto's in-process mock (a fresh, empty cloud)."""
    from moto import mock_aws

    from ohf.effects.aws import make_interpreter

    with mock_aws():
        yield make_interpreter(AwsConfig(region="us-east-1"))


@pytest.fixture
def fake_ref() -> fake.CloudRef:
    return fake.CloudRef(cloud=fake.new_cloud(now=NOW))


@pytest.fixture
def fake_cloud(fake_ref: fake.CloudRef) -> Interpreter:
    return fake.interpreter(fake_ref)


def with_store(cloud: Interpreter) -> Interpreter:
    """Add the non-cloud intents a core program yields (checkpoints succeed, in memory)."""

    def interpret(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return Success(None)
        return cloud(intent)

    return interpret


def launch_spec(image_id: str, n: int = 2, **more: Any) -> LaunchSpec:
    return LaunchSpec(
        image_id=image_id,
        instance_type="c5.large",
        min_count=n,
        max_count=n,
        tags=TAGS,
        client_token=f"{RID}-0a",
        **more,
    )


def shape(instance: Instance, labels: dict[str, str]) -> dict[str, Any]:
    """What ohf reads from an instance, with the id replaced by its launch position."""
    return {
        "id": labels.get(instance.instance_id, "?"),
        "state": instance.state,
        "type": instance.instance_type,
        "request_id": instance.request_id,
        "template_id": instance.template_id,
        "lifecycle": instance.lifecycle,
        "has_ip": instance.private_ip is not None,
        "has_dns": bool(instance.private_dns),
    }


def shapes(answer: Answer, labels: dict[str, str]) -> Any:
    if isinstance(answer, Failure):
        return ("failure", answer.failure().code)
    return sorted((shape(i, labels) for i in answer.unwrap()), key=lambda s: s["id"])


def contract_scenario(
    spot: bool = False,
) -> Generator[Intent, Answer, dict[str, Any]]:
    """Resolve, launch, describe by tag and by id (with unknown ids), terminate, describe."""
    image = yield ResolveImage(parameter=AL2023)
    image_id = image.unwrap()
    spec = launch_spec(image_id, spot=SpotMarket() if spot else None)
    launched = yield RunInstances(spec=spec)
    ids = tuple(i.instance_id for i in launched.unwrap())
    labels = {i: f"#{n}" for n, i in enumerate(ids)}
    by_request = yield DescribeInstances(request_ids=(RID,))
    by_id = yield DescribeInstances(instance_ids=(*ids, UNKNOWN))
    by_other_tag = yield DescribeInstances(request_ids=("req-other",))
    both = yield DescribeInstances(request_ids=("req-other",), instance_ids=ids[:1])
    terminated = yield TerminateInstances(instance_ids=ids[:1])
    after = yield DescribeInstances(instance_ids=ids)
    return {
        "image_is_ami": image_id.startswith("ami-"),
        "launched": shapes(launched, labels),
        "by_request": shapes(by_request, labels),
        "by_id": shapes(by_id, labels),
        "by_other_tag": shapes(by_other_tag, labels),
        "both": shapes(both, labels),
        "terminated": {labels[i]: s for i, s in terminated.unwrap().items()},
        # EC2 shows `shutting-down` for a while, moto (and today's fake) `terminated` at once.
        "after_terminate": [
            {**s, "state": "ending" if s["state"] in ENDING else s["state"]}
            for s in shapes(after, labels)
        ],
    }


@pytest.mark.parametrize("spot", [False, True], ids=["ondemand", "spot"])
def test_fake_and_boto3_interpreters_agree_on_the_calls_ohf_makes(
    moto_cloud: Interpreter, fake_cloud: Interpreter, spot: bool
) -> None:
    on_moto = run(contract_scenario(spot), moto_cloud)
    on_fake = run(contract_scenario(spot), fake_cloud)
    assert on_fake == on_moto
    # And the answers are what EC2 would give, not just equal to each other.
    assert on_fake["image_is_ami"]
    assert [s["state"] for s in on_fake["launched"]] == ["pending", "pending"]
    assert [s["state"] for s in on_fake["by_request"]] == ["running", "running"]
    assert [s["id"] for s in on_fake["by_id"]] == ["#0", "#1"]  # the unknown id is just absent
    assert on_fake["by_other_tag"] == []
    assert [s["id"] for s in on_fake["both"]] == ["#0"]
    assert on_fake["terminated"] == {"#0": "shutting-down"}
    assert {s["request_id"] for s in on_fake["by_request"]} == {RID}
    assert {s["lifecycle"] for s in on_fake["launched"]} == {"spot" if spot else "on-demand"}


def test_moto_gap_terminate_goes_straight_to_terminated(moto_cloud: Interpreter) -> None:
    """moto gap: no `shutting-down` phase; the next describe already says `terminated`."""
    image = moto_cloud(ResolveImage(parameter=AL2023)).unwrap()
    (instance,) = moto_cloud(RunInstances(spec=launch_spec(image, 1))).unwrap()
    ids = (instance.instance_id,)
    assert moto_cloud(TerminateInstances(instance_ids=ids)).unwrap() == {ids[0]: "shutting-down"}
    (after,) = moto_cloud(DescribeInstances(instance_ids=ids)).unwrap()
    assert after.state == "terminated"


def test_fake_keeps_terminating_instances_shutting_down_for_one_poll(
    fake_cloud: Interpreter,
) -> None:
    (instance,) = fake_cloud(RunInstances(spec=launch_spec("ami-0fa1ce0000000001", 1))).unwrap()
    fake_cloud(DescribeInstances(instance_ids=(instance.instance_id,)))
    fake_cloud(TerminateInstances(instance_ids=(instance.instance_id,)))
    first = fake_cloud(DescribeInstances(instance_ids=(instance.instance_id,))).unwrap()
    second = fake_cloud(DescribeInstances(instance_ids=(instance.instance_id,))).unwrap()
    assert [first[0].state, second[0].state] == ["shutting-down", "terminated"]


def test_resolve_unknown_parameter_fails_with_the_same_code(
    moto_cloud: Interpreter, fake_cloud: Interpreter
) -> None:
    for cloud in (moto_cloud, fake_cloud):
        answer = cloud(ResolveImage(parameter="/ohf/no/such/parameter"))
        assert isinstance(answer, Failure)
        assert answer.failure().code == "ParameterNotFound"


def test_describe_and_terminate_of_nothing_agree(
    moto_cloud: Interpreter, fake_cloud: Interpreter
) -> None:
    for cloud in (moto_cloud, fake_cloud):
        assert cloud(DescribeInstances(request_ids=(RID,))) == Success(())
        assert cloud(DescribeInstances(instance_ids=(UNKNOWN,))) == Success(())


def test_boto3_interpreter_drops_unknown_ids_from_terminate_and_reports_them_gone(
    moto_cloud: Interpreter,
) -> None:
    image = moto_cloud(ResolveImage(parameter=AL2023)).unwrap()
    (instance,) = moto_cloud(RunInstances(spec=launch_spec(image, 1))).unwrap()
    answer = moto_cloud(TerminateInstances(instance_ids=(instance.instance_id, UNKNOWN)))
    assert answer == Success({instance.instance_id: "shutting-down", UNKNOWN: "gone"})
    assert moto_cloud(TerminateInstances(instance_ids=(UNKNOWN,))) == Success({UNKNOWN: "gone"})


def test_fake_terminate_with_unknown_ids_never_half_terminates(fake_cloud: Interpreter) -> None:
    """Either the whole call fails and nothing is terminated (raw EC2, today's fake), or the
    unknown ids are reported `gone` and the rest terminate (the boto3 interpreter's contract).
    """
    (instance,) = fake_cloud(RunInstances(spec=launch_spec("ami-0fa1ce0000000001", 1))).unwrap()
    answer = fake_cloud(TerminateInstances(instance_ids=(instance.instance_id, UNKNOWN)))
    (after,) = fake_cloud(DescribeInstances(instance_ids=(instance.instance_id,))).unwrap()
    if isinstance(answer, Failure):
        assert answer.failure().code == "InvalidInstanceID.NotFound"
        assert after.state == "running"
    else:
        assert answer.unwrap() == {instance.instance_id: "shutting-down", UNKNOWN: "gone"}
        assert after.state in ("shutting-down", "terminated")


def vanished_return(cloud: Interpreter) -> Result[Any, OhfError]:
    """Launch two machines, then return both after one of them vanished from the cloud."""
    image = cloud(ResolveImage(parameter=AL2023)).unwrap()
    (kept,) = cloud(RunInstances(spec=launch_spec(image, 1))).unwrap()
    held = (
        acquire.machine_of(kept, 1),
        msgspec.structs.replace(acquire.machine_of(kept, 1), machine_id=UNKNOWN),
    )
    state = State(
        requests={
            RID: Request(
                request_id=RID,
                template_id="OnDemand-c5",
                machine_count=2,
                client_token=RID,
                created_at=NOW,
                phase="launched",
                machines=held,
            )
        }
    )
    ask = ReturnMachinesIn(machines=[MachineRef(machine_id=m.machine_id) for m in held])
    result = run(release.return_machines(state, ask, return_id="ret-1", now=NOW), cloud)
    return result.map(
        lambda done: (
            done.reply.message,
            sorted(m.state for m in done.state.requests[RID].machines),
        )
    )


def test_returning_a_vanished_machine_through_boto3_succeeds(moto_cloud: Interpreter) -> None:
    assert vanished_return(moto_cloud) == Success(
        ("terminating 2 machine(s) (1 already gone)", ["gone", "shutting-down"])
    )


def test_returning_a_vanished_machine_ohf_sees_the_same_on_fake_and_boto3(
    moto_cloud: Interpreter, fake_cloud: Interpreter
) -> None:
    assert vanished_return(fake_cloud) == vanished_return(moto_cloud)


def test_moto_gap_client_token_repeat_returns_the_same_instances_on_the_fake(
    fake_cloud: Interpreter,
) -> None:
    """moto gap: moto 5.2.5 ignores ClientToken and launches again; EC2 and the fake do not."""
    spec = launch_spec("ami-0fa1ce0000000001", 2)
    first = fake_cloud(RunInstances(spec=spec)).unwrap()
    again = fake_cloud(RunInstances(spec=spec)).unwrap()
    assert [i.instance_id for i in again] == [i.instance_id for i in first]
    assert len(fake_cloud(DescribeInstances(request_ids=(RID,))).unwrap()) == 2
    other = fake_cloud(RunInstances(spec=msgspec.structs.replace(spec, client_token="x"))).unwrap()
    assert not {i.instance_id for i in other} & {i.instance_id for i in first}


def test_moto_gap_partial_launch_fills_up_to_max_count_on_the_fake(
    fake_ref: fake.CloudRef,
) -> None:
    """moto gap: moto launches MinCount instances; EC2 (and the fake) launch up to MaxCount."""
    fake_ref.cloud = fake.new_cloud(capacity={"c5.large": 2})
    cloud = fake.interpreter(fake_ref)
    spec = msgspec.structs.replace(launch_spec("ami-0fa1ce0000000001", 3), min_count=1)
    all_or_nothing = cloud(RunInstances(spec=launch_spec("ami-0fa1ce0000000001", 3)))
    assert isinstance(all_or_nothing, Failure)
    assert all_or_nothing.failure().code == "InsufficientInstanceCapacity"
    partial = cloud(RunInstances(spec=msgspec.structs.replace(spec, client_token="p")))
    assert len(partial.unwrap()) == 2
    spent = cloud(RunInstances(spec=msgspec.structs.replace(spec, client_token="q")))
    assert spent.failure().code == "InsufficientInstanceCapacity"
    unlimited = fake.interpreter(fake.CloudRef(cloud=fake.new_cloud()))
    assert len(unlimited(RunInstances(spec=spec)).unwrap()) == 3


def test_moto_gap_injected_faults_hit_the_next_call_of_their_operation_once(
    fake_ref: fake.CloudRef, fake_cloud: Interpreter
) -> None:
    """moto gap: no capacity errors or throttling at all; the fake injects them."""
    fake_ref.cloud = fake.inject(
        fake_ref.cloud, fake.Fault(operation="RunInstances", code="InsufficientInstanceCapacity")
    )
    assert fake_cloud(DescribeInstances(request_ids=(RID,))) == Success(())
    spec = launch_spec("ami-0fa1ce0000000001", 1)
    failed = fake_cloud(RunInstances(spec=spec))
    assert failed.failure().code == "InsufficientInstanceCapacity"
    assert len(fake_cloud(RunInstances(spec=spec)).unwrap()) == 1
    assert fake_ref.cloud.calls == ("DescribeInstances", "RunInstances", "RunInstances")


def test_moto_gap_malformed_ami_is_rejected_by_the_fake(fake_cloud: Interpreter) -> None:
    """moto gap: moto 5.2.5 launches from any image id string; EC2 and the fake reject it."""
    answer = fake_cloud(RunInstances(spec=launch_spec("not-an-ami", 1)))
    assert answer.failure().code == "InvalidAMIID.Malformed"


# What ohf's core programs see on each cloud: the whole acquire/poll/return cycle.

TEMPLATE = Template(
    template_id="OnDemand-c5",
    max_number=10,
    image_id=AL2023,
    vm_type="c5.large",
    instance_tags="team=hpc",
)


def hf_cycle(cloud: Interpreter) -> list[Any]:
    """requestMachines, getRequestStatus, requestReturnMachines, status, getReturnRequests."""
    interpret = with_store(cloud)
    seen: list[Any] = []
    ask = RequestMachinesIn(template=TemplateAsk(template_id="OnDemand-c5", machine_count=3))
    done = run(
        request_machines((TEMPLATE,), State(), ask, request_id=RID, now=NOW), interpret
    ).unwrap()
    seen.append((done.exit_code, done.reply.request_id, done.reply.message))
    state = done.state
    ids = [m.machine_id for m in state.requests[RID].machines]
    labels = {i: f"#{n}" for n, i in enumerate(ids)}

    def poll(*rids: str, record: bool = True) -> None:
        nonlocal state
        ask = RequestStatusIn(requests=[RequestRef(request_id=r) for r in rids])
        weights = {"OnDemand-c5": {"c5.large": 1}}
        polled = run(request_status(state, ask, weights=weights, now=NOW + 5), interpret)
        state = polled.unwrap().state
        if not record:
            return
        seen.append(
            [
                (
                    r.request_id,
                    r.status,
                    sorted((labels[m.machine_id], m.status, m.result) for m in r.machines),
                )
                for r in polled.unwrap().reply.requests
            ]
        )

    poll(RID)
    returned = ReturnMachinesIn(machines=[MachineRef(machine_id=ids[0])])
    ret = run(release.return_machines(state, returned, return_id="ret-1", now=NOW), interpret)
    state = ret.unwrap().state
    seen.append(ret.unwrap().reply.message)
    # EC2 may show `shutting-down` on the first poll (moto never does): compare the second.
    poll(RID, "ret-1", record=False)
    poll(RID, "ret-1")
    hosts = ReturnRequestsIn(machines=[MachineRef(machine_id=i) for i in ids])
    reclaims = run(release.return_requests(state, hosts), interpret).unwrap()
    seen.append(sorted(labels[r.machine_id] for r in reclaims.reply.requests))
    return seen


def test_ohf_sees_the_same_hf_cycle_on_fake_and_moto(
    moto_cloud: Interpreter, fake_cloud: Interpreter
) -> None:
    on_fake = hf_cycle(fake_cloud)
    assert hf_cycle(moto_cloud) == on_fake
    assert on_fake[0] == (0, RID, "launched 3 instance(s) for 3 unit(s)")
    assert on_fake[1] == [(RID, "complete", [(f"#{n}", "running", "succeed") for n in range(3)])]
    assert on_fake[2] == "terminating 1 machine(s)"
    assert on_fake[3][1] == ("ret-1", "complete", [("#0", "terminated", "succeed")])
    assert on_fake[4] == []  # HF returned #0 itself; #1 and #2 are healthy
