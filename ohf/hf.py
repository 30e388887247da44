"""The five HF calls, each `decode -> core program -> interpret -> encode`, plus state handling.

This is the imperative shell's one place of orchestration: it takes the effect performers as
arguments (`Shell`), so tests can run every call against the fake cloud and a temp directory.
A call that changes state runs whole (AWS calls included) inside one store transaction; every
commit, checkpoint or final, carries the events that take the last committed state to the new
one, and the final state is stamped (`mark_ended`) and pruned before it is committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.acquire import ONE_PROVIDER, Placement
from ohf.catalogue import EMPTY, Catalogue
from ohf.config import Config
from ohf.effects import store
from ohf.effects.circuit import circuit, circuits, open_circuits
from ohf.effects.files import Settings, read_catalogue
from ohf.effects.local import local_interpreter
from ohf.effects.providers import routed
from ohf.intents import Intent
from ohf.messages import (
    INPUTS,
    ErrorOut,
    TemplatesOut,
)
from ohf.model import OhfError, State, Template
from ohf.outcome import Done
from ohf.placement import (
    PROVIDER_SEPARATOR,
    allowed,
    effective,
    providers_of,
    room_on,
    total_room,
)
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
    # Stamped on the call's events (and its log lines); the lease owner of a DynamoDB store.
    correlation: str = "local"
    # Done before a state-changing call takes the store lock (e.g. build AWS clients).
    warm: Callable[[], None] | None = None
    # One interpreter per `[[providers]]` name; empty: `cloud` is the only (`[aws]`) provider.
    clouds: Mapping[str, Callable[[Intent], Answer]] = {}


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
    except RecursionError:
        # msgspec recurses per nesting level; a hostile file must not become an internal error.
        return Failure(OhfError(message=f"{call}: input is nested too deeply", code="input"))


def templates_reply(settings: Settings, state: State) -> Result[TemplatesOut, OhfError]:
    """getAvailableTemplates: templates with derived attributes and units still available.

    With several providers a template's `availableNumber` is the sum over the enabled ones it
    may use; `list_per_provider` adds one entry per provider, `<templateId>.<provider>`.
    """
    config = settings.config
    templates = config.templates
    # The catalogue is read only when some template leaves attributes to derive.
    catalogue = read_catalogue() if any(missing_attributes(t) for t in templates) else EMPTY
    out: list[dict[str, Any]] = []
    for template in templates:
        attrs = attributes(template, catalogue)
        if isinstance(attrs, Failure):
            return attrs
        if not config.providers:
            out.append(template_out(template, attrs.unwrap(), available(template, state)))
            continue
        room = total_room(template, config.providers, state)
        out.append(template_out(template, attrs.unwrap(), room))
        if config.placement.list_per_provider:
            listed = per_provider(template, config, state, catalogue)
            if isinstance(listed, Failure):
                return listed
            out.extend(listed.unwrap())
    return Success(TemplatesOut(templates=out, message=f"{len(out)} template(s)"))


def per_provider(
    template: Template, config: Config, state: State, catalogue: Catalogue
) -> Result[list[dict[str, Any]], OhfError]:
    """The template as each enabled provider it may use runs it, id suffixed by the provider."""
    out: list[dict[str, Any]] = []
    for provider in config.providers:
        if not provider.enabled or not allowed(template, provider):
            continue
        view = effective(template, provider)
        attrs = view.bind(lambda v: attributes(v, catalogue))
        if isinstance(attrs, Failure):
            return attrs
        shown = view.unwrap()
        body = template_out(shown, attrs.unwrap(), room_on(shown, provider, state))
        body.pop("providers", None)
        out.append(
            {**body, "templateId": f"{template.template_id}{PROVIDER_SEPARATOR}{provider.name}"}
        )
    return Success(out)


def placement_of(settings: Settings, now: int) -> Placement:
    """The providers, policy and open circuits a call places new machines by."""
    config = settings.config
    if not config.providers:
        return ONE_PROVIDER
    return Placement(
        providers=config.providers,
        policy=config.placement.policy,
        failover=config.placement.failover,
        open_circuits=open_circuits(settings, now),
    )


def _reply(result: Result[Done, OhfError]) -> Reply:
    if isinstance(result, Failure):
        return error_reply(result.failure())
    done = result.unwrap()
    return Reply(body=_encoder.encode(done.reply), exit_code=done.exit_code)


def _read_only(state: State) -> Result[None, OhfError]:
    del state
    return Failure(OhfError(message="a read-only call cannot save state", code="state"))


def _retention(settings: Settings) -> int:
    return int(settings.config.storage.retention_days * 86_400)


def _write_call(shell: Shell, call: str, message: Any, txn: store.Txn) -> Reply:
    """Run a state-changing call inside its transaction; commit checkpoints and the result."""
    from ohf.events import diff, mark_ended, prune

    committed = txn.state

    def save(state: State) -> Result[None, OhfError]:
        nonlocal committed
        if state == committed:
            return Success(None)
        events = diff(committed, state, at=shell.now(), correlation=shell.correlation, call=call)
        saved = txn.commit(state, events)
        if isinstance(saved, Success):
            committed = state
        return saved

    result = run(_program(shell, call, txn.state, message), local_interpreter(save, shell.cloud))
    if isinstance(result, Failure):
        return error_reply(result.failure())
    now = shell.now()
    final = prune(
        mark_ended(txn.state, result.unwrap().state, now),
        now=now,
        retention=_retention(shell.settings),
    )
    saved = save(final)
    if isinstance(saved, Failure):
        return error_reply(saved.failure())
    return _reply(result)


def _program(
    shell: Shell, call: str, state: State, message: Any
) -> Program[Result[Done, OhfError]]:
    from ohf import acquire, release, status
    from ohf.fleets import unit_weights

    config = shell.settings.config
    templates = config.templates
    if call == "requestMachines":
        return acquire.request_machines(
            templates,
            state,
            message,
            request_id=shell.new_id("req"),
            now=shell.now(),
            placement=placement_of(shell.settings, shell.now()),
        )
    if call == "getRequestStatus":
        weights = {t.template_id: unit_weights(t) for t in templates}
        return status.request_status(
            state,
            message,
            weights=weights,
            now=shell.now(),
            templates=templates,
            placement=placement_of(shell.settings, shell.now()) if config.providers else None,
            provider_weights={
                p.name: {
                    t.template_id: unit_weights(effective(t, p).value_or(t)) for t in templates
                }
                for p in config.providers
            },
        )
    if call == "requestReturnMachines":
        return release.return_machines(
            state, message, return_id=shell.new_id("ret"), now=shell.now()
        )
    providers = tuple(p.name for p in providers_of(config))
    return release.return_requests(state, message, now=shell.now(), providers=providers)


@contextlib.contextmanager
def guarded_cloud(shell: Shell) -> Iterator[Callable[[Intent], Answer]]:
    """The call's cloud behind its breakers: one per provider, routed by `At`."""
    if not shell.clouds:
        with circuit(shell.settings, shell.cloud, shell.now) as cloud:
            yield cloud
        return
    with circuits(shell.settings, shell.clouds, shell.now) as clouds:
        yield routed(clouds, default=next(iter(shell.clouds)))


