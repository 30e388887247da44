"""`ohf.parts` on its own: a request over providers, its shortfalls, spill-over and HF's view.

Pure tests: requests are built by hand, programs are driven by a scripted interpreter, and the
expected answers come from tables written out here, not from the code under test.
"""

from __future__ import annotations

import itertools

import msgspec
import pytest
from returns.result import Failure, Success

from ohf.config import ProviderConfig
from ohf.intents import At, RunInstances, SaveState
from ohf.model import Instance, Machine, OhfError, Request, RequestStatus, State, Template
from ohf.parts import (
    check_room,
    combined_status,
    hf_parts,
    parts_index,
    place,
    spill_over,
)
from ohf.placement import ONE_PROVIDER, Placement
from ohf.program import run

NOW = 1_700_000_000
TID = "t1"


def request(
    rid: str,
    status: RequestStatus,
    *,
    provider: str = "a",
    parent: str | None = None,
    message: str = "",
    created: int = NOW,
) -> Request:
    """A part whose HF status is `status` (terminal ones are sticky; running = launching)."""
    return Request(
        request_id=rid,
        template_id=TID,
        machine_count=1,
        client_token=rid,
        created_at=created,
        phase="launching" if status == "running" else "launched",
        status=status,
        message=message,
        provider=provider,
        parent=parent,
    )


# Every combination of two parts' statuses, and the one status HF is shown for them.
TWO_PARTS: dict[tuple[RequestStatus, RequestStatus], RequestStatus] = {
    ("running", "running"): "running",
    ("running", "complete"): "running",
    ("running", "complete_with_error"): "running",
    ("complete", "running"): "running",
    ("complete", "complete"): "complete",
    ("complete", "complete_with_error"): "complete_with_error",
    ("complete_with_error", "running"): "running",
    ("complete_with_error", "complete"): "complete_with_error",
    ("complete_with_error", "complete_with_error"): "complete_with_error",
}


@pytest.mark.parametrize(("statuses", "expected"), sorted(TWO_PARTS.items()))
def test_one_hf_status_over_two_parts(
    statuses: tuple[RequestStatus, RequestStatus], expected: RequestStatus
) -> None:
    parts = [
        request("req-1", statuses[0], provider="a"),
        request("req-1.2", statuses[1], provider="b", parent="req-1"),
    ]
    assert combined_status(parts)[0] == expected


def test_three_parts_combine_as_the_two_part_table_folded() -> None:
    # The combination is associative: three parts are the first two's verdict with the third.
    kinds: tuple[RequestStatus, ...] = ("running", "complete", "complete_with_error")
    for combo in itertools.product(kinds, repeat=3):
        parts = [request(f"req-1.{i}", s, provider=f"p{i}") for i, s in enumerate(combo)]
        expected = TWO_PARTS[(TWO_PARTS[(combo[0], combo[1])], combo[2])]
        assert combined_status(parts)[0] == expected, combo


def test_the_combined_message_names_each_provider_with_something_to_say() -> None:
    parts = [
        request("req-1", "complete", provider="a"),
        request("req-1.2", "complete_with_error", provider="b", parent="req-1", message="short"),
    ]
    assert combined_status(parts)[1] == "b: short"


def test_parts_are_listed_under_their_hf_request_in_placement_order() -> None:
    root = request("req-1", "running", provider="a")
    later = request("req-1.10", "running", provider="c", parent="req-1", created=NOW + 5)
    second = request("req-1.2", "running", provider="b", parent="req-1", created=NOW + 5)
    state = State(requests={r.request_id: r for r in (later, root, second)})
    assert [p.request_id for p in hf_parts(state, "req-1", parts_index(state))] == [
        "req-1",
        "req-1.2",
        "req-1.10",
    ]


def template(max_number: int = 10) -> Template:
    return Template(
        template_id=TID, max_number=max_number, image_id="ami-0123456789abcdef0", vm_type="m5"
    )


def holding(units: int, provider: str = "") -> State:
    held = msgspec.structs.replace(
        request("req-0", "complete", provider=provider),
        machine_count=units,
        machines=tuple(
            Machine(machine_id=f"i-{n}", state="running", private_ip="10.0.0.1")
            for n in range(units)
        ),
    )
    return State(requests={"req-0": held})


def test_check_room_refuses_an_ask_over_the_room_and_says_how_much_is_free() -> None:
    refused = check_room(template(10), ONE_PROVIDER, holding(8), 3, TID)
    assert isinstance(refused, Failure)
    assert "machineCount 3 is over what is available (2 of maxNumber 10 units free)" in (
        refused.failure().message
    )
    assert isinstance(check_room(template(10), ONE_PROVIDER, holding(8), 2, TID), Success)
    assert isinstance(check_room(template(-1), ONE_PROVIDER, holding(8), 500, TID), Success)


