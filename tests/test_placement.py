"""Several providers, pure: each provider's view of a template, and which providers to use.

The laws of `ohf.placement`: `candidates` never offers a provider that cannot take a request
and is deterministic; each policy orders (and, over many requests, distributes) as its
docstring says; room and capacity are per provider; config-time checks name what is wrong.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from ohf import strategies as ohf_st
from ohf.config import Config, Policy, ProviderConfig
from ohf.model import Machine, Request, State, Template
from ohf.placement import (
    SHORTHAND,
    allowed,
    candidates,
    check_providers,
    effective,
    find_provider,
    label,
    pinned,
    providers_of,
    rooms,
    split_template_id,
)
from ohf.room import UNLIMITED as NO_LIMIT
from ohf.room import Room, total
from ohf.templates import request_units, room_left

PROPS = settings(max_examples=100, deadline=None)
RUNS = settings(max_examples=60, deadline=None)
POLICIES: tuple[Policy, ...] = get_args(Policy)
TID = "gpu"
NOW = 1_700_000_000


# --- helpers: requests, states, and the spec stated independently of the code -------------


def provider(name: str, **fields: Any) -> ProviderConfig:
    return ProviderConfig(name=name, **fields)


def root(
    request_id: str, on: str, *, at: int = NOW, units: int = 1, template_id: str = TID
) -> Request:
    """A root request still launching: it holds `units` units of `template_id` on `on`."""
    return Request(
        request_id=request_id,
        template_id=template_id,
        machine_count=units,
        client_token=request_id,
        created_at=at,
        provider=on,
    )


def part(parent: Request, number: int, on: str, *, units: int = 1) -> Request:
    """A failover part of `parent` placed on `on`."""
    part_id = f"{parent.request_id}.{number}"
    return msgspec.structs.replace(
        root(part_id, on, at=parent.created_at, units=units, template_id=parent.template_id),
        parent=parent.request_id,
    )


def with_requests(state: State, *requests: Request) -> State:
    return msgspec.structs.replace(
        state, requests={**state.requests, **{r.request_id: r for r in requests}}
    )


def spec_room(template: Template, prov: ProviderConfig, state: State) -> Room:
    """maxNumber (the provider's override, else the template's) less the units held there."""
    limit = int(prov.templates.get(template.template_id, {}).get("maxNumber", template.max_number))
    if limit < 0:
        return NO_LIMIT
    used = sum(
        request_units(r)
        for r in state.requests.values()
        if r.template_id == template.template_id and r.provider == prov.name
    )
    return max(limit - used, 0)


def may_run(template: Template, prov: ProviderConfig) -> bool:
    return prov.enabled and (template.providers is None or prov.name in template.providers)


def spec_usable(
    template: Template,
    providers: Sequence[ProviderConfig],
    state: State,
    open_circuits: frozenset[str],
) -> list[str]:
    """Providers a new request may go to, in config order."""
    return [
        p.name
        for p in providers
        if may_run(template, p)
        and p.name not in open_circuits
        and spec_room(template, p, state) != 0
    ]


def spec_used(state: State, name: str) -> int:
    """Units the provider holds, all templates."""
    return sum(request_units(r) for r in state.requests.values() if r.provider == name)


def spec_roots(state: State, name: str) -> int:
    """Requests HF made that went to the provider first (parts not counted)."""
    return sum(1 for r in state.requests.values() if r.parent is None and r.provider == name)


def is_sorted_by(result: Sequence[str], key: dict[str, Any], order: Sequence[str]) -> bool:
    """`result` is ordered by `key`, ties in `order` (config order)."""
    keyed = [(key[name], order.index(name)) for name in result]
    return keyed == sorted(keyed)


def same_order_where_keys_differ(a: Sequence[str], b: Sequence[str], key: dict[str, Any]) -> bool:
    """Any two names with different keys come in the same order in `a` and `b`."""
    return all(
        (a.index(x) < a.index(y)) == (b.index(x) < b.index(y))
        for x, y in itertools.combinations(a, 2)
        if key[x] != key[y]
    )


@dataclass(frozen=True)
class Scenario:
    """Everything `candidates` looks at."""

    template: Template
    providers: tuple[ProviderConfig, ...]
    state: State
    open_circuits: frozenset[str]
    policy: Policy

    def run(self, providers: tuple[ProviderConfig, ...] | None = None) -> tuple[str, ...]:
        return candidates(
            self.template,
            self.providers if providers is None else providers,
            self.state,
            self.open_circuits,
            self.policy,
        )

    def usable(self) -> list[str]:
        return spec_usable(self.template, self.providers, self.state, self.open_circuits)


@st.composite
def scenarios(draw: st.DrawFn, *, policies: Sequence[Policy] = POLICIES) -> Scenario:
    """Providers (some disabled, some overriding maxNumber), a template that may restrict
    them, a state whose requests are spread over them, some open circuits, a policy."""
    providers = draw(ohf_st.provider_configs(max_size=5, template_ids=[TID]))
    names = [p.name for p in providers]
    template = draw(ohf_st.templates(template_id=TID, max_numbers=st.integers(-1, 12)))
    restriction = draw(st.one_of(st.none(), st.lists(st.sampled_from(names), unique=True)))
    return Scenario(
        template=msgspec.structs.replace(template, providers=restriction),
        providers=providers,
        state=draw(ohf_st.placement_states(names, template_ids=[TID, "other"])),
        open_circuits=frozenset(draw(st.lists(st.sampled_from(names), max_size=2))),
        policy=draw(st.sampled_from(policies)),
    )


# --- candidates: who may be chosen ----------------------------------------------------------


@PROPS
@given(scenarios())
def test_candidates_never_include_a_disabled_or_open_circuit_provider(s: Scenario) -> None:
    chosen = s.run()
    disabled = {p.name for p in s.providers if not p.enabled}
    assert not set(chosen) & disabled
    assert not set(chosen) & s.open_circuits


@PROPS
@given(scenarios())
def test_candidates_never_include_a_provider_the_template_does_not_allow(s: Scenario) -> None:
    chosen = s.run()
    if s.template.providers is not None:
        assert set(chosen) <= set(s.template.providers)
    for name in chosen:
        prov = find_provider(s.providers, name)
        assert prov is not None
        assert allowed(s.template, prov)


@PROPS
@given(scenarios())
def test_candidates_never_include_a_provider_without_room(s: Scenario) -> None:
    for name in s.run():
        prov = find_provider(s.providers, name)
        assert prov is not None
        assert spec_room(s.template, prov, s.state) != 0
        assert room_left(effective(s.template, prov).unwrap(), s.state, prov.name) != 0


@PROPS
@given(scenarios())
def test_candidates_are_every_usable_provider_once(s: Scenario) -> None:
    chosen = s.run()
    assert len(chosen) == len(set(chosen))
    assert sorted(chosen) == sorted(s.usable())


@PROPS
@given(st.data())
def test_candidates_are_deterministic(data: st.DataObject) -> None:
    s = data.draw(scenarios())
    # Equal, not identical, inputs: the state read back from JSON with its requests in another
    # order (a store need not keep their order), rebuilt providers and circuits.
    stored = msgspec.json.decode(msgspec.json.encode(s.state), type=State)
    shuffled = data.draw(st.permutations(list(stored.requests.items())))
    state = msgspec.structs.replace(stored, requests=dict(shuffled))
    again = candidates(
        s.template,
        tuple(msgspec.structs.replace(p) for p in s.providers),
        state,
        frozenset(sorted(s.open_circuits, reverse=True)),
        s.policy,
    )
    assert s.run() == s.run() == again


@PROPS
@given(st.data())
def test_config_order_only_breaks_ties(data: st.DataObject) -> None:
    s = data.draw(scenarios())
    shuffled = data.draw(st.permutations(s.providers))
    before, after = s.run(), s.run(tuple(shuffled))
    order_before = [p.name for p in s.providers]
    order_after = [p.name for p in shuffled]
    assert sorted(before) == sorted(after)
    key: dict[str, Any]
    if s.policy == "first_available":
        key = {name: 0 for name in before}
    elif s.policy == "priority":
        key = {p.name: p.priority for p in s.providers}
    elif s.policy == "least_used":
        key = {name: spec_used(s.state, name) for name in before}
    elif s.policy == "weighted":
        # D'Hondt: the next request goes to the smallest (requests + 1) / weight.
        key = {p.name: Fraction(spec_roots(s.state, p.name) + 1, p.weight) for p in s.providers}
    else:
        return  # round_robin's rotation is config order itself: only the set is promised.
    assert is_sorted_by(before, key, order_before)
    assert is_sorted_by(after, key, order_after)
    assert same_order_where_keys_differ(before, after, key)


def test_candidates_are_empty_when_no_provider_can_take_the_request() -> None:
    template = Template(template_id=TID, max_number=2, providers=["a", "b", "c"])
    providers = (
        provider("a", enabled=False),
        provider("b"),
        provider("c"),
        provider("d"),
    )
    full = with_requests(State(), root("req-1", "c", units=2))
    for policy in POLICIES:
        assert candidates(template, providers, full, frozenset({"b"}), policy) == ()
        assert candidates(template, providers, full, frozenset(), policy) == ("b",)


def test_the_shorthand_provider_is_a_candidate_while_it_has_room() -> None:
    template = Template(template_id=TID, max_number=3)
    state = with_requests(State(), root("req-1", "", units=2))
    for policy in POLICIES:
        assert candidates(template, (SHORTHAND,), state, frozenset(), policy) == ("",)
    full = with_requests(state, root("req-2", "", units=1))
    assert candidates(template, (SHORTHAND,), full, frozenset(), "round_robin") == ()


# --- candidates: how each policy orders -----------------------------------------------------


def test_first_available_keeps_config_order() -> None:
    providers = (provider("b", priority=9), provider("a", priority=1), provider("c"))
    template = Template(template_id=TID, max_number=-1)
    state = with_requests(State(), root("req-1", "a", units=5))
    assert candidates(template, providers, state, frozenset(), "first_available") == (
        "b",
        "a",
        "c",
    )


def test_priority_puts_lowest_priority_first_and_ties_in_config_order() -> None:
    providers = (
        provider("p5", priority=5),
        provider("p1", priority=1),
        provider("q5", priority=5),
        provider("q1", priority=1),
    )
    template = Template(template_id=TID, max_number=-1)
    assert candidates(template, providers, State(), frozenset(), "priority") == (
        "p1",
        "q1",
        "p5",
        "q5",
    )


def test_least_used_puts_fewest_units_first_counting_every_template_and_part() -> None:
    providers = (provider("a"), provider("b"), provider("c"))
    template = Template(template_id=TID, max_number=-1)
    first = root("req-1", "a", units=1)
    state = with_requests(
        State(),
        first,
        part(first, 2, "b", units=2),  # b holds 2 units through a part
        root("req-2", "c", units=1, template_id="other"),  # c holds 1 of another template
    )
    assert candidates(template, providers, state, frozenset(), "least_used") == ("a", "c", "b")


def test_least_used_counts_live_machines_not_returned_or_terminated_ones() -> None:
    def machine(mid: str, state: Any, returned_by: str | None = None) -> Machine:
        return Machine(machine_id=mid, units=2, state=state, returned_by=returned_by)

    launched = msgspec.structs.replace(
        root("req-1", "a", units=3),
        phase="launched",
        machines=(
            machine("i-1", "terminated"),
            machine("i-2", "running", returned_by="ret-1"),
            machine("i-3", "running"),
        ),
    )
    state = with_requests(State(), launched, root("req-2", "b", units=3))
    providers = (provider("a"), provider("b"))
    template = Template(template_id=TID, max_number=-1)
    # a holds one live 2-unit machine, b reserves 3 units while launching.
    assert candidates(template, providers, state, frozenset(), "least_used") == ("a", "b")


def test_round_robin_starts_after_the_provider_of_the_latest_request() -> None:
    providers = (provider("a"), provider("b"), provider("c"))
    template = Template(template_id=TID, max_number=-1)
    first = root("req-9", "c", at=NOW - 10)
    state = with_requests(State(), first, root("req-1", "a", at=NOW))
    assert candidates(template, providers, state, frozenset(), "round_robin") == ("b", "c", "a")
    # A part placed later does not move the rotation: HF made no new request.
    later = with_requests(state, msgspec.structs.replace(part(first, 2, "b"), created_at=NOW + 5))
    assert candidates(template, providers, later, frozenset(), "round_robin") == ("b", "c", "a")


def test_round_robin_skips_an_unusable_provider_and_keeps_the_rotation() -> None:
    providers = (provider("a"), provider("b", enabled=False), provider("c"), provider("d"))
    template = Template(template_id=TID, max_number=-1)
    state = with_requests(State(), root("req-1", "a"))
    assert candidates(template, providers, state, frozenset({"c"}), "round_robin") == ("d", "a")


def test_round_robin_rotates_when_requests_share_a_second() -> None:
    # Found by the rotation property: created_at is whole seconds and ohf's request ids are
    # uuid4s, so "the latest request" was the greatest id within the second: a, b, b, b.
    providers = (provider("a"), provider("b"))
    template = Template(template_id=TID, max_number=-1)
    state, picks = State(), []
    for rid in ("req-f", "req-a", "req-c", "req-b"):
        pick = candidates(template, providers, state, frozenset(), "round_robin")[0]
        picks.append(pick)
        state = with_requests(state, root(rid, pick, at=NOW))
    assert picks == ["a", "b", "a", "b"]


def test_weighted_goes_to_the_provider_furthest_below_its_share() -> None:
    providers = (provider("a", weight=1), provider("b", weight=3))
    template = Template(template_id=TID, max_number=-1)
    state = with_requests(
        State(), root("req-1", "b"), root("req-2", "b"), root("req-3", "a", units=10)
    )
    # a: (1 + 1) / 1 = 2, b: (2 + 1) / 3 = 1 -> b; requests count, not their units.
    assert candidates(template, providers, state, frozenset(), "weighted") == ("b", "a")


# --- distribution over many requests --------------------------------------------------------


def place_in_turn(
    template: Template,
    providers: tuple[ProviderConfig, ...],
    state: State,
    open_circuits: frozenset[str],
    policy: Policy,
    times: Sequence[int],
    ids: Sequence[str],
    units: int = 1,
) -> tuple[list[str], State]:
    """HF asking again and again: each request goes to the first candidate."""
    picks: list[str] = []
    for at, rid in zip(times, ids, strict=True):
        order = candidates(template, providers, state, open_circuits, policy)
        assert order, f"no candidate after {picks}"
        picks.append(order[0])
        state = with_requests(state, root(rid, order[0], at=at, units=units))
    return picks, state


@st.composite
def request_times(draw: st.DrawFn, n: int, start: int) -> tuple[list[int], list[str]]:
    """`n` creation times from `start` on, in whole seconds, several often in one second; and
    `n` request ids in no particular order (as uuid4s are)."""
    steps = draw(st.lists(st.sampled_from((0, 0, 1, 2)), min_size=n, max_size=n))
    times = list(itertools.accumulate(steps, initial=start))[1:]
    ids = draw(st.lists(st.uuids().map(lambda u: f"req-{u}"), min_size=n, max_size=n, unique=True))
    return times, ids


@st.composite
def open_circuits_of(draw: st.DrawFn, providers: tuple[ProviderConfig, ...]) -> frozenset[str]:
    names = [p.name for p in providers]
    return frozenset(draw(st.lists(st.sampled_from(names), max_size=2)))


UNLIMITED = Template(template_id=TID, max_number=-1)


@RUNS
@given(st.data())
def test_round_robin_gives_each_provider_k_after_k_times_n_requests_in_rotation(
    data: st.DataObject,
) -> None:
    providers = data.draw(ohf_st.provider_configs(max_size=5))
    circuits = data.draw(open_circuits_of(providers))
    usable = spec_usable(UNLIMITED, providers, State(), circuits)
    if not usable:
        assert candidates(UNLIMITED, providers, State(), circuits, "round_robin") == ()
        return
    k = data.draw(st.integers(1, 4))
    times, ids = data.draw(request_times(k * len(usable), NOW))
    picks, _ = place_in_turn(UNLIMITED, providers, State(), circuits, "round_robin", times, ids)
    assert picks == [usable[i % len(usable)] for i in range(k * len(usable))]
    assert Counter(picks) == dict.fromkeys(usable, k)


@RUNS
@given(st.data())
def test_round_robin_continues_the_rotation_from_any_state(data: st.DataObject) -> None:
    providers = data.draw(ohf_st.provider_configs(max_size=5))
    names = [p.name for p in providers]
    state = data.draw(ohf_st.placement_states(names, template_ids=[TID, "other"]))
    circuits = data.draw(open_circuits_of(providers))
    usable = spec_usable(UNLIMITED, providers, state, circuits)
    if not usable:
        return
    k = data.draw(st.integers(1, 3))
    latest = max((r.created_at for r in state.requests.values()), default=NOW)
    times, ids = data.draw(request_times(k * len(usable), latest + 1))
    picks, _ = place_in_turn(UNLIMITED, providers, state, circuits, "round_robin", times, ids)
    for before, after in itertools.pairwise(picks):
        assert after == usable[(usable.index(before) + 1) % len(usable)], picks
    assert Counter(picks) == dict.fromkeys(usable, k)


@RUNS
@given(st.data())
def test_weighted_gives_each_provider_k_times_its_weight_and_never_less_than_its_quota(
    data: st.DataObject,
) -> None:
    providers = data.draw(ohf_st.provider_configs(max_size=4))
    circuits = data.draw(open_circuits_of(providers))
    usable = spec_usable(UNLIMITED, providers, State(), circuits)
    if not usable:
        assert candidates(UNLIMITED, providers, State(), circuits, "weighted") == ()
        return
    weights = {p.name: p.weight for p in providers if p.name in usable}
    total = sum(weights.values())
    k = data.draw(st.integers(1, 3))
    times, ids = data.draw(request_times(k * total, NOW))
    picks, _ = place_in_turn(UNLIMITED, providers, State(), circuits, "weighted", times, ids)
    assert Counter(picks) == {name: k * w for name, w in weights.items()}
    counts: Counter[str] = Counter()
    for n, pick in enumerate(picks, start=1):
        counts[pick] += 1
        for name, w in weights.items():
            assert counts[name] >= n * w // total, (n, name, picks[:n])


@RUNS
@given(st.data(), st.sampled_from(("first_available", "priority")))
def test_fill_policies_fill_each_provider_in_their_order_until_it_is_full(
    data: st.DataObject, policy: Policy
) -> None:
    providers = data.draw(ohf_st.provider_configs(max_size=4, template_ids=[TID]))
    names = [p.name for p in providers]
    template = data.draw(ohf_st.templates(template_id=TID, max_numbers=st.integers(-1, 6)))
    state = data.draw(ohf_st.placement_states(names, template_ids=[TID, "other"]))
    circuits = data.draw(open_circuits_of(providers))
    order = spec_usable(template, providers, state, circuits)
    if policy == "priority":
        prio = {p.name: p.priority for p in providers}
        order.sort(key=lambda name: (prio[name], names.index(name)))
    expected: list[str] = []
    for name in order:
        room = spec_room(template, providers[names.index(name)], state)
        expected += [name] * (100 if room is NO_LIMIT else room)
    steps = min(len(expected), 40)
    times, ids = data.draw(request_times(steps, NOW + 1))
    picks, after = place_in_turn(template, providers, state, circuits, policy, times, ids)
    assert picks == expected[:steps]
    if steps == len(expected):
        assert candidates(template, providers, after, circuits, policy) == ()


@RUNS
@given(st.data())
def test_least_used_always_goes_to_a_provider_holding_the_fewest_units(
    data: st.DataObject,
) -> None:
    providers = data.draw(ohf_st.provider_configs(max_size=4))
    names = [p.name for p in providers]
    state = data.draw(ohf_st.placement_states(names, template_ids=[TID, "other"]))
    circuits = data.draw(open_circuits_of(providers))
    for step in range(data.draw(st.integers(1, 20))):
        usable = spec_usable(UNLIMITED, providers, state, circuits)
        order = candidates(UNLIMITED, providers, state, circuits, "least_used")
        if not usable:
            assert order == ()
            return
        fewest = min(spec_used(state, name) for name in usable)
        assert order[0] == next(n for n in usable if spec_used(state, n) == fewest)
        units = data.draw(st.integers(1, 3))
        state = with_requests(state, root(f"req-sim-{step}", order[0], at=NOW + 1, units=units))


# --- room per provider and what HF is shown --------------------------------------------------


@PROPS
@given(scenarios())
def test_total_room_sums_enabled_allowed_providers_or_is_unlimited(s: Scenario) -> None:
    per = {p.name: spec_room(s.template, p, s.state) for p in s.providers if may_run(s.template, p)}
    limited = [v for v in per.values() if v is not NO_LIMIT]
    expected = sum(limited) if len(limited) == len(per) else NO_LIMIT
    assert rooms(s.template, s.providers, s.state) == per
    assert total(rooms(s.template, s.providers, s.state).values()) == expected


def test_total_room_excludes_disabled_and_disallowed_providers() -> None:
    template = Template(template_id=TID, max_number=10, providers=["a", "b", "off"])
    providers = (
        provider("a", templates={TID: {"maxNumber": 4}}),
        provider("b"),
        provider("off", enabled=False, templates={TID: {"maxNumber": -1}}),
        provider("elsewhere", templates={TID: {"maxNumber": -1}}),
    )
    state = with_requests(
        State(),
        root("req-1", "a", units=3),
        root("req-2", "b", units=1, template_id="other"),
    )
    assert rooms(template, providers, state) == {"a": 1, "b": 10}
    assert total(rooms(template, providers, state).values()) == 11


def test_total_room_is_unlimited_when_one_enabled_provider_is() -> None:
    template = Template(template_id=TID, max_number=5)
    providers = (provider("a"), provider("b", templates={TID: {"maxNumber": -1}}))
    assert total(rooms(template, providers, State()).values()) == NO_LIMIT
    alone = (provider("a"), provider("b", enabled=False))
    assert total(rooms(template, alone, State()).values()) == 5


def test_total_room_of_the_shorthand_is_the_template_room() -> None:
    template = Template(template_id=TID, max_number=5)
    state = with_requests(State(), root("req-1", "", units=2), root("req-2", "east", units=1))
    assert total(rooms(template, (SHORTHAND,), state).values()) == 3


def test_room_counts_parts_on_the_provider_that_holds_them() -> None:
    template = Template(template_id=TID, max_number=5)
    first = root("req-1", "a", units=4)
    state = with_requests(State(), first, part(first, 2, "b", units=3))
    assert rooms(template, (provider("a"), provider("b")), state) == {"a": 1, "b": 2}


# --- effective: a template as it runs on one provider ---------------------------------------


def test_effective_is_the_template_itself_without_defaults_or_overrides() -> None:
    template = Template(template_id=TID, max_number=3, extras={"site": "x"})
    assert effective(template, provider("east", templates={"other": {"maxNumber": 1}})) == (
        Success(template)
    )
    assert effective(template, SHORTHAND) == Success(template)


def test_defaults_fill_only_the_keys_a_template_leaves_unset() -> None:
    template = Template(
        template_id=TID, max_number=3, subnet_id="subnet-mine", instance_tags="team=hpc"
    )
    east = provider(
        "east",
        defaults={
            "subnetId": ["subnet-e1", "subnet-e2"],
            "securityGroupIds": ["sg-e"],
            "imageId": "ami-0123456789abcdef0",
            "instanceTags": "team=other",
        },
    )
    view = effective(template, east).unwrap()
    assert view.subnet_id == "subnet-mine"
    assert view.instance_tags == "team=hpc"
    assert view.security_group_ids == ["sg-e"]
    assert view.image_id == "ami-0123456789abcdef0"
    assert (view.template_id, view.max_number) == (TID, 3)


def test_defaults_do_not_replace_a_templates_own_unknown_keys() -> None:
    # Found by test_effective_keeps_every_key_the_template_sets: the template's extras were
    # merged under the provider defaults, so {"customKey": "mine"} became "theirs".
    template = Template(template_id=TID, max_number=3, extras={"customKey": "mine"})
    east = provider("east", defaults={"customKey": "theirs", "siteKey": "east"})
    view = effective(template, east).unwrap()
    assert view.extras == {"customKey": "mine", "siteKey": "east"}


def test_overrides_replace_a_templates_own_keys() -> None:
    template = Template(template_id=TID, max_number=10, vm_type="c5.large", subnet_id="subnet-a")
    east = provider(
        "east",
        defaults={"subnetId": "subnet-default"},
        templates={TID: {"vmType": "m5.large", "subnetId": "subnet-east", "customKey": 1}},
    )
    view = effective(template, east).unwrap()
    assert (view.vm_type, view.subnet_id, view.extras) == (
        "m5.large",
        "subnet-east",
        {"customKey": 1},
    )


def test_an_override_cannot_rename_the_template() -> None:
    template = Template(template_id=TID, max_number=10)
    view = effective(template, provider("east", templates={TID: {"templateId": "cpu"}}))
    assert view.unwrap().template_id == TID


def test_a_maxnumber_override_changes_the_room_on_that_provider_only() -> None:
    template = Template(template_id=TID, max_number=10)
    small = provider("small", templates={TID: {"maxNumber": 2}})
    none = provider("none", templates={TID: {"maxNumber": 0}})
    state = with_requests(State(), root("req-1", "small", units=1))
    assert room_left(effective(template, small).unwrap(), state, small.name) == 1
    assert rooms(template, (small, none, provider("big")), state) == {
        "small": 1,
        "none": 0,
        "big": 10,
    }
    assert candidates(template, (none, small), state, frozenset(), "first_available") == ("small",)


@pytest.mark.parametrize(
    ("prov", "needles"),
    [
        (
            provider("east", templates={TID: {"maxNumber": "lots"}}),
            ("'east'", "'gpu'", "maxNumber"),
        ),
        (provider("west", defaults={"vmType": 5}), ("'west'", "'gpu'", "vmType")),
        (provider("north", templates={TID: {"rootDeviceVolumeSize": 0}}), ("'north'",)),
    ],
)
def test_an_invalid_view_is_a_failure_naming_the_provider(
    prov: ProviderConfig, needles: tuple[str, ...]
) -> None:
    result = effective(Template(template_id=TID, max_number=10), prov)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == "config"
    for needle in needles:
        assert needle in error.message, (needle, error.message)


def test_a_provider_whose_view_is_invalid_has_no_room_and_is_no_candidate() -> None:
    template = Template(template_id=TID, max_number=10)
    bad = provider("bad", templates={TID: {"maxNumber": "lots"}})
    assert rooms(template, (bad, provider("ok")), State()) == {"bad": 0, "ok": 10}
    assert candidates(template, (bad, provider("ok")), State(), frozenset(), "priority") == ("ok",)


@PROPS
@given(ohf_st.templates(), ohf_st.provider_configs(max_size=1))
def test_effective_keeps_every_key_the_template_sets(
    template: Template, providers: tuple[ProviderConfig, ...]
) -> None:
    (prov,) = providers
    # Defaults naming every key the template has, its unknown (extra) keys included.
    noisy = msgspec.structs.replace(
        prov, defaults={**prov.defaults, **dict.fromkeys(template.extras, "from-defaults")}
    )
    view = effective(template, noisy).unwrap()
    own = {**everything(template), **template.extras}
    mine = {k: v for k, v in own.items() if v is not None}
    seen = everything(view)
    assert {k: seen[k] for k in mine} == mine
    for key, value in noisy.defaults.items():
        assert seen[key] == mine.get(key, value)


def everything(template: Template) -> dict[str, Any]:
    """A template's keys, IBM-named, its unknown ones included."""
    known = {k: v for k, v in msgspec.to_builtins(template).items() if k != "extras"}
    return {**template.extras, **known}


