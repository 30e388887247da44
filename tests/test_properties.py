"""Laws of ohf's data and pure core, stated as hypothesis properties."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from ohf import strategies as ohf_st
from ohf.catalogue import Catalogue, InstanceTypeInfo
from ohf.config import AwsConfig, Config, LoggingConfig, StorageConfig, decode_template
from ohf.hf import decode_input
from ohf.messages import (
    INPUTS,
    OUTPUTS,
    ErrorOut,
    MachineOut,
    ReclaimOut,
    RequestAccepted,
    RequestsStatusOut,
    RequestStatusOut,
    ReturnRequestsOut,
    TemplateOut,
    TemplatesOut,
)
from ohf.model import Instance, Machine, Request, State, Template
from ohf.room import UNLIMITED
from ohf.status import TERMINAL, acquire_status, apply_observations, observe
from ohf.templates import parse_tags, room_left, template_out, units_held

FAST = settings(max_examples=60, deadline=None)
NOW = 1_700_000_000


def roundtrip(value: msgspec.Struct) -> Any:
    """decode(encode(x)) as x's own type."""
    return msgspec.json.decode(msgspec.json.encode(value), type=type(value))


# decode(encode(x)) == x for every struct ohf stores, reads or prints.


@FAST
@given(ohf_st.templates())
def test_template_survives_json(template: Template) -> None:
    assert roundtrip(template) == template


@FAST
@given(ohf_st.instances())
def test_instance_survives_json(instance: Instance) -> None:
    assert roundtrip(instance) == instance


@FAST
@given(ohf_st.machines())
def test_machine_survives_json(machine: Machine) -> None:
    assert roundtrip(machine) == machine


@FAST
@given(ohf_st.requests())
def test_request_survives_json(request: Request) -> None:
    assert roundtrip(request) == request


@FAST
@given(ohf_st.return_requests())
def test_return_request_survives_json(ret: Any) -> None:
    assert roundtrip(ret) == ret


@FAST
@given(ohf_st.states())
def test_state_survives_json(state: State) -> None:
    assert roundtrip(state) == state


@FAST
@given(
    st.sampled_from(sorted(INPUTS)).flatmap(lambda c: st.tuples(st.just(c), ohf_st.hf_bodies(c)))
)
def test_every_hf_input_decodes_and_survives_json(call_body: tuple[str, Any]) -> None:
    call, body = call_body
    decoded = decode_input(call, msgspec.json.encode(body))
    assert isinstance(decoded, Success), decoded
    message = decoded.unwrap()
    assert isinstance(message, INPUTS[call])
    assert roundtrip(message) == message


def _machine_outs() -> st.SearchStrategy[MachineOut]:
    return st.builds(
        MachineOut,
        machine_id=ohf_st.instance_ids(),
        name=st.text(max_size=20),
        result=st.sampled_from(("executing", "succeed", "fail")),
        status=st.sampled_from(get_args(get_type_hints(MachineOut)["status"])),
        private_ip_address=st.one_of(st.none(), st.just("10.0.0.5")),
        public_ip_address=st.one_of(st.none(), st.just("54.1.2.3")),
        launchtime=st.integers(0, 2**33),
        message=st.text(max_size=10),
    )


_STATUSES = st.sampled_from(("running", "complete", "complete_with_error"))

OUTPUT_STRATEGIES: dict[type[msgspec.Struct], st.SearchStrategy[Any]] = {
    TemplatesOut: st.builds(
        TemplatesOut,
        templates=st.lists(
            st.dictionaries(st.text(max_size=8), ohf_st.json_scalars(), max_size=3), max_size=3
        ),
        message=st.text(max_size=10),
    ),
    RequestAccepted: st.builds(
        RequestAccepted, request_id=ohf_st.request_ids(), message=st.text(max_size=10)
    ),
    RequestsStatusOut: st.builds(
        RequestsStatusOut,
        requests=st.lists(
            st.builds(
                RequestStatusOut,
                request_id=ohf_st.request_ids(),
                status=_STATUSES,
                machines=st.lists(_machine_outs(), max_size=3),
                message=st.text(max_size=10),
            ),
            max_size=3,
        ),
        message=st.text(max_size=10),
    ),
    ReturnRequestsOut: st.builds(
        ReturnRequestsOut,
        requests=st.lists(
            st.builds(
                ReclaimOut,
                machine=st.text(max_size=20),
                machine_id=ohf_st.instance_ids(),
                grace_period=st.integers(0, 120),
            ),
            max_size=3,
        ),
        status=st.just("complete"),
        message=st.text(max_size=10),
    ),
}


