"""`ohf serve [--host H] [--port N] [--config PATH]`: the REST API on uvicorn.

The caller (the CLI) passes the environment and working directory in, so this module reads
nothing from the process itself; settings, logs and AWS clients come from `ohf.effects`.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping, Sequence

from returns.result import Failure

from ohf.api.app import make_app
from ohf.api.auth import config_problem, make_verifier
from ohf.api.metrics import Tally, bump
from ohf.hf import Shell


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ohf serve", description="Serve the ohf REST API.")
    parser.add_argument("--host", help="address to listen on (default: [api] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: [api] port, 8080)")
    parser.add_argument("--config", help="the ohf config file")
    return parser.parse_args(list(argv))


def serve(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> int:
    """Check the config, then serve until interrupted; 1 (with a message) if it cannot start."""
    import uvicorn

    from ohf.config import AwsConfig
    from ohf.effects import logs
    from ohf.effects.aws import ClientGetter, client_getter, make_interpreter, warm
    from ohf.effects.files import load_settings
    from ohf.effects.providers import provider_clouds
    from ohf.placement import providers_of
    from ohf.program import Interpreter

    args = _arguments(argv)
    loaded = load_settings(args.config, env, cwd)
    if isinstance(loaded, Failure):
        print(f"ohf serve: {loaded.failure().message}", file=sys.stderr)
        return 1
    settings = loaded.unwrap()
    api = settings.config.api
    host = args.host or api.host
    port = args.port or api.port
    problem = config_problem(api, host, env)
    if problem is not None:
        print(f"ohf serve: refusing to start: {problem.message}", file=sys.stderr)
        return 1
    secret = api.secret or env.get(api.secret_env or "", "")
    log = logs.setup(
        settings.log_path,
        settings.config.logging.level,
        "serve",
        "api",
        secrets=(*logs.env_secrets(env), *((secret,) if secret else ())),
    )
    tally = Tally()

    def aws_call(operation: str) -> None:
        bump(tally, "ohf_aws_calls_total", operation)

    config = settings.config
    getters: list[ClientGetter] = []

    def make(aws: AwsConfig) -> Interpreter:
        getters.append(client_getter(aws, aws_call))
        return make_interpreter(aws, clients=getters[-1])

    # One interpreter per provider (disabled ones too: their machines are still served).
    clouds = provider_clouds(config, make)
    enabled = [g for p, g in zip(providers_of(config), getters, strict=True) if p.enabled]

    def warm_all() -> None:
        for clients in enabled:
            warm(clients)

    def new_shell(call: str) -> Shell:
        del call
        return Shell(
            settings=settings,
            cloud=next(iter(clouds.values())),
            clouds=clouds if config.providers else {},
            warm=warm_all,
            now=lambda: int(time.time()),
            new_id=lambda prefix: f"{prefix}-{uuid.uuid4()}",
            correlation=uuid.uuid4().hex[:12],
        )

    app = make_app(api, make_verifier(api, env), new_shell, tally)
    log.info("serving the API on %s:%d (auth %s)", host, port, api.auth)
    print(f"ohf serve: listening on http://{host}:{port} (auth {api.auth})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