# --- small helpers ----------------------------------------------------------------------------


def test_providers_of_a_config_without_providers_is_the_shorthand() -> None:
    assert providers_of(Config()) == (SHORTHAND,)
    east = provider("east")
    assert providers_of(Config(providers=(east,))) == (east,)


def test_label_names_the_shorthand_aws() -> None:
    assert (label(""), label("east")) == ("aws", "east")


def test_find_provider_by_name_and_the_empty_name_is_the_first() -> None:
    east, west = provider("east"), provider("west")
    assert find_provider((east, west), "west") is west
    assert find_provider((east, west), "") is east
    assert find_provider((east, west), "north") is None
    assert find_provider((SHORTHAND,), "") is SHORTHAND
    assert find_provider((), "") is None


def test_allowed_and_pinned() -> None:
    template = Template(template_id=TID, max_number=1)
    assert allowed(template, provider("any"))
    only = msgspec.structs.replace(template, providers=["east", "west"])
    assert allowed(only, provider("west"))
    assert not allowed(only, provider("north"))
    pin = pinned(only, "east")
    assert pin.providers == ["east"]
    assert not allowed(pin, provider("west"))


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("gpu.east", ("gpu", "east")),
        ("gpu", ("gpu", None)),
        ("gpu.north", ("gpu.north", None)),  # no such provider
        ("gpu.", ("gpu.", None)),
        ("a.b.east", ("a.b", "east")),  # the provider is what follows the last dot
    ],
)
def test_split_template_id(shown: str, expected: tuple[str, str | None]) -> None:
    templates = (Template(template_id="gpu", max_number=1),)
    assert split_template_id(shown, templates, (provider("east"), provider("west"))) == expected


