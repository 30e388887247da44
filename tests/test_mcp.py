"""`ohf mcp` as an assistant meets it: the SDK's own client drives `python -m ohf mcp` over
stdio (and HTTP once) against moto_server, on a state built by real HF calls.

The state: two providers (`a`, capped at 3 live instances, answers InsufficientInstanceCapacity
beyond; `b`, uncapped), a RunInstances template over both (a request of 5: 3 on a, 2 failed
over to b; then one of 1 while a is full), an EC2Fleet `instant` template and a spot template
on b, and a spot machine terminated behind ohf's back (lost). The client checks every
structured answer against the tool's output schema, so each passing call also checks that the
schemas are the answers' own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

pytest.importorskip("mcp", reason="the MCP tests need the mcp extra: pip install -e '.[mcp]'")

from mcp import Client

from ohf.mcp.tools import TOOLS, object_schema
from tests.conftest import CAPPED_CAPACITY
from tests.support.mcp_client import answer, error, run_session
from tests.test_e2e_providers import (
    TAG,
    Clouds,
    ask,
    clouds,  # noqa: F401
    ec2,
    hf,
    instances,
    poll,
    tags,
)

pytestmark = pytest.mark.e2e

READS = [
    "list_templates",
    "list_requests",
    "show_request",
    "list_machines",
    "request_events",
    "explain_request",
    "lost_machines",
    "health",
    "validate_config",
]
WRITES = ["request_machines", "return_machines"]


def write_config(made: Clouds, mcp: str = "") -> None:
    """Providers a (capped) and b; templates `multi` (RunInstances, both), `fleet` (EC2Fleet
    instant, b) and `spot` (RunInstances spot, b); `mcp`: the `[mcp]` section's body."""
    (made.conf / "ohf.toml").write_text(
        f"""
[aws]
region = "us-east-1"
external_id = "site-42"

[mcp]
{mcp}

[[providers]]
name = "a"
endpoint_url = "{made.url_a}"
[providers.defaults]
subnetId = "{made.subnet_a}"
imageId = "{made.ami_a}"

[[providers]]
name = "b"
endpoint_url = "{made.url_b}"
[providers.defaults]
subnetId = "{made.subnet_b}"
imageId = "{made.ami_b}"

[[templates]]
templateId = "multi"
maxNumber = 10
vmType = "t3.micro"
providerApi = "RunInstances"

[[templates]]
templateId = "fleet"
maxNumber = 8
vmTypes = {{"t3.micro" = 1, "t3.small" = 2}}
providerApi = "EC2Fleet"
fleetType = "instant"
providers = ["b"]

[[templates]]
templateId = "spot"
maxNumber = 4
vmType = "t3.micro"
priceType = "spot"
providers = ["b"]
userData = "JOIN_TOKEN=hunter2"
"""
    )


def request(conf: Path, template: str, count: int) -> str:
    out = hf("requestMachines", {"template": {"templateId": template, "machineCount": count}}, conf)
    return str(out["requestId"])


class Built(msgspec.Struct, frozen=True, kw_only=True):
    """The requests of the built state."""

    overflow: str
    short: str
    fleet: str
    spot: str
    lost: str


@pytest.fixture
def built(clouds: Clouds) -> Iterator[tuple[Clouds, Built]]:  # noqa: F811
    write_config(clouds)
    overflow = ask(clouds.conf, 5)["requestId"]  # 3 fit on a, 2 fail over to b
    assert poll(clouds.conf, overflow)["status"] == "complete"
    short = request(clouds.conf, "multi", 1)  # a is full: all on b
    poll(clouds.conf, short)
    fleet = request(clouds.conf, "fleet", 3)
    assert poll(clouds.conf, fleet)["status"] == "complete"
    spot = request(clouds.conf, "spot", 2)
    machines = poll(clouds.conf, spot)["machines"]
    lost = sorted(m["machineId"] for m in machines)[0]
    ec2(clouds.url_b).terminate_instances(InstanceIds=[lost])  # behind ohf's back
    poll(clouds.conf, spot)
    yield clouds, Built(overflow=overflow, short=short, fleet=fleet, spot=spot, lost=lost)


