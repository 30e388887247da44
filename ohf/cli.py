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
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from returns.result import Failure, Result, Success

from ohf.hf import CALLS, Reply, Shell, error_reply, handle
from ohf.model import OhfError, State

if TYPE_CHECKING:
    from ohf.config import AwsConfig
    from ohf.effects.files import Settings
    from ohf.events import Event
    from ohf.program import Interpreter

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


def hf_call(call: str, args: argparse.Namespace) -> int:
    """Run one HF call from the command line."""
    from ohf.effects import logs
    from ohf.effects.aws import ClientGetter, client_getter, make_interpreter, warm
    from ohf.effects.files import load_settings
    from ohf.effects.providers import provider_clouds
    from ohf.placement import providers_of

    payload = _read_payload(args)
    if isinstance(payload, Failure):
        return _emit(error_reply(payload.failure()))
    settings = load_settings(args.config, os.environ, os.getcwd())
    if isinstance(settings, Failure):
        return _emit(error_reply(settings.failure()))
    loaded = settings.unwrap()
    config = loaded.config
    correlation = uuid.uuid4().hex[:12]
    log = logs.setup(
        loaded.log_path,
        config.logging.level,
        call,
        correlation,
        secrets=logs.env_secrets(os.environ),
    )

    getters: list[ClientGetter] = []

    def make(aws: AwsConfig) -> Interpreter:
        clients = logs.logged_clients(client_getter(aws, None), log)
        getters.append(clients)
        return make_interpreter(aws, clients=clients)

    # Every provider gets an interpreter (clients made on first use): disabled ones still
    # describe and terminate the machines they hold.
    clouds = provider_clouds(config, make)
    enabled = [g for p, g in zip(providers_of(config), getters, strict=True) if p.enabled]

    def warm_enabled() -> None:
        for clients in enabled:
            warm(clients)

    shell = Shell(
        settings=loaded,
        cloud=next(iter(clouds.values())),
        clouds=clouds if config.providers else {},
        # Calls that change state build the EC2 client of every enabled provider (importing
        # boto3) once their input is valid and before taking the state lock, so calls at once
        # do not queue behind it.
        warm=warm_enabled,
        now=lambda: int(time.time()),
        new_id=lambda prefix: f"{prefix}-{uuid.uuid4()}",
        correlation=correlation,
    )
    started = time.perf_counter()
    try:
        reply = handle(shell, call, payload.unwrap())
    except Exception as exc:
        # Last line of defence: HF must still get JSON, and the log gets the traceback.
        log.exception("internal error in %s", call)
        reply = error_reply(
            OhfError(message=f"internal error in {call}: {type(exc).__name__}: {exc}")
        )
    log.info(
        "%s exit=%d in %.3fs: %s",
        call,
        reply.exit_code,
        time.perf_counter() - started,
        reply.body[:2000].decode("utf-8", "replace"),
        extra={"request_id": logs.request_ids(reply.body)},
    )
    return _emit(reply)


def validate(args: argparse.Namespace) -> int:
    """`ohf validate`: decode the config and derive every template's attributes, offline."""
    from ohf.effects.files import load_settings
    from ohf.effects.store import describe, read
    from ohf.hf import templates_reply
    from ohf.placement import allowed, effective
    from ohf.templates import check_template

    loaded = load_settings(args.config, os.environ, os.getcwd())
    if isinstance(loaded, Failure):
        print(f"config: FAIL: {loaded.failure().message}")
        return 1
    settings = loaded.unwrap()
    print(f"config: ok ({settings.source})")
    print(f"state:  {describe(settings)}")
    print(f"log:    {settings.log_path}")
    failed = 0
    config = settings.config
    for template in config.templates:
        if not config.providers:
            checked = check_template(template)
            status = "ok" if isinstance(checked, Success) else f"FAIL: {checked.failure().message}"
            failed += status != "ok"
            print(f"template {template.template_id}: {status}")
            continue
        # Each provider runs its own view of the template (its defaults and overrides).
        for provider in config.providers:
            if not allowed(template, provider):
                continue
            checked = effective(template, provider).bind(check_template)
            status = "ok" if isinstance(checked, Success) else f"FAIL: {checked.failure().message}"
            status += "" if provider.enabled else " (disabled)"
            failed += status.startswith("FAIL")
            print(f"template {template.template_id} on {provider.name}: {status}")
    # validate stays offline: a DynamoDB state is not read, so availability is not checked.
    offline = settings.config.storage.type == "dynamodb"
    state = Success(State()) if offline else read(settings)
    listing = state.bind(lambda s: templates_reply(settings, s))
    if isinstance(listing, Failure):
        print(f"templates: FAIL: {listing.failure().message}")
        return 1
    return 1 if failed else 0


def health(args: argparse.Namespace) -> int:
    """`ohf health`: check against each provider's AWS that its templates can launch; 1 if any
    check fails (a disabled provider is listed, not checked)."""
    import msgspec

    from ohf.effects import health as checks
    from ohf.effects.aws import client_getter

    settings = _settings(args, "health")
    if settings is None:
        return 1
    result = checks.report(settings, lambda aws: client_getter(aws, None))
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
        sys.stdout.flush()
    else:
        print(checks.table(result))
    return 0 if result.ok else 1


def _settings(args: argparse.Namespace, command: str) -> Settings | None:
    from ohf.effects.files import load_settings

    loaded = load_settings(args.config, os.environ, os.getcwd())
    if isinstance(loaded, Failure):
        print(f"ohf {command}: {loaded.failure().message}", file=sys.stderr)
        return None
    return loaded.unwrap()


def _failed(command: str, error: OhfError) -> int:
    print(f"ohf {command}: {error.message}", file=sys.stderr)
    return 1


def storage(args: argparse.Namespace) -> int:
    """`ohf storage init|export|import`: set up a store and move its content in and out."""
    from ohf.effects import store

    if args.target not in ("init", "export", "import"):
        print(f"ohf storage: give init, export or import\n{USAGE}", file=sys.stderr)
        return 2
    command = f"storage {args.target}"
    settings = _settings(args, command)
    if settings is None:
        return 1
    if args.target == "init":
        done = store.init(settings)
        if isinstance(done, Failure):
            return _failed(command, done.failure())
        print(done.unwrap())
        return 0
    if args.target == "export":
        lines = store.export_lines(settings)
        if isinstance(lines, Failure):
            return _failed(command, lines.failure())
        return _write_lines(command, args.extra, lines.unwrap())
    raw = _read_input(command, args.extra)
    if raw is None:
        return 1
    imported = store.import_lines(settings, raw.splitlines(), force=args.force)
    if isinstance(imported, Failure):
        return _failed(command, imported.failure())
    print(f"imported {imported.unwrap()} line(s) into {store.describe(settings)}")
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

    from ohf.effects import store

    settings = _settings(args, "events")
    if settings is None:
        return 1
    found = store.read_events(settings, args.request)
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
