"""Public hypothesis strategies for ohf: templates, HF messages, state and fake-cloud events.

For property tests of ohf and of tools built on it. Importing this module needs `hypothesis`
(a test dependency, not a runtime one). Every strategy draws small values on purpose (a few
templates, counts up to 50, a handful of machines) so that stateful tests stay fast.

Templates are always valid for `ohf.templates.check_template`, and launchable by the fake
cloud when it knows the SSM paths used here: `fake.new_cloud(parameters=SSM_IMAGES)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from hypothesis import strategies as st

from ohf.codes import CAPACITY_CODES
from ohf.config import ProviderConfig
from ohf.effects import fake
from ohf.messages import RequestMachinesIn, TemplateAsk
from ohf.model import (
    Instance,
    InstanceState,
    Machine,
    MachineResult,
    Phase,
    Request,
    RequestStatus,
    ReturnRequest,
    State,
    Template,
)

# A few real catalogue types (x86 and Graviton): enough to vary weights and attributes.
INSTANCE_TYPES: tuple[str, ...] = ("c5.large", "c5.xlarge", "m5.large", "m5.xlarge", "c7g.large")
AMI_IDS: tuple[str, ...] = ("ami-0fa1ce0000000001", "ami-0123456789abcdef0")
# SSM parameters the strategies use, with the AMI each resolves to in the fake cloud.
SSM_IMAGES: dict[str, str] = {
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64": "ami-0fa1ce0000000001",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64": "ami-0fa1ce0000000002",
}
INSTANCE_STATES: tuple[InstanceState, ...] = (
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
    "gone",
)
HF_CALLS: tuple[str, ...] = (
    "getAvailableTemplates",
    "requestMachines",
    "getRequestStatus",
    "requestReturnMachines",
    "getReturnRequests",
)

_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
_TAG_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-.:/"
_TAG_VALUE_CHARS = _TAG_KEY_CHARS + "=+@ "
_EPOCH = 1_700_000_000


def template_ids() -> st.SearchStrategy[str]:
    """Valid template ids (`[0-9A-Za-z_-]{1,64}`), kept short."""
    return st.text(alphabet=_ID_CHARS, min_size=1, max_size=16)


def instance_ids() -> st.SearchStrategy[str]:
    """EC2-shaped instance ids (`i-` and 17 hex digits)."""
    return st.integers(min_value=0, max_value=2**68 - 1).map(lambda n: f"i-{n:017x}")


def request_ids(prefix: str = "req") -> st.SearchStrategy[str]:
    """Request ids in ohf's shape (`req-...` or `ret-...`)."""
    return st.integers(min_value=1, max_value=10**8).map(lambda n: f"{prefix}-{n:08d}")


def image_ids() -> st.SearchStrategy[str]:
    """An AMI id or an SSM parameter path (both forms `imageId` accepts)."""
    return st.sampled_from((*AMI_IDS, *SSM_IMAGES))


def tag_keys() -> st.SearchStrategy[str]:
    """Tag keys that survive `instanceTags` formatting: no `;`/`=`, no edge blanks, no `aws:`."""
    return st.text(alphabet=_TAG_KEY_CHARS, min_size=1, max_size=10).filter(
        lambda k: not k.lower().startswith("aws:")
    )


def tag_values() -> st.SearchStrategy[str]:
    """Tag values that survive formatting: no `;`, no leading/trailing blanks (may hold `=`)."""
    return st.text(alphabet=_TAG_VALUE_CHARS, max_size=10).map(str.strip)


def tag_pairs() -> st.SearchStrategy[list[tuple[str, str]]]:
    """A short list of (key, value) instance tags with distinct keys."""
    return st.lists(st.tuples(tag_keys(), tag_values()), max_size=3, unique_by=lambda kv: kv[0])


def format_tags(pairs: Sequence[tuple[str, str]]) -> str:
    """IBM's `instanceTags` text for `pairs`: `k1=v1;k2=v2`."""
    return ";".join(f"{k}={v}" for k, v in pairs)