@FAST
@given(
    st.sampled_from(sorted(set(OUTPUTS.values()), key=lambda c: c.__name__)).flatmap(
        lambda cls: OUTPUT_STRATEGIES[cls]
    )
)
def test_every_hf_output_survives_json(message: msgspec.Struct) -> None:
    assert roundtrip(message) == message


@FAST
@given(
    st.builds(
        TemplateOut,
        template_id=ohf_st.template_ids(),
        max_number=st.integers(-1, 50),
        available_number=st.integers(-1, 50),
        attributes=st.dictionaries(
            st.sampled_from(("type", "ncpus", "nram")),
            st.tuples(st.sampled_from(("String", "Numeric")), st.text(max_size=5)),
        ),
    ),
    st.builds(ErrorOut, message=st.text(max_size=30)),
)
def test_template_out_and_error_out_survive_json(out: TemplateOut, error: ErrorOut) -> None:
    assert roundtrip(out) == out
    assert roundtrip(error) == error


def configs() -> st.SearchStrategy[Config]:
    """Whole configs: [aws], [storage], [logging] and a few inline templates."""
    seconds = st.floats(min_value=0.5, max_value=300, allow_nan=False)
    return st.builds(
        Config,
        aws=st.builds(
            AwsConfig,
            region=st.sampled_from((None, "us-east-1", "eu-west-1")),
            endpoint_url=st.sampled_from((None, "http://127.0.0.1:5000")),
            connect_timeout=seconds,
            read_timeout=seconds,
            max_attempts=st.integers(1, 20),
        ),
        storage=st.builds(StorageConfig, path=st.sampled_from((None, "state.json"))),
        logging=st.builds(
            LoggingConfig, level=st.sampled_from(("DEBUG", "INFO", "WARNING", "ERROR"))
        ),
        templates=ohf_st.template_lists(min_size=0, max_size=2).map(tuple),
    )


@FAST
@given(configs())
def test_config_survives_json(config: Config) -> None:
    assert roundtrip(config) == config


# IBM template files: unknown keys survive, known keys are echoed as written.

CATALOGUE = Catalogue(
    types={
        "c5.large": InstanceTypeInfo(2, 1, 4096, "x86_64"),
        "c5.xlarge": InstanceTypeInfo(4, 2, 8192, "x86_64"),
        "m5.large": InstanceTypeInfo(2, 1, 8192, "x86_64"),
        "m5.xlarge": InstanceTypeInfo(4, 2, 16384, "x86_64"),
        "c7g.large": InstanceTypeInfo(2, 2, 4096, "arm64"),
    }
)
_TEMPLATE_DEFAULTS = {
    f.encode_name: f.default for f in msgspec.structs.fields(Template) if f.name != "extras"
}


@FAST
@given(ohf_st.ibm_template_dicts(), st.integers(-1, 50))
def test_decode_template_keeps_unknown_keys_and_template_out_echoes_them(
    raw: dict[str, Any], available_number: int
) -> None:
    from ohf.templates import attributes

    decoded = decode_template(raw, where="awsprov_templates.json templates[0]")
    assert isinstance(decoded, Success), decoded
    template = decoded.unwrap()
    known = {k for k in raw if k in _TEMPLATE_DEFAULTS}
    assert template.extras == {k: v for k, v in raw.items() if k not in known}

    attrs = attributes(template, CATALOGUE)
    assert isinstance(attrs, Success), attrs
    room = UNLIMITED if available_number < 0 else available_number
    out = template_out(template, attrs.unwrap(), room)
    for key, value in raw.items():
        if key == "attributes":
            # Derived values never override what the administrator wrote.
            for name, pair in value.items():
                assert out["attributes"][name] == pair
        elif key in template.extras or value != _TEMPLATE_DEFAULTS.get(key):
            assert out[key] == value, key
    assert out["availableNumber"] == available_number
    assert {"type", "ncpus", "nram"} <= set(out["attributes"])


