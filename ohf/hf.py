"""The five HF calls, each `decode -> core program -> interpret -> encode`, plus state handling.

This is the front door's engine (`ohf.provider.Provider` is its public face): it takes every
effect performer as data (`Shell`), so tests run every call against the fake cloud and a temp
directory. The clock is read once per call; the environment, the catalogue and the breaker
state reach the core from here as arguments. A call that changes state runs whole (AWS calls
included) inside one store transaction; every commit, checkpoint or final, carries the events
that take the last committed state to the new one, and the final state is stamped
(`mark_ended`) and pruned before it is committed. Then, still under the lock, the event log is
compacted if it has grown past `[storage]`'s size or age (a failure there is logged, never
turned into a failed call: the state was already committed).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import EMPTY, Catalogue
from ohf.config import Config
from ohf.effects import store
from ohf.effects.files import Settings, read_catalogue
from ohf.messages import INPUTS, ErrorOut, TemplatesOut
from ohf.model import OhfError, State, Template
from ohf.placement import (
    ONE_PROVIDER,
    PROVIDER_SEPARATOR,
    Placement,
    allowed,
    effective,
    providers_of,
    rooms,
)
from ohf.room import total
from ohf.templates import attributes, missing_attributes, room_left, template_out

if TYPE_CHECKING:
    # Imported where used: getAvailableTemplates runs no program, breaker or cloud.
    from ohf.intents import Intent
    from ohf.outcome import Done
    from ohf.program import Answer, Program

CALLS = tuple(INPUTS)
_encoder = msgspec.json.Encoder()
log = logging.getLogger("ohf.store")


class Shell(msgspec.Struct, frozen=True, kw_only=True):
    """What a call needs from outside: settings, cloud interpreters, clock, ids, environment."""

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
    # The process environment as the door read it (the breakers' endpoint keys use it).
    env: Mapping[str, str] = {}
    # The instance-type catalogue, read only when a template leaves attributes to derive.
    catalogue: Callable[[], Catalogue] = read_catalogue


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """A finished call as the CLI prints it."""

    body: bytes
    exit_code: int
    # The call failed inside ohf (a bug), not on its input or in AWS.
    internal: bool = False


class Replied(msgspec.Struct, frozen=True, kw_only=True):
    """A finished call as a value: HF's reply document (a `messages` struct) and exit code."""

    reply: Any
    exit_code: int
    internal: bool = False


def error_reply(error: OhfError) -> Reply:
    """HF's failure shape: `{"message": ...}` with exit code 1."""
    return encoded(refused(error))


def refused(error: OhfError) -> Replied:
    """A call refused (nothing changed): HF's `{"message": ...}`, exit code 1."""
    return Replied(reply=ErrorOut(message=error.message), exit_code=1)


def encoded(replied: Replied) -> Reply:
    """The reply as the bytes HF reads on stdout."""
    return Reply(
        body=_encoder.encode(replied.reply),
        exit_code=replied.exit_code,
        internal=replied.internal,
    )


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


def templates_reply(
    config: Config, state: State, catalogue: Callable[[], Catalogue] = read_catalogue
) -> Result[TemplatesOut, OhfError]:
    """getAvailableTemplates: templates with derived attributes and units still available.

    With several providers a template's `availableNumber` is the sum over the enabled ones it
    may use; `list_per_provider` adds one entry per provider, `<templateId>.<provider>`.
    """
    templates = config.templates
    # The catalogue is read only when some template leaves attributes to derive.
    known = catalogue() if any(missing_attributes(t) for t in templates) else EMPTY
    out: list[dict[str, Any]] = []
    for template in templates:
        attrs = attributes(template, known)
        if isinstance(attrs, Failure):
            return attrs
        if not config.providers:
            out.append(template_out(template, attrs.unwrap(), room_left(template, state)))
            continue
        room = total(rooms(template, config.providers, state).values())
        out.append(template_out(template, attrs.unwrap(), room))
        if config.placement.list_per_provider:
            listed = per_provider(template, config, state, known)
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
        body = template_out(shown, attrs.unwrap(), room_left(shown, state, provider.name))
        body.pop("providers", None)
        out.append(
            {**body, "templateId": f"{template.template_id}{PROVIDER_SEPARATOR}{provider.name}"}
        )
    return Success(out)


def placement_of(shell: Shell, now: int) -> Placement:
    """The providers, policy and open circuits a call places new machines by."""
    config = shell.settings.config
    if not config.providers:
        return ONE_PROVIDER
    return Placement(
        providers=config.providers,
        policy=config.placement.policy,
        failover=config.placement.failover,
        open_circuits=_open_circuits(shell, now),
    )


def _open_circuits(shell: Shell, now: int) -> frozenset[str]:
    from ohf.effects.circuit import open_circuits

    return open_circuits(shell.settings, now, shell.env)


def _replied(result: Result[Done, OhfError]) -> Replied:
    if isinstance(result, Failure):
        return refused(result.failure())
    done = result.unwrap()
    return Replied(reply=done.reply, exit_code=done.exit_code)


def _read_only(state: State) -> Result[None, OhfError]:
    del state
    return Failure(OhfError(message="a read-only call cannot save state", code="state"))


def _retention(settings: Settings) -> int:
    return int(settings.config.storage.retention_days * 86_400)