def offline_conf(tmp_path: Path, mcp: str = "", aws: str = "") -> Path:
    """A conf dir whose AWS is nowhere (no tool here reaches it) and an empty state."""
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "ohf.toml").write_text(
        f"""
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:9"
{aws}

[mcp]
{mcp}

[[templates]]
templateId = "t1"
maxNumber = 4
vmType = "c5.large"
imageId = "ami-12345678"
subnetId = "subnet-1"
"""
    )
    return conf


# --- listing: tools, schemas, resources, prompts ----------------------------------------------


def test_tools_are_listed_with_schemas_from_ohfs_structs(tmp_path: Path) -> None:
    async def work(client: Client) -> tuple[Any, Any, Any]:
        return await client.list_tools(), await client.list_resources(), await client.list_prompts()

    tools, resources, prompts = run_session(offline_conf(tmp_path), work)

    listed = {t.name: t for t in tools.tools}
    assert list(listed) == [*READS, *WRITES]
    for tool in TOOLS:
        shown = listed[tool.name]
        assert shown.input_schema == object_schema(tool.takes)
        assert shown.output_schema == object_schema(tool.gives)
        assert shown.input_schema["type"] == shown.output_schema["type"] == "object"
        assert shown.input_schema["additionalProperties"] is False  # unknown arguments refused
        assert shown.annotations.read_only_hint is (tool.name in READS)
    assert listed["explain_request"].input_schema["required"] == ["request_id"]
    assert listed["show_request"].output_schema["properties"].keys() == {
        "request",
        "parts",
        "machines",
        "events",
    }
    assert set(listed["list_machines"].input_schema["properties"]) == {
        "request",
        "state",
        "provider",
        "price_type",
    }
    assert listed["return_machines"].annotations.destructive_hint is True
    for name in WRITES:  # off by default, and the listing says so first
        assert listed[name].description.startswith("TURNED OFF on this server")
    assert "COSTS: AWS bills every instance" in listed["request_machines"].description
    assert "cannot be undone" in listed["return_machines"].description
    assert listed["request_machines"].output_schema["required"] == ["requestId"]

    assert {r.uri for r in resources.resources} == {"ohf://config", "ohf://state/summary"}
    assert {p.name: [a.name for a in p.arguments or []] for p in prompts.prompts} == {
        "why_is_request_stuck": ["request_id"],
        "spot_machines_lost": ["since"],
        "is_provider_healthy": ["provider"],
    }


# --- every read tool on a state built by HF calls ---------------------------------------------


def test_read_tools_answer_from_a_state_built_by_hf_calls(built: tuple[Clouds, Built]) -> None:
    made, ids = built

    async def work(client: Client) -> dict[str, Any]:
        async def tool(name: str, **arguments: Any) -> Any:
            return answer(await client.call_tool(name, arguments))

        got: dict[str, Any] = {
            "templates": await tool("list_templates"),
            "requests": await tool("list_requests"),
            "running": await tool("list_requests", status="running"),
            "fleet_requests": await tool("list_requests", template="fleet", since="1h"),
            "overflow": await tool("show_request", request_id=ids.overflow),
            "fleet": await tool("show_request", request_id=ids.fleet),
            "machines": await tool("list_machines"),
            "on_b_spot": await tool("list_machines", provider="b", price_type="spot"),
            "terminated": await tool("list_machines", state="terminated"),
            "of_fleet": await tool("list_machines", request=ids.fleet),
            "events": await tool("request_events", request_id=ids.overflow),
            "last_event": await tool("request_events", request_id=ids.spot, last=1),
            "explain_overflow": await tool("explain_request", request_id=ids.overflow),
            "explain_short": await tool("explain_request", request_id=ids.short),
            "explain_spot": await tool("explain_request", request_id=ids.spot),
            "lost": await tool("lost_machines", price_type="spot"),
            "lost_on_a": await tool("lost_machines", provider="a"),
            "health": await tool("health"),
            "health_b": await tool("health", provider="b"),
            "validate": await tool("validate_config"),
            "config": (await client.read_resource("ohf://config")).contents[0].text,
            "summary": (await client.read_resource("ohf://state/summary")).contents[0].text,
            "prompt": await client.get_prompt("why_is_request_stuck", {"request_id": ids.short}),
        }
        return got

    got = run_session(made.conf, work)
    _listings_are_right(got, ids)
    _reasons_are_right(got, ids)
    _health_and_resources_are_right(got, made)