@FAST
@given(ohf_st.ibm_template_dicts())
def test_template_json_roundtrip_through_decode_template(raw: dict[str, Any]) -> None:
    template = decode_template(raw, where="t").unwrap()
    again = decode_template(msgspec.json.decode(msgspec.json.encode(raw)), where="t").unwrap()
    assert again == template


# instanceTags: formatting then parsing is the identity for safe keys and values.


@FAST
@given(ohf_st.tag_pairs())
def test_parse_tags_inverts_format(pairs: list[tuple[str, str]]) -> None:
    assert parse_tags(ohf_st.format_tags(pairs)) == Success(tuple(pairs))


@FAST
@given(ohf_st.tag_pairs(), st.sampled_from((" ", "  ", "\t")))
def test_parse_tags_ignores_padding_and_empty_items(pairs: list[tuple[str, str]], pad: str) -> None:
    text = ";".join(f"{pad}{k}{pad}={pad}{v}{pad}" for k, v in pairs) + ";;"
    assert parse_tags(text) == Success(tuple(pairs))


# getRequestStatus: terminal statuses and decided machine results are sticky.


def _observations(request: Request) -> st.SearchStrategy[list[Instance]]:
    """Arbitrary cloud views of the request's machines, plus strays tagged with its id."""
    rid = request.request_id
    own = [
        st.one_of(st.none(), ohf_st.instances(instance_id=m.machine_id, request_id=rid))
        for m in request.machines
    ]
    strays = st.lists(ohf_st.instances(request_id=request.request_id), max_size=2)
    return st.tuples(st.tuples(*own), strays).map(
        lambda pair: [i for i in pair[0] if i is not None] + pair[1]
    )


@st.composite
def request_and_observation_batches(draw: st.DrawFn) -> tuple[State, Request, list[Any]]:
    request = draw(ohf_st.requests())
    batches = [draw(_observations(request)) for _ in range(draw(st.integers(1, 4)))]
    nows = [NOW + draw(st.integers(0, 1000)) for _ in batches]
    state = State(requests={request.request_id: request})
    return state, request, list(zip(batches, nows, strict=True))


WEIGHTS = {t: 1 for t in ohf_st.INSTANCE_TYPES}


@FAST
@given(request_and_observation_batches())
def test_acquire_status_never_leaves_complete(case: tuple[State, Request, list[Any]]) -> None:
    state, request, batches = case
    rid = request.request_id
    final: str | None = request.status if request.status in TERMINAL else None
    for instances, now in batches:
        state = apply_observations(state, [rid], instances, {request.template_id: WEIGHTS}, now)
        status = state.requests[rid].status
        assert acquire_status(state.requests[rid])[0] == status
        if final is not None:
            assert status == final
        elif status in TERMINAL:
            final = status


@FAST
@given(request_and_observation_batches())
def test_decided_machine_results_never_change(case: tuple[State, Request, list[Any]]) -> None:
    state, request, batches = case
    rid = request.request_id
    decided = {m.machine_id: m.result for m in request.machines if m.result != "executing"}
    for instances, now in batches:
        state = apply_observations(state, [rid], instances, {request.template_id: WEIGHTS}, now)
        for machine in state.requests[rid].machines:
            if machine.machine_id in decided:
                assert machine.result == decided[machine.machine_id]
            elif machine.result != "executing":
                decided[machine.machine_id] = machine.result


