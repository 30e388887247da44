"""The export format of every store: JSON lines, a header then requests, returns and events.

`ohf storage export` writes it and `ohf storage import` reads it, so a state moves between
stores (json, sqlite, dynamodb) exactly: requests and returns are sorted by id and events keep
their commit order, so equal stores export equal bytes.

A compacted log adds one `snapshot` line before the events (the state the folded events built,
with how many there were and the time of the last): that file is format 2, which an older ohf
refuses by its header rather than misreading. A log never compacted still exports as format 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec
from returns.result import Failure, Result, Success

from ohf.compaction import Log, Snapshot
from ohf.events import Event
from ohf.model import OhfError, Request, ReturnRequest, State

EXPORT_FORMAT = 1
# A file with a snapshot line.
SNAPSHOT_FORMAT = 2


class Header(msgspec.Struct, frozen=True, kw_only=True, tag="header", tag_field="kind"):
    """First line: the format of the file and the state's own version."""

    format: int = EXPORT_FORMAT
    state_version: int = 1


class RequestLine(msgspec.Struct, frozen=True, kw_only=True, tag="request", tag_field="kind"):
    """One acquire request."""

    request: Request


class ReturnLine(msgspec.Struct, frozen=True, kw_only=True, tag="return", tag_field="kind"):
    """One return request."""

    ret: ReturnRequest


class SnapshotLine(msgspec.Struct, frozen=True, kw_only=True, tag="snapshot", tag_field="kind"):
    """The log's snapshot: the state its folded events built (format 2 only)."""

    snapshot: Snapshot


class EventLine(msgspec.Struct, frozen=True, kw_only=True, tag="event", tag_field="kind"):
    """One event of the log, in commit order."""

    event: Event


Line = Header | RequestLine | ReturnLine | SnapshotLine | EventLine
_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(Line)


def encode_lines(
    state: State, events: tuple[Event, ...], snapshot: Snapshot | None = None
) -> list[bytes]:
    """Export lines; requests and returns sorted by id so equal stores export equal bytes."""
    return [_line_encoder.encode(line) for line in _lines(state, events, snapshot)]


def _lines(state: State, events: tuple[Event, ...], snapshot: Snapshot | None) -> Iterator[Line]:
    fmt = EXPORT_FORMAT if snapshot is None else SNAPSHOT_FORMAT
    yield Header(format=fmt, state_version=state.version)
    for rid in sorted(state.requests):
        yield RequestLine(request=state.requests[rid])
    for rid in sorted(state.returns):
        yield ReturnLine(ret=state.returns[rid])
    if snapshot is not None:
        yield SnapshotLine(snapshot=snapshot)
    for event in events:
        yield EventLine(event=event)


def decode_lines(lines: Iterable[bytes]) -> Result[tuple[State, Log], OhfError]:
    """The state and event log of export lines, or the first bad line's number and error."""
    header: Header | None = None
    requests: dict[str, Request] = {}
    returns: dict[str, ReturnRequest] = {}
    snapshot: Snapshot | None = None
    events: list[Event] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = _line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return Failure(OhfError(message=f"import: line {number}: {exc}", code="input"))
        if header is None and not isinstance(line, Header):
            return Failure(
                OhfError(
                    message=f"import: line {number}: expected the header line first "
                    '({"kind":"header",...}); is this an `ohf storage export` file?',
                    code="input",
                )
            )
        if isinstance(line, Header):
            if header is not None or line.format not in (EXPORT_FORMAT, SNAPSHOT_FORMAT):
                return Failure(
                    OhfError(
                        message=f"import: line {number}: unexpected header (format {line.format})",
                        code="input",
                    )
                )
            header = line
        elif isinstance(line, RequestLine):
            requests[line.request.request_id] = line.request
        elif isinstance(line, ReturnLine):
            returns[line.ret.request_id] = line.ret
        elif isinstance(line, SnapshotLine):
            if snapshot is not None or events or header.format != SNAPSHOT_FORMAT:  # type: ignore[union-attr]
                return Failure(
                    OhfError(
                        message=f"import: line {number}: a snapshot line belongs once, before "
                        "the events, in a format 2 file",
                        code="input",
                    )
                )
            snapshot = line.snapshot
        else:
            events.append(line.event)
    if header is None:
        return Failure(OhfError(message="import: the input is empty", code="input"))
    state = State(version=header.state_version, requests=requests, returns=returns)
    return Success((state, Log(snapshot=snapshot, events=tuple(events))))
