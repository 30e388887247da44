"""The DynamoDB store's fenced commits: every write is a transaction the lease and version guard.

A commit is one `TransactWriteItems` (or, when it is larger than one takes, several, the head
marked `partial` until the last), each conditioned on the lease still being the caller's (which
renews it) and on `ver` being the version the caller read (which it bumps). The last one also
keeps the head's count of the event log (`evb` bytes, `evat` first event's time, `evok` when
exact), so a call can tell whether compaction is due without reading the log.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.compaction import LogSize, log_bytes
from ohf.effects.files import Settings
from ohf.effects.store_dynamodb_items import (
    EVENTS,
    HEAD,
    LEASE,
    STATE,
    Item,
    _body_item,
    _changes,
    _event_batches,
    _key,
)
from ohf.effects.store_dynamodb_table import _aws_errors, _code, _error, _table
from ohf.events import Event
from ohf.model import OhfError, State

MAX_ACTIONS = 100  # TransactWriteItems' limit
MAX_TXN_BYTES = 3_500_000  # under the 4 MB limit of one transaction

# Attribute names DynamoDB reserves (OWNER) or may: always go through placeholders.
_NAMES = {"#v": "ver", "#o": "owner", "#e": "expires", "#p": "partial", "#by": "by", "#at": "at"}


def _size(action: Item) -> int:
    op = next(iter(action.values()))
    body = op.get("Item", {}).get("body", {}).get("B", b"")
    return len(body) + 200


def _chunks(actions: list[Item]) -> list[list[Item]]:
    """Actions grouped to fit one transaction each, beside the lease and head updates."""
    chunks: list[list[Item]] = [[]]
    size = 0
    for action in actions:
        if len(chunks[-1]) >= MAX_ACTIONS - 2 or size + _size(action) > MAX_TXN_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(action)
        size += _size(action)
    return chunks


class LogCount(msgspec.Struct, frozen=True, kw_only=True):
    """How a commit changes the head's count of the log's tail: events added, or (after a
    compaction or an import) the exact figures."""

    added: int = 0
    first_at: int | None = None
    exact: LogSize | None = None


def _log_clauses(count: LogCount, version: int, values: dict[str, Any]) -> tuple[str, str, str]:
    """(SET, REMOVE, ADD) clauses keeping the head's `evb`/`evat`/`evok` count of the log."""
    if count.exact is not None:
        values[":eb"] = {"N": str(count.exact.bytes or 0)}
        values[":ok"] = {"BOOL": True}
        if count.exact.oldest is None:
            return ", evb = :eb, evok = :ok", ", evat", ""
        values[":ea"] = {"N": str(count.exact.oldest)}
        return ", evb = :eb, evok = :ok, evat = :ea", "", ""
    sets = ""
    if version == 0:
        # A fresh table: its count is exact from the first commit on.
        values[":ok"] = {"BOOL": True}
        sets += ", evok = :ok"
    if count.first_at is not None:
        values[":ea"] = {"N": str(count.first_at)}
        sets += ", evat = if_not_exists(evat, :ea)"
    if not count.added:
        return sets, "", ""
    values[":eb"] = {"N": str(count.added)}
    return sets, "", " ADD evb :eb"


def _fences(
    settings: Settings,
    owner: str,
    version: int,
    fmt: int,
    *,
    partial: bool,
    count: LogCount | None = None,
) -> list[Item]:
    """The two conditions of every commit: the lease is ours (renewed), the head unchanged."""
    table, now = _table(settings), time.time()
    head_condition = "attribute_not_exists(pk)" if version == 0 else "#v = :v"
    values: dict[str, Any] = {
        ":next": {"N": str(version + 1)},
        ":fmt": {"N": str(fmt)},
        ":me": {"S": owner},
        ":now": {"N": f"{now:.3f}"},
    }
    if version:
        values[":v"] = {"N": str(version)}
    sets, removes, adds = _log_clauses(count or LogCount(), version, values)
    update = "SET #v = :next, fmt = :fmt, #by = :me, #at = :now" + sets
    if partial:
        values[":yes"] = {"BOOL": True}
        update += ", #p = :yes"
        update += f" REMOVE {removes[2:]}" if removes else ""
    else:
        update += " REMOVE #p" + removes
    update += adds
    names = {k: _NAMES[k] for k in ("#v", "#by", "#at", "#p")}
    return [
        {
            "Update": {
                "TableName": table,
                "Key": _key(STATE, LEASE),
                "UpdateExpression": "SET #e = :exp",
                "ConditionExpression": "#o = :me",
                "ExpressionAttributeNames": {"#e": "expires", "#o": "owner"},
                "ExpressionAttributeValues": {
                    ":exp": {"N": f"{now + settings.config.storage.lease_seconds:.3f}"},
                    ":me": {"S": owner},
                },
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": _key(STATE, HEAD),
                "UpdateExpression": update,
                "ConditionExpression": head_condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        },
    ]


def _refused(settings: Settings, exc: Exception, version: int, written: int) -> Failure[OhfError]:
    reasons = [
        r.get("Code", "None") for r in getattr(exc, "response", {}).get("CancellationReasons", [])
    ]
    table = _table(settings)
    if reasons[:1] == ["ConditionalCheckFailed"]:
        why = (
            "this call no longer holds the lease (it outlived lease_seconds and another ohf "
            "call took the store over)"
        )
    elif reasons[1:2] == ["ConditionalCheckFailed"]:
        why = f"the state changed since this call read it (version {version})"
    else:
        return _error(settings, "commit", exc)
    already = (
        f"; {written} earlier part(s) of this commit were written"
        if written
        else "; nothing was written"
    )
    return Failure(
        OhfError(message=f"dynamodb table {table}: commit refused: {why}{already}", code="conflict")
    )


def _transact(client: Any, actions: list[Item]) -> None:
    """One TransactWriteItems (a module function, so a test can kill before each)."""
    client.transact_write_items(TransactItems=actions)


def _commit(
    client: Any,
    settings: Settings,
    owner: str,
    version: int,
    before: State,
    after: State,
    events: tuple[Event, ...],
    *,
    drop_events: tuple[str, ...] = (),
    extra: tuple[Item, ...] = (),
    count: LogCount | None = None,
) -> Result[int, OhfError]:
    """Write `after` over `before` (changed items only), `extra` actions and `events`; the new
    version. The head's count of the log changes with the last transaction."""
    table = _table(settings)
    event_items = [
        {"Put": {"TableName": table, "Item": _body_item(EVENTS, f"{version + 1:016d}#{n:04d}", b)}}
        for n, b in enumerate(_event_batches(events))
    ]
    dropped = [{"Delete": {"TableName": table, "Key": _key(EVENTS, k)}} for k in drop_events]
    chunks = _chunks(_changes(table, before, after) + dropped + list(extra) + event_items)
    if count is None and events:
        count = LogCount(added=log_bytes(events), first_at=events[0].at)
    current = version
    for number, chunk in enumerate(chunks):
        last = number == len(chunks) - 1
        fences = _fences(
            settings, owner, current, after.version, partial=not last, count=count if last else None
        )
        try:
            _transact(client, fences + chunk)
        except _aws_errors() as exc:
            if _code(exc) == "TransactionCanceledException":
                return _refused(settings, exc, current, number)
            return _error(settings, "commit", exc)
        current += 1
    return Success(current)