@FAST
@given(ohf_st.machines(), st.one_of(st.none(), ohf_st.instances()), st.integers(0, 2000))
def test_succeed_never_goes_back_to_executing(
    machine: Machine, seen: Instance | None, dt: int
) -> None:
    machine = msgspec.structs.replace(machine, result="succeed")
    if seen is not None:
        seen = msgspec.structs.replace(seen, instance_id=machine.machine_id)
    assert observe(machine, seen, machine.launch_time + dt).result == "succeed"


# Template availability: what a request holds of its template's maxNumber, worked out by hand for
# a table of cases, and laws over every request the strategies draw (fleet-backed ones too).

# Instance states in which a machine still exists and is not on its way out: it holds its units
# (a stopped instance can be started again). Shutting-down, terminated and gone hold nothing.
HOLDING = frozenset({"pending", "running", "stopping", "stopped"})


def _m(number: int, units: int = 1, state: str = "running", returned: bool = False) -> Machine:
    return Machine(
        machine_id=f"i-{number:017x}",
        units=units,
        state=state,  # type: ignore[arg-type]
        returned_by="ret-00000001" if returned else None,
    )


def _req(*machines: Machine, **fields: Any) -> Request:
    base: dict[str, Any] = {
        "request_id": "req-00000001",
        "template_id": "t",
        "machine_count": 3,
        "client_token": "req-00000001",
        "created_at": NOW,
        "phase": "launched",
        "machines": machines,
    }
    return Request(**{**base, **fields})


def _fleet(
    *machines: Machine, api: str = "EC2Fleet", kind: str = "request", **fields: Any
) -> Request:
    return _req(*machines, provider_api=api, fleet_type=kind, fleet_id="fleet-0example", **fields)


# (what the case is, the request, the units it holds): every number worked out by hand.
UNITS_BY_HAND: list[tuple[str, Request, int]] = [
    ("two running machines of 1 and 2 units", _req(_m(1), _m(2, 2)), 3),
    ("a machine HF returned holds nothing", _req(_m(1, 2), _m(2, 1, returned=True)), 2),
    (
        "shutting-down, terminated and gone hold nothing; pending holds",
        _req(
            _m(1, 1, "shutting-down"), _m(2, 1, "terminated"), _m(3, 4, "gone"), _m(4, 2, "pending")
        ),
        2,
    ),
    (
        "stopping and stopped machines still exist",
        _req(_m(1, 1, "stopped"), _m(2, 2, "stopping")),
        3,
    ),
    ("a returned machine holds nothing even while it runs", _req(_m(1, 4, returned=True)), 0),
    ("launching with nothing yet reserves the ask", _req(phase="launching", machine_count=3), 3),
    ("launching with 1 of 3 units so far reserves 3", _req(_m(1), phase="launching"), 3),
    (
        "launching with 4 live units for an ask of 1",
        _req(_m(1, 2), _m(2, 2), phase="launching", machine_count=1),
        4,
    ),
    (
        "a failed launch holds nothing",
        _req(phase="failed", status="complete_with_error", machine_count=5),
        0,
    ),
    (
        "a request that got 2 of 5 units and ended holds the 2",
        _req(_m(1), _m(2), machine_count=5, status="complete_with_error"),
        2,
    ),
    (
        "a filling EC2 Fleet: target 4 + headroom 1 (weights up to 2), one machine of 2 so far",
        _fleet(_m(1, 2), machine_count=4, fleet_target=4, fleet_headroom=1),
        5,
    ),
    (
        "a filling fleet holding more than target + headroom holds what runs",
        _fleet(_m(1), _m(2), _m(3), machine_count=2, fleet_target=2),
        3,
    ),
    (
        "a filling request fleet whose one machine HF returned still reserves its target",
        _fleet(_m(1, 1, returned=True), machine_count=3, fleet_target=3),
        3,
    ),
    (
        "a maintain fleet lowered to 1 by returns, headroom 2, still filling",
        _fleet(
            _m(1, 3, returned=True),
            kind="maintain",
            machine_count=4,
            fleet_target=1,
            fleet_headroom=2,
        ),
        3,
    ),
    (
        "an ASG with nothing yet: target 2 + headroom 3",
        _fleet(api="ASG", kind="maintain", machine_count=2, fleet_target=2, fleet_headroom=3),
        5,
    ),
    (
        "a fleet that is done holds only its live machines",
        _fleet(
            _m(1),
            _m(2, 1, "terminated"),
            machine_count=4,
            fleet_target=4,
            fleet_headroom=1,
            fleet_done=True,
        ),
        1,
    ),
    (
        "an instant fleet (done at once) that launched 1 of 3",
        _fleet(
            _m(1), kind="instant", fleet_target=3, fleet_done=True, status="complete_with_error"
        ),
        1,
    ),
    (
        "a fleet done and deleted reserves nothing",
        _fleet(_m(1, 2, "terminated"), fleet_target=3, fleet_done=True, cleaned_up=True),
        0,
    ),
    (
        "a Spot Fleet not created yet reserves the ask",
        _req(phase="launching", provider_api="SpotFleet", fleet_type="request", machine_count=6),
        6,
    ),
    (
        "a Spot Fleet CreateFleet refused holds nothing",
        _req(
            provider_api="SpotFleet",
            fleet_type="request",
            phase="failed",
            status="complete_with_error",
        ),
        0,
    ),
]


