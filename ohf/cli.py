"""Command line: `ohf <HF call> -f FILE | -d JSON`, and the human commands.

HF calls print exactly one JSON document on stdout and exit 0, or 1 with `{"message": ...}`.
Human commands: `validate`, `health`, `install-scripts DIR`, `demo`,
`storage init|export|import`, `events`; they print readable text and exit non-zero on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from returns.result import Failure, Result, Success

from ohf.hf import CALLS, Reply, error_reply
from ohf.model import OhfError

if TYPE_CHECKING:
    from ohf.events import Event
    from ohf.provider import Provider

USAGE = """ohf CALL [-f FILE | -d JSON] [--config PATH]
  CALL: getAvailableTemplates | requestMachines | getRequestStatus |
        requestReturnMachines | getReturnRequests
ohf validate [--config PATH]        check the config and templates offline
ohf health [--json] [--config PATH] check credentials, region, templates' AWS resources, store
ohf install-scripts DIR [--config PATH]  write HF's five scripts and a sample conf into DIR
ohf demo [--keep]                   run the whole lifecycle against an embedded moto_server
ohf storage init [--config PATH]    create the store's schema or DynamoDB table
ohf storage export [FILE]           write the store as JSON lines to FILE (default: stdout)
ohf storage import [FILE] [--force] load JSON lines from FILE (default: stdin) into an empty
                                    store (--force: replace what it holds)
ohf events [--request ID] [--json]  print the event log (time, call, correlation, kind, request)
ohf serve [--host H] [--port N] [--config PATH]  the REST API (needs the `api` extra)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohf", usage=USAGE, add_help=True)
    parser.add_argument("command")
    parser.add_argument("target", nargs="?")
    parser.add_argument("extra", nargs="?")
    parser.add_argument("-f", "--file", dest="file")
    parser.add_argument("-d", "--data", dest="data")
    parser.add_argument("--config")
    parser.add_argument("--keep", action="store_true", help="demo: keep the conf dir")
    parser.add_argument("--force", action="store_true", help="storage import: replace")
    parser.add_argument("--request", help="events: of this request only")
    parser.add_argument("--json", action="store_true", help="events: as JSON lines")
    return parser


class _ArgError(Exception):
    pass


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _parser()

    def fail(message: str) -> None:
        raise _ArgError(message)

    parser.error = fail  # type: ignore[method-assign,assignment]
    return parser.parse_args(argv)


def _emit(reply: Reply) -> int:
    sys.stdout.buffer.write(reply.body + b"\n")
    sys.stdout.flush()
    return reply.exit_code


def _read_payload(args: argparse.Namespace) -> Result[bytes, OhfError]:
    from ohf.effects.files import read_bytes

    if args.file and args.data is not None:
        return Failure(OhfError(message="give -f FILE or -d JSON, not both", code="input"))
    if args.data is not None:
        return Success(args.data.encode("utf-8", "surrogateescape"))
    if args.file:
        return read_bytes(args.file, what="input file")
    return Success(b"")


def _open(args: argparse.Namespace, correlation: str | None = None) -> Result[Provider, OhfError]:
    from ohf.provider import Provider

    return Provider.open(args.config, os.environ, cwd=os.getcwd(), correlation=correlation)


def hf_call(call: str, args: argparse.Namespace) -> int:
    """Run one HF call from the command line."""
    from ohf.provider import configure_logging, new_correlation

    payload = _read_payload(args)
    if isinstance(payload, Failure):
        return _emit(error_reply(payload.failure()))
    correlation = new_correlation()
    opened = _open(args, correlation)
    if isinstance(opened, Failure):
        return _emit(error_reply(opened.failure()))
    provider = opened.unwrap()
    configure_logging(provider.settings, call, correlation, os.environ)
    return _emit(provider.call(call, payload.unwrap()))


def validate(args: argparse.Namespace) -> int:
    """`ohf validate`: decode the config and derive every template's attributes, offline."""
    from ohf.validation import verdict_line

    opened = _open(args)
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
    return 0 if result.ok else 1


