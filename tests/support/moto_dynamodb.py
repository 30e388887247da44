"""A moto_server whose DynamoDB answers one request at a time, as DynamoDB's writes are atomic.

moto 5.2.5 serves each HTTP request on its own thread and its DynamoDB backend takes no lock, so
two concurrent conditional writes of one item can both succeed: with 8 writers racing for one
`attribute_not_exists` put, 1 round in 30 had two winners. Real DynamoDB evaluates a condition
and writes atomically, and ohf's lease relies on that (its commits are fenced, so the race costs
a call a "commit refused" failure, never the state). Tests that run many ohf processes against
one table use this server for `[storage] endpoint_url`, so they test ohf and not moto's race.

    python -m tests.support.moto_dynamodb -H 127.0.0.1 -p PORT   (moto_server's arguments)
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

_ONE_AT_A_TIME = threading.Lock()


def serialize_dynamodb() -> None:
    """Make every DynamoDB action of this process's moto run alone."""
    from moto.dynamodb.responses import DynamoHandler

    action: Callable[..., Any] = DynamoHandler.call_action

    @functools.wraps(action)
    def call_action(self: Any) -> Any:
        with _ONE_AT_A_TIME:
            return action(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def start() -> Iterator[str]:
    """Run the server on a free loopback port for as long as the generator is open: its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.moto_dynamodb", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the DynamoDB moto_server did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str]) -> None:
    """Serialize DynamoDB, then run moto's server with `moto_server`'s arguments."""
    from moto.server import main as serve

    serialize_dynamodb()
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
