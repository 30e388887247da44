"""The five HF calls, each `decode -> core program -> interpret -> encode`, plus state handling.

This is the imperative shell's one place of orchestration: it takes the effect performers as
arguments (`Shell`), so tests can run every call against the fake cloud and a temp directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import EMPTY
from ohf.effects import store_json
from ohf.effects.files import Settings, read_catalogue
from ohf.effects.intents import Intent
from ohf.effects.local import local_interpreter
from ohf.messages import (
    INPUTS,
    ErrorOut,
    TemplatesOut,
)
from ohf.model import OhfError, State
from ohf.outcome import Done
from ohf.program import Answer, Program, run
from ohf.templates import attributes, available, missing_attributes, template_out

CALLS = tuple(INPUTS)
_encoder = msgspec.json.Encoder()


class Shell(msgspec.Struct, frozen=True, kw_only=True):
    """What a call needs from outside: settings, a cloud interpreter, a clock and id maker."""

    settings: Settings
    cloud: Callable[[Intent], Answer]
    now: Callable[[], int]
    new_id: Callable[[str], str]


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """A finished call as the CLI prints it."""

    body: bytes
    exit_code: int


def error_reply(error: OhfError) -> Reply:
    """HF's failure shape: `{"message": ...}` with exit code 1."""
    return Reply(body=_encoder.encode(ErrorOut(message=error.message)), exit_code=1)


def decode_input(call: str, payload: bytes) -> Result[Any, OhfError]:
    """Decode a call's input JSON into its struct, with the path of any error."""
    if call not in INPUTS:
        return Failure(
            OhfError(message=f"unknown call {call!r}; expected one of {', '.join(CALLS)}")
        )
    if not payload.strip():
        if call in ("getAvailableTemplates", "getReturnRequests"):
            payload = b"{}"
        else:
            return Failure(OhfError(message=f"{call}: the input is empty", code="input"))
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(
            OhfError(
                message=f"{call}: input is not valid JSON: not UTF-8 at byte {exc.start}",
                code="input",
            )
        )
    try:
        return Success(msgspec.json.decode(payload, type=INPUTS[call]))
    except msgspec.ValidationError as exc:
        return Failure(OhfError(message=f"{call}: invalid input: {exc}", code="input"))
    except msgspec.DecodeError as exc:
        return Failure(OhfError(message=f"{call}: input is not valid JSON: {exc}", code="input"))


def templates_reply(settings: Settings, state: State) -> Result[TemplatesOut, OhfError]:
    """getAvailableTemplates: templates with derived attributes and units still available."""
    templates = settings.config.templates
    # The catalogue is read only when some template leaves attributes to derive.
    catalogue = read_catalogue() if any(missing_attributes(t) for t in templates) else EMPTY
    out: list[dict[str, Any]] = []
    for template in templates:
        attrs = attributes(template, catalogue)
        if isinstance(attrs, Failure):
            return attrs
        out.append(template_out(template, attrs.unwrap(), available(template, state)))
    return Success(TemplatesOut(templates=out, message=f"{len(out)} template(s)"))


def _finish(path: Path, before: State | None, result: Result[Done, OhfError]) -> Reply:
    """The reply for stdout; the new state is written only if there is one and it changed."""
    if isinstance(result, Failure):
        return error_reply(result.failure())
    done = result.unwrap()
    if before is not None and done.state != before:
        saved = store_json.save(path, done.state)
        if isinstance(saved, Failure):
            return error_reply(saved.failure())
    return Reply(body=_encoder.encode(done.reply), exit_code=done.exit_code)


def _program(
    shell: Shell, call: str, state: State, message: Any
) -> Program[Result[Done, OhfError]]:
    from ohf import acquire, release, status
    from ohf.fleets import unit_weights

    templates = shell.settings.config.templates
    if call == "requestMachines":
        return acquire.request_machines(
            templates, state, message, request_id=shell.new_id("req"), now=shell.now()
        )
    if call == "getRequestStatus":
        weights = {t.template_id: unit_weights(t) for t in templates}
        return status.request_status(state, message, weights=weights, now=shell.now())
    if call == "requestReturnMachines":
        return release.return_machines(
            state, message, return_id=shell.new_id("ret"), now=shell.now()
        )
    return release.return_requests(state, message, now=shell.now())


def handle(shell: Shell, call: str, payload: bytes) -> Reply:
    """Run one HF call on its raw input; never raises for bad input or AWS errors."""
    decoded = decode_input(call, payload)
    if isinstance(decoded, Failure):
        return error_reply(decoded.failure())
    message = decoded.unwrap()
    path = Path(shell.settings.state_path)

    if call in ("getAvailableTemplates", "getReturnRequests"):
        loaded = store_json.load(path)
        if isinstance(loaded, Failure):
            return error_reply(loaded.failure())
        if call == "getAvailableTemplates":
            listing = templates_reply(shell.settings, loaded.unwrap())
            if isinstance(listing, Failure):
                return error_reply(listing.failure())
            return Reply(body=_encoder.encode(listing.unwrap()), exit_code=0)
        program = _program(shell, call, loaded.unwrap(), message)
        result = run(program, local_interpreter(path, shell.cloud))
        return _finish(path, None, result)

    timeout = shell.settings.config.storage.lock_timeout
    with store_json.locked(path, timeout) as lock:
        if isinstance(lock, Failure):
            return error_reply(lock.failure())
        loaded = store_json.load(path)
        if isinstance(loaded, Failure):
            return error_reply(loaded.failure())
        program = _program(shell, call, loaded.unwrap(), message)
        result = run(program, local_interpreter(path, shell.cloud))
        return _finish(path, loaded.unwrap(), result)
