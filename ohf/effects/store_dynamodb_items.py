"""The DynamoDB store's items: state and events as compressed msgspec JSON, and diffs."""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

from ohf.events import Event
from ohf.model import Request, ReturnRequest, State

STATE = "state"
EVENTS = "events"
HEAD = "!head"
LEASE = "!lease"

MAX_ITEM_BYTES = 300_000  # under the 400 KB limit of one item
EVENTS_PER_ITEM = 2_000

_encoder = msgspec.json.Encoder()
_request = msgspec.json.Decoder(Request)
_return = msgspec.json.Decoder(ReturnRequest)
_events = msgspec.json.Decoder(list[Event])

Item = dict[str, Any]


class _Unreadable(Exception):
    """An item is not what this ohf writes."""


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state at one version, and what the head and lease said then."""

    state: State
    version: int
    partial: bool = False
    lease_owner: str | None = None
    lease_expires: float = 0.0
    event_keys: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()


def _key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _pack(value: Any) -> bytes:
    return zlib.compress(_encoder.encode(value), 6)


def _unpack(item: Item, decoder: msgspec.json.Decoder[Any]) -> Any:
    try:
        return decoder.decode(zlib.decompress(item["body"]["B"]))
    except (KeyError, zlib.error, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Unreadable(f"item {item.get('sk', {}).get('S', '?')} is unreadable: {exc}") from exc


def _decode_state(items: list[Item]) -> Snapshot:
    try:
        return _state_of(items)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Unreadable(f"the head or lease item is malformed ({exc!r})") from exc


def _state_of(items: list[Item]) -> Snapshot:
    requests: dict[str, Request] = {}
    returns: dict[str, ReturnRequest] = {}
    version, fmt, partial, owner, expires = 0, 1, False, None, 0.0
    for item in items:
        sk = item["sk"]["S"]
        if sk == HEAD:
            version, fmt = int(item["ver"]["N"]), int(item.get("fmt", {}).get("N", "1"))
            partial = "partial" in item
        elif sk == LEASE:
            owner, expires = item["owner"]["S"], float(item["expires"]["N"])
        elif sk.startswith("req#"):
            request: Request = _unpack(item, _request)
            requests[request.request_id] = request
        elif sk.startswith("ret#"):
            ret: ReturnRequest = _unpack(item, _return)
            returns[ret.request_id] = ret
    return Snapshot(
        state=State(version=fmt, requests=requests, returns=returns),
        version=version,
        partial=partial,
        lease_owner=owner,
        lease_expires=expires,
    )


def _decode_events(items: list[Item]) -> tuple[tuple[str, ...], tuple[Event, ...]]:
    ordered = sorted(items, key=lambda i: str(i["sk"]["S"]))
    events = tuple(e for item in ordered for e in _unpack(item, _events))
    return tuple(i["sk"]["S"] for i in ordered), events


def _body_item(pk: str, sk: str, body: bytes) -> Item:
    return {**_key(pk, sk), "body": {"B": body}}


def _changes(table: str, before: State, after: State) -> list[Item]:
    """Put/Delete actions for the requests and returns that differ."""
    actions: list[Item] = []
    for prefix, old, new in (
        ("req#", before.requests, after.requests),
        ("ret#", before.returns, after.returns),
    ):
        old_map: dict[str, Any] = dict(old)
        new_map: dict[str, Any] = dict(new)
        actions += [
            {"Delete": {"TableName": table, "Key": _key(STATE, prefix + k)}}
            for k in sorted(old_map.keys() - new_map.keys())
        ]
        actions += [
            {"Put": {"TableName": table, "Item": _body_item(STATE, prefix + k, _pack(v))}}
            for k, v in sorted(new_map.items())
            if old_map.get(k) != v
        ]
    return actions


def _event_batches(events: tuple[Event, ...]) -> list[bytes]:
    """Compressed bodies, each under the item size limit, in order."""
    if not events:
        return []
    body = _pack(list(events))
    if len(events) == 1 or (len(body) <= MAX_ITEM_BYTES and len(events) <= EVENTS_PER_ITEM):
        return [body]
    half = len(events) // 2
    return _event_batches(events[:half]) + _event_batches(events[half:])