def _write_call(shell: Shell, call: str, message: Any, txn: store.Txn, now: int) -> Replied:
    """Run a state-changing call inside its transaction; commit checkpoints and the result."""
    from ohf.effects.local import local_interpreter
    from ohf.events import diff, mark_ended, prune
    from ohf.program import run

    committed = txn.state

    def save(state: State) -> Result[None, OhfError]:
        nonlocal committed
        if state == committed:
            return Success(None)
        events = diff(committed, state, at=now, correlation=shell.correlation, call=call)
        saved = txn.commit(state, events)
        if isinstance(saved, Success):
            committed = state
        return saved

    program = _program(shell, call, txn.state, message, now)
    result = run(program, local_interpreter(save, shell.cloud))
    if isinstance(result, Failure):
        return refused(result.failure())
    final = prune(
        mark_ended(txn.state, result.unwrap().state, now),
        now=now,
        retention=_retention(shell.settings),
    )
    saved = save(final)
    if isinstance(saved, Failure):
        return refused(saved.failure())
    compact_if_due(shell.settings, txn, now)
    return _replied(result)


def compact_if_due(settings: Settings, txn: store.Txn, now: int) -> None:
    """Compact the event log now if it passed `[storage]`'s size or age (see `ohf.compaction`)."""
    from ohf.compaction import due

    policy = store.policy(settings, now)
    size = txn.log_size()
    if isinstance(size, Success) and not due(size.unwrap(), policy):
        return
    done = size.bind(lambda _: txn.compact(policy))
    if isinstance(done, Failure):
        log.warning("event log not compacted: %s", done.failure().message)
        return
    figures = done.unwrap()
    if figures.folded:
        log.info(
            "event log compacted: %d event(s) folded into its snapshot, %d kept (%d -> %d bytes)",
            figures.folded,
            figures.kept,
            figures.bytes_before,
            figures.bytes_after,
        )


def _program(
    shell: Shell, call: str, state: State, message: Any, now: int
) -> Program[Result[Done, OhfError]]:
    # Each call imports its own program only: HF starts a process per call.
    config = shell.settings.config
    templates = config.templates
    if call == "requestMachines":
        from ohf import parts

        return parts.request_machines(
            templates,
            state,
            message,
            request_id=shell.new_id("req"),
            now=now,
            placement=placement_of(shell, now),
        )
    if call == "getRequestStatus":
        from ohf import poll
        from ohf.fleets import unit_weights

        weights = {t.template_id: unit_weights(t) for t in templates}
        return poll.request_status(
            state,
            message,
            weights=weights,
            now=now,
            templates=templates,
            placement=placement_of(shell, now) if config.providers else None,
            provider_weights={
                p.name: {
                    t.template_id: unit_weights(effective(t, p).value_or(t)) for t in templates
                }
                for p in config.providers
            },
            tag_ids=config.aws.tag_instance_id,
        )
    from ohf import release

    if call == "requestReturnMachines":
        return release.return_machines(state, message, return_id=shell.new_id("ret"), now=now)
    providers = tuple(p.name for p in providers_of(config))
    return release.return_requests(
        state,
        message,
        now=now,
        providers=providers,
        terminate_on_notice=config.aws.terminate_spot_on_notice,
    )


def read_only_call(call: str, config: Config) -> bool:
    """True for a call that never changes the state: it runs without the store's lock.

    getReturnRequests changes it only when it terminates noticed spot machines (and must then
    record that they are going, in the same transaction as everything else).
    """
    if call == "getReturnRequests":
        return not config.aws.terminate_spot_on_notice
    return call == "getAvailableTemplates"


@contextlib.contextmanager
def guarded_cloud(shell: Shell) -> Iterator[Callable[[Intent], Answer]]:
    """The call's cloud behind its breakers: one per provider, routed by `At`."""
    from ohf.effects.circuit import circuit, circuits
    from ohf.effects.providers import routed

    if not shell.clouds:
        with circuit(shell.settings, shell.cloud, shell.now, shell.env) as cloud:
            yield cloud
        return
    with circuits(shell.settings, shell.clouds, shell.now, shell.env) as clouds:
        yield routed(clouds, default=next(iter(shell.clouds)))


def serve(shell: Shell, call: str, message: Any) -> Replied:
    """Run one HF call on its decoded input; never raises for AWS errors."""
    now = shell.now()
    if read_only_call(call, shell.settings.config):
        loaded = store.read(shell.settings)
        if isinstance(loaded, Failure):
            return refused(loaded.failure())
        if call == "getAvailableTemplates":
            listing = templates_reply(shell.settings.config, loaded.unwrap(), shell.catalogue)
            if isinstance(listing, Failure):
                return refused(listing.failure())
            return Replied(reply=listing.unwrap(), exit_code=0)
        from ohf.effects.local import local_interpreter
        from ohf.program import run

        program = _program(shell, call, loaded.unwrap(), message, now)
        with guarded_cloud(shell) as cloud:
            return _replied(run(program, local_interpreter(_read_only, cloud)))

    if shell.warm is not None:
        shell.warm()
    with store.transaction(shell.settings, owner=shell.correlation) as opened:
        if isinstance(opened, Failure):
            return refused(opened.failure())
        # The breakers are saved under the store's lock, whatever the call's outcome.
        with guarded_cloud(shell) as cloud:
            guarded = msgspec.structs.replace(shell, cloud=cloud)
            return _write_call(guarded, call, message, opened.unwrap(), now)


def handle(shell: Shell, call: str, payload: bytes) -> Reply:
    """Run one HF call on its raw input; never raises for bad input or AWS errors."""
    decoded = decode_input(call, payload)
    if isinstance(decoded, Failure):
        return error_reply(decoded.failure())
    return encoded(serve(shell, call, decoded.unwrap()))
