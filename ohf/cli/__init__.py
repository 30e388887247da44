"""Command line: `ohf <HF call> -f FILE | -d JSON`, and the operator's commands.

HF calls print exactly one JSON document on stdout and exit 0, or 1 with `{"message": ...}`;
they take a path of their own (no argparse, no command table) because HF starts a process for
every call. Every other command (`ohf --help` lists them by group) is parsed by
`ohf.cli.parser`: each has its own `--help` with an example; usage errors exit 2.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ohf.messages import INPUTS

if TYPE_CHECKING:
    from ohf.hf import Reply

CALLS = tuple(INPUTS)
_HELP = frozenset({"-h", "--help"})
# HF call options: (short, long) -> the key it sets.
_HF_OPTIONS = {"-f": "file", "--file": "file", "-d": "data", "--data": "data", "--config": "config"}


def hf_arguments(argv: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """`-f FILE`, `-d JSON` and `--config PATH` (also `--opt=value`): (values, problem)."""
    values: dict[str, str] = {}
    items = list(argv)
    while items:
        item = items.pop(0)
        name, equals, inline = item.partition("=")
        key = _HF_OPTIONS.get(name if name.startswith("--") else item)
        if key is None:
            return values, f"unrecognized arguments: {item}"
        if equals and name.startswith("--"):
            value = inline
        elif not items:
            return values, f"argument {_spelling(key)}: expected one argument"
        else:
            value = items.pop(0)
        if key in values:
            return values, f"argument {_spelling(key)}: given twice"
        values[key] = value
    if "file" in values and "data" in values:
        return values, "give -f FILE or -d JSON, not both"
    return values, None


def _spelling(key: str) -> str:
    return {"file": "-f/--file", "data": "-d/--data", "config": "--config"}[key]


def emit(reply: Reply) -> int:
    """Print HF's reply, alone, on stdout; its exit code."""
    sys.stdout.buffer.write(reply.body + b"\n")
    sys.stdout.flush()
    return reply.exit_code


def hf_call(call: str, argv: Sequence[str]) -> int:
    """One HF call from the command line: HF's JSON on stdout, exit code 0 or 1."""
    from returns.result import Failure

    from ohf.hf import error_reply
    from ohf.model import OhfError
    from ohf.provider import Provider
    from ohf.shell import configure_logging, new_correlation

    values, problem = hf_arguments(argv)
    if problem is not None:
        return emit(error_reply(OhfError(message=f"bad arguments: {problem}", code="input")))
    if "data" in values:
        payload = values["data"].encode("utf-8", "surrogateescape")
    elif "file" in values:
        from ohf.effects.files import read_bytes

        read = read_bytes(values["file"], what="input file")
        if isinstance(read, Failure):
            return emit(error_reply(read.failure()))
        payload = read.unwrap()
    else:
        payload = b""
    correlation = new_correlation()
    opened = Provider.open(values.get("config"), os.environ, correlation=correlation)
    if isinstance(opened, Failure):
        return emit(error_reply(opened.failure()))
    provider = opened.unwrap()
    configure_logging(provider.settings, call, correlation, os.environ)
    return emit(provider.call(call, payload))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ohf` and `python -m ohf`."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in CALLS and not _HELP & set(arguments[1:]):
        # A process per HF call: reference counting frees its garbage, and the cyclic
        # collector's passes over the objects botocore's import makes cost 7-13% of the call's
        # CPU (measured); the process ends with the call. On again after, for callers in-process.
        was_on = gc.isenabled()
        gc.disable()
        try:
            return hf_call(arguments[0], arguments[1:])
        finally:
            if was_on:
                gc.enable()
    from ohf.cli.commands import run

    return run(arguments)