def test_split_template_id_never_splits_off_the_shorthand() -> None:
    templates = (Template(template_id="gpu", max_number=1),)
    assert split_template_id("gpu.aws", templates, (SHORTHAND,)) == ("gpu.aws", None)
    assert split_template_id("gpu.", templates, (SHORTHAND,)) == ("gpu.", None)


# --- check_providers: what a config load refuses ----------------------------------------------


def config(*providers: ProviderConfig, templates: Sequence[Template] = ()) -> Config:
    return Config(providers=tuple(providers), templates=tuple(templates))


GPU = Template(template_id=TID, max_number=4)


def test_check_providers_accepts_a_sound_config_unchanged() -> None:
    sound = config(
        provider("east", defaults={"subnetId": ["subnet-e"]}, templates={TID: {"maxNumber": 2}}),
        provider("west", enabled=False),
        templates=[
            msgspec.structs.replace(GPU, providers=["east"]),
            Template(template_id="cpu", max_number=1),
        ],
    )
    assert check_providers(sound) == Success(sound)
    assert check_providers(Config(templates=(GPU,))) == Success(Config(templates=(GPU,)))


@pytest.mark.parametrize(
    ("bad", "needles"),
    [
        (
            config(provider("east"), provider("west"), provider("east")),
            ("'east'", "defined twice"),
        ),
        (
            config(
                provider("east"),
                templates=[msgspec.structs.replace(GPU, providers=["east", "wset"])],
            ),
            ("'gpu'", "unknown provider 'wset'", "east"),
        ),
        (
            config(templates=[msgspec.structs.replace(GPU, providers=["east"])]),
            ("'gpu'", "unknown provider 'east'", "[[providers]]"),
        ),
        (
            config(provider("east", templates={"gpu2": {"maxNumber": 1}}), templates=[GPU]),
            ("'east'", "templates.gpu2", "names no template"),
        ),
        (
            config(provider("east", defaults={"rootDeviceVolumeSize": "big"}), templates=[GPU]),
            ("'east'", "'gpu'", "rootDeviceVolumeSize"),
        ),
        (
            # A disabled provider's views are checked too: enabling it must not break a load.
            config(
                provider("east", enabled=False, templates={TID: {"maxNumber": -5}}),
                templates=[GPU],
            ),
            ("'east'", "maxNumber"),
        ),
    ],
)
def test_check_providers_refuses_and_says_why(bad: Config, needles: tuple[str, ...]) -> None:
    result = check_providers(bad)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == "config"
    for needle in needles:
        assert needle in error.message, (needle, error.message)
