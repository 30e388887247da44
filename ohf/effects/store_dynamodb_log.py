"""The DynamoDB store's event log: compaction in fenced steps, and keeping unreadable items aside.

A compaction, under the caller's lease, (1) writes the new snapshot's parts under a new id,
(2) points `!log` at them and at the last version they fold, in one transaction with the head's
new count, then (3) deletes the folded event items and the old snapshot's parts. Readers follow
the pointer only, so a kill after (1) leaves orphan parts and a kill after (2) leaves folded
items, both invisible and both deleted by the next compaction: nothing is ever lost. Events are
folded whole commits at a time (an item holds one commit's events), so the fold may stop a few
events short of where `ohf.compaction.fold_count` would.
"""

from __future__ import annotations

import time
from typing import Any

from returns.result import Result, Success

from ohf.compaction import Compacted, Log, LogSize, Policy, fold, fold_count, log_bytes, report
from ohf.effects.files import Settings
from ohf.effects.store_dynamodb_commit import LogCount, _commit
from ohf.effects.store_dynamodb_items import (
    EVENTS,
    LEASE,
    POINTER,
    SNAP,
    STATE,
    Item,
    LogItems,
    _body_item,
    _key,
    decode_log,
    import_batches,
    pointer_item,
    snapshot_items,
)
from ohf.effects.store_dynamodb_table import _query, _table
from ohf.model import OhfError, State

_BATCH = 25  # BatchWriteItem's limit


def exact_size(log: Log) -> LogSize:
    """The head's count for a log whose tail is `log.events`."""
    return LogSize(bytes=log_bytes(log.events), oldest=log.events[0].at if log.events else None)


def _fold_whole(found: LogItems, policy: Policy) -> tuple[int, str]:
    """(events to fold, key of the last item folded): as many whole items as `fold_count`
    allows (an item holds one commit's events, or an import's hundred)."""
    wanted = fold_count(found.log.events, policy)
    count, cut = 0, found.cut
    for key, n in found.items:
        if count + n > wanted:
            break
        count, cut = count + n, key
    return count, cut


def _garbage(found: LogItems, snap_id: int, cut: str) -> tuple[str, ...]:
    """Keys no reader follows once `!log` says (`snap_id`, `cut`): folded items, old parts."""
    keep = f"{SNAP}{snap_id:016d}#"
    return tuple(
        k
        for k in found.keys
        if (k.startswith(SNAP) and not k.startswith(keep)) or (not k.startswith("!") and k <= cut)
    )


def compact(
    client: Any,
    settings: Settings,
    owner: str,
    version: int,
    state: State,
    known: bool,
    policy: Policy,
) -> Result[tuple[Compacted, int], OhfError]:
    """Fold the log as `policy` says, in fenced steps; what was done and the new version.

    `known` is False when the head does not count the log (a table of an older ohf): the
    count is then recorded even if nothing is folded.
    """
    found = decode_log(_query(client, _table(settings), EVENTS))
    log = found.log
    count, cut = _fold_whole(found, policy)
    new = fold(log, count)
    table = _table(settings)

    def step(at: int, extra: tuple[Item, ...], size: LogSize | None) -> Result[int, OhfError]:
        return _commit(
            client,
            settings,
            owner,
            at,
            state,
            state,
            (),
            extra=extra,
            count=None if size is None else LogCount(exact=size),
        )

    snap_id = found.snap_id
    current: Result[int, OhfError] = Success(version)
    if count:
        snap_id = version + 1
        assert new.snapshot is not None
        current = step(version, tuple(snapshot_items(table, snap_id, new.snapshot)), None)
    garbage = _garbage(found, snap_id, cut)
    if count or not known:
        current = current.bind(
            lambda at: step(at, (pointer_item(table, snap_id, cut),), exact_size(new))
        )
    if garbage:
        deletes = tuple({"Delete": {"TableName": table, "Key": _key(EVENTS, k)}} for k in garbage)
        current = current.bind(lambda at: step(at, deletes, None))
    return current.map(lambda at: (report(log, new), at))


def log_actions(table: str, version: int, log: Log) -> tuple[Item, ...]:
    """What an import writes: the snapshot's parts, the pointer (nothing folded yet: the
    import deletes every older event item) and the events, a hundred an item."""
    parts = () if log.snapshot is None else snapshot_items(table, version + 1, log.snapshot)
    events = tuple(
        {"Put": {"TableName": table, "Item": _body_item(EVENTS, f"{version + 1:016d}#{n:04d}", b)}}
        for n, b in enumerate(import_batches(log.events))
    )
    return (*parts, pointer_item(table, version + 1 if log.snapshot else 0, ""), *events)


def _batches(client: Any, table: str, requests: list[Item]) -> None:
    """BatchWriteItem in 25s, sending what DynamoDB left unprocessed again."""
    for start in range(0, len(requests), _BATCH):
        pending: dict[str, Any] = {table: requests[start : start + _BATCH]}
        delay = 0.05
        while pending:
            answer = client.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


def keep_aside(client: Any, settings: Settings) -> str:
    """Copy every item of the state and events partitions (the lease excepted) to a partition
    of its own, `aside-<UTC time>` (sort key `<pk>/<sk>`), then delete them; its name."""
    table = _table(settings)
    partition = time.strftime("aside-%Y%m%dT%H%M%SZ", time.gmtime())
    items = [
        item
        for pk in (STATE, EVENTS)
        for item in _query(client, table, pk)
        if item["sk"]["S"] != LEASE
    ]
    copies = [
        {
            "PutRequest": {
                "Item": {
                    **item,
                    "pk": {"S": partition},
                    "sk": {"S": f"{item['pk']['S']}/{item['sk']['S']}"},
                }
            }
        }
        for item in items
    ]
    _batches(client, table, copies)
    _batches(
        client,
        table,
        [{"DeleteRequest": {"Key": _key(i["pk"]["S"], i["sk"]["S"])}} for i in items],
    )
    return partition


def fresh(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys an import drops: all of the events partition but the pointer it rewrites."""
    return tuple(k for k in keys if k != POINTER)