def _listings_are_right(got: dict[str, Any], ids: Built) -> None:
    # Templates: derived attributes and the room left, per provider.
    templates = {t["template_id"]: t for t in got["templates"]["templates"]}
    multi = templates["multi"]
    assert (multi["in_use"], multi["rooms"], multi["available"]) == (6, {"a": 7, "b": 7}, 14)
    assert (multi["ncpus"], multi["nram"]) == (1, 1024)  # t3.micro, from the catalogue
    assert templates["fleet"]["api"] == "EC2Fleet" and templates["fleet"]["rooms"] == {"b": 5}
    assert templates["spot"]["price_type"] == "spot"

    # Requests, with filters, and one in full: its parts on two providers, its fleet.
    rows = {r["request_id"]: r for r in got["requests"]["requests"]}
    assert set(rows) == {ids.overflow, ids.short, ids.fleet, ids.spot}
    assert rows[ids.overflow]["providers"] == ["a", "b"]
    assert got["running"]["requests"] == []
    assert [r["request_id"] for r in got["fleet_requests"]["requests"]] == [ids.fleet]
    overflow = got["overflow"]
    assert [(p["provider"], p["asked"], p["held"]) for p in overflow["parts"]] == [
        ("a", CAPPED_CAPACITY, CAPPED_CAPACITY),
        ("b", 2, 2),
    ]
    assert len(overflow["machines"]) == 5
    assert {e["kind"] for e in overflow["events"]} >= {"request_created", "machine_changed"}
    (fleet_part,) = got["fleet"]["parts"]
    assert fleet_part["api"] == "EC2Fleet" and fleet_part["fleet_type"] == "instant"
    assert fleet_part["fleet_id"].startswith("fleet-")

    # Machines, filtered as the CLI filters them (and by price type).
    assert len(got["machines"]["machines"]) == 5 + 1 + len(got["of_fleet"]["machines"]) + 2
    assert {m["machine_id"] for m in got["on_b_spot"]["machines"]} >= {ids.lost}
    assert all(m["price_type"] == "spot" for m in got["on_b_spot"]["machines"])
    assert [m["machine_id"] for m in got["terminated"]["machines"]] == [ids.lost]
    assert {m["request_id"] for m in got["of_fleet"]["machines"]} == {ids.fleet}
    assert sum(m["units"] for m in got["of_fleet"]["machines"]) == 3

    # Events of a request over two providers: both parts', oldest first.
    events = got["events"]
    assert {e["request_id"] for e in events["events"]} == {ids.overflow, f"{ids.overflow}.2"}
    assert [e["at"] for e in events["events"]] == sorted(e["at"] for e in events["events"])
    assert len(got["last_event"]["events"]) == 1


