"""Unit tests of the pure core, driving its programs by hand with scripted answers.

Each program is a generator: the test `.send()`s the answer AWS (or the store) would give and
asserts on the exact intents it yields. No interpreter, no cloud, no files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable
from typing import Any

import msgspec
import pytest
from returns.result import Failure, Result, Success

from ohf.config import (
    AwsConfig,
    decode_config,
    decode_template_file,
    merge_templates,
)
from ohf.effects.aws import run_instances_params
from ohf.ibm import decode_ibm_config
from ohf.intents import (
    DescribeInstances,
    Intent,
    LaunchSpec,
    ReadText,
    ResolveImage,
    RootVolume,
    RunInstances,
    SaveState,
    SpotMarket,
    TerminateInstances,
)
from ohf.messages import (
    ErrorOut,
    MachineRef,
    RequestAccepted,
    RequestMachinesIn,
    RequestRef,
    RequestStatusIn,
    ReturnMachinesIn,
    ReturnRequestsIn,
    ReturnRequestsOut,
    TemplateAsk,
)
from ohf.model import (
    REQUEST_TAG,
    TEMPLATE_TAG,
    Instance,
    Machine,
    OhfError,
    Request,
    ReturnRequest,
    State,
    Template,
)
from ohf.outcome import Done
from ohf.parts import request_machines
from ohf.poll import request_status
from ohf.release import return_machines, return_requests
from ohf.status import VISIBILITY_GRACE_SECONDS
from ohf.templates import room_left

NOW = 1_700_000_000
RID = "req-00000001"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
AMI = "ami-0fa1ce0000000001"
USER_DATA = "#!/bin/sh\necho hi\n"
Answer = Result[Any, OhfError]


# --- driving programs by hand ---------------------------------------------------------------


def drive(
    program: Generator[Intent, Answer, Result[Done, OhfError]],
    respond: Callable[[Intent], Answer],
) -> tuple[list[Intent], Result[Done, OhfError]]:
    """Run `program` to its end, answering each intent with `respond`: (intents, result)."""
    intents: list[Intent] = []
    try:
        intent = next(program)
        while True:
            intents.append(intent)
            intent = program.send(respond(intent))
    except StopIteration as stop:
        return intents, stop.value


def script(*answers: Answer, save: Answer | None = None) -> Callable[[Intent], Answer]:
    """Answer cloud intents from `answers` in order; SaveState/ReadText succeed unless told."""
    queue = list(answers)

    def respond(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return save or Success(None)
        if isinstance(intent, ReadText):
            return Success(USER_DATA)
        assert queue, f"unscripted intent {intent!r}"
        return queue.pop(0)

    return respond


def launched(spec: LaunchSpec, n: int | None = None, *, first: int = 1) -> Answer:
    """What RunInstances answers when it starts `n` (default MaxCount) instances of `spec`."""
    count = spec.max_count if n is None else n
    return Success(
        tuple(
            Instance(
                instance_id=f"i-{first + k:017x}",
                state="pending",
                instance_type=spec.instance_type or "",
                private_ip=f"10.0.0.{first + k}",
                private_dns=f"ip-10-0-0-{first + k}.ec2.internal",
                launch_time=NOW,
                request_id=dict(spec.tags).get(REQUEST_TAG),
            )
            for k in range(count)
        )
    )


def aws_error(code: str) -> Answer:
    return Failure(OhfError(message=f"RunInstances: {code}: no", code=code))


def template(**fields: Any) -> Template:
    base: dict[str, Any] = {
        "template_id": "OnDemand-c5",
        "max_number": 10,
        "image_id": AMI,
        "vm_type": "c5.large",
    }
    return Template(**{**base, **fields})


def ask(count: int, template_id: str = "OnDemand-c5") -> RequestMachinesIn:
    return RequestMachinesIn(template=TemplateAsk(template_id=template_id, machine_count=count))


def acquire(templ: Template, count: int, state: State | None = None) -> Any:
    return request_machines(
        (templ,), state or State(), ask(count, templ.template_id), request_id=RID, now=NOW
    )


class Responder:
    """A stateful responder: RunInstances answers computed from the spec by `on_run`."""

    def __init__(self, on_run: Callable[[LaunchSpec, int], Answer], image: str = AMI) -> None:
        self.on_run = on_run
        self.image = image
        self.runs = 0

    def __call__(self, intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return Success(None)
        if isinstance(intent, ResolveImage):
            return Success(self.image)
        if isinstance(intent, ReadText):
            return Success(USER_DATA)
        assert isinstance(intent, RunInstances), intent
        self.runs += 1
        return self.on_run(intent.spec, self.runs)


def runs(intents: Iterable[Intent]) -> list[LaunchSpec]:
    return [i.spec for i in intents if isinstance(i, RunInstances)]


# --- requestMachines ------------------------------------------------------------------------


def test_request_is_saved_before_run_instances() -> None:
    intents, result = drive(acquire(template(), 2), Responder(lambda s, _: launched(s)))
    assert [type(i) for i in intents] == [SaveState, RunInstances]
    saved = intents[0]
    assert isinstance(saved, SaveState)
    recorded = saved.state.requests[RID]
    assert (recorded.phase, recorded.machine_count, recorded.machines) == ("launching", 2, ())
    assert recorded.client_token == RID
    done = result.unwrap()
    assert done.exit_code == 0
    assert done.reply == RequestAccepted(
        request_id=RID, message="launched 2 instance(s) for 2 unit(s)"
    )
    assert done.state.requests[RID].phase == "launched"
    assert len(done.state.requests[RID].machines) == 2


def test_ssm_image_is_resolved_after_saving_and_used_for_the_launch() -> None:
    responder = Responder(lambda s, _: launched(s), image="ami-0123456789abcdef0")
    intents, result = drive(acquire(template(image_id=AL2023), 1), responder)
    assert [type(i) for i in intents] == [SaveState, ResolveImage, RunInstances]
    assert intents[1] == ResolveImage(parameter=AL2023)
    assert runs(intents)[0].image_id == "ami-0123456789abcdef0"
    assert result.unwrap().state.requests[RID].image_id == "ami-0123456789abcdef0"


def test_resolve_ssm_prefix_is_stripped() -> None:
    intents, _ = drive(
        acquire(template(image_id="resolve:ssm:/my/ami"), 1),
        Responder(lambda s, _: launched(s)),
    )
    assert intents[1] == ResolveImage(parameter="/my/ami")


def test_failed_ssm_resolution_launches_nothing_and_records_failure() -> None:
    intents, result = drive(
        acquire(template(image_id=AL2023), 1),
        script(Failure(OhfError(message="GetParameter: ParameterNotFound: x", code="x"))),
    )
    assert [type(i) for i in intents] == [SaveState, ResolveImage]
    done = result.unwrap()
    assert done.exit_code == 1
    assert done.state.requests[RID].phase == "failed"
    assert done.state.requests[RID].status == "complete_with_error"
    assert "ParameterNotFound" in done.reply.message


def test_first_launch_is_all_or_nothing_with_tags_and_a_token_from_the_request_id() -> None:
    templ = template(instance_tags="team=hpc; env = test", subnet_id="subnet-1", key_name="k")
    intents, _ = drive(acquire(templ, 3), Responder(lambda s, _: launched(s)))
    (spec,) = runs(intents)
    assert spec.min_count == spec.max_count == 3
    assert spec.client_token.startswith(RID)
    assert len(spec.client_token) <= 64
    assert spec.tags == (
        (REQUEST_TAG, RID),
        (TEMPLATE_TAG, "OnDemand-c5"),
        ("team", "hpc"),
        ("env", "test"),
    )
    assert (spec.instance_type, spec.subnet_id, spec.key_name) == ("c5.large", "subnet-1", "k")
    assert spec.spot is None


def test_instance_tags_cannot_override_ohf_tags() -> None:
    templ = template(instance_tags=f"{REQUEST_TAG}=evil;team=hpc")
    intents, _ = drive(acquire(templ, 1), Responder(lambda s, _: launched(s)))
    tags = runs(intents)[0].tags
    assert dict(tags)[REQUEST_TAG] == RID
    assert [k for k, _ in tags].count(REQUEST_TAG) == 1


def test_spot_price_type_asks_for_the_spot_market() -> None:
    templ = template(price_type="spot", max_spot_price=0.25)
    intents, _ = drive(acquire(templ, 1), Responder(lambda s, _: launched(s)))
    assert runs(intents)[0].spot == SpotMarket(max_price="0.25")


def test_capacity_error_retries_the_same_pool_partially_then_moves_on() -> None:
    templ = template(subnet_id="subnet-a,subnet-b")

    def on_run(spec: LaunchSpec, n: int) -> Answer:
        if n == 1:
            return aws_error("InsufficientInstanceCapacity")
        if n == 2:
            return launched(spec, 1, first=1)
        return launched(spec, first=10)

    intents, result = drive(acquire(templ, 3), Responder(on_run))
    specs = runs(intents)
    assert [(s.subnet_id, s.min_count, s.max_count) for s in specs] == [
        ("subnet-a", 3, 3),
        ("subnet-a", 1, 3),
        ("subnet-b", 2, 2),
    ]
    assert len({s.client_token for s in specs}) == 3
    assert all(s.client_token.startswith(RID) for s in specs)
    done = result.unwrap()
    assert done.exit_code == 0
    assert len(done.state.requests[RID].machines) == 3
    assert done.state.requests[RID].message == ""


def test_capacity_errors_fall_through_types_in_priority_order() -> None:
    templ = template(
        vm_type=None,
        vm_types={"c5.large": 1, "c5.xlarge": 2},
        vm_types_priority={"c5.xlarge": 1, "c5.large": 2},
    )

    def on_run(spec: LaunchSpec, _: int) -> Answer:
        if spec.instance_type == "c5.xlarge":
            return aws_error("InsufficientInstanceCapacity")
        return launched(spec)

    intents, result = drive(acquire(templ, 4), Responder(on_run))
    assert [(s.instance_type, s.min_count, s.max_count) for s in runs(intents)] == [
        ("c5.xlarge", 2, 2),  # 4 units at weight 2
        ("c5.xlarge", 1, 2),
        ("c5.large", 4, 4),
    ]
    machines = result.unwrap().state.requests[RID].machines
    assert [m.units for m in machines] == [1, 1, 1, 1]


def test_non_capacity_error_stops_launching() -> None:
    templ = template(subnet_id="subnet-a,subnet-b")
    intents, result = drive(acquire(templ, 2), script(aws_error("UnauthorizedOperation")))
    assert len(runs(intents)) == 1
    done = result.unwrap()
    assert done.exit_code == 1
    assert isinstance(done.reply, ErrorOut)
    assert "UnauthorizedOperation" in done.reply.message


def test_nothing_launched_exits_1_and_records_the_request_failed() -> None:
    templ = template(subnet_id="subnet-a,subnet-b")
    capacity = aws_error("InsufficientInstanceCapacity")
    intents, result = drive(acquire(templ, 2), script(*[capacity] * 4))
    assert len(runs(intents)) == 4  # two pools x (all-or-nothing, partial)
    done = result.unwrap()
    assert done.exit_code == 1
    assert done.reply.message.startswith(f"request {RID}: no machine launched")
    failed = done.state.requests[RID]
    assert (failed.phase, failed.status, failed.machines) == ("failed", "complete_with_error", ())


def test_partial_launch_says_launched_k_of_n() -> None:
    capacity = aws_error("InsufficientInstanceCapacity")

    def on_run(spec: LaunchSpec, n: int) -> Answer:
        return capacity if n == 1 else launched(spec, 2)

    _, result = drive(acquire(template(), 5), Responder(on_run))
    done = result.unwrap()
    assert done.exit_code == 0
    assert isinstance(done.reply, RequestAccepted)
    assert "launched 2 of 5" in done.reply.message
    assert "launched 2 of 5" in done.state.requests[RID].message


def test_lost_answer_keeps_the_request_open_for_adoption() -> None:
    # A timeout or 5xx may hide a launch that happened: HF gets the request id, and the
    # request keeps its reservation until status polls find its tagged instances (or give up).
    intents, result = drive(acquire(template(), 2), script(aws_error("connection")))
    assert len(runs(intents)) == 1
    done = result.unwrap()
    assert done.exit_code == 0
    assert isinstance(done.reply, RequestAccepted)
    assert "did not confirm" in done.reply.message
    request = done.state.requests[RID]
    assert (request.phase, request.status) == ("launching", "running")
    assert room_left(template(), done.state) == 8


def test_weighted_types_never_round_up_past_max_number() -> None:
    templ = template(max_number=3, vm_type=None, vm_types={"c5.xlarge": 2, "c5.large": 1})
    intents, result = drive(
        acquire(templ, 3), Responder(lambda spec, n: launched(spec, first=n * 10))
    )
    specs = runs(intents)
    assert [(s.instance_type, s.max_count) for s in specs] == [("c5.xlarge", 1), ("c5.large", 1)]
    done = result.unwrap()
    assert sum(m.units for m in done.state.requests[RID].machines) == 3
    assert room_left(templ, done.state) == 0


def test_weighted_type_that_cannot_fit_is_reported_not_launched() -> None:
    templ = template(max_number=3, vm_type=None, vm_types={"c5.xlarge": 2})
    intents, result = drive(acquire(templ, 3), Responder(lambda spec, n: launched(spec)))
    assert [s.max_count for s in runs(intents)] == [1]
    done = result.unwrap()
    assert "launched 2 of 3" in done.reply.message
    assert "fits the 1 unit(s) left under maxNumber" in done.reply.message


def test_over_the_limit_is_rejected_before_any_intent() -> None:
    state = State(
        requests={
            "req-old": Request(
                request_id="req-old",
                template_id="OnDemand-c5",
                machine_count=8,
                client_token="req-old",
                created_at=NOW,
                phase="launched",
                machines=tuple(
                    Machine(machine_id=f"i-{n:017x}", state="running") for n in range(8)
                ),
            )
        }
    )
    intents, result = drive(acquire(template(), 3, state), script())
    assert intents == []
    assert isinstance(result, Failure)
    assert "over what is available (2 of maxNumber 10" in result.failure().message


def test_unknown_template_is_rejected_before_any_intent() -> None:
    program = request_machines((template(),), State(), ask(1, "nope"), request_id=RID, now=NOW)
    intents, result = drive(program, script())
    assert intents == []
    assert "unknown templateId 'nope'" in result.failure().message


def test_failed_checkpoint_stops_before_aws() -> None:
    failure = Failure(OhfError(message="cannot write state file", code="state"))
    intents, result = drive(acquire(template(), 1), script(save=failure))
    assert [type(i) for i in intents] == [SaveState]
    assert isinstance(result, Failure)


def test_user_data_script_is_read_and_sent() -> None:
    templ = template(user_data_script="/etc/ohf/boot.sh")
    intents, _ = drive(acquire(templ, 1), Responder(lambda s, _: launched(s)))
    assert any(i == ReadText(path="/etc/ohf/boot.sh") for i in intents)
    assert runs(intents)[0].user_data == USER_DATA


# --- getRequestStatus -----------------------------------------------------------------------


def pending_request(*ids: str, launch_time: int = NOW, phase: Any = "launched") -> Request:
    return Request(
        request_id=RID,
        template_id="OnDemand-c5",
        machine_count=max(len(ids), 1),
        client_token=RID,
        created_at=launch_time,
        phase=phase,
        machines=tuple(Machine(machine_id=i, launch_time=launch_time) for i in ids),
    )


def poll(state: State, *ids: str, now: int, answer: Answer) -> tuple[list[Intent], Done]:
    ask = RequestStatusIn(requests=[RequestRef(request_id=i) for i in ids])
    weights = {"OnDemand-c5": {"c5.large": 1, "c5.xlarge": 2}}
    intents, result = drive(request_status(state, ask, weights=weights, now=now), lambda _: answer)
    return intents, result.unwrap()


def seen(instance_id: str, state: Any, **more: Any) -> Instance:
    return Instance(
        instance_id=instance_id,
        state=state,
        private_ip="10.0.0.9",
        private_dns="ip-10-0-0-9.ec2.internal",
        request_id=RID,
        launch_time=NOW,
        **more,
    )


I1, I2 = "i-00000000000000001", "i-00000000000000002"


def test_pending_machine_missing_from_describe_stays_pending_within_grace() -> None:
    state = State(requests={RID: pending_request(I1)})
    intents, done = poll(state, RID, now=NOW + VISIBILITY_GRACE_SECONDS - 1, answer=Success(()))
    assert intents == [DescribeInstances(request_ids=(RID,))]
    (out,) = done.reply.requests
    assert out.status == "running"
    assert (out.machines[0].status, out.machines[0].result) == ("pending", "executing")


def test_pending_machine_missing_after_grace_is_gone_and_failed() -> None:
    state = State(requests={RID: pending_request(I1)})
    _, done = poll(state, RID, now=NOW + VISIBILITY_GRACE_SECONDS, answer=Success(()))
    (out,) = done.reply.requests
    # Internally "gone"; HF only knows EC2's names, so the reply may say "terminated".
    assert done.state.requests[RID].machines[0].state == "gone"
    assert out.machines[0].status in ("gone", "terminated")
    assert out.machines[0].result == "fail"
    assert out.status == "complete_with_error"
    assert done.state.requests[RID].status == "complete_with_error"


def test_running_machine_with_ip_succeeds_and_completes_the_request() -> None:
    state = State(requests={RID: pending_request(I1)})
    _, done = poll(state, RID, now=NOW + 10, answer=Success((seen(I1, "running"),)))
    (out,) = done.reply.requests
    assert out.status == "complete"
    assert out.machines[0].result == "succeed"
    assert out.machines[0].name == "ip-10-0-0-9.ec2.internal"
    assert out.machines[0].private_ip_address == "10.0.0.9"


def test_tagged_instances_missing_from_state_are_adopted_with_their_weight() -> None:
    state = State(requests={RID: pending_request(I1)})
    answer = Success((seen(I1, "running"), seen(I2, "pending", instance_type="c5.xlarge")))
    _, done = poll(state, RID, now=NOW + 10, answer=answer)
    request = done.state.requests[RID]
    assert [m.machine_id for m in request.machines] == [I1, I2]
    assert request.machines[1].units == 2
    assert "adopted 1 instance(s)" in request.message
    assert done.reply.requests[0].status == "running"


def test_launching_request_with_nothing_found_after_grace_is_settled_failed() -> None:
    state = State(requests={RID: pending_request(phase="launching")})
    _, done = poll(state, RID, now=NOW + VISIBILITY_GRACE_SECONDS, answer=Success(()))
    request = done.state.requests[RID]
    assert (request.phase, request.status) == ("failed", "complete_with_error")
    assert done.reply.requests[0].status == "complete_with_error"


def test_interrupted_launch_adopts_an_instance_that_becomes_visible_within_grace() -> None:
    state = State(requests={RID: pending_request(phase="launching")})
    _, first = poll(state, RID, now=NOW + 5, answer=Success(()))
    assert first.reply.requests[0].status == "running"  # not yet: AWS may still show it
    intents, second = poll(first.state, RID, now=NOW + 60, answer=Success((seen(I1, "running"),)))
    assert intents == [DescribeInstances(request_ids=(RID,))]
    assert [m.machine_id for m in second.state.requests[RID].machines] == [I1]


def test_launching_request_with_tagged_instances_is_settled_launched() -> None:
    state = State(requests={RID: pending_request(phase="launching")})
    _, done = poll(state, RID, now=NOW + 1, answer=Success((seen(I1, "running"),)))
    request = done.state.requests[RID]
    assert request.phase == "launched"
    assert [m.machine_id for m in request.machines] == [I1]
    assert done.reply.requests[0].status == "complete"


def test_describe_failure_shows_last_known_state_and_changes_nothing() -> None:
    state = State(requests={RID: pending_request(I1)})
    failure = Failure(OhfError(message="DescribeInstances: Throttling: slow", code="Throttling"))
    _, done = poll(state, RID, now=NOW + 1, answer=failure)
    assert done.state == state
    assert "AWS did not answer" in done.reply.message
    assert done.reply.requests[0].status == "running"


def test_unknown_request_id_is_reported_per_request_without_aws() -> None:
    intents, done = poll(State(), "req-nope", now=NOW, answer=Success(()))
    assert intents == []
    (out,) = done.reply.requests
    assert (out.request_id, out.status, out.machines) == ("req-nope", "complete_with_error", [])
    assert "unknown request id" in out.message


def test_one_describe_serves_every_request_and_return_in_a_poll() -> None:
    other = msgspec.structs.replace(pending_request(I2), request_id="req-00000002")
    ret = ReturnRequest(request_id="ret-1", created_at=NOW, machine_ids=(I2,))
    state = State(
        requests={RID: pending_request(I1), other.request_id: other}, returns={"ret-1": ret}
    )
    intents, done = poll(state, RID, "ret-1", now=NOW + 1, answer=Success(()))
    assert intents == [DescribeInstances(request_ids=(RID, "req-00000002"))]
    assert [r.request_id for r in done.reply.requests] == [RID, "ret-1"]


def test_return_request_runs_while_shutting_down_and_completes_when_terminated() -> None:
    machine = Machine(machine_id=I1, state="shutting-down", returned_by="ret-1", result="succeed")
    request = msgspec.structs.replace(pending_request(), machines=(machine,))
    ret = ReturnRequest(request_id="ret-1", created_at=NOW, machine_ids=(I1,))
    state = State(requests={RID: request}, returns={"ret-1": ret})
    _, done = poll(state, "ret-1", now=NOW + 1, answer=Success((seen(I1, "shutting-down"),)))
    out = done.reply.requests[0]
    assert (out.status, out.machines[0].result) == ("running", "executing")
    _, done = poll(done.state, "ret-1", now=NOW + 2, answer=Success((seen(I1, "terminated"),)))
    out = done.reply.requests[0]
    assert (out.status, out.machines[0].result) == ("complete", "succeed")
    assert done.state.returns["ret-1"].status == "complete"


# --- requestReturnMachines / getReturnRequests ----------------------------------------------


def held_state(*machines: Machine) -> State:
    request = msgspec.structs.replace(
        pending_request(), machines=machines, machine_count=len(machines)
    )
    return State(requests={RID: request})


def running(machine_id: str, n: int, **more: Any) -> Machine:
    return Machine(
        machine_id=machine_id,
        name=f"ip-10-0-0-{n}.ec2.internal",
        state="running",
        private_ip=f"10.0.0.{n}",
        result="succeed",
        **more,
    )


def test_returning_unknown_machines_fails_before_any_intent() -> None:
    state = held_state(running(I1, 1))
    ask = ReturnMachinesIn(
        machines=[MachineRef(machine_id=I1), MachineRef(name="ghost", machine_id="i-0dead")]
    )
    intents, result = drive(return_machines(state, ask, return_id="ret-1", now=NOW), script())
    assert intents == []
    assert isinstance(result, Failure)
    assert "i-0dead" in result.failure().message
    assert "nothing was terminated" in result.failure().message


def test_return_terminates_named_machines_by_id_or_name() -> None:
    state = held_state(running(I1, 1), running(I2, 2), running("i-00000000000000003", 3))
    ask = ReturnMachinesIn(
        machines=[MachineRef(machine_id=I1), MachineRef(name="ip-10-0-0-2.ec2.internal")]
    )
    intents, result = drive(
        return_machines(state, ask, return_id="ret-1", now=NOW),
        lambda _: Success({I1: "shutting-down", I2: "shutting-down"}),
    )
    assert intents == [TerminateInstances(instance_ids=(I1, I2))]
    done = result.unwrap()
    machines = {m.machine_id: m for m in done.state.requests[RID].machines}
    assert machines[I1].returned_by == machines[I2].returned_by == "ret-1"
    assert machines["i-00000000000000003"].returned_by is None
    assert done.state.returns["ret-1"].machine_ids == (I1, I2)


def test_not_found_ids_are_treated_as_gone() -> None:
    state = held_state(running(I1, 1), running(I2, 2))
    ask = ReturnMachinesIn(machines=[MachineRef(machine_id=I1), MachineRef(machine_id=I2)])
    _, result = drive(
        return_machines(state, ask, return_id="ret-1", now=NOW),
        lambda _: Success({I1: "shutting-down", I2: "gone"}),
    )
    done = result.unwrap()
    assert done.reply.message == "terminating 2 machine(s) (1 already gone)"
    states = {m.machine_id: m.state for m in done.state.requests[RID].machines}
    assert states == {I1: "shutting-down", I2: "gone"}


def test_terminate_failure_fails_the_call_and_records_nothing() -> None:
    state = held_state(running(I1, 1))
    ask = ReturnMachinesIn(machines=[MachineRef(machine_id=I1)])
    _, result = drive(
        return_machines(state, ask, return_id="ret-1", now=NOW),
        lambda _: Failure(OhfError(message="TerminateInstances: Throttling: x", code="Throttling")),
    )
    assert isinstance(result, Failure)
    assert "TerminateInstances failed" in result.failure().message


I3, I4, I5, I6 = (f"i-0000000000000000{n}" for n in (3, 4, 5, 6))


def reclaim_case() -> tuple[State, list[Instance]]:
    state = held_state(
        running(I1, 1),  # healthy
        running(I2, 2),  # interrupted: shutting-down
        running(I3, 3),  # terminated from the console
        running(I4, 4),  # vanished
        # returned by HF itself, now terminated: not a reclaim
        msgspec.structs.replace(running(I5, 5), returned_by="ret-0", state="shutting-down"),
        running(I6, 6),  # stopped
    )
    cloud = [
        seen(I1, "running"),
        seen(I2, "shutting-down"),
        seen(I3, "terminated"),
        seen(I5, "terminated"),
        seen(I6, "stopped"),
    ]
    return state, cloud


def test_get_return_requests_lists_what_the_cloud_took_and_nothing_else() -> None:
    state, cloud = reclaim_case()
    refs = [
        MachineRef(name=f"ip-10-0-0-{n}.ec2.internal", machine_id=f"i-0000000000000000{n}")
        for n in range(1, 7)
    ]
    intents, result = drive(
        return_requests(state, ReturnRequestsIn(machines=refs)), lambda _: Success(tuple(cloud))
    )
    # HF-returned machines are not even asked about.
    assert intents == [DescribeInstances(instance_ids=(I1, I2, I3, I4, I6))]
    done = result.unwrap()
    assert isinstance(done.reply, ReturnRequestsOut)
    assert sorted(r.machine_id for r in done.reply.requests) == [I2, I3, I4, I6]
    assert {r.machine for r in done.reply.requests} == {
        f"ip-10-0-0-{n}.ec2.internal" for n in (2, 3, 4, 6)
    }
    assert all(r.grace_period == 0 for r in done.reply.requests)
    assert done.state == state


def test_get_return_requests_matches_hosts_by_name_when_ids_are_blank() -> None:
    state, cloud = reclaim_case()
    refs = [
        MachineRef(name="ip-10-0-0-3.ec2.internal"),
        MachineRef(name="ip-10-0-0-1.ec2.internal"),
    ]
    _, result = drive(
        return_requests(state, ReturnRequestsIn(machines=refs)), lambda _: Success(tuple(cloud))
    )
    assert [r.machine_id for r in result.unwrap().reply.requests] == [I3]


def test_get_return_requests_with_nothing_to_check_makes_no_call() -> None:
    state = held_state(msgspec.structs.replace(running(I1, 1), returned_by="ret-0"))
    intents, result = drive(
        return_requests(state, ReturnRequestsIn(machines=[MachineRef(machine_id=I1)])), script()
    )
    assert intents == []
    assert result.unwrap().reply.requests == []


def test_get_return_requests_without_a_list_checks_every_machine_hf_holds() -> None:
    """With an empty list, every machine HF was given and did not return is checked.

    That includes one a status poll already saw ending (it is a reclaim HF must hear of), but
    not one HF returned, nor one that never became usable (HF never had it).
    """
    seen_ending = msgspec.structs.replace(running(I3, 3), state="terminated")
    returned = msgspec.structs.replace(running(I4, 4), returned_by="ret-0")
    never_usable = msgspec.structs.replace(running(I5, 5), result="fail", state="terminated")
    state = held_state(running(I1, 1), running(I2, 2), seen_ending, returned, never_usable)
    intents, result = drive(
        return_requests(state, ReturnRequestsIn()),
        lambda _: Success((seen(I1, "running"), seen(I2, "shutting-down"))),
    )
    assert intents == [DescribeInstances(instance_ids=(I1, I2, I3))]
    assert [r.machine_id for r in result.unwrap().reply.requests] == [I2, I3]


# --- config decoding ------------------------------------------------------------------------


TOML = b"""
[aws]
region = "eu-west-1"
max_attempts = 6

