"""The DynamoDB store's items: state and events as compressed msgspec JSON, and diffs.

The `events` partition holds the event log: one item per commit (`<version>#<part>`), and
after a compaction the snapshot, compressed and cut into parts (`!snap#<id>#<part>`), and the
pointer `!log` saying which snapshot is in force and up to which event item the log is folded
into it. Items the pointer does not name (a killed compaction's) are ignored by readers and
deleted by the next compaction.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

from ohf.compaction import Log, LogSize, Snapshot
from ohf.events import Event
from ohf.model import Request, ReturnRequest, State

STATE = "state"
EVENTS = "events"
HEAD = "!head"
LEASE = "!lease"
POINTER = "!log"
SNAP = "!snap#"

MAX_ITEM_BYTES = 300_000  # under the 400 KB limit of one item
EVENTS_PER_ITEM = 2_000

_encoder = msgspec.json.Encoder()
_request = msgspec.json.Decoder(Request)
_return = msgspec.json.Decoder(ReturnRequest)
_events = msgspec.json.Decoder(list[Event])
_snapshot = msgspec.json.Decoder(Snapshot)

Item = dict[str, Any]


class _Unreadable(Exception):
    """An item is not what this ohf writes."""


class View(msgspec.Struct, frozen=True, kw_only=True):
    """The state at one version, and what the head and lease said then."""

    state: State
    version: int
    partial: bool = False
    lease_owner: str | None = None
    lease_expires: float = 0.0
    # What the head counts of the log's tail (bytes unknown in a table of an older ohf).
    log_size: LogSize = LogSize(bytes=None, oldest=None)
    # With the events partition read: every key in it, and the log they hold.
    event_keys: tuple[str, ...] = ()
    log: Log = Log()


class LogItems(msgspec.Struct, frozen=True, kw_only=True):
    """The events partition read: the log, and how its items lie."""

    log: Log
    # The pointer's snapshot id (0: none) and the key of the last event item folded into it
    # ("": none; event keys are fixed-width, so they sort in commit order).
    snap_id: int = 0
    cut: str = ""
    # The keys of the tail's event items, in order, with how many events each holds.
    items: tuple[tuple[str, int], ...] = ()
    # Every key of the partition (the pointer included).
    keys: tuple[str, ...] = ()


def _key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _pack(value: Any) -> bytes:
    return zlib.compress(_encoder.encode(value), 6)


def _unpack(item: Item, decoder: msgspec.json.Decoder[Any]) -> Any:
    try:
        return decoder.decode(zlib.decompress(item["body"]["B"]))
    except (KeyError, zlib.error, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Unreadable(f"item {item.get('sk', {}).get('S', '?')} is unreadable: {exc}") from exc


def _decode_state(items: list[Item]) -> View:
    try:
        return _state_of(items)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Unreadable(f"the head or lease item is malformed ({exc!r})") from exc


def _state_of(items: list[Item]) -> View:
    requests: dict[str, Request] = {}
    returns: dict[str, ReturnRequest] = {}
    version, fmt, partial, owner, expires = 0, 1, False, None, 0.0
    size = LogSize(bytes=0, oldest=None)
    for item in items:
        sk = item["sk"]["S"]
        if sk == HEAD:
            version, fmt = int(item["ver"]["N"]), int(item.get("fmt", {}).get("N", "1"))
            partial = "partial" in item
            size = _head_log_size(item)
        elif sk == LEASE:
            owner, expires = item["owner"]["S"], float(item["expires"]["N"])
        elif sk.startswith("req#"):
            request: Request = _unpack(item, _request)
            requests[request.request_id] = request
        elif sk.startswith("ret#"):
            ret: ReturnRequest = _unpack(item, _return)
            returns[ret.request_id] = ret
    return View(
        state=State(version=fmt, requests=requests, returns=returns),
        version=version,
        partial=partial,
        lease_owner=owner,
        lease_expires=expires,
        log_size=size,
    )


def _head_log_size(head: Item) -> LogSize:
    """The head's count of the log's tail: `evb` bytes, `evat` oldest event, `evok` if exact."""
    if "evok" not in head:
        return LogSize(bytes=None, oldest=None)
    oldest = head.get("evat", {}).get("N")
    return LogSize(
        bytes=int(head.get("evb", {}).get("N", "0")), oldest=None if oldest is None else int(oldest)
    )


def decode_log(items: list[Item]) -> LogItems:
    """The log in the events partition: the pointer's snapshot and the events after its cut."""
    ordered = sorted(items, key=lambda i: str(i["sk"]["S"]))
    pointer = next((i for i in ordered if i["sk"]["S"] == POINTER), None)
    try:
        snap_id = int(pointer["snap"]["N"]) if pointer else 0
        cut = str(pointer["cut"]["S"]) if pointer else ""
    except (KeyError, TypeError, ValueError) as exc:
        raise _Unreadable(f"the log pointer is malformed ({exc!r})") from exc
    snapshot = _join_snapshot(ordered, snap_id) if snap_id else None
    tail = [i for i in ordered if not i["sk"]["S"].startswith("!") and i["sk"]["S"] > cut]
    events: list[Event] = []
    counts: list[tuple[str, int]] = []
    for item in tail:
        batch = _unpack(item, _events)
        events += batch
        counts.append((item["sk"]["S"], len(batch)))
    return LogItems(
        log=Log(snapshot=snapshot, events=tuple(events)),
        snap_id=snap_id,
        cut=cut,
        items=tuple(counts),
        keys=tuple(i["sk"]["S"] for i in ordered),
    )


