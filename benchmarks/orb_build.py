"""Build ORB's scenario: N `orb machines request -f FILE`, one after another, in one process.

Run with ORB's own interpreter: `python orb_build.py CONFIG INPUT N`. Each request goes through
ORB's CLI entry point (`orb.cli.main.main`) exactly as `orb --config CONFIG machines request -f
INPUT` does, so the state is ORB's own; only the ~2 s interpreter start-up per request is saved
(100 requests: under a minute instead of several). Sequential on purpose: ORB's JSON store loses
updates when two calls overlap. Prints one JSON line per request: {"exit", "out"}.
"""

import asyncio
import contextlib
import io
import json
import sys

from orb.cli.main import main


def request(config: str, input_path: str) -> dict[str, object]:
    """One `orb machines request`, its exit code and stdout."""
    sys.argv = ["orb", "--config", config, "machines", "request", "-f", input_path]
    out = io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out):
        try:
            asyncio.run(main())
        except SystemExit as exc:
            code = exc.code or 0
    return {"exit": code, "out": out.getvalue()}


if __name__ == "__main__":
    config, input_path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for _ in range(count):
        sys.__stdout__.write(json.dumps(request(config, input_path)) + "\n")
        sys.__stdout__.flush()
