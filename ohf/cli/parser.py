"""The command table: every `ohf` command, its group, options, help and example, in one place.

`ohf --help` lists the commands by group; `ohf COMMAND --help` shows the command's usage,
options and an example; `ohf completion bash|zsh|fish` is generated from the same table, so
the three cannot disagree.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import msgspec

from ohf import __version__

Options = Callable[[argparse.ArgumentParser], None]


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """One command: where `ohf --help` lists it, what it does, how to call it."""

    name: str
    group: str
    summary: str
    example: str
    options: Options | None = None
    # Positional words the command takes first (`requests show`, `storage init`...).
    words: tuple[str, ...] = ()


GROUPS = ("HF calls", "Set-up", "Day to day", "Data", "Server")
HF_SUMMARIES = {
    "getAvailableTemplates": "the templates and how many units each can still launch",
    "requestMachines": "launch machines of a template",
    "getRequestStatus": "how requests stand, with their machines",
    "requestReturnMachines": "give machines back (terminate them)",
    "getReturnRequests": "which machines the cloud is taking back",
}


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="the config file (default: $OHF_CONFIG, HF's conf dirs)"
    )


def _json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def _hf_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-f", "--file", metavar="FILE", help="the input JSON file HF wrote")
    source.add_argument("-d", "--data", metavar="JSON", help="the input JSON, inline")
    _config(parser)


def _init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=".", help="where to write ohf.toml (default .)")
    parser.add_argument("--region", help="the AWS region (default: the profile's or AWS_REGION)")
    parser.add_argument("--profile", help="a named profile of ~/.aws/config")
    parser.add_argument("--endpoint-url", metavar="URL", help="an AWS-compatible endpoint")
    parser.add_argument("--subnets", metavar="IDS", help="comma-separated subnet ids")
    parser.add_argument("--security-groups", metavar="IDS", help="comma-separated group ids")
    parser.add_argument("--image", metavar="AMI", help="an AMI id or SSM parameter path")
    parser.add_argument("--key-name", metavar="NAME", help="an EC2 key pair for the hosts")
    parser.add_argument(
        "--instance-types", metavar="TYPES", help="the first on-demand, others spot"
    )
    parser.add_argument("--yes", action="store_true", help="take every default; never ask")
    parser.add_argument("--force", action="store_true", help="replace an existing ohf.toml")
    parser.add_argument(
        "--from-ibm",
        metavar="DIR",
        help="convert IBM's awsprov_config.json + awsprov_templates.json in DIR instead",
    )


def _health(parser: argparse.ArgumentParser) -> None:
    _json(parser, "the checks")
    _config(parser)


def _install(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the provider plugin directory to write into")
    _config(parser)


def _demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the conf dir to look at")


def _templates(parser: argparse.ArgumentParser) -> None:
    _json(parser, "the templates")
    _config(parser)


def _requests(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("show", nargs="?", choices=["show"], help="show one request in full")
    parser.add_argument("request_id", nargs="?", metavar="ID", help="the request to show")
    parser.add_argument(
        "--status", choices=["running", "complete", "complete_with_error"], help="only these"
    )
    parser.add_argument("--template", metavar="ID", help="only requests of this template")
    parser.add_argument(
        "--since", metavar="WHEN", help="only newer: 30m, 6h, 2d, an epoch time or a UTC date"
    )
    _json(parser, "the requests")
    _config(parser)


def _machines(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--request", metavar="ID", help="only machines of this request")
    parser.add_argument(
        "--state",
        choices=[
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "gone",
        ],
        help="only machines in this state",
    )
    parser.add_argument("--provider", metavar="NAME", help="only machines of this provider")
    _json(parser, "the machines")
    _config(parser)


def _events(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--request", metavar="ID", help="only the events of this request")
    _json(parser, "the events (one JSON document per line)")
    _config(parser)


STORAGE_ACTIONS = ("init", "export", "import", "compact", "check")


def _storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=list(STORAGE_ACTIONS), help="what to do")
    parser.add_argument("file", nargs="?", help="export: to FILE; import: from FILE (default -)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="import: replace what the store holds (an unreadable store is kept aside first)",
    )
    _json(parser, "what check finds")
    _config(parser)


def _serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: [api] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: [api] port, 8080)")
    _config(parser)


def _mcp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http", action="store_true", help="streamable HTTP on 127.0.0.1 instead of stdio"
    )
    parser.add_argument(
        "--port", type=int, help="with --http: the port (default: [mcp] port, 8765)"
    )
    _config(parser)


def _completion(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")


COMMANDS: tuple[Command, ...] = (
    *(
        Command(
            name=call,
            group="HF calls",
            summary=summary,
            example=f"ohf {call} -f /tmp/hf_in.json",
            options=_hf_options,
        )
        for call, summary in HF_SUMMARIES.items()
    ),
    Command(
        name="init",
        group="Set-up",
        summary="write a working ohf.toml from what your AWS account has",
        example="ohf init /etc/ohf --region eu-west-1 --yes",
        options=_init,
    ),
    Command(
        name="validate",
        group="Set-up",
        summary="check the config and templates offline",
        example="ohf validate --config /etc/ohf/ohf.toml",
        options=_config,
    ),
    Command(
        name="health",
        group="Set-up",
        summary="check credentials, region and each template's AWS resources",
        example="ohf health --json",
        options=_health,
    ),
    Command(
        name="install-scripts",
        group="Set-up",
        summary="write HF's five scripts and a sample conf into a plugin directory",
        example="ohf install-scripts $EGO_TOP/hostfactory/conf/providerplugins/ohf",
        options=_install,
    ),
    Command(
        name="demo",
        group="Set-up",
        summary="the whole HF lifecycle against an embedded moto_server (no AWS account)",
        example="ohf demo --keep",
        options=_demo,
    ),
    Command(
        name="completion",
        group="Set-up",
        summary="print a shell completion script",
        example="ohf completion bash > /etc/bash_completion.d/ohf",
        options=_completion,
    ),
    Command(
        name="templates",
        group="Day to day",
        summary="the templates: API, types, maxNumber, in use, available, providers",
        example="ohf templates --json",
        options=_templates,
    ),
    Command(
        name="requests",
        group="Day to day",
        summary="the requests ohf holds; `requests show ID` for one in full",
        example="ohf requests --status running --since 2h",
        options=_requests,
        words=("show",),
    ),
    Command(
        name="machines",
        group="Day to day",
        summary="the machines ohf launched, where and how they stand",
        example="ohf machines --state running --provider east",
        options=_machines,
    ),
    Command(
        name="events",
        group="Day to day",
        summary="the event log: every change of the state, by which call",
        example="ohf events --request req-0c1d... --json",
        options=_events,
    ),
    Command(
        name="storage",
        group="Data",
        summary="the store: " + ", ".join(STORAGE_ACTIONS),
        example="ohf storage export /backup/ohf-state.jsonl",
        options=_storage,
        words=STORAGE_ACTIONS,
    ),
    Command(
        name="serve",
        group="Server",
        summary="the REST API (needs the `api` extra)",
        example="ohf serve --host 127.0.0.1 --port 8080",
        options=_serve,
    ),
    Command(
        name="mcp",
        group="Server",
        summary="tools for AI assistants over MCP, stdio or --http (needs the `mcp` extra)",
        example="ohf mcp --config /etc/ohf/ohf.toml",
        options=_mcp,
    ),
)


def top_help() -> str:
    """`ohf --help`: the commands by group."""
    width = max(len(c.name) for c in COMMANDS) + 2
    lines = [
        "usage: ohf COMMAND [options]",
        "",
        "ohf: an IBM Spectrum Symphony / LSF Host Factory provider for AWS.",
    ]
    for group in GROUPS:
        lines += ["", f"{group}:"]
        lines += [f"  {c.name:<{width}}{c.summary}" for c in COMMANDS if c.group == group]
    lines += [
        "",
        "options:",
        "  -h, --help    show this help and exit",
        "  --version     print ohf's version and exit",
        "",
        "`ohf COMMAND --help` shows a command's options and an example.",
    ]
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    """argparse, with ohf's grouped top-level help and `ohf CMD: error` messages."""

    def format_help(self) -> str:
        if self.prog == "ohf":
            return top_help()
        return super().format_help()


def parser() -> argparse.ArgumentParser:
    """The whole command line (HF calls included, for their --help)."""
    top = _Parser(prog="ohf", add_help=True, allow_abbrev=False)
    top.add_argument("--version", action="version", version=f"ohf {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary[:1].upper() + command.summary[1:] + ".",
            epilog=f"example:\n  {command.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            # `--subnet` must not pass for `--subnets`: a typo is an error, not a guess.
            allow_abbrev=False,
        )
        if command.options is not None:
            command.options(sub)
    return top


def subparser(top: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of command `name` within `top`."""
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise KeyError(name)