def _join_snapshot(ordered: list[Item], snap_id: int) -> Snapshot:
    prefix = f"{SNAP}{snap_id:016d}#"
    parts = [i["body"]["B"] for i in ordered if i["sk"]["S"].startswith(prefix) and "body" in i]
    try:
        return _snapshot.decode(zlib.decompress(b"".join(parts)))
    except (zlib.error, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Unreadable(f"the log's snapshot {snap_id} is unreadable: {exc}") from exc


def snapshot_items(table: str, snap_id: int, snapshot: Snapshot) -> list[Item]:
    """Put actions for `snapshot`, compressed and cut to fit DynamoDB's item size."""
    body = _pack(snapshot)
    return [
        {
            "Put": {
                "TableName": table,
                "Item": _body_item(
                    EVENTS, f"{SNAP}{snap_id:016d}#{n:04d}", body[at : at + MAX_ITEM_BYTES]
                ),
            }
        }
        for n, at in enumerate(range(0, max(len(body), 1), MAX_ITEM_BYTES))
    ]


def pointer_item(table: str, snap_id: int, cut: str) -> Item:
    """The Put action of the log pointer: snapshot `snap_id` holds every event item up to the
    key `cut`."""
    return {
        "Put": {
            "TableName": table,
            "Item": {**_key(EVENTS, POINTER), "snap": {"N": str(snap_id)}, "cut": {"S": cut}},
        }
    }


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


def import_batches(events: tuple[Event, ...]) -> list[bytes]:
    """Compressed bodies for an import: a hundred events an item (more for a huge log, to stay
    within the 10,000 parts a version's keys allow), so a later compaction can fold a prefix
    of them; a commit writes its events as one item (`_event_batches`) instead."""
    size = max(100, -(-len(events) // 9_000))
    return [
        body
        for start in range(0, len(events), size)
        for body in _event_batches(events[start : start + size])
    ]


def _event_batches(events: tuple[Event, ...]) -> list[bytes]:
    """Compressed bodies, each under the item size limit, in order."""
    if not events:
        return []
    body = _pack(list(events))
    if len(events) == 1 or (len(body) <= MAX_ITEM_BYTES and len(events) <= EVENTS_PER_ITEM):
        return [body]
    half = len(events) // 2
    return _event_batches(events[:half]) + _event_batches(events[half:])
