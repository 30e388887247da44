"""`ohf mcp [--http [--port N]] [--config PATH]`: ohf's tools, resources and prompts over MCP.

The one module that imports the MCP SDK. It uses the SDK's low-level `Server`, so that each
tool's schemas are ohf's own (msgspec's, of the structs in `ohf.mcp.tools`), not ones inferred
from Python signatures. Every handler answers; nothing an assistant sends can stop the server:
a tool's failure, bad arguments, a timeout or a bug in ohf is a tool error with ohf's message.
Tools run on worker threads (the door blocks on AWS and on the store's lock) and are given up
on after `[mcp] call_timeout` seconds.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import mcp_types as types
import msgspec
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from returns.result import Failure, Result

from ohf import __version__
from ohf.config import McpConfig
from ohf.mcp import guide
from ohf.mcp.tools import BY_NAME, TOOLS, Tool, call, encoded, object_schema
from ohf.model import OhfError
from ohf.provider import Provider

log = logging.getLogger("ohf.mcp")
Context = ServerRequestContext[Any, Any]
T = TypeVar("T")

INSTRUCTIONS = (
    "ohf is the IBM Spectrum Symphony Host Factory provider for AWS: it launches and "
    "terminates the EC2 instances HF asks for, on one or more AWS accounts/regions "
    "(providers). The read tools show what ohf holds (templates, requests, machines, events) "
    "and why (explain_request, lost_machines, health); they change nothing. "
)
WRITES_ON = (
    "request_machines and return_machines launch and terminate real instances: call them "
    "only when the user asks for exactly that, and say what it costs first."
)
WRITES_OFF = (
    "Writes are turned off on this server ([mcp] allow_writes = false): request_machines and "
    "return_machines are refused; Host Factory requests and returns machines itself."
)


def tool_listing(tool: Tool, allow_writes: bool) -> types.Tool:
    """A tool as `tools/list` shows it; a write tool that is off says so first."""
    off = tool.writes and not allow_writes
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=("TURNED OFF on this server ([mcp] allow_writes = false). " if off else "")
        + tool.description,
        input_schema=object_schema(tool.takes),
        output_schema=object_schema(tool.gives),
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=not tool.writes,
            destructive_hint=tool.destructive,
            idempotent_hint=not tool.writes,
            open_world_hint=tool.reaches_aws,
        ),
    )


def _failed(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


LATE_WRITE = "; the launch or return it started may still complete: look with list_requests"


async def off_loop(
    work: Callable[[], Result[T, OhfError]], timeout: float, what: str, late: str = ""
) -> Result[T, OhfError]:
    """`work()` on a worker thread, given up on after `timeout` seconds (`late` is added to
    the message then); any exception is logged and becomes a failure: the server goes on."""
    try:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        # The thread cannot be stopped: it ends by itself, within [aws]'s timeouts.
        return Failure(
            OhfError(
                message=f"{what} did not answer within {timeout:g} s ([mcp] call_timeout){late}",
                code="timeout",
            )
        )
    except Exception as exc:
        log.exception("internal error in %s", what)
        return Failure(OhfError(message=f"internal error in {what}: {type(exc).__name__}: {exc}"))


def build(provider: Provider, settings: McpConfig) -> Server[Any]:
    """The MCP server over `provider`, as `settings` (`[mcp]`) allow."""
    allow = settings.allow_writes
    listed = [tool_listing(tool, allow) for tool in TOOLS]

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, arguments = params.name, params.arguments

        def work() -> Result[Any, OhfError]:
            return call(provider, name, arguments, allow_writes=allow)

        writes = name in BY_NAME and BY_NAME[name].writes
        answer = await off_loop(work, settings.call_timeout, name, LATE_WRITE if writes else "")
        if isinstance(answer, Failure):
            log.info("tool %s failed: %s", name, answer.failure().message)
            return _failed(answer.failure().message)
        body = encoded(answer.unwrap())
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=msgspec.json.encode(body).decode())],
            structured_content=body,
        )

    async def list_resources(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=r.uri,
                    name=r.name,
                    title=r.title,
                    description=r.description,
                    mime_type="application/json",
                )
                for r in guide.RESOURCES
            ]
        )

    async def read_resource(
        ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        found = await off_loop(lambda: guide.read(provider, uri), settings.call_timeout, uri)
        if isinstance(found, Failure):
            raise MCPError(code=types.INVALID_PARAMS, message=found.failure().message)
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, mime_type="application/json", text=found.unwrap().decode()
                )
            ]
        )

    async def list_prompts(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        types.PromptArgument(
                            name=a.name, description=a.description, required=a.required
                        )
                        for a in p.arguments
                    ],
                )
                for p in guide.PROMPTS
            ]
        )

    async def get_prompt(
        ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        text = guide.prompt(params.name, params.arguments, provider.shell().now())
        if isinstance(text, Failure):
            raise MCPError(code=types.INVALID_PARAMS, message=text.failure().message)
        return types.GetPromptResult(
            messages=[
                types.PromptMessage(
                    role="user", content=types.TextContent(type="text", text=text.unwrap())
                )
            ]
        )

    return Server(
        "ohf",
        version=__version__,
        title="ohf: Host Factory provider for AWS",
        instructions=INSTRUCTIONS + (WRITES_ON if allow else WRITES_OFF),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


async def _stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve(
    config: str | None, http: bool, port: int | None, env: Mapping[str, str], cwd: str
) -> int:
    """Serve over stdio (or streamable HTTP on 127.0.0.1) until the client goes or Ctrl-C;
    1 (with a message on stderr) if the config cannot be read."""
    from ohf.shell import configure_logging

    opened = Provider.open(config, env, cwd=cwd)
    if isinstance(opened, Failure):
        print(f"ohf mcp: {opened.failure().message}", file=sys.stderr)
        return 1
    provider = opened.unwrap()
    settings = provider.settings.config.mcp
    configure_logging(provider.settings, "mcp", "mcp", env)
    server = build(provider, settings)
    writes = "on" if settings.allow_writes else "off"
    if not http:
        log.info("serving MCP over stdio (writes %s)", writes)
        anyio.run(_stdio, server)
        return 0
    import uvicorn

    port = port or settings.port
    # Loopback only: the SDK then also refuses other Host and Origin headers (DNS rebinding).
    app = server.streamable_http_app(host="127.0.0.1")
    log.info("serving MCP on http://127.0.0.1:%d/mcp (writes %s)", port, writes)
    print(f"ohf mcp: listening on http://127.0.0.1:{port}/mcp (writes {writes})", file=sys.stderr)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0
