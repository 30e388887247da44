"""Laws of ohf's data and pure core, stated as hypothesis properties."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import msgspec
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
from ohf.model import TERMINAL_STATES, Instance, Machine, Request, State, Template
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


# Template availability: never negative, and exactly maxNumber minus the units in use.


def _units_held(state: State, template_id: str) -> int:
    total = 0
    for request in state.requests.values():
        if request.template_id != template_id:
            continue
        live = sum(
            m.units
            for m in request.machines
            if m.returned_by is None and m.state not in TERMINAL_STATES
        )
        total += max(live, request.machine_count) if request.phase == "launching" else live
    return total


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
def test_available_is_max_number_minus_units_in_use(case: tuple[Template, State]) -> None:
    template, state = case
    room = room_left(template, state)
    held = _units_held(state, template.template_id)
    assert units_held(state, template.template_id) == held
    if template.max_number == -1:
        assert room == UNLIMITED
    else:
        assert room >= 0
        assert room == max(template.max_number - held, 0)


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
