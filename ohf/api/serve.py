"""`ohf serve [--host H] [--port N] [--config PATH]`: the REST API on uvicorn.

The caller (the CLI) passes the environment and working directory in, so this module reads
nothing from the process itself; settings, logs and AWS clients come from the front door
(`ohf.provider.Provider`), exactly as the CLI's do.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from returns.result import Failure

from ohf.api.app import make_app
from ohf.api.auth import config_problem, make_verifier
from ohf.api.metrics import Tally, bump


def serve(
    host: str | None, port: int | None, config: str | None, env: Mapping[str, str], cwd: str
) -> int:
    """Check the config, then serve until interrupted; 1 (with a message) if it cannot start.

    `host` and `port` (None: the config's `[api]` ones) and `config` come from the command line.
    """
    import uvicorn

    from ohf.provider import Provider
    from ohf.shell import configure_logging

    tally = Tally()

    def aws_call(operation: str) -> None:
        bump(tally, "ohf_aws_calls_total", operation)

    opened = Provider.open(config, env, cwd=cwd, on_call=aws_call)
    if isinstance(opened, Failure):
        print(f"ohf serve: {opened.failure().message}", file=sys.stderr)
        return 1
    provider = opened.unwrap()
    api = provider.settings.config.api
    host = host or api.host
    port = port or api.port
    problem = config_problem(api, host, env)
    if problem is not None:
        print(f"ohf serve: refusing to start: {problem.message}", file=sys.stderr)
        return 1
    secret = api.secret or env.get(api.secret_env or "", "")
    log = configure_logging(
        provider.settings, "serve", "api", env, secrets=(secret,) if secret else ()
    )
    app = make_app(api, make_verifier(api, env), provider, tally)
    log.info("serving the API on %s:%d (auth %s)", host, port, api.auth)
    print(f"ohf serve: listening on http://{host}:{port} (auth {api.auth})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
