"""`ohf templates`, `ohf requests [show ID]`, `ohf machines`: what ohf holds, from the store.

No AWS call: each shows what the last HF calls learnt. Aligned tables for people; `--json`
prints one document whose shape is in `schemas/cli/`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence

import msgspec
from returns.result import Failure

from ohf.cli.commands import event_line, failed, open_provider
from ohf.listings import MachineList, MachineRow, RequestList, TemplateList

_SPAN = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def since_epoch(text: str, now: int) -> int | None:
    """`--since`: 30m / 6h / 2d ago, an epoch time, or a UTC date[Thh:mm]; None if unreadable."""
    span = _SPAN.match(text.strip())
    if span:
        return now - int(span.group(1)) * _SECONDS[span.group(2)]
    if text.strip().isdigit():
        return int(text.strip())
    for pattern in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return int(time.mktime(time.strptime(text.strip(), pattern)) - time.timezone)
        except ValueError:
            continue
    return None


def age(seconds: int) -> str:
    """A duration for a table: 45s, 12m, 3h, 9d."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, the last one left ragged."""
    lines = [list(header), *(list(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]).rstrip()
        for line in lines
    )


def _print_json(document: object) -> int:
    sys.stdout.buffer.write(msgspec.json.encode(document) + b"\n")
    sys.stdout.flush()
    return 0


def _room(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def templates(args: argparse.Namespace) -> int:
    """`ohf templates`."""
    provider = open_provider(args, "templates")
    if provider is None:
        return 1
    rows = provider.template_rows()
    if isinstance(rows, Failure):
        return failed("templates", rows.failure())
    listed = rows.unwrap()
    if args.json:
        return _print_json(TemplateList(templates=listed))
    several = any(len(r.rooms) > 1 for r in listed)
    header = ["TEMPLATE", "API", "PRICE", "TYPES", "MAX", "IN USE", "AVAILABLE", "NCPUS", "NRAM"]
    print(
        table(
            [*header, *(["PROVIDERS"] if several else [])],
            [
                [
                    r.template_id,
                    r.api,
                    r.price_type,
                    ",".join(f"{t}:{w}" if w != 1 else t for t, w in r.types.items()) or "-",
                    _room(None if r.max_number < 0 else r.max_number),
                    str(r.in_use),
                    _room(r.available),
                    "-" if r.ncpus is None else str(r.ncpus),
                    "-" if r.nram is None else str(r.nram),
                    *([" ".join(f"{p}:{_room(n)}" for p, n in r.rooms.items())] if several else []),
                ]
                for r in listed
            ],
        )
    )
    return 0


def requests(args: argparse.Namespace) -> int:
    """`ohf requests [show ID]`."""
    if args.show:
        return _show(args)
    provider = open_provider(args, "requests")
    if provider is None:
        return 1
    since = None
    if args.since is not None:
        since = since_epoch(args.since, provider.shell().now())
        if since is None:
            print(
                f"ohf requests: --since {args.since!r}: give 30m, 6h, 2d, an epoch time or "
                "a UTC date (2026-12-01 or 2026-12-01T08:00)",
                file=sys.stderr,
            )
            return 2
    rows = provider.requests(status=args.status, template=args.template, since=since)
    if isinstance(rows, Failure):
        return failed("requests", rows.failure())
    listed = rows.unwrap()
    if args.json:
        return _print_json(RequestList(requests=listed))
    print(
        table(
            ["REQUEST", "KIND", "TEMPLATE", "PROVIDERS", "ASKED", "HELD", "STATUS", "AGE"],
            [
                [
                    r.request_id,
                    r.kind,
                    r.template_id or "-",
                    ",".join(r.providers) or "-",
                    str(r.asked),
                    str(r.held),
                    r.status,
                    age(r.age),
                ]
                for r in listed
            ],
        )
    )
    return 0


def _machine_table(rows: Sequence[MachineRow]) -> str:
    return table(
        ["MACHINE", "NAME", "IP", "TYPE", "PRICE", "STATE", "REQUEST", "PROVIDER", "AGE"],
        [
            [
                m.machine_id,
                m.name or "-",
                m.private_ip or "-",
                m.instance_type or "-",
                m.price_type,
                m.state + (f" (returned by {m.returned_by})" if m.returned_by else ""),
                m.request_id,
                m.provider,
                age(m.age) if m.launch_time else "-",
            ]
            for m in rows
        ],
    )


def _show(args: argparse.Namespace) -> int:
    from ohf.schema import RequestShow

    if args.request_id is None:
        print("ohf requests show: give the request id", file=sys.stderr)
        return 2
    provider = open_provider(args, "requests show")
    if provider is None:
        return 1
    found = provider.request(args.request_id)
    if isinstance(found, Failure):
        return failed("requests show", found.failure())
    detail, events = found.unwrap()
    if args.json:
        return _print_json(
            RequestShow(
                request=detail.request,
                parts=detail.parts,
                machines=detail.machines,
                events=list(events),
            )
        )
    r = detail.request
    print(f"request   {r.request_id} ({r.kind})")
    print(f"template  {r.template_id or '-'}")
    print(f"status    {r.status}" + (f": {r.message}" if r.message else ""))
    print(f"asked     {r.asked} unit(s), holding {r.held}, {r.machines} machine(s)")
    print(f"age       {age(r.age)}")
    if detail.parts:
        print("\nparts")
        print(
            table(
                ["PART", "PROVIDER", "API", "ASKED", "HELD", "STATUS", "FLEET"],
                [
                    [
                        p.request_id,
                        p.provider,
                        p.api,
                        str(p.asked),
                        str(p.held),
                        p.status,
                        p.fleet_id or p.launch_template_id or "-",
                    ]
                    for p in detail.parts
                ],
            )
        )
    if detail.machines:
        print("\nmachines")
        print(_machine_table(detail.machines))
    if events:
        print("\nevents")
        for event in events:
            print(event_line(event))
    return 0


def machines(args: argparse.Namespace) -> int:
    """`ohf machines`."""
    provider = open_provider(args, "machines")
    if provider is None:
        return 1
    rows = provider.machines(request=args.request, state=args.state, provider=args.provider)
    if isinstance(rows, Failure):
        return failed("machines", rows.failure())
    if args.json:
        return _print_json(MachineList(machines=rows.unwrap()))
    print(_machine_table(rows.unwrap()))
    return 0
