"""What ohf stores: instance observations, machines, requests (fleet-backed ones too), states."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from hypothesis import strategies as st

from ohf.model import (
    ENDED_STATES,
    FleetApi,
    FleetType,
    Instance,
    InstanceState,
    Machine,
    MachineResult,
    Phase,
    ProviderApi,
    Request,
    RequestStatus,
    ReturnRequest,
    State,
)
from ohf.strategies.values import (
    _EPOCH,
    AMI_IDS,
    INSTANCE_STATES,
    INSTANCE_TYPES,
    instance_ids,
    request_ids,
    template_ids,
)

# The AWS APIs a request can launch with; RunInstances first, so examples shrink to it.
PROVIDER_APIS: tuple[ProviderApi, ...] = ("RunInstances", "EC2Fleet", "SpotFleet", "ASG")
# The fleet types each fleet API can have (Spot Fleet has no instant; a group maintains).
FLEET_TYPES: dict[FleetApi, tuple[FleetType, ...]] = {
    "EC2Fleet": ("instant", "request", "maintain"),
    "SpotFleet": ("request", "maintain"),
    "ASG": ("maintain",),
}


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
    provider_apis: Sequence[ProviderApi] = PROVIDER_APIS,
) -> Request:
    """An acquire `Request` as ohf can store one, with machines of distinct ids.

    Phase and status agree the way ohf writes them: a `launching` request (recorded before its
    first RunInstances or CreateFleet) is `running` with no machine yet, a `failed` one launched
    nothing and is `complete_with_error`, a `launched` one has any status. `provider_apis`
    chooses the AWS APIs drawn from; fleet-backed requests are drawn by `fleet_requests`.
    """
    api: ProviderApi = draw(st.sampled_from(tuple(provider_apis)))
    base = Request(
        request_id=request_id if request_id is not None else draw(request_ids()),
        template_id=template_id if template_id is not None else draw(template_ids()),
        machine_count=draw(st.integers(1, 8)),
        client_token="",
        created_at=draw(st.integers(_EPOCH - 1000, _EPOCH)),
        image_id=draw(st.one_of(st.none(), st.sampled_from(AMI_IDS))),
        message=draw(st.sampled_from(("", "launched 1 of 2 units: capacity"))),
    )
    base = msgspec.structs.replace(base, client_token=base.request_id)
    if api == "RunInstances":
        return draw(_instance_requests(base, max_machines))
    return draw(fleet_requests(base, api, max_machines=max_machines))


@st.composite
def _instance_requests(draw: st.DrawFn, base: Request, max_machines: int) -> Request:
    """`base` launched with RunInstances: a `launched` request has at least one machine."""
    phase: Phase = draw(st.sampled_from(("launched", "launching", "failed")))
    status: RequestStatus = "running" if phase == "launching" else "complete_with_error"
    ids: list[str] = []
    if phase == "launched":
        status = draw(st.sampled_from(("running", "complete", "complete_with_error")))
        ids = draw(st.lists(instance_ids(), min_size=1, max_size=max_machines, unique=True))
    held = tuple(draw(machines(machine_id=i)) for i in ids)
    return msgspec.structs.replace(base, phase=phase, machines=held, status=status)


def launch_template_ids() -> st.SearchStrategy[str]:
    """EC2-shaped launch template ids (`lt-` and 17 hex digits)."""
    return st.integers(min_value=0, max_value=2**68 - 1).map(lambda n: f"lt-{n:017x}")


def fleet_ids(api: FleetApi, request_id: str) -> st.SearchStrategy[str]:
    """The id AWS gives a fleet (`fleet-...`, `sfr-...`) or the name ohf gives a group."""
    if api == "ASG":
        return st.just(f"ohf-{request_id}")
    prefix = "fleet" if api == "EC2Fleet" else "sfr"
    return st.uuids().map(lambda u: f"{prefix}-{u}")


@st.composite
def fleet_requests(
    draw: st.DrawFn, base: Request, api: FleetApi, *, max_machines: int = 4
) -> Request:
    """`base` as ohf stores it on a fleet API (EC2 Fleet, Spot Fleet, Auto Scaling group).

    As `ohf.acquire.launch_fleet` and the status polls write them:
    - `launching`: recorded, CreateFleet not (or not surely) answered: no fleet id, no machine;
    - `failed`: CreateFleet refused (no fleet id), or an `instant` fleet launched nothing (its
      id kept, done); `cleaned_up` only where ohf had something to delete;
    - `launched`: a fleet id, `fleet_target` at most the ask (`maintain` fleets and groups are
      lowered as HF returns machines), `fleet_headroom` = the largest weight - 1 (so no machine
      weighs more than headroom + 1), `fleet_on_demand` at most the target; `fleet_done` always
      for `instant` and for a target of 0, else either; `cleaned_up` only once the fleet is done
      and every machine is returned or ended; an `instant` fleet answered with its machines.
    A fleet that is not done is `running` or `complete` (all asked units running already).
    """
    kind: FleetType = draw(st.sampled_from(FLEET_TYPES[api]))
    own_template = draw(st.one_of(st.none(), launch_template_ids()))
    request = msgspec.structs.replace(
        base, provider_api=api, fleet_type=kind, launch_template_id=own_template
    )
    phases: tuple[Phase, ...] = ("launched", "launching", "failed")
    phase: Phase = draw(st.sampled_from(phases))
    if phase == "launching":
        return msgspec.structs.replace(request, phase="launching", status="running")
    headroom = draw(st.integers(0, 3))
    if phase == "failed":
        created = kind == "instant" and draw(st.booleans())
        deletable = created or own_template is not None
        return msgspec.structs.replace(
            request,
            phase="failed",
            status="complete_with_error",
            fleet_id=draw(fleet_ids(api, base.request_id)) if created else None,
            fleet_target=base.machine_count if created else 0,
            fleet_headroom=headroom if created else 0,
            fleet_done=created,
            cleaned_up=deletable and draw(st.booleans()),
        )
    lowers = kind == "maintain"
    target = draw(st.integers(0, base.machine_count)) if lowers else base.machine_count
    ids = draw(
        st.lists(instance_ids(), min_size=kind == "instant", max_size=max_machines, unique=True)
    )
    held = tuple(
        msgspec.structs.replace(
            draw(machines(machine_id=i)), units=draw(st.integers(1, headroom + 1))
        )
        for i in ids
    )
    done = kind == "instant" or target == 0 or draw(st.booleans())
    over = all(m.returned_by is not None or m.state in ENDED_STATES for m in held)
    statuses: tuple[RequestStatus, ...] = (
        ("running", "complete", "complete_with_error") if done else ("running", "complete")
    )
    return msgspec.structs.replace(
        request,
        phase="launched",
        status=draw(st.sampled_from(statuses)),
        machines=held,
        fleet_id=draw(fleet_ids(api, base.request_id)),
        fleet_target=target,
        fleet_on_demand=draw(st.integers(0, target)),
        fleet_headroom=headroom,
        fleet_done=done,
        cleaned_up=done and over and draw(st.booleans()),
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