def health(args: argparse.Namespace) -> int:
    """`ohf health`: check against each provider's AWS that its templates can launch; 1 if any
    check fails (a disabled provider is listed, not checked)."""
    import msgspec

    from ohf.effects.health import table

    provider = _provider(args, "health")
    if provider is None:
        return 1
    result = provider.health()
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
        sys.stdout.flush()
    else:
        print(table(result))
    return 0 if result.ok else 1


def _provider(args: argparse.Namespace, command: str) -> Provider | None:
    opened = _open(args)
    if isinstance(opened, Failure):
        print(f"ohf {command}: {opened.failure().message}", file=sys.stderr)
        return None
    return opened.unwrap()


def _failed(command: str, error: OhfError) -> int:
    print(f"ohf {command}: {error.message}", file=sys.stderr)
    return 1


def storage(args: argparse.Namespace) -> int:
    """`ohf storage init|export|import`: set up a store and move its content in and out."""
    if args.target not in ("init", "export", "import"):
        print(f"ohf storage: give init, export or import\n{USAGE}", file=sys.stderr)
        return 2
    command = f"storage {args.target}"
    provider = _provider(args, command)
    if provider is None:
        return 1
    if args.target == "init":
        done = provider.init_store()
        if isinstance(done, Failure):
            return _failed(command, done.failure())
        print(done.unwrap())
        return 0
    if args.target == "export":
        lines = provider.export_lines()
        if isinstance(lines, Failure):
            return _failed(command, lines.failure())
        return _write_lines(command, args.extra, lines.unwrap())
    raw = _read_input(command, args.extra)
    if raw is None:
        return 1
    imported = provider.import_lines(raw.splitlines(), force=args.force)
    if isinstance(imported, Failure):
        return _failed(command, imported.failure())
    print(f"imported {imported.unwrap()} line(s) into {provider.store_description()}")
    return 0


def _write_lines(command: str, target: str | None, lines: list[bytes]) -> int:
    data = b"".join(line + b"\n" for line in lines)
    if target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        with open(target, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        return _failed(command, OhfError(message=f"cannot write {target}: {exc}"))
    print(f"exported {len(lines)} line(s) to {target}", file=sys.stderr)
    return 0


def _read_input(command: str, source: str | None) -> bytes | None:
    from ohf.effects.files import read_bytes

    if source is None:
        return sys.stdin.buffer.read()
    raw = read_bytes(source, what="import file")
    if isinstance(raw, Failure):
        _failed(command, raw.failure())
        return None
    return raw.unwrap()


def events(args: argparse.Namespace) -> int:
    """`ohf events`: the event log, one readable line (or JSON line) per event."""
    import msgspec

    provider = _provider(args, "events")
    if provider is None:
        return 1
    found = provider.events(args.request)
    if isinstance(found, Failure):
        return _failed("events", found.failure())
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ohf` and `python -m ohf`."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        from ohf.api.serve import serve

        return serve(arguments[1:], os.environ, os.getcwd())
    try:
        args = _parse(arguments)
    except _ArgError as exc:
        call = next((a for a in arguments if a in CALLS), None)
        if call is not None:
            return _emit(error_reply(OhfError(message=f"bad arguments: {exc}", code="input")))
        print(f"ohf: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    if args.command in CALLS:
        return hf_call(args.command, args)
    if args.command == "validate":
        return validate(args)
    if args.command == "health":
        return health(args)
    if args.command == "install-scripts":
        from ohf.effects.install import install_scripts

        if not args.target:
            print("ohf install-scripts: give the plugin directory", file=sys.stderr)
            return 2
        return install_scripts(args.target, args.config)
    if args.command == "storage":
        return storage(args)
    if args.command == "events":
        return events(args)
    if args.command == "demo":
        from ohf.effects.sandbox import demo

        return demo(keep=args.keep)
    print(f"ohf: unknown command {args.command!r}\n{USAGE}", file=sys.stderr)
    return 2