def _reasons_are_right(got: dict[str, Any], ids: Built) -> None:
    # Why: short of capacity on a, failed over to b; a machine lost before HF returned it.
    assert got["explain_overflow"]["reasons"][:2] == [
        "2 unit(s) failed over from a to b",
        # The pool (type/zone) comes from EC2's own message, as moto_patched words it.
        "AWS is short of capacity in pool t3.micro/us-east-1a (InsufficientInstanceCapacity) "
        "on provider a",
    ]
    assert got["explain_overflow"]["summary"] == "complete: 5 of 5 unit(s) held on a, b"
    assert "1 unit(s) failed over from a to b" in got["explain_short"]["reasons"]
    assert got["explain_short"]["summary"] == "complete: 1 of 1 unit(s) held on b"
    assert any(
        f"lost before HF returned them ({ids.lost}" in r for r in got["explain_spot"]["reasons"]
    )
    assert got["lost"]["count"] == 1
    (lost,) = got["lost"]["machines"]
    assert (lost["machine_id"], lost["provider"], lost["request_id"]) == (ids.lost, "b", ids.spot)
    assert lost["price_type"] == "spot" and lost["state"] in ("shutting-down", "terminated")
    assert got["lost_on_a"]["count"] == 0

    # The prompt names the request and the tools to answer with.
    (message,) = got["prompt"].messages
    assert ids.short in message.content.text and "explain_request" in message.content.text


def _health_and_resources_are_right(got: dict[str, Any], made: Clouds) -> None:
    # Health per provider, with its breaker; the store.
    health = got["health"]
    assert health["ok"] is True and [p["provider"] for p in health["providers"]] == ["a", "b"]
    for each in health["providers"]:
        assert each["breaker"]["state"] == "closed"
        assert {c["check"] for c in each["checks"]} >= {"region", "credentials", "image"}
    assert [c["check"] for c in health["store"]] == ["store"]
    assert [p["provider"] for p in got["health_b"]["providers"]] == ["b"]
    assert got["validate"]["ok"] is True
    assert {
        (t["template_id"], t["provider"]) for t in got["validate"]["validation"]["templates"]
    } == {
        ("multi", "a"),
        ("multi", "b"),
        ("fleet", "b"),
        ("spot", "b"),
    }

    # Resources: the config with its secrets masked, the state counted.
    config = msgspec.json.decode(got["config"])
    assert "site-42" not in got["config"] and "hunter2" not in got["config"]
    assert config["config"]["aws"]["external_id"] == "********"
    assert config["config"]["providers"][0]["endpoint_url"] == made.url_a
    assert config["source"] == str(made.conf / "ohf.toml")
    summary = msgspec.json.decode(got["summary"])
    assert summary["requests"] == {"complete": 4}
    assert summary["machines_by_provider"]["a"] == CAPPED_CAPACITY
    assert summary["machines_by_price_type"]["spot"] == 2
    assert summary["units_in_use"] == {"multi": 6, "fleet": 3, "spot": 1}
    assert summary["open_breakers"] == [] and summary["running"] == []


def test_spot_prompt_defaults_to_today_and_health_prompt_names_the_provider(
    tmp_path: Path,
) -> None:
    async def work(client: Client) -> tuple[str, str]:
        spot = await client.get_prompt("spot_machines_lost", {})
        east = await client.get_prompt("is_provider_healthy", {"provider": "east"})
        return spot.messages[0].content.text, east.messages[0].content.text

    spot, east = run_session(offline_conf(tmp_path), work)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert f'"since": "{today}", "price_type": "spot"' in spot
    assert '{"provider": "east"}' in east and "health" in east


# --- writes: refused by default, then real launches and returns ---------------------------------


def live(url: str) -> dict[str, dict[str, Any]]:
    return {i: d for i, d in instances(url).items() if d["State"]["Name"] in ("pending", "running")}