[storage]
path = "/var/lib/ohf/state.json"

[logging]
level = "DEBUG"

[[templates]]
templateId = "OnDemand-c5"
maxNumber = 10
imageId = "ami-0fa1ce0000000001"
vmType = "c5.large"
instanceTags = "team=hpc"
siteKey = "kept"
"""


def test_toml_config_decodes_with_inline_templates_and_extras() -> None:
    config = decode_config(TOML, fmt="toml", source="/etc/ohf/ohf.toml").unwrap()
    assert (config.aws.region, config.aws.max_attempts) == ("eu-west-1", 6)
    assert config.storage.path == "/var/lib/ohf/state.json"
    assert config.logging.level == "DEBUG"
    (templ,) = config.templates
    assert (templ.template_id, templ.max_number, templ.vm_type) == ("OnDemand-c5", 10, "c5.large")
    assert templ.extras == {"siteKey": "kept"}


def test_json_config_decodes_like_toml() -> None:
    doc = {
        "aws": {"region": "eu-west-1", "max_attempts": 6},
        "storage": {"path": "/var/lib/ohf/state.json"},
        "logging": {"level": "DEBUG"},
        "templates": [
            {
                "templateId": "OnDemand-c5",
                "maxNumber": 10,
                "imageId": "ami-0fa1ce0000000001",
                "vmType": "c5.large",
                "instanceTags": "team=hpc",
                "siteKey": "kept",
            }
        ],
    }
    from_json = decode_config(json.dumps(doc).encode(), fmt="json", source="ohf.json").unwrap()
    from_toml = decode_config(TOML, fmt="toml", source="ohf.toml").unwrap()
    assert from_json == from_toml


@pytest.mark.parametrize(
    ("raw", "fmt", "needles"),
    [
        (b"[aws]\nregoin = 'x'\n", "toml", ("/etc/ohf/ohf.toml", "regoin")),
        (b"[aws]\nmax_attempts = 0\n", "toml", ("/etc/ohf/ohf.toml", "max_attempts")),
        (b"[aws\n", "toml", ("/etc/ohf/ohf.toml", "cannot parse")),
        (b'{"logging": {"level": "LOUD"}}', "json", ("/etc/ohf/ohf.toml", "level")),
        (
            b'[[templates]]\ntemplateId = "a"\nmaxNumber = "ten"\n',
            "toml",
            ("/etc/ohf/ohf.toml", "templates[0]", "maxNumber", "'a'"),
        ),
        (
            b'[[templates]]\ntemplateId = "bad id!"\nmaxNumber = 1\n',
            "toml",
            ("/etc/ohf/ohf.toml", "templates[0]", "templateId"),
        ),
        (
            b'[[templates]]\ntemplateId = "a"\nmaxNumber = 1\n'
            b'[[templates]]\ntemplateId = "a"\nmaxNumber = 2\n',
            "toml",
            ("/etc/ohf/ohf.toml", "'a'", "twice"),
        ),
        (b"templates = 3\n", "toml", ("/etc/ohf/ohf.toml", "templates")),
    ],
)
def test_config_errors_name_the_file_and_the_key(
    raw: bytes, fmt: Any, needles: tuple[str, ...]
) -> None:
    result = decode_config(raw, fmt=fmt, source="/etc/ohf/ohf.toml")
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == "config"
    for needle in needles:
        assert needle in error.message, (needle, error.message)


def test_ibm_provider_config_maps_onto_config() -> None:
    raw = json.dumps(
        {
            "LogLevel": "WARN",
            "AWS_REGION": "us-west-2",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_CREDENTIAL_FILE": "/opt/creds",
            "AWS_CONNECTION_TIMEOUT_MS": 7500,
            "AWS_REQUEST_RETRY_ATTEMPTS": 2,
            "AWS_KEY_FILE": "/ignored",
        }
    ).encode()
    config = decode_ibm_config(raw, source="awsprov_config.json").unwrap()
    assert config.aws == AwsConfig(
        region="us-west-2",
        endpoint_url="http://127.0.0.1:5000",
        credentials_file="/opt/creds",
        connect_timeout=7.5,
        max_attempts=3,
    )
    assert config.logging.level == "WARNING"


def test_ibm_provider_config_defaults_and_blank_strings() -> None:
    config = decode_ibm_config(
        b'{"AWS_ENDPOINT_URL": "", "LogLevel": "trace"}', source="x"
    ).unwrap()
    assert config.aws.endpoint_url is None
    assert config.aws.connect_timeout == 5.0
    assert config.aws.max_attempts == 4
    assert config.logging.level == "DEBUG"


def test_ibm_provider_config_errors_name_the_file_and_key() -> None:
    result = decode_ibm_config(
        b'{"AWS_CONNECTION_TIMEOUT_MS": "soon"}', source="/conf/awsprov_config.json"
    )
    message = result.failure().message
    assert "/conf/awsprov_config.json" in message
    assert "AWS_CONNECTION_TIMEOUT_MS" in message


def test_ibm_templates_file_decodes_and_errors_name_the_file() -> None:
    good = json.dumps(
        {"templates": [{"templateId": "t1", "maxNumber": 2, "vmType": "c5.large", "x": 1}]}
    ).encode()
    (templ,) = decode_template_file(good, source="awsprov_templates.json").unwrap()
    assert templ.extras == {"x": 1}
    bad = decode_template_file(
        b'{"templates": [{"maxNumber": 2}]}', source="/c/awsprov_templates.json"
    )
    assert "/c/awsprov_templates.json" in bad.failure().message
    assert "templateId" in bad.failure().message
    notlist = decode_template_file(b'{"templates": {}}', source="/c/awsprov_templates.json")
    assert "/c/awsprov_templates.json" in notlist.failure().message


def test_merge_templates_rejects_an_id_defined_twice() -> None:
    config = decode_config(TOML, fmt="toml", source="ohf.toml").unwrap()
    result = merge_templates(config, (template(),), source="extra.json")
    assert "'OnDemand-c5' is defined both inline and in extra.json" in result.failure().message


# --- effects.aws.run_instances_params (pure) ------------------------------------------------


def spec(**fields: Any) -> LaunchSpec:
    base: dict[str, Any] = {
        "image_id": AMI,
        "instance_type": "c5.large",
        "min_count": 2,
        "max_count": 2,
        "client_token": f"{RID}-0a",
        "tags": ((REQUEST_TAG, RID), ("team", "hpc")),
    }
    return LaunchSpec(**{**base, **fields})


def test_run_instances_params_basic() -> None:
    params = run_instances_params(
        spec(subnet_id="subnet-1", security_group_ids=("sg-1", "sg-2"), key_name="k"), None
    )
    tags = [{"Key": REQUEST_TAG, "Value": RID}, {"Key": "team", "Value": "hpc"}]
    assert params == {
        "MinCount": 2,
        "MaxCount": 2,
        "ClientToken": f"{RID}-0a",
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
        "ImageId": AMI,
        "InstanceType": "c5.large",
        "KeyName": "k",
        "SubnetId": "subnet-1",
        "SecurityGroupIds": ["sg-1", "sg-2"],
    }


def test_run_instances_params_spot() -> None:
    params = run_instances_params(spec(spot=SpotMarket(max_price="0.1")), None)
    assert params["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": "0.1",
        },
    }
    plain = run_instances_params(spec(spot=SpotMarket()), None)
    assert "MaxPrice" not in plain["InstanceMarketOptions"]["SpotOptions"]


def test_run_instances_params_efa_moves_subnet_and_groups_into_interfaces() -> None:
    params = run_instances_params(
        spec(subnet_id="subnet-1", security_group_ids=("sg-1",), interface_type="efa", efa_count=2),
        None,
    )
    assert "SubnetId" not in params
    assert "SecurityGroupIds" not in params
    assert params["NetworkInterfaces"] == [
        {
            "DeviceIndex": 0,
            "NetworkCardIndex": 0,
            "InterfaceType": "efa",
            "SubnetId": "subnet-1",
            "Groups": ["sg-1"],
        },
        {
            "DeviceIndex": 1,
            "NetworkCardIndex": 1,
            "InterfaceType": "efa",
            "SubnetId": "subnet-1",
            "Groups": ["sg-1"],
        },
    ]


def test_run_instances_params_efa_only_is_never_the_primary_interface() -> None:
    params = run_instances_params(
        spec(subnet_id="subnet-1", interface_type="efa-only", efa_count=2), None
    )
    interfaces = params["NetworkInterfaces"]
    primary = [i for i in interfaces if (i["NetworkCardIndex"], i["DeviceIndex"]) == (0, 0)]
    assert len(primary) == 1
    assert primary[0]["InterfaceType"] == "interface"
    assert any(i["InterfaceType"] == "efa-only" for i in interfaces)


def test_run_instances_params_plain_interface_type_is_not_efa() -> None:
    params = run_instances_params(spec(subnet_id="subnet-1", interface_type="interface"), None)
    assert "NetworkInterfaces" not in params
    assert params["SubnetId"] == "subnet-1"


def test_run_instances_params_launch_template() -> None:
    params = run_instances_params(spec(image_id=None, launch_template_id="lt-1"), None)
    assert params["LaunchTemplate"] == {"LaunchTemplateId": "lt-1", "Version": "$Default"}
    assert "ImageId" not in params
    pinned = run_instances_params(
        spec(launch_template_id="lt-1", launch_template_version="3"), None
    )
    assert pinned["LaunchTemplate"]["Version"] == "3"


def test_run_instances_params_root_volume_uses_the_amis_device() -> None:
    root = RootVolume(size_gib=100, volume_type="gp3", iops=3000)
    params = run_instances_params(spec(root_volume=root), "/dev/sda1")
    assert params["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {
                "VolumeSize": 100,
                "VolumeType": "gp3",
                "Iops": 3000,
                "DeleteOnTermination": True,
            },
        }
    ]
    sized = run_instances_params(spec(root_volume=RootVolume(size_gib=50)), "/dev/xvda")
    assert sized["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 50, "DeleteOnTermination": True}


def test_run_instances_params_profile_placement_and_flags() -> None:
    by_name = run_instances_params(
        spec(instance_profile="hpc", placement_group="pg", tenancy="dedicated", ebs_optimized=True),
        None,
    )
    assert by_name["IamInstanceProfile"] == {"Name": "hpc"}
    assert by_name["Placement"] == {"GroupName": "pg", "Tenancy": "dedicated"}
    assert by_name["EbsOptimized"] is True
    by_arn = run_instances_params(spec(instance_profile="arn:aws:iam::1:instance-profile/x"), None)
    assert by_arn["IamInstanceProfile"] == {"Arn": "arn:aws:iam::1:instance-profile/x"}
    assert "Placement" not in by_arn


def test_run_instances_params_is_pure() -> None:
    s = spec(spot=SpotMarket(max_price="1"), root_volume=RootVolume(size_gib=8))
    assert run_instances_params(s, "/dev/xvda") == run_instances_params(s, "/dev/xvda")


def test_lost_answer_before_any_launch_fails_the_request_at_once() -> None:
    # An SSM timeout happens before RunInstances: nothing can have launched, so no grace.
    templ = template(image_id=AL2023)
    _, result = drive(
        acquire(templ, 1),
        script(Failure(OhfError(message="GetParameter: timeout", code="connection"))),
    )
    done = result.unwrap()
    assert done.exit_code == 1
    assert done.state.requests[RID].phase == "failed"
