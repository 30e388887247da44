"""The DynamoDB store's table: client, errors, consistent reads, the lease.

Commits live in `store_dynamodb_commit`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.config import AwsConfig
from ohf.effects.files import Settings
from ohf.effects.store_dynamodb_items import (
    EVENTS,
    HEAD,
    LEASE,
    STATE,
    Item,
    View,
    _decode_state,
    _key,
    _Unreadable,
    decode_log,
)
from ohf.model import OhfError


class _Busy(Exception):
    """The state kept changing (or stayed half-written) for the whole wait."""


def _table(settings: Settings) -> str:
    return settings.config.storage.table or ""


def _client(settings: Settings) -> Any:
    storage, aws = settings.config.storage, settings.config.aws
    return _client_for(
        msgspec.structs.replace(
            aws,
            region=storage.region or aws.region,
            endpoint_url=storage.endpoint_url or aws.endpoint_url,
        )
    )


# A boto3 client costs ~0.2 s to make; a process serving many calls (tests, a long-running
# front end) makes one per distinct config. Clients are thread-safe and refresh credentials.
@functools.lru_cache(maxsize=4)
def _client_for(config: AwsConfig) -> Any:
    from ohf.effects.aws import client_getter

    return client_getter(config, None)("dynamodb")


def _error(settings: Settings, what: str, exc: Exception) -> Failure[OhfError]:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    table = _table(settings)
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        if code == "ResourceNotFoundException":
            return Failure(
                OhfError(
                    message=f"dynamodb table {table} does not exist: run `ohf storage init`",
                    code="state",
                )
            )
        detail = exc.response.get("Error", {}).get("Message", "")
        return Failure(
            OhfError(message=f"dynamodb table {table}: {what}: {code}: {detail}", code=code)
        )
    if isinstance(exc, NoRegionError):
        return Failure(
            OhfError(
                message=f"dynamodb table {table}: no region (set [storage] region or [aws] region)",
                code="config",
            )
        )
    if isinstance(exc, NoCredentialsError):
        return Failure(
            OhfError(
                message=f"dynamodb table {table}: no AWS credentials found", code="credentials"
            )
        )
    return Failure(
        OhfError(
            message=f"dynamodb table {table}: {what}: {type(exc).__name__}: {exc}",
            code="connection",
        )
    )


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _query(client: Any, table: str, pk: str) -> list[Item]:
    """Every item of partition `pk`, strongly consistent, all pages."""
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    items: list[Item] = []
    while True:
        page = client.query(**params)
        items.extend(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _head_version(client: Any, table: str) -> tuple[int, bool]:
    item = client.get_item(TableName=table, Key=_key(STATE, HEAD), ConsistentRead=True).get("Item")
    if not item:
        return 0, False
    try:
        return int(item["ver"]["N"]), "partial" in item
    except (KeyError, TypeError, ValueError) as exc:
        raise _Unreadable(f"the head item is malformed ({exc!r})") from exc


def _snapshot(
    client: Any, settings: Settings, *, with_events: bool = False, me: str | None = None
) -> View:
    """A consistent snapshot: the head's version is the same before and after the reads.

    `me` is the caller's own lease, if it holds one: then a `partial` head can only be the
    half of a dead writer's commit, and waiting would be waiting for oneself.
    """
    table = _table(settings)
    deadline = time.monotonic() + settings.config.storage.lock_timeout
    delay = 0.02
    while True:
        snap = _decode_state(_query(client, table, STATE))
        if with_events:
            found = decode_log(_query(client, table, EVENTS))
            snap = msgspec.structs.replace(snap, event_keys=found.keys, log=found.log)
        version, partial = _head_version(client, table)
        # A half-written big commit is waited for while its writer's lease is live; a dead
        # writer's half is all there is, and the next writer carries on from it.
        writer_alive = snap.lease_owner not in (None, me) and snap.lease_expires > time.time()
        if version == snap.version and not (partial and writer_alive):
            return snap
        if time.monotonic() >= deadline:
            raise _Busy
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _busy(settings: Settings, what: str) -> Failure[OhfError]:
    return Failure(
        OhfError(
            message=(
                f"dynamodb table {_table(settings)}: {what} for over "
                f"{settings.config.storage.lock_timeout:g}s; try again (raise [storage] "
                "lock_timeout if this is routine)"
            ),
            code="busy",
        )
    )


def _guarded(settings: Settings, what: str, action: Callable[[], Any]) -> Result[Any, OhfError]:
    """Run `action`, turning AWS errors, unreadable items and timeouts into Failures."""
    try:
        return Success(action())
    except _Unreadable as exc:
        return Failure(
            OhfError(
                message=f"dynamodb table {_table(settings)}: {exc}; it was left as it is",
                code="state",
            )
        )
    except _Busy:
        return _busy(settings, "the state kept changing while being read")
    except _aws_errors() as exc:
        return _error(settings, what, exc)


def _acquire(client: Any, settings: Settings, owner: str) -> Result[None, OhfError]:
    """Take the lease: a conditional put that succeeds if it is free, expired or ours.

    A holder that was killed on this host (its pid is gone) is taken over at once instead of
    waiting for its lease to expire; if that guess is ever wrong the fencing of every commit
    still refuses the other's writes, so it can cost a call, never the state.
    """
    storage = settings.config.storage
    deadline = time.monotonic() + storage.lock_timeout
    delay = 0.05
    host, pid = socket.gethostname(), os.getpid()
    holder: Item = {}
    while True:
        now = time.time()
        dead = _dead_owner(holder, host)
        try:
            client.put_item(
                TableName=_table(settings),
                Item={
                    **_key(STATE, LEASE),
                    "owner": {"S": owner},
                    "expires": {"N": f"{now + storage.lease_seconds:.3f}"},
                    "host": {"S": host},
                    "pid": {"N": str(pid)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #e < :now OR #o = :me OR #o = :dead"
                ),
                ExpressionAttributeNames={"#e": "expires", "#o": "owner"},
                ExpressionAttributeValues={
                    ":now": {"N": f"{now:.3f}"},
                    ":me": {"S": owner},
                    ":dead": {"S": dead or owner},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Success(None)
        except _aws_errors() as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                return _error(settings, "take the lease", exc)
            holder = getattr(exc, "response", {}).get("Item") or {}
        if time.monotonic() >= deadline:
            return _busy(settings, f"the state is held by {_holder(holder)}")
        if not _dead_owner(holder, host):
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _dead_owner(holder: Item, host: str) -> str | None:
    """The holder's owner id if it ran on this host and its process is gone."""
    try:
        pid = int(holder["pid"]["N"])
        if holder.get("host", {}).get("S") != host or pid <= 0:
            return None
        os.kill(pid, 0)
    except ProcessLookupError:
        return str(holder["owner"]["S"])
    except (KeyError, ValueError, OSError):
        return None
    return None


def _holder(holder: Item) -> str:
    if not holder:
        return "another ohf call"
    owner = holder.get("owner", {}).get("S", "?")
    where = holder.get("host", {}).get("S", "?")
    until = time.strftime("%H:%M:%SZ", time.gmtime(float(holder.get("expires", {}).get("N", "0"))))
    return f"ohf call {owner} on {where} (lease until {until})"


def _release(client: Any, settings: Settings, owner: str) -> None:
    """Give the lease back, unless someone took it over after it expired."""
    with contextlib.suppress(*_aws_errors()):
        client.delete_item(
            TableName=_table(settings),
            Key=_key(STATE, LEASE),
            ConditionExpression="#o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":me": {"S": owner}},
        )