@pytest.mark.parametrize(
    ("request_", "held"),
    [pytest.param(r, n, id=what) for what, r, n in UNITS_BY_HAND],
)
def test_units_a_request_holds_worked_out_by_hand(request_: Request, held: int) -> None:
    other = _req(_m(9, 4), request_id="req-00000002", template_id="other")
    state = State(requests={request_.request_id: request_, other.request_id: other})
    assert units_held(state, "t") == held
    assert room_left(Template(template_id="t", max_number=10), state) == 10 - held
    assert room_left(Template(template_id="t", max_number=held), state) == 0
    assert room_left(Template(template_id="t", max_number=max(held - 1, 0)), state) == 0
    assert room_left(Template(template_id="t", max_number=-1), state) == UNLIMITED


def _live(request: Request) -> int:
    """Units of the request's machines that HF still holds and that still exist."""
    return sum(m.units for m in request.machines if m.returned_by is None and m.state in HOLDING)


def _filling(request: Request) -> bool:
    """A fleet or group that may still launch: created, not done, its resources not deleted."""
    return request.fleet_id is not None and not request.fleet_done and not request.cleaned_up


def _alone(request: Request) -> int:
    return units_held(State(requests={request.request_id: request}), request.template_id)


@FAST
@given(ohf_st.requests())
def test_units_held_follow_the_laws(request: Request) -> None:
    held = _alone(request)
    live = _live(request)
    assert held >= live >= 0
    if request.phase == "launching":
        assert held >= request.machine_count  # the ask is reserved until the launch is known
    if _filling(request):
        assert held >= request.fleet_target + request.fleet_headroom
    if request.phase != "launching" and not _filling(request):
        assert held == live  # settled: exactly its live machines
    # Never more than the ask (rounded up to whole instances) unless that many units run.
    assert held <= max(live, request.machine_count + request.fleet_headroom)


@FAST
@given(
    ohf_st.requests(),
    ohf_st.machines(),
    st.sampled_from(("returned", "shutting-down", "terminated", "gone")),
)
def test_returned_or_ended_machines_hold_nothing(
    request: Request, machine: Machine, how: str
) -> None:
    if any(m.machine_id == machine.machine_id for m in request.machines):
        return
    if how == "returned":
        extra = msgspec.structs.replace(machine, returned_by="ret-00000009")
    else:
        extra = msgspec.structs.replace(machine, state=how, returned_by=None)  # type: ignore[arg-type]
    more = msgspec.structs.replace(request, machines=(*request.machines, extra))
    assert _alone(more) == _alone(request)


@FAST
@given(ohf_st.requests(), st.integers(1, 4))
def test_a_new_live_machine_adds_its_units_to_a_settled_request(
    request: Request, units: int
) -> None:
    if request.phase == "launching" or _filling(request):
        return
    extra = _m(0xFFFF, units, "running")
    if any(m.machine_id == extra.machine_id for m in request.machines):
        return
    more = msgspec.structs.replace(request, machines=(*request.machines, extra))
    assert _alone(more) == _alone(request) + units


