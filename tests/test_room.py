"""`ohf.room`: free capacity as a value, with "unlimited" a value of its own, not -1."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ohf.room import (
    UNLIMITED,
    Room,
    after,
    full,
    hf_number,
    left,
    over,
    shown,
    takes,
    total,
    whole,
)

rooms: st.SearchStrategy[Room] = st.one_of(st.just(UNLIMITED), st.integers(0, 50))
wants = st.integers(0, 60)


@given(st.integers(-1, 30), st.integers(0, 40))
def test_left_is_max_number_less_what_is_held_never_negative(max_number: int, used: int) -> None:
    room = left(max_number, used)
    if max_number == -1:
        assert room is UNLIMITED
    else:
        assert room == max(max_number - used, 0)


@given(rooms, wants)
def test_takes_never_more_than_asked_nor_than_the_room(room: Room, wanted: int) -> None:
    taken = takes(room, wanted)
    assert 0 <= taken <= wanted
    assert over(room, wanted) == (taken < wanted)
    if room is not UNLIMITED:
        assert taken <= room


@given(st.lists(rooms, max_size=5))
def test_total_is_unlimited_if_any_place_is_else_the_sum(places: list[Room]) -> None:
    limited = [r for r in places if r is not UNLIMITED]
    expected = sum(limited) if len(limited) == len(places) else UNLIMITED
    assert total(places) == expected


@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_after_is_left_with_more_held(max_number: int, used: int, more: int) -> None:
    assert after(left(max_number, used), more) == left(max_number, used + more)
    assert after(UNLIMITED, more) is UNLIMITED


@given(rooms, st.integers(1, 8), st.integers(0, 10))
def test_whole_instances_fit_in_the_room(room: Room, weight: int, count: int) -> None:
    fitting = whole(room, weight, count)
    assert 0 <= fitting <= count
    if room is not UNLIMITED:
        assert fitting * weight <= room


def test_only_hf_sees_minus_one_and_people_see_words() -> None:
    assert (hf_number(UNLIMITED), hf_number(7)) == (-1, 7)
    assert (shown(UNLIMITED), shown(0)) == ("unlimited", "0")
    assert full(0) and not full(UNLIMITED) and not full(3)