def vm_types() -> st.SearchStrategy[dict[str, int]]:
    """`vmTypes`: one to three catalogue types with weights (capacity units per instance)."""
    return st.dictionaries(
        st.sampled_from(INSTANCE_TYPES),
        st.integers(min_value=1, max_value=4),
        min_size=1,
        max_size=3,
    )


def json_scalars() -> st.SearchStrategy[Any]:
    """Small JSON scalars (no floats: NaN and -0.0 make equality laws noisy)."""
    return st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))


def extra_keys() -> st.SearchStrategy[dict[str, Any]]:
    """Keys ohf does not know in a template (kept in `extras`, echoed to HF unchanged)."""
    return st.dictionaries(
        st.sampled_from(("customKey", "site", "owner", "costCentre", "x-note")),
        st.one_of(json_scalars(), st.lists(st.text(max_size=4), max_size=2)),
        max_size=2,
    )


@st.composite
def templates(
    draw: st.DrawFn,
    *,
    template_id: str | None = None,
    with_extras: bool = True,
    max_numbers: st.SearchStrategy[int] | None = None,
) -> Template:
    """A valid `Template`: maxNumber -1..50, vmType or weighted vmTypes, AMI or SSM imageId."""
    weighted = draw(st.booleans())
    tags = draw(st.one_of(st.none(), tag_pairs().map(format_tags)))
    spot = draw(st.sampled_from(("ondemand", "ondemand", "spot")))
    return Template(
        template_id=template_id if template_id is not None else draw(template_ids()),
        max_number=draw(
            st.integers(min_value=-1, max_value=50) if max_numbers is None else max_numbers
        ),
        image_id=draw(image_ids()),
        vm_type=None if weighted else draw(st.sampled_from(INSTANCE_TYPES)),
        vm_types=draw(vm_types()) if weighted else None,
        subnet_id=draw(
            st.one_of(
                st.none(),
                st.sampled_from(("subnet-0aaa", "subnet-0aaa,subnet-0bbb")),
                st.just(["subnet-0aaa", "subnet-0ccc"]),
            )
        ),
        price_type="spot" if spot == "spot" else "ondemand",
        instance_tags=tags or None,
        extras=draw(extra_keys()) if with_extras else {},
    )