@st.composite
def template_and_state(draw: st.DrawFn) -> tuple[Template, State]:
    template = draw(ohf_st.templates(with_extras=False))
    state = draw(ohf_st.states())
    # Point some requests at the template so it has units in use.
    owned = {
        rid: msgspec.structs.replace(r, template_id=template.template_id)
        if draw(st.booleans())
        else r
        for rid, r in state.requests.items()
    }
    return template, msgspec.structs.replace(state, requests=owned)


@FAST
@given(template_and_state())
def test_available_is_max_number_minus_units_held(case: tuple[Template, State]) -> None:
    template, state = case
    tid = template.template_id
    room = room_left(template, state)
    in_use = units_held(state, tid)
    own = [r for r in state.requests.values() if r.template_id == tid]
    # The template's units are the sum of what each of its requests holds; others count nothing.
    assert in_use == sum(_alone(r) for r in own)
    assert sum(_live(r) for r in own) <= in_use
    assert in_use <= sum(max(_live(r), r.machine_count + r.fleet_headroom) for r in own)
    if all(r.phase != "launching" and not _filling(r) for r in own):
        assert in_use == sum(_live(r) for r in own)
    if template.max_number == -1:
        assert room == UNLIMITED
    else:
        assert room >= 0
        assert room == max(template.max_number - in_use, 0)


# requestMachines: the request is on disk before any cloud call; rejected asks call nothing.


@st.composite
def asks_on_templates(draw: st.DrawFn) -> tuple[list[Template], Any]:
    templates = draw(ohf_st.template_lists(max_size=3, with_extras=False))
    ids = [t.template_id for t in templates]
    return templates, draw(ohf_st.request_machines_inputs([*ids, "NoSuchTemplate"], max_count=60))


@FAST
@given(asks_on_templates(), st.sampled_from((None, 0, 2, 50)))
def test_request_machines_records_before_any_cloud_call(
    case: tuple[list[Template], Any], capacity: int | None
) -> None:
    from ohf.effects import fake
    from ohf.intents import CreateFleet, RunInstances, SaveState
    from ohf.parts import request_machines

    templates, ask = case
    cloud = fake.new_cloud(
        parameters=ohf_st.SSM_IMAGES,
        capacity=None if capacity is None else dict.fromkeys(ohf_st.INSTANCE_TYPES, capacity),
    )
    ref = fake.CloudRef(cloud=cloud)
    perform = fake.interpreter(ref)
    program = request_machines(tuple(templates), State(), ask, request_id="req-1", now=NOW)
    intents: list[Any] = []
    try:
        intent = next(program)
        while True:
            intents.append(intent)
            intent = program.send(
                Success(None) if isinstance(intent, SaveState) else perform(intent)
            )
    except StopIteration as stop:
        result = stop.value
    template = next((t for t in templates if t.template_id == ask.template.template_id), None)
    room = -1 if template is None or template.max_number < 0 else template.max_number
    if template is None or (room != -1 and ask.template.machine_count > room):
        assert intents == []
        assert result.failure().code == "input"
        return
    assert isinstance(intents[0], SaveState)
    assert intents[0].state.requests["req-1"].phase == "launching"
    # Later checkpoints (a fleet's launch template) come before anything that launches.
    launching = [k for k, i in enumerate(intents) if isinstance(i, (RunInstances, CreateFleet))]
    saves = [k for k, i in enumerate(intents) if isinstance(i, SaveState)]
    assert not launching or max(saves) < min(launching), intents
    done = result.unwrap()
    launched = {i for i in fake.live_instances(ref.cloud)}
    request = done.state.requests["req-1"]
    recorded = {m.machine_id for m in request.machines}
    assert launched == recorded  # every instance started is in the request, and nothing else
    filling = request.fleet_id is not None and not request.fleet_done
    assert (done.exit_code == 1) == (not recorded and not filling)