def test_write_tools_are_refused_by_default_then_launch_and_return(clouds: Clouds) -> None:  # noqa: F811
    write_config(clouds)

    async def refused(client: Client) -> list[str]:
        return [
            error(await client.call_tool("request_machines", {"template_id": "multi", "count": 1})),
            error(
                await client.call_tool("return_machines", {"machine_ids": ["i-0123456789abcdef0"]})
            ),
        ]

    for message in run_session(clouds.conf, refused):
        assert "is turned off" in message and "[mcp] allow_writes = true" in message
    assert instances(clouds.url_a) == instances(clouds.url_b) == {}

    write_config(clouds, mcp="allow_writes = true")

    async def writes(client: Client) -> dict[str, Any]:
        launched = answer(
            await client.call_tool("request_machines", {"template_id": "multi", "count": 2})
        )
        rid = launched["requestId"]
        machines = answer(await client.call_tool("list_machines", {"request": rid}))["machines"]
        over = error(
            await client.call_tool("request_machines", {"template_id": "multi", "count": 19})
        )
        unknown = error(
            await client.call_tool("return_machines", {"machine_ids": ["i-0123456789abcdef0"]})
        )
        ids = [m["machine_id"] for m in machines]
        returned = answer(await client.call_tool("return_machines", {"machine_ids": ids}))
        shown = answer(
            await client.call_tool("show_request", {"request_id": returned["requestId"]})
        )
        return {
            "rid": rid,
            "ids": ids,
            "over": over,
            "unknown": unknown,
            "returned": returned,
            "shown": shown,
        }

    got = run_session(clouds.conf, writes)

    assert got["rid"].startswith("req-") and len(got["ids"]) == 2
    in_a = instances(clouds.url_a)
    assert set(got["ids"]) == set(in_a)  # launched on a, for real, tagged with the request
    assert {tags(d)[TAG] for d in in_a.values()} == {got["rid"]}
    # maxNumber (10 per provider, 2 in use): HF's own check refused 19, nothing launched.
    assert "19" in got["over"] and len(instances(clouds.url_a)) + len(instances(clouds.url_b)) == 2
    assert "not ohf's and were not returned" in got["unknown"]
    assert got["returned"]["requestId"].startswith("ret-")
    assert got["shown"]["request"]["kind"] == "return"
    assert live(clouds.url_a) == {}  # both terminated
    assert {d["State"]["Name"] for d in instances(clouds.url_a).values()} <= {
        "shutting-down",
        "terminated",
    }


# --- failures are tool errors; the server goes on -----------------------------------------------


def test_bad_arguments_and_failures_are_tool_errors_and_the_server_goes_on(
    tmp_path: Path,
) -> None:
    from mcp.shared.exceptions import MCPError

    async def work(client: Client) -> dict[str, Any]:
        async def failed(name: str, arguments: dict[str, Any]) -> str:
            return error(await client.call_tool(name, arguments))

        got: dict[str, Any] = {
            "type": await failed("show_request", {"request_id": 5}),
            "unknown_field": await failed("list_machines", {"colour": "red"}),
            "missing": await failed("explain_request", {}),
            "choice": await failed("list_requests", {"status": "stuck"}),
            "range": await failed("request_events", {"request_id": "r", "last": 0}),
            "count": await failed("request_machines", {"template_id": "t1", "count": 0}),
            "no_request": await failed("explain_request", {"request_id": "req-nope"}),
            "no_template": await failed("request_machines", {"template_id": "t9", "count": 1}),
            "since": await failed("lost_machines", {"since": "soon"}),
            "provider": await failed("health", {"provider": "east"}),
            "tool": await failed("launch_everything", {}),
        }
        for uri in ("ohf://secrets", "file:///etc/passwd"):
            with pytest.raises(MCPError, match="no resource"):
                await client.read_resource(uri)
        with pytest.raises(MCPError, match="why_is_request_stuck needs request_id"):
            await client.get_prompt("why_is_request_stuck", {})
        got["after"] = answer(await client.call_tool("list_templates", {}))
        return got

    got = run_session(offline_conf(tmp_path, mcp="allow_writes = true"), work)

    assert (
        got["type"]
        == "bad arguments for show_request: Expected `str`, got `int` - at `$.request_id`"
    )
    assert (
        got["unknown_field"]
        == "bad arguments for list_machines: Object contains unknown field `colour`"
    )
    assert (
        got["missing"]
        == "bad arguments for explain_request: Object missing required field `request_id`"
    )
    assert (
        "`$.status`" in got["choice"] and "`$.last`" in got["range"] and "`$.count`" in got["count"]
    )
    assert got["no_request"] == "no request 'req-nope' in the store"
    assert "t9" in got["no_template"]  # requestMachines' own message
    assert got["since"].startswith("since 'soon': give 30m, 6h, 2d")
    assert got["provider"] == "no provider 'east'; the providers are aws"
    assert got["tool"].startswith("no tool 'launch_everything'; the tools are list_templates")
    assert got["after"]["templates"][0]["template_id"] == "t1"