def handle(shell: Shell, call: str, payload: bytes) -> Reply:
    """Run one HF call on its raw input; never raises for bad input or AWS errors."""
    decoded = decode_input(call, payload)
    if isinstance(decoded, Failure):
        return error_reply(decoded.failure())
    message = decoded.unwrap()

    if call in ("getAvailableTemplates", "getReturnRequests"):
        loaded = store.read(shell.settings)
        if isinstance(loaded, Failure):
            return error_reply(loaded.failure())
        if call == "getAvailableTemplates":
            listing = templates_reply(shell.settings, loaded.unwrap())
            if isinstance(listing, Failure):
                return error_reply(listing.failure())
            return Reply(body=_encoder.encode(listing.unwrap()), exit_code=0)
        program = _program(shell, call, loaded.unwrap(), message)
        with guarded_cloud(shell) as cloud:
            return _reply(run(program, local_interpreter(_read_only, cloud)))

    if shell.warm is not None:
        shell.warm()
    with store.transaction(shell.settings, owner=shell.correlation) as opened:
        if isinstance(opened, Failure):
            return error_reply(opened.failure())
        # The breakers are saved under the store's lock, whatever the call's outcome.
        with guarded_cloud(shell) as cloud:
            guarded = msgspec.structs.replace(shell, cloud=cloud)
            return _write_call(guarded, call, message, opened.unwrap())