def template_lists(
    *,
    min_size: int = 1,
    max_size: int = 4,
    with_extras: bool = True,
    max_numbers: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[list[Template]]:
    """A list of valid templates with distinct ids (`max_numbers` overrides -1..50)."""
    return st.lists(
        templates(with_extras=with_extras, max_numbers=max_numbers),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda t: t.template_id,
    )


@st.composite
def ibm_template_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A template as it appears in IBM's `awsprov_templates.json`, unknown keys included."""
    template = draw(templates(with_extras=False))
    body: dict[str, Any] = {
        k: v for k, v in msgspec.to_builtins(template).items() if k != "extras" and v is not None
    }
    if draw(st.booleans()):
        body["attributes"] = {
            "type": ["String", "X86_64"],
            "ncpus": ["Numeric", str(draw(st.integers(1, 64)))],
            "nram": ["Numeric", str(1024 * draw(st.integers(1, 64)))],
        }
    else:
        body.pop("attributes", None)
    body.update(draw(extra_keys()))
    return body


def request_machines_inputs(
    template_ids: Sequence[str], *, max_count: int = 50
) -> st.SearchStrategy[RequestMachinesIn]:
    """requestMachines inputs naming one of `template_ids` (valid HF input; may be over limits)."""
    return st.builds(
        lambda tid, n: RequestMachinesIn(template=TemplateAsk(template_id=tid, machine_count=n)),
        st.sampled_from(list(template_ids)),
        st.integers(min_value=1, max_value=max_count),
    )


@st.composite
def instances(
    draw: st.DrawFn,
    *,
    instance_id: str | None = None,
    request_id: str | None = None,
    states: Sequence[InstanceState] | None = None,
) -> Instance:
    """An `Instance` observation, as the cloud interpreters report one."""
    state: InstanceState = draw(
        st.sampled_from(tuple(states or tuple(s for s in INSTANCE_STATES if s != "gone")))
    )
    ip = draw(st.one_of(st.none(), st.integers(4, 250).map(lambda n: f"10.0.0.{n}")))
    return Instance(
        instance_id=instance_id if instance_id is not None else draw(instance_ids()),
        state=state,
        instance_type=draw(st.sampled_from(INSTANCE_TYPES)),
        private_ip=ip,
        private_dns=f"ip-{ip.replace('.', '-')}.ec2.internal" if ip else "",
        launch_time=draw(st.integers(_EPOCH - 1000, _EPOCH + 1000)),
        request_id=request_id,
        template_id=draw(st.one_of(st.none(), template_ids())),
        lifecycle=draw(st.sampled_from(("on-demand", "spot"))),
        state_reason=draw(st.sampled_from(("", "Client.UserInitiatedShutdown"))),
    )


@st.composite
def machines(draw: st.DrawFn, *, machine_id: str | None = None) -> Machine:
    """A `Machine` record as ohf keeps it in its state."""
    ip = draw(st.one_of(st.none(), st.integers(4, 250).map(lambda n: f"10.0.1.{n}")))
    result: MachineResult = draw(st.sampled_from(("executing", "succeed", "fail")))
    return Machine(
        machine_id=machine_id if machine_id is not None else draw(instance_ids()),
        name=f"ip-{ip.replace('.', '-')}.ec2.internal" if ip else "",
        instance_type=draw(st.sampled_from(INSTANCE_TYPES)),
        units=draw(st.integers(1, 4)),
        state=draw(st.sampled_from(INSTANCE_STATES)),
        private_ip=ip,
        launch_time=draw(st.integers(_EPOCH - 1000, _EPOCH + 1000)),
        lifecycle=draw(st.sampled_from(("on-demand", "spot"))),
        result=result,
        returned_by=draw(st.one_of(st.none(), request_ids("ret"))),
        message=draw(st.sampled_from(("", "Client.UserInitiatedShutdown"))),
    )


@st.composite
def requests(
    draw: st.DrawFn,
    *,
    request_id: str | None = None,
    template_id: str | None = None,
    max_machines: int = 4,
) -> Request:
    """An acquire `Request` as ohf can store one, with machines of distinct ids.

    Phase and status agree the way ohf writes them: a `launching` request (recorded before its
    first RunInstances) is `running` with no machine yet, a `failed` one launched nothing and is
    `complete_with_error`, a `launched` one has at least one machine and any status.
    """
    rid = request_id if request_id is not None else draw(request_ids())
    phase: Phase = draw(st.sampled_from(("launched", "launching", "failed")))
    status: RequestStatus = "running" if phase == "launching" else "complete_with_error"
    ids: list[str] = []
    if phase == "launched":
        status = draw(st.sampled_from(("running", "complete", "complete_with_error")))
        ids = draw(st.lists(instance_ids(), min_size=1, max_size=max_machines, unique=True))
    held = tuple(draw(machines(machine_id=i)) for i in ids)
    return Request(
        request_id=rid,
        template_id=template_id if template_id is not None else draw(template_ids()),
        machine_count=draw(st.integers(1, 8)),
        client_token=rid,
        created_at=draw(st.integers(_EPOCH - 1000, _EPOCH)),
        phase=phase,
        image_id=draw(st.one_of(st.none(), st.sampled_from(AMI_IDS))),
        machines=held,
        status=status,
        message=draw(st.sampled_from(("", "launched 1 of 2 units: capacity"))),
    )


def return_requests(machine_ids: Sequence[str] = ()) -> st.SearchStrategy[ReturnRequest]:
    """A `ReturnRequest` naming some of `machine_ids` (or fresh ids when none are given)."""
    ids = (
        st.lists(st.sampled_from(list(machine_ids)), min_size=1, max_size=4, unique=True)
        if machine_ids
        else st.lists(instance_ids(), min_size=1, max_size=3, unique=True)
    )
    return st.builds(
        ReturnRequest,
        request_id=request_ids("ret"),
        created_at=st.integers(_EPOCH - 1000, _EPOCH + 1000),
        machine_ids=ids.map(tuple),
        status=st.sampled_from(("running", "complete")),
    )


@st.composite
def states(draw: st.DrawFn, *, max_requests: int = 3) -> State:
    """A `State`: requests keyed by their ids, machine ids unique across requests."""
    rids = draw(st.lists(request_ids(), max_size=max_requests, unique=True))
    drawn = [draw(requests(request_id=r)) for r in rids]
    seen: set[str] = set()
    kept: list[Request] = []
    for request in drawn:
        own = tuple(m for m in request.machines if m.machine_id not in seen)
        seen.update(m.machine_id for m in own)
        kept.append(msgspec.structs.replace(request, machines=own))
    rets: dict[str, ReturnRequest] = {}
    with_return: bool = draw(st.booleans())
    if seen and with_return:
        ret = draw(return_requests(sorted(seen)))
        rets[ret.request_id] = ret
    return State(requests={r.request_id: r for r in kept}, returns=rets)


def machine_refs(machine_ids: Sequence[str], names: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """HF `{"name", "machineId"}` objects for some of `machine_ids` (or unknown ones)."""
    pool = st.sampled_from(list(machine_ids)) if machine_ids else instance_ids()
    name = st.sampled_from(list(names)) if names else st.just("")
    return st.builds(lambda i, n: {"name": n, "machineId": i}, pool, name)


def hf_bodies(
    call: str,
    *,
    template_ids: Sequence[str] = (),
    request_ids: Sequence[str] = (),
    machine_ids: Sequence[str] = (),
) -> st.SearchStrategy[Any]:
    """A valid HF input document (JSON-able) for `call`, naming the given ids where it can."""
    known_templates = list(template_ids) or ["OnDemand-c5"]
    if call == "getAvailableTemplates":
        return st.just({})
    if call == "requestMachines":
        return st.builds(
            lambda t, n: {"template": {"templateId": t, "machineCount": n}},
            st.sampled_from(known_templates),
            st.integers(1, 50),
        )
    if call == "getRequestStatus":
        rid = st.sampled_from(list(request_ids)) if request_ids else _request_id_any()
        return st.lists(rid, min_size=1, max_size=4).map(
            lambda ids: {"requests": [{"requestId": i} for i in ids]}
        )
    if call == "requestReturnMachines":
        return st.lists(machine_refs(machine_ids), min_size=1, max_size=4).map(
            lambda ms: {"machines": ms}
        )
    if call == "getReturnRequests":
        return st.lists(machine_refs(machine_ids), max_size=4).map(lambda ms: {"machines": ms})
    raise ValueError(f"unknown HF call {call!r}; expected one of {', '.join(HF_CALLS)}")


def _request_id_any() -> st.SearchStrategy[str]:
    return st.one_of(request_ids("req"), request_ids("ret"))


# Fake-cloud events: what the real cloud does on its own, between HF calls.

EventKind = Literal["interrupt", "terminate_outside", "vanish", "capacity_fault", "throttle"]


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something the cloud does by itself; `pick` chooses the live instance it happens to."""

    kind: EventKind
    pick: int = 0
    code: str = "InsufficientInstanceCapacity"
    operation: str = "RunInstances"


def cloud_events() -> st.SearchStrategy[CloudEvent]:
    """Interruptions, console terminations, vanishing, capacity faults and throttling."""
    pick = st.integers(min_value=0, max_value=1000)
    return st.one_of(
        st.builds(CloudEvent, kind=st.just("interrupt"), pick=pick),
        st.builds(CloudEvent, kind=st.just("terminate_outside"), pick=pick),
        st.just(CloudEvent(kind="vanish")),
        st.builds(
            CloudEvent, kind=st.just("capacity_fault"), code=st.sampled_from(sorted(CAPACITY_CODES))
        ),
        st.builds(
            CloudEvent,
            kind=st.just("throttle"),
            code=st.just("RequestLimitExceeded"),
            operation=st.sampled_from(("DescribeInstances", "TerminateInstances", "RunInstances")),
        ),
    )


def event_target(cloud: fake.FakeCloud, event: CloudEvent) -> str | None:
    """The live instance an interrupt/terminate event hits (None when nothing is live)."""
    live = sorted(fake.live_instances(cloud))
    return live[event.pick % len(live)] if live else None


def apply_event(cloud: fake.FakeCloud, event: CloudEvent) -> fake.FakeCloud:
    """The fake cloud after `event` (a no-op when it needs a live instance and there is none)."""
    if event.kind == "vanish":
        return fake.vanish(cloud)
    if event.kind in ("capacity_fault", "throttle"):
        return fake.inject(cloud, fake.Fault(operation=event.operation, code=event.code))
    target = event_target(cloud, event)
    if target is None:
        return cloud
    if event.kind == "interrupt":
        return fake.interrupt(cloud, target)
    return fake.terminate_outside(cloud, target)


# State changes: related pairs and histories of states, for the event log's laws.

_DAY = 86_400


def _unique_machines(machines: Sequence[Machine]) -> tuple[Machine, ...]:
    seen: set[str] = set()
    out: list[Machine] = []
    for machine in machines:
        if machine.machine_id not in seen:
            seen.add(machine.machine_id)
            out.append(machine)
    return tuple(out)


@st.composite
def _changed_request(draw: st.DrawFn, request: Request) -> Request:
    """`request` after some call: machines changed, added, dropped or reordered; fields moved."""
    kept = [
        draw(machines(machine_id=m.machine_id)) if draw(st.booleans()) else m
        for m in request.machines
        if draw(st.integers(0, 5)) > 0
    ]
    added = draw(st.lists(machines(), max_size=2))
    moved = draw(st.permutations(kept + added)) if draw(st.booleans()) else kept + added
    status: RequestStatus = draw(st.sampled_from(("running", "complete", "complete_with_error")))
    phase: Phase = draw(st.sampled_from(("launched", "launching", "failed")))
    return msgspec.structs.replace(
        request,
        machines=_unique_machines(moved),
        status=draw(st.sampled_from((request.status, status))),
        phase=draw(st.sampled_from((request.phase, phase))),
        message=draw(st.sampled_from((request.message, "adopted 1 instance(s)"))),
        fleet_id=draw(st.sampled_from((request.fleet_id, "fleet-0abc"))),
        cleaned_up=draw(st.sampled_from((request.cleaned_up, True))),
        ended_at=draw(st.sampled_from((request.ended_at, _EPOCH + 10))),
    )


@st.composite
def changed_states(draw: st.DrawFn, state: State) -> State:
    """`state` after an arbitrary call: requests and returns created, changed or removed."""
    held: dict[str, Request] = {}
    for rid, request in state.requests.items():
        fate = draw(st.sampled_from(("keep", "change", "change", "drop")))
        if fate != "drop":
            held[rid] = draw(_changed_request(request)) if fate == "change" else request
    for request in draw(st.lists(requests(), max_size=2)):
        held.setdefault(request.request_id, request)
    returns: dict[str, ReturnRequest] = {}
    for rid, ret in state.returns.items():
        fate = draw(st.sampled_from(("keep", "change", "drop")))
        if fate == "change":
            returns[rid] = msgspec.structs.replace(
                ret, status="complete", ended_at=_EPOCH + 20, message="all machines gone"
            )
        elif fate == "keep":
            returns[rid] = ret
    known = sorted({m.machine_id for r in held.values() for m in r.machines})
    for ret in draw(st.lists(return_requests(known), max_size=1)):
        returns.setdefault(ret.request_id, ret)
    return msgspec.structs.replace(state, requests=held, returns=returns)


@st.composite
def state_changes(draw: st.DrawFn) -> tuple[State, State]:
    """A state and the state some call left after it (`before`, `after`)."""
    before = draw(states())
    return before, draw(changed_states(before))


@st.composite
def state_histories(draw: st.DrawFn, *, max_steps: int = 5) -> list[State]:
    """A run of states, each one call after the previous, starting from the empty state."""
    history = [State()]
    for _ in range(draw(st.integers(1, max_steps))):
        history.append(draw(changed_states(history[-1])))
    return history


@st.composite
def aged_states(draw: st.DrawFn) -> State:
    """A state whose requests and returns ended at various times in the last 30 days (or not).

    Some requests are settled (final, every machine ended) with an `ended_at`; some carry an
    `ended_at` while a machine still runs, as a state damaged by hand might.
    """
    state = draw(states())
    ended_at = st.integers(_EPOCH - 30 * _DAY, _EPOCH)
    aged: dict[str, Request] = {}
    for rid, request in state.requests.items():
        kind = draw(st.sampled_from(("open", "settled", "settled", "stamped-open")))
        aged[rid] = request
        if kind == "settled":
            aged[rid] = msgspec.structs.replace(
                request,
                phase="launched" if request.machines else "failed",
                status=draw(st.sampled_from(("complete", "complete_with_error"))),
                machines=tuple(
                    msgspec.structs.replace(m, state=draw(st.sampled_from(("terminated", "gone"))))
                    for m in request.machines
                ),
                ended_at=draw(ended_at),
            )
        elif kind == "stamped-open":
            aged[rid] = msgspec.structs.replace(request, ended_at=draw(ended_at))
    returns = {
        rid: msgspec.structs.replace(ret, status="complete", ended_at=draw(ended_at))
        if draw(st.booleans())
        else ret
        for rid, ret in state.returns.items()
    }
    return msgspec.structs.replace(state, requests=aged, returns=returns)


# Fleet events: what AWS does to fleets, groups and spot instances on its own.

FleetEventKind = Literal["notify_interruption", "exhaust", "fleet_fault"]
# The AWS operations behind ohf's fleet intents, as the fake cloud names them.
FLEET_OPERATIONS: tuple[str, ...] = (
    "CreateLaunchTemplate",
    "DeleteLaunchTemplate",
    "CreateFleet",
    "RequestSpotFleet",
    "CreateAutoScalingGroup",
    "DescribeFleets",
    "DescribeSpotFleetRequests",
    "DescribeAutoScalingGroups",
    "ModifyFleet",
    "ModifySpotFleetRequest",
    "UpdateAutoScalingGroup",
    "TerminateInstanceInAutoScalingGroup",
    "DeleteFleets",
    "CancelSpotFleetRequests",
    "DeleteAutoScalingGroup",
    "DescribeSpotInstanceRequests",
    "DescribeLaunchTemplates",
    "DescribeFleetHistory",
    "DescribeScalingActivities",
)


class FleetEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something AWS does to fleets by itself; `pick` chooses the live spot instance it hits."""

    kind: FleetEventKind
    pick: int = 0
    instance_type: str = "c5.large"
    operation: str = "CreateFleet"
    code: str = "RequestLimitExceeded"


def fleet_events() -> st.SearchStrategy[FleetEvent]:
    """Spot interruption notices, capacity running out, fleet API faults."""
    pick = st.integers(min_value=0, max_value=1000)
    return st.one_of(
        st.builds(FleetEvent, kind=st.just("notify_interruption"), pick=pick),
        st.builds(
            FleetEvent, kind=st.just("exhaust"), instance_type=st.sampled_from(INSTANCE_TYPES)
        ),
        st.builds(
            FleetEvent,
            kind=st.just("fleet_fault"),
            operation=st.sampled_from(FLEET_OPERATIONS),
            code=st.sampled_from(("RequestLimitExceeded", "InternalError")),
        ),
    )


def spot_target(cloud: fake.FakeCloud, event: FleetEvent) -> str | None:
    """The live spot instance a notice hits (None when no spot instance is live)."""
    spot = sorted(i for i, x in fake.live_instances(cloud).items() if x.lifecycle == "spot")
    return spot[event.pick % len(spot)] if spot else None


def apply_fleet_event(cloud: fake.FakeCloud, event: FleetEvent) -> fake.FakeCloud:
    """The fake cloud after `event` (a notice is a no-op when no spot instance is live)."""
    if event.kind == "exhaust":
        return fake.exhaust(cloud, event.instance_type)
    if event.kind == "fleet_fault":
        return fake.inject(cloud, fake.Fault(operation=event.operation, code=event.code))
    target = spot_target(cloud, event)
    if target is None:
        return cloud
    return fake.notify_interruption(cloud, target)


# Several providers: `[[providers]]` entries, and states whose requests are spread over them.

REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1")
# Valid per-provider template defaults (IBM keys), for templates that leave them unset.
PROVIDER_DEFAULTS: tuple[dict[str, Any], ...] = (
    {},
    {"subnetId": ["subnet-0east", "subnet-1east"], "securityGroupIds": ["sg-0east"]},
    {"keyName": "site-key", "imageId": "ami-0123456789abcdef0"},
)


def provider_names() -> st.SearchStrategy[str]:
    """Valid provider names (`[A-Za-z0-9_-]{1,32}`), kept short."""
    return st.text(alphabet=_ID_CHARS, min_size=1, max_size=8)


@st.composite
def provider_configs(
    draw: st.DrawFn,
    *,
    min_size: int = 1,
    max_size: int = 4,
    template_ids: Sequence[str] = (),
) -> tuple[ProviderConfig, ...]:
    """`[[providers]]` entries with unique names; enabled, priority and weight vary.

    Priorities come from a small range so that ties (broken by config order) are common; about
    one provider in four is disabled. For each of `template_ids` a provider may override
    `maxNumber` (`[providers.templates.<id>]`) with -1..20.
    """
    names = draw(st.lists(provider_names(), min_size=min_size, max_size=max_size, unique=True))
    out: list[ProviderConfig] = []
    for name in names:
        overrides = {
            tid: {"maxNumber": draw(st.integers(min_value=-1, max_value=20))}
            for tid in template_ids
            if draw(st.booleans())
        }
        out.append(
            ProviderConfig(
                name=name,
                region=draw(st.sampled_from(REGIONS)),
                enabled=draw(st.sampled_from((True, True, True, False))),
                priority=draw(st.integers(min_value=0, max_value=3)),
                weight=draw(st.integers(min_value=1, max_value=5)),
                defaults=dict(draw(st.sampled_from(PROVIDER_DEFAULTS))),
                templates=overrides,
            )
        )
    return tuple(out)


@st.composite
def placement_states(
    draw: st.DrawFn,
    names: Sequence[str],
    *,
    template_ids: Sequence[str] = (),
    max_requests: int = 6,
) -> State:
    """A `State` (as `states` draws it) whose requests went to providers among `names`.

    Requests are for one of `template_ids` when given, created within a few seconds of each
    other (so equal `created_at`s are common, as they are in whole seconds). Some are failover
    parts: `<hf id>.<n>` with `parent` = an earlier request's id, on any of `names`.
    """
    if not names:
        raise ValueError("placement_states needs at least one provider name")
    base = draw(states(max_requests=max_requests))
    held: dict[str, Request] = {}
    roots: list[Request] = []
    for request in base.requests.values():
        provider = draw(st.sampled_from(list(names)))
        if roots and draw(st.integers(min_value=0, max_value=3)) == 0:
            parent = draw(st.sampled_from(roots))
            number = 2 + sum(1 for r in held.values() if r.parent == parent.request_id)
            part_id = f"{parent.request_id}.{number}"
            held[part_id] = msgspec.structs.replace(
                request,
                request_id=part_id,
                client_token=part_id,
                template_id=parent.template_id,
                created_at=parent.created_at,
                provider=provider,
                parent=parent.request_id,
            )
            continue
        root = msgspec.structs.replace(
            request,
            template_id=draw(st.sampled_from(list(template_ids)))
            if template_ids
            else request.template_id,
            created_at=draw(st.integers(min_value=_EPOCH - 3, max_value=_EPOCH)),
            provider=provider,
        )
        roots.append(root)
        held[root.request_id] = root
    return msgspec.structs.replace(base, requests=held)
