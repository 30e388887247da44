"""The operator's commands: parse with the command table, then ask the front door.

Every command reads the config through `ohf.provider.Provider` and prints readable text (or
JSON with `--json`); it exits 0 on success, 1 on failure with a one-line reason on stderr,
2 on a usage error (argparse's message and the command's usage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from returns.result import Failure

from ohf.cli.parser import parser, subparser, top_help
from ohf.model import OhfError

if TYPE_CHECKING:
    from ohf.events import Event
    from ohf.provider import Provider


def failed(command: str, error: OhfError | str) -> int:
    """Say why `command` failed, on one line of stderr; exit code 1."""
    message = error if isinstance(error, str) else error.message
    print(f"ohf {command}: {message}", file=sys.stderr)
    return 1


def open_provider(args: argparse.Namespace, command: str) -> Provider | None:
    """The front door over the command's config, or None (the reason printed)."""
    from ohf.provider import Provider

    opened = Provider.open(getattr(args, "config", None), os.environ, cwd=os.getcwd())
    if isinstance(opened, Failure):
        failed(command, opened.failure())
        return None
    return opened.unwrap()


def validate(args: argparse.Namespace) -> int:
    """`ohf validate`: decode the config and derive every template's attributes, offline."""
    from ohf.provider import Provider
    from ohf.validation import verdict_line

    opened = Provider.open(args.config, os.environ, cwd=os.getcwd())
    if isinstance(opened, Failure):
        print(f"config: FAIL: {opened.failure().message}")
        return 1
    result = opened.unwrap().validate()
    print(f"config: ok ({result.source})")
    print(f"state:  {result.state}")
    print(f"log:    {result.log}")
    for verdict in result.templates:
        print(verdict_line(verdict))
    if result.listing_error is not None:
        print(f"templates: FAIL: {result.listing_error}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0 if result.ok else 1


def health(args: argparse.Namespace) -> int:
    """`ohf health`: check against each provider's AWS that its templates can launch; 1 if any
    check fails (a disabled provider is listed, not checked)."""
    import msgspec

    from ohf.effects.health import table

    provider = open_provider(args, "health")
    if provider is None:
        return 1
    result = provider.health()
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
        sys.stdout.flush()
    else:
        print(table(result))
    return 0 if result.ok else 1


def install(args: argparse.Namespace) -> int:
    """`ohf install-scripts DIR`."""
    from ohf.effects.install import install_scripts

    return install_scripts(args.dir, args.config)


def demo(args: argparse.Namespace) -> int:
    """`ohf demo`."""
    from ohf.effects.sandbox import demo as run_demo

    return run_demo(keep=args.keep)


def storage(args: argparse.Namespace) -> int:
    """`ohf storage init|export|import|compact|check`: set up a store, move its content in and
    out, compact its event log, check that it reads and agrees with its log."""
    from ohf.effects.files import read_bytes, write_bytes

    command = f"storage {args.action}"
    provider = open_provider(args, command)
    if provider is None:
        return 1
    if args.action in ("compact", "check"):
        from ohf.cli.store import check, compact

        return (compact if args.action == "compact" else check)(provider, args)
    if args.action == "init":
        done = provider.init_store()
        if isinstance(done, Failure):
            return failed(command, done.failure())
        print(done.unwrap())
        return 0
    if args.action == "export":
        lines = provider.export_lines()
        if isinstance(lines, Failure):
            return failed(command, lines.failure())
        data = b"".join(line + b"\n" for line in lines.unwrap())
        if args.file in (None, "-"):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return 0
        written = write_bytes(args.file, data, what="export file")
        if isinstance(written, Failure):
            return failed(command, written.failure())
        print(f"exported {len(lines.unwrap())} line(s) to {args.file}", file=sys.stderr)
        return 0
    if args.file in (None, "-"):
        raw = sys.stdin.buffer.read()
    else:
        read = read_bytes(args.file, what="import file")
        if isinstance(read, Failure):
            return failed(command, read.failure())
        raw = read.unwrap()
    imported = provider.import_lines(raw.splitlines(), force=args.force)
    if isinstance(imported, Failure):
        return failed(command, imported.failure())
    result = imported.unwrap()
    print(f"imported {result.lines} line(s) into {provider.store_description()}")
    if result.kept_aside:
        print(f"the unreadable store was kept aside as {result.kept_aside}")
    return 0


def events(args: argparse.Namespace) -> int:
    """`ohf events`: the event log, one readable line (or JSON line) per event."""
    import msgspec

    provider = open_provider(args, "events")
    if provider is None:
        return 1
    found = provider.events(args.request)
    if isinstance(found, Failure):
        return failed("events", found.failure())
    encoder = msgspec.json.Encoder()
    for event in found.unwrap():
        if args.json:
            sys.stdout.buffer.write(encoder.encode(event) + b"\n")
        else:
            sys.stdout.write(event_line(event) + "\n")
    sys.stdout.flush()
    return 0


def event_line(event: Event) -> str:
    """One event for humans: time, call, correlation, kind, request id and a short detail."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.at))
    detail = ""
    if event.machines:
        ids = ", ".join(m.machine_id for m in event.machines[:5])
        more = f" (+{len(event.machines) - 5})" if len(event.machines) > 5 else ""
        detail = f"{ids}{more}"
    elif event.ret is not None:
        detail = f"{event.ret.status}, {len(event.ret.machine_ids)} machine(s)"
    elif event.request is not None:
        detail = f"{event.request.status} ({event.request.phase})"
    return "  ".join(
        x for x in (when, event.call, event.correlation, event.kind, event.request_id, detail) if x
    )


def serve(args: argparse.Namespace) -> int:
    """`ohf serve`: the REST API."""
    try:
        from ohf.api.serve import serve as run_server
    except ImportError as exc:
        return failed(
            "serve",
            f"the REST API needs the api extra ({exc.name} is missing): pip install 'ohf-aws[api]'",
        )
    return run_server(args.host, args.port, args.config, os.environ, os.getcwd())


def mcp(args: argparse.Namespace) -> int:
    """`ohf mcp`: the MCP server for AI assistants."""
    try:
        from ohf.mcp.server import serve as run_server
    except ImportError as exc:
        return failed(
            "mcp",
            f"the MCP server needs the mcp extra ({(exc.name or 'mcp').split('.')[0]} is "
            "missing): "
            "pip install 'ohf-aws[mcp]'",
        )
    if args.port is not None and not args.http:
        print("ohf mcp: --port goes with --http (stdio has no port)", file=sys.stderr)
        return 2
    return run_server(args.config, args.http, args.port, os.environ, os.getcwd())


def completion(args: argparse.Namespace) -> int:
    """`ohf completion SHELL`."""
    from ohf.cli.completion import SCRIPTS

    sys.stdout.write(SCRIPTS[args.shell]())
    return 0


def _hf(args: argparse.Namespace) -> int:
    from ohf.cli import hf_call

    argv = [*(["-f", args.file] if args.file else []), *(["-d", args.data] if args.data else [])]
    argv += ["--config", args.config] if args.config else []
    return hf_call(args.command, argv)


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The handler `name` of `ohf.cli.<module>`, imported only when its command runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(f"ohf.cli.{module}"), name
        )
        return handler(args)

    return run


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": validate,
    "health": health,
    "install-scripts": install,
    "demo": demo,
    "storage": storage,
    "events": events,
    "serve": serve,
    "mcp": mcp,
    "completion": completion,
    "templates": _lazy("listing", "templates"),
    "requests": _lazy("listing", "requests"),
    "machines": _lazy("listing", "machines"),
    "init": _lazy("setup", "init"),
}


def run(argv: Sequence[str]) -> int:
    """Parse `argv` and run its command: 0 done, 1 failed, 2 usage error."""
    if not argv:
        sys.stderr.write(top_help())
        return 2
    top = parser()
    try:
        args, extra = top.parse_known_args(list(argv))
        if (
            extra
            and args.command == "storage"
            and args.file is None
            and len(extra) == 1
            and not extra[0].startswith("-")
        ):
            # `storage import --force FILE`: argparse gives out the optional FILE before the
            # flag, then has FILE left over.
            args.file = extra[0]
        elif extra:
            # Said by the command's own parser: its usage line, `ohf CMD: error: ...`.
            subparser(top, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:
        # --help and --version exit 0; usage errors 2 (argparse printed why).
        return exit_.code if isinstance(exit_.code, int) else 2
    handler = HANDLERS.get(args.command, _hf)
    return handler(args)
