"""Room: the capacity units a template can still take, with "unlimited" as a value of its own.

A template's `maxNumber` caps the units its machines (and reservations) hold; -1 means no cap.
Inside ohf that cap and what is left of it are a `Room`: a count of free units, or `UNLIMITED`.
HF's own encoding (-1) appears only where a reply is built (`hf_number`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


class Unlimited(msgspec.Struct, frozen=True):
    """No cap: a template with `maxNumber` -1."""

    def __repr__(self) -> str:
        return "UNLIMITED"


UNLIMITED = Unlimited()
# Free units (>= 0), or UNLIMITED.
Room = int | Unlimited


def left(max_number: int, used: int) -> Room:
    """The room under a `maxNumber` (-1: unlimited) once `used` units are held."""
    if max_number < 0:
        return UNLIMITED
    return max(max_number - used, 0)


def total(rooms: Iterable[Room]) -> Room:
    """The room of several places together: unlimited if any of them is."""
    listed = list(rooms)
    if any(isinstance(r, Unlimited) for r in listed):
        return UNLIMITED
    return sum(r for r in listed if isinstance(r, int))


def takes(room: Room, wanted: int) -> int:
    """How many of `wanted` units the room takes."""
    return wanted if isinstance(room, Unlimited) else min(wanted, room)


def over(room: Room, wanted: int) -> bool:
    """True when `wanted` units do not fit in the room."""
    return not isinstance(room, Unlimited) and wanted > room


def full(room: Room) -> bool:
    """True when the room takes nothing more."""
    return room == 0


def after(room: Room, used: int) -> Room:
    """The room once `used` more units of it are taken (never below 0)."""
    return room if isinstance(room, Unlimited) else max(room - used, 0)


def whole(room: Room, weight: int, count: int) -> int:
    """How many of `count` whole instances of `weight` units each fit in the room."""
    return count if isinstance(room, Unlimited) else min(count, room // weight)


def hf_number(room: Room) -> int:
    """The room as HF's `availableNumber`: -1 when unlimited."""
    return -1 if isinstance(room, Unlimited) else room


def shown(room: Room) -> str:
    """The room for people: a number, or "unlimited"."""
    return "unlimited" if isinstance(room, Unlimited) else str(room)