def test_check_room_over_providers_lists_each_ones_room() -> None:
    placement = Placement(
        providers=(
            ProviderConfig(name="a"),
            ProviderConfig(name="b", templates={TID: {"maxNumber": -1}}),
        )
    )
    assert isinstance(check_room(template(4), placement, holding(4, "a"), 50, TID), Success)
    only_a = Placement(providers=(ProviderConfig(name="a"), ProviderConfig(name="b")))
    refused = check_room(template(4), only_a, holding(3, "a"), 6, TID)
    assert isinstance(refused, Failure)
    assert "(5 units free: a 1, b 4)" in refused.failure().message


def scripted(capacity: dict[str, int]):  # type: ignore[no-untyped-def]
    """An interpreter launching up to `capacity[provider]` instances per provider."""
    serial = itertools.count(1)

    def interpret(intent):  # type: ignore[no-untyped-def]
        if isinstance(intent, SaveState):
            return Success(None)
        assert isinstance(intent, At) and isinstance(intent.intent, RunInstances)
        spec = intent.intent.spec
        room = capacity[intent.provider]
        if room < spec.min_count:
            return Failure(OhfError(message="no room", code="InsufficientInstanceCapacity"))
        count = min(room, spec.max_count)
        capacity[intent.provider] -= count
        return Success(
            tuple(
                Instance(
                    instance_id=f"i-{intent.provider}{next(serial)}",
                    state="running",
                    private_ip="10.0.0.2",
                )
                for _ in range(count)
            )
        )

    return interpret


def test_a_shortfall_moves_to_the_next_provider_and_the_short_part_owes_only_the_rest() -> None:
    placement = Placement(providers=(ProviderConfig(name="a"), ProviderConfig(name="b")))
    placed = run(
        place(template(), State(), placement, ("a", "b"), request_id="req-1", count=5, now=NOW),
        scripted({"a": 2, "b": 10}),
    )
    state, parts, _ = placed.unwrap()
    asks = {p.request_id: (p.provider, p.machine_count, len(p.machines)) for p in parts}
    assert asks == {"req-1": ("a", 2, 2), "req-1.2": ("b", 3, 3)}
    assert "3 unit(s) placed on provider b instead" in state.requests["req-1"].message
    assert state.requests["req-1.2"].parent == "req-1"
    assert all(p.answered for p in parts)


def test_what_no_provider_takes_stays_owed_by_the_part_that_came_short() -> None:
    placement = Placement(providers=(ProviderConfig(name="a"), ProviderConfig(name="b")))
    placed = run(
        place(template(), State(), placement, ("a", "b"), request_id="req-1", count=6, now=NOW),
        scripted({"a": 2, "b": 1}),
    )
    state, _, _ = placed.unwrap()
    owed = sum(r.machine_count for r in state.requests.values())
    held = sum(len(r.machines) for r in state.requests.values())
    assert (owed, held) == (6, 3)


def fleet_part(status: RequestStatus, **changes: object) -> Request:
    base = Request(
        request_id="req-1",
        template_id=TID,
        machine_count=4,
        client_token="req-1",
        created_at=NOW,
        provider_api="EC2Fleet",
        phase="launched",
        fleet_id="fleet-1",
        fleet_type="request",
        fleet_done=True,
        provider="a",
        status=status,
        message="fleet-1 stopped short: InsufficientInstanceCapacity: none left",
    )
    return msgspec.structs.replace(base, **changes)


SPILL = Placement(providers=(ProviderConfig(name="a"), ProviderConfig(name="b")))


def spilled(before: Request, after: Request) -> State:
    template_ = msgspec.structs.replace(template(), vm_type=None, vm_types={"m5": 1})
    state = State(requests={"req-1": after})

    def nothing_launches(intent):  # type: ignore[no-untyped-def]
        if isinstance(intent, SaveState):
            return Success(None)
        return Success(())

    return run(
        spill_over(
            State(requests={"req-1": before}), state, ["req-1"], (template_,), SPILL, NOW + 60
        ),
        nothing_launches,
    )


def test_a_fleet_found_short_at_this_poll_spills_its_shortfall_to_the_next_provider() -> None:
    state = spilled(fleet_part("running"), fleet_part("complete_with_error"))
    assert set(state.requests) == {"req-1", "req-1.2"}
    assert state.requests["req-1.2"].provider == "b"
    assert state.requests["req-1.2"].parent == "req-1"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # HF was already told the request ended: it never starts again.
        (fleet_part("complete_with_error"), fleet_part("complete_with_error")),
        # The fleet stopped short for a reason the next provider shares.
        (fleet_part("running"), fleet_part("complete_with_error", message="fleet-1: bad AMI")),
        # Pinned to one provider by HF's choice.
        (fleet_part("running"), fleet_part("complete_with_error", pinned=True)),
        # Nothing is short.
        (fleet_part("running"), fleet_part("complete_with_error", machine_count=0)),
    ],
)
def test_no_spill_over_when_hf_was_told_or_nothing_may_move(
    before: Request, after: Request
) -> None:
    assert set(spilled(before, after).requests) == {"req-1"}
