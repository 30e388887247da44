"""Drive `ohf mcp` as a subprocess with the MCP SDK's own client, over stdio or HTTP.

Each `session(...)` starts a fresh `python -m ohf mcp` in HF's environment for the conf dir,
runs the given coroutine with a connected `mcp.Client`, and stops the server; the server's
stderr goes to a file beside the conf dir, shown when the test fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import hf_env

T = TypeVar("T")


def run_session(conf: Path, work: Callable[[Client], Awaitable[T]], *args: str) -> T:
    """`work(client)` against `ohf mcp ARGS` started over stdio for the conf dir `conf`."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ohf", "mcp", *args], env=hf_env(conf)
    )

    async def main() -> T:
        with (conf / "mcp-stderr.log").open("a") as errlog:
            async with Client(stdio_client(params, errlog=errlog), cache=None) as client:
                return await work(client)

    return anyio.run(main)


def answer(result: Any) -> Any:
    """A successful tool call's structured answer (the client already checked it against the
    tool's output schema); the text content is the same JSON."""
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error(result: Any) -> str:
    """A failed tool call's message."""
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(conf: Path, port: int) -> Iterator[str]:
    """`ohf mcp --http --port PORT` running for the block: its URL."""
    with (conf / "mcp-http-stderr.log").open("w") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ohf", "mcp", "--http", "--port", str(port)],
            env=hf_env(conf),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert proc.poll() is None, (conf / "mcp-http-stderr.log").read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
