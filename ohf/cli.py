"""Command line: `ohf <HF call> -f FILE | -d JSON`, and the human commands.

HF calls print exactly one JSON document on stdout and exit 0, or 1 with `{"message": ...}`.
Human commands: `validate`, `install-scripts DIR`, `demo`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence

from returns.result import Failure, Result, Success

from ohf.hf import CALLS, Reply, Shell, error_reply, handle
from ohf.model import OhfError

USAGE = """ohf CALL [-f FILE | -d JSON] [--config PATH]
  CALL: getAvailableTemplates | requestMachines | getRequestStatus |
        requestReturnMachines | getReturnRequests
ohf validate [--config PATH]        check the config and templates offline
ohf install-scripts DIR [--config PATH]  write HF's five scripts and a sample conf into DIR
ohf demo [--keep]                   run the whole lifecycle against an embedded moto_server"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohf", usage=USAGE, add_help=True)
    parser.add_argument("command")
    parser.add_argument("target", nargs="?")
    parser.add_argument("-f", "--file", dest="file")
    parser.add_argument("-d", "--data", dest="data")
    parser.add_argument("--config")
    parser.add_argument("--keep", action="store_true", help="demo: keep the conf dir")
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
    from ohf.effects.aws import make_interpreter
    from ohf.effects.files import load_settings

    payload = _read_payload(args)
    if isinstance(payload, Failure):
        return _emit(error_reply(payload.failure()))
    settings = load_settings(args.config, os.environ, os.getcwd())
    if isinstance(settings, Failure):
        return _emit(error_reply(settings.failure()))
    loaded = settings.unwrap()
    correlation = uuid.uuid4().hex[:12]
    log = logs.setup(loaded.log_path, loaded.config.logging.level, call, correlation)

    shell = Shell(
        settings=loaded,
        # boto3 itself is imported by the interpreter on the first cloud intent only.
        cloud=make_interpreter(loaded.config.aws),
        now=lambda: int(time.time()),
        new_id=lambda prefix: f"{prefix}-{uuid.uuid4()}",
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
    )
    return _emit(reply)


def validate(args: argparse.Namespace) -> int:
    """`ohf validate`: decode the config and derive every template's attributes, offline."""
    from ohf.effects.files import load_settings
    from ohf.effects.store_json import load
    from ohf.hf import templates_reply
    from ohf.templates import check_template

    loaded = load_settings(args.config, os.environ, os.getcwd())
    if isinstance(loaded, Failure):
        print(f"config: FAIL: {loaded.failure().message}")
        return 1
    settings = loaded.unwrap()
    print(f"config: ok ({settings.source})")
    print(f"state:  {settings.state_path}")
    print(f"log:    {settings.log_path}")
    failed = 0
    for template in settings.config.templates:
        checked = check_template(template)
        status = "ok" if isinstance(checked, Success) else f"FAIL: {checked.failure().message}"
        failed += status != "ok"
        print(f"template {template.template_id}: {status}")
    from pathlib import Path

    state = load(Path(settings.state_path))
    listing = state.bind(lambda s: templates_reply(settings, s))
    if isinstance(listing, Failure):
        print(f"templates: FAIL: {listing.failure().message}")
        return 1
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ohf` and `python -m ohf`."""
    arguments = list(sys.argv[1:] if argv is None else argv)
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
    if args.command == "install-scripts":
        from ohf.effects.install import install_scripts

        if not args.target:
            print("ohf install-scripts: give the plugin directory", file=sys.stderr)
            return 2
        return install_scripts(args.target, args.config)
    if args.command == "demo":
        from ohf.effects.sandbox import demo

        return demo(keep=args.keep)
    print(f"ohf: unknown command {args.command!r}\n{USAGE}", file=sys.stderr)
    return 2