def _silent_endpoint() -> tuple[Any, int]:
    """A TCP server on 127.0.0.1 that accepts and never answers: an AWS that hangs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, int(listener.getsockname()[1])


def test_a_call_waiting_on_aws_keeps_to_the_configured_timeouts(tmp_path: Path) -> None:
    listener, port = _silent_endpoint()
    endpoint = f'endpoint_url = "http://127.0.0.1:{port}"'
    try:
        # AWS's own timeouts: every check fails after read_timeout, the answer says so.
        conf = offline_conf(tmp_path, aws=f"read_timeout = 0.5\nmax_attempts = 1\n{endpoint}")
        text = (conf / "ohf.toml").read_text().replace('endpoint_url = "http://127.0.0.1:9"\n', "")
        (conf / "ohf.toml").write_text(text)

        async def checks(client: Client) -> tuple[Any, float]:
            started = time.monotonic()
            result = await client.call_tool("health", {})
            return answer(result), time.monotonic() - started

        health, took = run_session(conf, checks)
        assert health["ok"] is False and took < 60
        (aws,) = health["providers"]
        (credentials,) = [c for c in aws["checks"] if c["check"] == "credentials"]
        assert not credentials["ok"] and "Read timeout" in credentials["detail"]

        # A call longer than [mcp] call_timeout is given up on, and the server answers the next.
        (conf / "ohf.toml").write_text(
            text.replace("read_timeout = 0.5", "read_timeout = 5.0").replace(
                "[mcp]\n", "[mcp]\ncall_timeout = 1.0\n"
            )
        )

        async def gives_up(client: Client) -> tuple[str, Any]:
            slow = error(await client.call_tool("health", {}))
            return slow, answer(await client.call_tool("list_templates", {}))

        slow, after = run_session(conf, gives_up)
        assert slow.startswith("health did not answer within 1 s ([mcp] call_timeout)")
        assert after["templates"][0]["template_id"] == "t1"
    finally:
        listener.close()


# --- the HTTP transport ---------------------------------------------------------------------


def test_streamable_http_on_loopback(tmp_path: Path) -> None:
    from tests.support.mcp_client import free_port, http_server

    conf = offline_conf(tmp_path)
    with http_server(conf, free_port()) as url:

        async def work() -> tuple[Any, Any]:
            async with Client(url, cache=None) as client:
                tools = await client.list_tools()
                return tools, answer(await client.call_tool("list_templates", {}))

        tools, templates = anyio.run(work)

    assert len(tools.tools) == len(TOOLS)
    assert templates["templates"][0]["rooms"] == {"aws": 4}


def test_a_bug_or_a_slow_call_is_a_failure_never_a_crash() -> None:
    from returns.result import Success

    from ohf.mcp.server import off_loop

    def boom() -> Any:
        raise KeyError("x")

    def slow() -> Any:
        time.sleep(0.5)
        return Success(1)

    crashed = anyio.run(off_loop, boom, 5.0, "list_machines")
    assert crashed.failure().message == "internal error in list_machines: KeyError: 'x'"
    late = anyio.run(off_loop, slow, 0.1, "request_machines", "; it may still complete")
    assert late.failure().message == (
        "request_machines did not answer within 0.1 s ([mcp] call_timeout); it may still complete"
    )
    assert anyio.run(off_loop, slow, 5.0, "x").unwrap() == 1
