"""The MCP tools, in one table: name, what it does (and, for writes, costs), its argument and
answer structs, and how the front door answers it.

Every tool goes through `ohf.provider.Provider`, as the CLI's commands do: the write tools are
HF's own requestMachines and requestReturnMachines (maxNumber, placement, unknown machines:
every check HF's call makes), and they answer only when `[mcp] allow_writes = true`. No tool
takes a path or reads a file the config does not name, and none shows a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.explain import Explanation
from ohf.listings import MachineList, RequestList, TemplateList
from ohf.mcp.answers import (
    EventList,
    EventsAsk,
    HealthAnswer,
    HealthAsk,
    LostAsk,
    LostMachines,
    MachinesAsk,
    NoArguments,
    RequestAsk,
    RequestMachinesAsk,
    RequestsAsk,
    ReturnMachinesAsk,
    ValidationAnswer,
    health_answer,
    lost_machines,
)
from ohf.messages import RequestAccepted
from ohf.model import OhfError
from ohf.placement import label, providers_of
from ohf.provider import Provider
from ohf.schema import RequestShow, normalised

Answer = Result[Any, OhfError]


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    """One MCP tool: `run(provider, arguments)` answers with a `gives`, or an ohf error."""

    name: str
    title: str
    description: str
    takes: type[msgspec.Struct]
    gives: type[msgspec.Struct]
    run: Callable[[Provider, Any], Answer]
    writes: bool = False
    # It calls AWS (health, writes): MCP's "open world" hint.
    reaches_aws: bool = False
    destructive: bool = False


def _since(provider: Provider, text: str | None) -> Result[int | None, OhfError]:
    from ohf.cli.listing import since_epoch

    if text is None:
        return Success(None)
    found = since_epoch(text, provider.shell().now())
    if found is None:
        return Failure(
            OhfError(
                message=f"since {text!r}: give 30m, 6h, 2d, an epoch time or a UTC date "
                "(2026-12-01 or 2026-12-01T08:00)",
                code="input",
            )
        )
    return Success(found)


def _requests(provider: Provider, ask: RequestsAsk) -> Answer:
    return (
        _since(provider, ask.since)
        .bind(
            lambda since: provider.requests(status=ask.status, template=ask.template, since=since)
        )
        .map(lambda rows: RequestList(requests=rows))
    )


def _request(provider: Provider, ask: RequestAsk) -> Answer:
    return provider.request(ask.request_id).map(
        lambda found: RequestShow(
            request=found[0].request,
            parts=found[0].parts,
            machines=found[0].machines,
            events=list(found[1]),
        )
    )


def _machines(provider: Provider, ask: MachinesAsk) -> Answer:
    rows = provider.machines(request=ask.request, state=ask.state, provider=ask.provider)
    return rows.map(
        lambda found: MachineList(
            machines=[m for m in found if ask.price_type in (None, m.price_type)]
        )
    )


def _events(provider: Provider, ask: EventsAsk) -> Answer:
    return provider.request(ask.request_id).map(
        lambda found: EventList(
            request_id=ask.request_id,
            events=list(found[1][-ask.last :] if ask.last else found[1]),
        )
    )


def _known_provider(provider: Provider, name: str | None) -> Result[None, OhfError]:
    names = [label(p.name) for p in providers_of(provider.settings.config)]
    if name is None or name in names:
        return Success(None)
    return Failure(
        OhfError(
            message=f"no provider {name!r}; the providers are {', '.join(names)}", code="input"
        )
    )


def _health(provider: Provider, ask: HealthAsk) -> Answer:
    return _known_provider(provider, ask.provider).map(
        lambda _: health_answer(
            provider.health(), provider.breakers(), provider.shell().now(), ask.provider
        )
    )


def _validate(provider: Provider, ask: NoArguments) -> Answer:
    checked = provider.validate()
    return Success(ValidationAnswer(ok=checked.ok, validation=checked))


def _lost(provider: Provider, ask: LostAsk) -> Answer:
    return (
        _known_provider(provider, ask.provider)
        .bind(lambda _: _since(provider, ask.since))
        .bind(
            lambda since: provider.events().map(
                lambda events: lost_machines(
                    events, since or 0, price_type=ask.price_type, provider=ask.provider
                )
            )
        )
    )


_READ_ONLY = "Reads ohf's state (no AWS call, nothing changes)."

TOOLS: tuple[Tool, ...] = (
    Tool(
        name="list_templates",
        title="Templates",
        description="Every template: provider API, price type, instance types and their "
        "weights, maxNumber, units in use, the room left (in all and per provider; null: "
        f"unlimited) and the derived ncpus/nram. {_READ_ONLY}",
        takes=NoArguments,
        gives=TemplateList,
        run=lambda p, _: p.template_rows().map(lambda rows: TemplateList(templates=rows)),
    ),
    Tool(
        name="list_requests",
        title="Requests",
        description="The requests ohf holds (acquire and return), oldest first: template, "
        "providers, units asked and held, HF status, age. Filter by status, template and "
        f"since. {_READ_ONLY}",
        takes=RequestsAsk,
        gives=RequestList,
        run=_requests,
    ),
    Tool(
        name="show_request",
        title="One request in full",
        description="One request: its row, its parts (one per provider it was placed on, with "
        f"fleet and launch template ids), its machines and its events. {_READ_ONLY}",
        takes=RequestAsk,
        gives=RequestShow,
        run=_request,
    ),
    Tool(
        name="list_machines",
        title="Machines",
        description="The machines ohf launched, by launch time: ids, IPs, type, on-demand or "
        "spot, state, HF result, request, provider, age. Filter by request, state, provider "
        f"and price type. {_READ_ONLY}",
        takes=MachinesAsk,
        gives=MachineList,
        run=_machines,
    ),
    Tool(
        name="request_events",
        title="A request's events",
        description="The event log of one request (all its parts): every change of the state, "
        f"when, by which HF call. {_READ_ONLY}",
        takes=EventsAsk,
        gives=EventList,
        run=_events,
    ),
    Tool(
        name="explain_request",
        title="Why a request is where it is",
        description="In plain words, why a request stands where it does: waiting on a fleet, "
        "short of capacity in which pool, failed over to which provider, a circuit breaker "
        f"open until when, machines lost or returned. {_READ_ONLY}",
        takes=RequestAsk,
        gives=Explanation,
        run=lambda p, ask: p.explain(ask.request_id),
    ),
    Tool(
        name="lost_machines",
        title="Machines lost",
        description="Machines that ended without HF returning them (spot interruptions, "
        "terminated outside ohf, stopped), with when ohf first saw each go, from the event "
        f"log. Filter by since (default 24h), price type and provider. {_READ_ONLY}",
        takes=LostAsk,
        gives=LostMachines,
        run=_lost,
    ),
    Tool(
        name="health",
        title="Health per provider",
        description="`ohf health` per provider: region, credentials, assumed role and every "
        "template it may run (AMI, subnets, security groups, key pair, instance types), "
        "checked against AWS (read-only calls, within [aws]'s timeouts), with each provider's "
        "circuit breaker; then the state store. One provider's, or all.",
        takes=HealthAsk,
        gives=HealthAnswer,
        run=_health,
        reaches_aws=True,
    ),
    Tool(
        name="validate_config",
        title="Validate the config",
        description="`ohf validate`: the config checked offline, every template as each "
        "provider would run it, and the warnings (insecure settings, keys ohf ignores). "
        "No AWS call, nothing changes.",
        takes=NoArguments,
        gives=ValidationAnswer,
        run=_validate,
    ),
    Tool(
        name="request_machines",
        title="Launch machines (costs money)",
        description="Launches EC2 instances: HF's requestMachines of `count` units of a "
        "template, placed on its providers as HF's own requests are (failing over when one is "
        "short of capacity). COSTS: AWS bills every instance (on-demand or spot price of its "
        "type, plus its volumes) from launch until it is terminated; nothing ends them but "
        "return_machines. CHANGES: creates the instances (and, for fleet templates, an EC2 "
        "Fleet, Spot Fleet or Auto Scaling group and a launch template) tagged with the "
        "request id, records the request in ohf's state, and uses up the template's room "
        "(maxNumber). HF does not know these machines: they never join the cluster. Refused "
        "as requestMachines refuses: unknown template, no room left, every provider failing. "
        "Answers the request id (follow it with show_request or explain_request).",
        takes=RequestMachinesAsk,
        gives=RequestAccepted,
        run=lambda p, ask: p.request_machines(ask.template_id, ask.count),
        writes=True,
        reaches_aws=True,
    ),
    Tool(
        name="return_machines",
        title="Terminate machines (irreversible)",
        description="Terminates EC2 instances: HF's requestReturnMachines. CHANGES: each "
        "instance is terminated, which cannot be undone (its delete-on-termination volumes "
        "go, and whatever runs on it, Symphony jobs included if HF still uses the host, is "
        "killed); a fleet or group is lowered first so AWS launches no replacement, and once "
        "a request's last machine goes its fleet/group and launch template are deleted. "
        "COSTS: nothing; it ends the instances' billing. Only machines ohf launched: if any "
        "id is not ohf's, nothing is terminated. Answers the return's request id (ret-...).",
        takes=ReturnMachinesAsk,
        gives=RequestAccepted,
        run=lambda p, ask: p.return_machines(*ask.machine_ids),
        writes=True,
        reaches_aws=True,
        destructive=True,
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


def writes_refused(tool: Tool) -> OhfError:
    """Why a write tool does not answer when `[mcp] allow_writes` is off."""
    return OhfError(
        message=f"{tool.name} is turned off: this ohf MCP server only reads. An administrator "
        "can allow it with `[mcp] allow_writes = true` in ohf's config (then restart "
        "`ohf mcp`); until then, machines are requested and returned by Host Factory.",
        code="refused",
    )


def call(provider: Provider, name: str, arguments: Any, *, allow_writes: bool) -> Answer:
    """Run one tool on its raw JSON arguments: its answer struct, or the error to show."""
    tool = BY_NAME.get(name)
    if tool is None:
        return Failure(
            OhfError(message=f"no tool {name!r}; the tools are {', '.join(BY_NAME)}", code="input")
        )
    if tool.writes and not allow_writes:
        return Failure(writes_refused(tool))
    try:
        ask = msgspec.convert(arguments or {}, tool.takes)
    except msgspec.ValidationError as exc:
        return Failure(OhfError(message=f"bad arguments for {name}: {exc}", code="input"))
    return tool.run(provider, ask)


def object_schema(kind: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a struct as MCP wants a tool's: an object at the top (msgspec gives
    a `$ref` to its `$defs` entry), the other definitions beside it."""
    # Through JSON and back: what a client receives (a tuple default is a list there).
    whole = msgspec.json.decode(msgspec.json.encode(msgspec.json.schema(kind)))
    defs = whole.get("$defs", {})
    top = defs[whole["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = normalised({**top, "$defs": defs} if len(defs) > 1 else top)
    return schema


def encoded(answer: Any) -> Any:
    """An answer as JSON-ready builtins (HF's camelCase names where the struct renames)."""
    return msgspec.to_builtins(answer)
