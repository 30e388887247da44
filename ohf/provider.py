"""The front door: `Provider`, one value that every face (CLI, REST API, tests, Python tools) uses.

`Provider.open()` finds and decodes the config, reads the environment once, and builds the shell
once: one set of AWS clients per provider (made on first use, every AWS call logged), the
breakers, the store, the clock and the id maker. Its methods are the five HF calls as typed
values, plus what operators ask of ohf (validate, health, requests, machines, events, the
store). Nothing else in ohf wires interpreters: a face that needs AWS goes through here.

    >>> from ohf import Provider
    >>> provider = Provider.open("ohf.toml").unwrap()
    >>> provider.templates().unwrap().templates[0]["availableNumber"]
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.effects.files import Settings, load_settings
from ohf.hf import Replied, Reply, Shell, decode_input, encoded, error_reply, refused, serve
from ohf.messages import (
    MachineRef,
    RequestAccepted,
    RequestMachinesIn,
    RequestRef,
    RequestsStatusOut,
    RequestStatusIn,
    ReturnMachinesIn,
    ReturnRequestsIn,
    ReturnRequestsOut,
    TemplateAsk,
    TemplatesIn,
    TemplatesOut,
)
from ohf.model import OhfError, State
from ohf.shell import CallHook, aws_shells, new_correlation

if TYPE_CHECKING:
    from ohf.breaker import Breaker
    from ohf.compaction import Compacted
    from ohf.config import AwsConfig
    from ohf.discovery import Discovery
    from ohf.effects.health import Report
    from ohf.effects.store import Check, Imported
    from ohf.events import Event
    from ohf.explain import Explanation
    from ohf.listings import MachineRow, RequestDetail, RequestRow, TemplateRow
    from ohf.model import RequestStatus
    from ohf.overview import Overview
    from ohf.validation import Validation

log = logging.getLogger("ohf")


class Provider(msgspec.Struct, frozen=True, kw_only=True):
    """ohf as a value: the settings it runs with and how it makes the shell of each call.

    `correlation` fixes the correlation id of every call (the CLI's, which its log lines
    carry); None gives each call a new one (the REST API).
    """

    settings: Settings
    shell_for: Callable[[str], Shell]
    correlation: str | None = None

    @classmethod
    def open(
        cls,
        config: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | None = None,
        correlation: str | None = None,
        on_call: CallHook | None = None,
    ) -> Result[Provider, OhfError]:
        """ohf over real AWS, configured as HF would find it: `config` (a path), else
        `$OHF_CONFIG`, `ohf.toml` in HF's conf dirs or `cwd`, else IBM's `awsprov_*.json`.

        `env` is the environment to read (default: this process's); `on_call(operation)` is
        told of every AWS call (the REST API counts them).
        """
        environ = dict(os.environ) if env is None else dict(env)
        loaded = load_settings(config, environ, cwd or os.getcwd())
        return loaded.map(
            lambda settings: cls(
                settings=settings,
                shell_for=aws_shells(settings, environ, on_call),
                correlation=correlation,
            )
        )

    @classmethod
    def over(cls, shell: Shell) -> Provider:
        """A provider over a shell built by hand (the fake cloud in tests: `ohf.testing`)."""
        return cls(
            settings=shell.settings,
            shell_for=lambda correlation: msgspec.structs.replace(shell, correlation=correlation),
            correlation=shell.correlation,
        )

    def shell(self) -> Shell:
        """The shell of one call."""
        return self.shell_for(self.correlation or new_correlation())

    # --- The five HF calls -------------------------------------------------------------------

    def call(self, name: str, payload: bytes) -> Reply:
        """One HF call on its raw JSON input, as HF's scripts make it: the reply's bytes and
        exit code. Never raises: an internal error is logged and answered in HF's shape."""
        decoded = decode_input(name, payload)
        if isinstance(decoded, Failure):
            return error_reply(decoded.failure())
        replied = self._serve(name, decoded.unwrap())
        return encoded(replied)

    def _serve(self, name: str, message: Any) -> Replied:
        shell = self.shell()
        started = time.perf_counter()
        try:
            replied = serve(shell, name, message)
        except Exception as exc:
            # Last line of defence: the caller still gets HF's shape, the log the traceback.
            log.exception("internal error in %s", name)
            return msgspec.structs.replace(
                refused(OhfError(message=f"internal error in {name}: {type(exc).__name__}: {exc}")),
                internal=True,
            )
        if log.isEnabledFor(logging.INFO):
            body = msgspec.json.encode(replied.reply)
            log.info(
                "%s exit=%d in %.3fs: %s",
                name,
                replied.exit_code,
                time.perf_counter() - started,
                body[:2000].decode("utf-8", "replace"),
                extra={"request_id": _request_ids(replied.reply)},
            )
        return replied

    def _typed(self, name: str, message: Any) -> Result[Any, OhfError]:
        replied = self._serve(name, message)
        if replied.exit_code == 0:
            return Success(replied.reply)
        return Failure(OhfError(message=replied.reply.message, code="call"))

    def templates(self) -> Result[TemplatesOut, OhfError]:
        """getAvailableTemplates."""
        return self._typed("getAvailableTemplates", TemplatesIn())

    def request_machines(self, template_id: str, count: int) -> Result[RequestAccepted, OhfError]:
        """requestMachines: `count` units of `template_id`."""
        if count < 1:
            return Failure(OhfError(message="machineCount must be at least 1", code="input"))
        ask = RequestMachinesIn(template=TemplateAsk(template_id=template_id, machine_count=count))
        return self._typed("requestMachines", ask)

    def request_status(self, *request_ids: str) -> Result[RequestsStatusOut, OhfError]:
        """getRequestStatus of acquire and return request ids."""
        ask = RequestStatusIn(requests=[RequestRef(request_id=r) for r in request_ids])
        return self._typed("getRequestStatus", ask)

    def return_machines(self, *machines: str | MachineRef) -> Result[RequestAccepted, OhfError]:
        """requestReturnMachines: machines by instance id (or as HF names them)."""
        if not machines:
            return Failure(OhfError(message="no machine to return", code="input"))
        return self._typed("requestReturnMachines", ReturnMachinesIn(machines=_refs(machines)))

    def return_requests(self, *machines: str | MachineRef) -> Result[ReturnRequestsOut, OhfError]:
        """getReturnRequests: which of these machines (default: all HF holds) the cloud takes."""
        return self._typed("getReturnRequests", ReturnRequestsIn(machines=_refs(machines)))

    # --- What operators ask -----------------------------------------------------------------

    def state(self) -> Result[State, OhfError]:
        """The state as last committed (no lock, no AWS call)."""
        from ohf.effects import store

        return store.read(self.settings)

    def validate(self) -> Validation:
        """The config checked offline: every template as each provider runs it (native fragments
        against botocore's models), whether getAvailableTemplates would answer (the store is not
        read for a DynamoDB state), and the warnings (userDataScript files read for them)."""
        from ohf.effects import store
        from ohf.effects.aws.native_check import check_native
        from ohf.effects.files import readable_texts
        from ohf.hf import templates_reply
        from ohf.imds import user_data_scripts
        from ohf.validation import Validation, template_verdicts, warnings

        settings = self.settings
        offline = settings.config.storage.type == "dynamodb"
        state = Success(State()) if offline else store.read(settings)
        shell = self.shell()
        listing = state.bind(lambda s: templates_reply(settings.config, s, shell.catalogue))
        return Validation(
            source=settings.source,
            state=store.describe(settings),
            log=settings.log_path,
            # Native fragments are checked against botocore's models of AWS's operations too.
            templates=template_verdicts(settings.config, also=check_native),
            listing_error=listing.failure().message if isinstance(listing, Failure) else None,
            warnings=warnings(settings.config, readable_texts(user_data_scripts(settings.config))),
        )

    def health(self) -> Report:
        """Each provider's region, credentials, role and templates checked against AWS."""
        from ohf.effects import health, logs
        from ohf.effects.aws import client_getter

        return health.report(
            self.settings, lambda aws: logs.logged_clients(client_getter(aws, None), log)
        )

    def template_rows(self) -> Result[list[TemplateRow], OhfError]:
        """Every template: API, types, maxNumber, units in use, room (per provider too)."""
        from ohf.listings import template_rows

        catalogue = self.shell().catalogue
        return self.state().map(lambda s: template_rows(self.settings.config, s, catalogue()))

    def requests(
        self,
        *,
        status: RequestStatus | None = None,
        template: str | None = None,
        since: int | None = None,
    ) -> Result[list[RequestRow], OhfError]:
        """Every request ohf holds, from the store (no AWS call), filtered as asked."""
        from ohf.listings import request_rows

        now = self.shell().now()
        return self.state().map(
            lambda s: request_rows(s, now, status=status, template=template, since=since)
        )

    def request(self, request_id: str) -> Result[tuple[RequestDetail, tuple[Event, ...]], OhfError]:
        """One request in full (parts, machines) and its events."""
        from ohf.listings import request_detail

        now = self.shell().now()
        found = self.state().map(lambda s: request_detail(s, request_id, now))
        if isinstance(found, Failure):
            return found
        detail = found.unwrap()
        if detail is None:
            return Failure(
                OhfError(message=f"no request {request_id!r} in the store", code="input")
            )
        ids = [p.request_id for p in detail.parts] or [request_id]
        events: list[Event] = []
        for rid in ids:
            got = self.events(rid)
            if isinstance(got, Failure):
                return got
            events += got.unwrap()
        return Success((detail, tuple(sorted(events, key=lambda e: e.at))))

    def machines(
        self,
        *,
        request: str | None = None,
        state: str | None = None,
        provider: str | None = None,
    ) -> Result[list[MachineRow], OhfError]:
        """Every machine ohf launched, from the store (no AWS call), filtered as asked."""
        from ohf.listings import machine_rows

        now = self.shell().now()
        return self.state().map(
            lambda s: machine_rows(s, now, request=request, machine_state=state, provider=provider)
        )

    def breakers(self) -> dict[str, Breaker]:
        """Each provider's circuit breaker as last saved, by provider name ("" for `[aws]`)."""
        from ohf.effects.circuit import breaker_key, breaker_path, load
        from ohf.placement import providers_of

        saved = load(breaker_path(self.settings))
        env = self.shell().env
        config = self.settings.config
        return {
            p.name: saved[key]
            for p in providers_of(config)
            if (key := breaker_key(p.name, config.aws, env)) in saved
        }

    def explain(self, request_id: str) -> Result[Explanation, OhfError]:
        """Why a request stands where it does, in plain words (state, events, breakers)."""
        from ohf.explain import explain

        loaded = self.state()
        if isinstance(loaded, Failure):
            return loaded
        state = loaded.unwrap()
        owned = [r for r in state.requests.values() if (r.parent or r.request_id) == request_id]
        events: list[Event] = []
        for part in owned:
            got = self.events(part.request_id)
            if isinstance(got, Failure):
                return got
            events += got.unwrap()
        found = explain(
            state, request_id, self.shell().now(), events=events, breakers=self.breakers()
        )
        if found is None:
            return Failure(
                OhfError(message=f"no request {request_id!r} in the store", code="input")
            )
        return Success(found)

    def events(self, request_id: str | None = None) -> Result[tuple[Event, ...], OhfError]:
        """The event log in commit order, of every request or of one."""
        from ohf.effects import store

        return store.read_events(self.settings, request_id)

    # --- The store ---------------------------------------------------------------------------

    def store_description(self) -> str:
        """Where the state lives, for people."""
        from ohf.effects import store

        return store.describe(self.settings)

    def init_store(self) -> Result[str, OhfError]:
        """Create the store's schema or table (idempotent); says what it did."""
        from ohf.effects import store

        return store.init(self.settings)

    def export_lines(self) -> Result[list[bytes], OhfError]:
        """The whole store as JSON lines."""
        from ohf.effects import store

        return store.export_lines(self.settings)

    def import_lines(
        self, lines: Iterable[bytes], *, force: bool = False
    ) -> Result[Imported, OhfError]:
        """Load JSON lines made by `export_lines`: lines read, and (with `force`) where an
        unreadable store was kept aside."""
        from ohf.effects import store

        return store.import_lines(self.settings, lines, force=force)

    def compact_store(self) -> Result[Compacted, OhfError]:
        """Fold the event log's old events into its snapshot now, as `[storage]` says."""
        from ohf.effects import store

        shell = self.shell()
        return store.compact(self.settings, shell.now(), owner=shell.correlation)

    def check_store(self) -> Check:
        """Whether the store and its log are readable and agree; changes nothing."""
        from ohf.effects import store

        return store.check(self.settings)

    # --- Set-up ------------------------------------------------------------------------------

    @staticmethod
    def discover(
        aws: AwsConfig,
        *,
        types: Iterable[str] = (),
        image: str | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> Result[Discovery, OhfError]:
        """What `ohf init` needs from the account `aws` reaches (before any config exists):
        identity, VPCs, subnets, groups, key pairs, current AMIs (and `image`), and which
        instance types (ohf's candidates and `types`) are offered where."""
        from ohf.effects.aws import client_getter
        from ohf.effects.discover import discover

        clients = client_getter(aws, None)
        return discover(
            clients, types=types, image=image, progress=progress, endpoint=aws.endpoint_url
        )

    # --- The status page -----------------------------------------------------------------------

    def overview(
        self,
        *,
        state: str | None = None,
        provider: str | None = None,
        request: str | None = None,
    ) -> Result[Overview, OhfError]:
        """What the status page shows (no AWS call): providers with their breakers, units, room
        and last AWS error recorded on a request; templates; open requests explained; the
        machines (filtered by state, provider label, HF request id); the last hour's events."""
        from ohf.overview import MachineFilter, overview

        loaded = self.state()
        if isinstance(loaded, Failure):
            return loaded
        events = self.events()
        if isinstance(events, Failure):
            return events
        shell = self.shell()
        wanted = MachineFilter(state=state, provider=provider, request=request)
        return Success(
            overview(
                self.settings.config,
                loaded.unwrap(),
                events.unwrap(),
                self.breakers(),
                shell.catalogue(),
                shell.now(),
                wanted,
            )
        )


def _request_ids(reply: Any) -> str | None:
    """The HF request id(s) a reply is about (comma-separated, at most ten), for the log."""
    if isinstance(getattr(reply, "request_id", None), str):
        return str(reply.request_id)
    ids = [r.request_id for r in getattr(reply, "requests", ()) if hasattr(r, "request_id")]
    return ",".join(ids[:10]) if ids else None


def _no_request(request_id: str) -> OhfError:
    return OhfError(message=f"no request {request_id!r} in the store", code="input")


def _refs(machines: Iterable[str | MachineRef]) -> list[MachineRef]:
    return [m if isinstance(m, MachineRef) else MachineRef(machine_id=m) for m in machines]
