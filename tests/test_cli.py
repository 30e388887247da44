"""The command line as an operator meets it: help by group, per-command help with an example,
--version, completion, exit codes, and the listings against a state built by real HF calls.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ohf import __version__
from ohf.cli import hf_arguments, main
from ohf.cli.completion import SCRIPTS
from ohf.cli.listing import age, since_epoch, table
from ohf.cli.parser import COMMANDS, GROUPS
from ohf.listings import MachineList, RequestList, TemplateList
from ohf.schema import RequestShow
from tests.conftest import hf_env
from tests.test_e2e_providers import TEMPLATE, Clouds, ask, clouds, poll  # noqa: F401


def run(*argv: str) -> tuple[int, str, str]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    out.flush()
    return code, out.buffer.getvalue().decode(), err.getvalue()


def test_top_help_lists_every_command_under_its_group() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for group in GROUPS:
        assert f"\n{group}:\n" in out
    sections = out.split("\n\n")
    for command in COMMANDS:
        (section,) = [s for s in sections if s.startswith(f"{command.group}:")]
        assert f"  {command.name} " in section, command.name
    assert "positional arguments" not in out and "target" not in out


def test_no_arguments_is_a_usage_error_with_the_help() -> None:
    code, out, err = run()
    assert code == 2 and out == "" and "HF calls:" in err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_has_its_own_help_with_usage_options_and_an_example(command: Any) -> None:
    code, out, _ = run(command.name, "--help")
    assert code == 0
    assert out.startswith(f"usage: ohf {command.name}")
    assert "options:" in out and "--help" in out
    assert f"example:\n  {command.example}" in out
    # Not the global text.
    assert "Day to day:" not in out


def test_version() -> None:
    code, out, _ = run("--version")
    assert (code, out.strip()) == (0, f"ohf {__version__}")


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["requests", "--bogus"], ["storage"], ["completion", "tcsh"], ["machines", "-x"]],
)
def test_usage_errors_exit_2_and_say_why(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert "error:" in err and "usage: ohf" in err


def test_hf_call_arguments_are_parsed_without_argparse() -> None:
    assert hf_arguments(["-f", "in.json", "--config", "c.toml"]) == (
        {"file": "in.json", "config": "c.toml"},
        None,
    )
    assert hf_arguments(["--data={}"]) == ({"data": "{}"}, None)
    assert hf_arguments(["-f"])[1] == "argument -f/--file: expected one argument"
    assert hf_arguments(["-f", "a", "-d", "{}"])[1] == "give -f FILE or -d JSON, not both"
    assert hf_arguments(["--bogus"])[1] == "unrecognized arguments: --bogus"
    assert hf_arguments(["-f", "a", "-f", "b"])[1] == "argument -f/--file: given twice"


def test_an_hf_call_with_a_bad_flag_still_answers_in_hfs_shape() -> None:
    code, out, _ = run("getAvailableTemplates", "--bogus")
    assert code == 1
    assert json.loads(out) == {"message": "bad arguments: unrecognized arguments: --bogus"}


def test_an_hf_calls_help_shows_its_options() -> None:
    code, out, _ = run("requestMachines", "--help")
    assert code == 0 and "-f FILE, --file FILE" in out and "-d JSON, --data JSON" in out


def _bash_complete(words: list[str]) -> list[str]:
    """What `ohf <words><TAB>` offers in bash with the generated script."""
    script = SCRIPTS["bash"]()
    line = " ".join(["ohf", *words])
    probe = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _ohf; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_offers_commands_words_and_options() -> None:
    assert {"requests", "requestMachines", "requestReturnMachines"} <= set(_bash_complete(["re"]))
    assert _bash_complete(["storage", "ex"]) == ["export"]
    assert set(_bash_complete(["machines", "--st"])) == {"--state"}
    assert "--from-ibm" in _bash_complete(["init", "--"])


def test_zsh_and_fish_completion_name_every_command_and_option() -> None:
    for shell in ("zsh", "fish"):
        script = SCRIPTS[shell]()
        for command in COMMANDS:
            assert command.name in script, (shell, command.name)
    fish = SCRIPTS["fish"]()
    assert "__fish_seen_subcommand_from requests' -l since" in fish
    assert "__fish_seen_subcommand_from init' -l from-ibm -F" in fish
    assert SCRIPTS["zsh"]().startswith("#compdef ohf")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse_where_the_shell_is_installed(shell: str) -> None:
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    done = subprocess.run(
        [binary, "-n"], input=SCRIPTS[shell](), text=True, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_helpers_format_for_people() -> None:
    assert [age(s) for s in (5, 61, 7200, 3 * 86_400)] == ["5s", "1m", "2h", "3d"]
    assert table(["A", "BB"], [["xyz", "1"], ["q", "22"]]) == "A    BB\nxyz  1\nq    22"
    now = 1_700_000_000
    assert since_epoch("30m", now) == now - 1800
    assert since_epoch("2d", now) == now - 2 * 86_400
    assert since_epoch("1700000000", now) == 1_700_000_000
    assert since_epoch("2023-11-14T22:13:20", now) == 1_700_000_000
    assert since_epoch("yesterday", now) is None


# --- listings against a state built by real calls on two providers ---------------------------


def ohf(conf: Path, *argv: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ohf", *argv],
        env=hf_env(conf),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def decoded(kind: type[Any], text: str) -> Any:
    """Strict decoding into the documented struct: the --json shape is the schema's."""
    return msgspec.json.decode(text.encode(), type=kind)


@pytest.mark.e2e
def test_listings_show_a_request_placed_on_two_providers(clouds: Clouds) -> None:  # noqa: F811
    request_id = ask(clouds.conf, 5)["requestId"]  # 3 fit on a, 2 go to b
    assert poll(clouds.conf, request_id)["status"] == "complete"

    code, out, err = ohf(clouds.conf, "requests", "--json")
    assert code == 0, err
    (row,) = decoded(RequestList, out).requests
    assert (row.request_id, row.template_id, row.providers) == (request_id, TEMPLATE, ["a", "b"])
    assert (row.asked, row.held, row.machines, row.status) == (5, 5, 5, "complete")

    code, out, _ = ohf(clouds.conf, "requests")
    header, line = out.splitlines()
    assert header.split() == [
        "REQUEST", "KIND", "TEMPLATE", "PROVIDERS", "ASKED", "HELD", "STATUS", "AGE"
    ]  # fmt: skip
    assert line.split()[:7] == [request_id, "acquire", TEMPLATE, "a,b", "5", "5", "complete"]

    code, out, _ = ohf(clouds.conf, "machines", "--json", "--provider", "b")
    rows = decoded(MachineList, out).machines
    assert len(rows) == 2 and {m.provider for m in rows} == {"b"}
    assert all(m.request_id == request_id and m.state == "running" for m in rows)

    code, out, _ = ohf(clouds.conf, "machines")
    lines = out.splitlines()
    assert len(lines) == 6 and lines[0].split()[0] == "MACHINE"
    assert sorted(line.split()[7] for line in lines[1:]) == ["a", "a", "a", "b", "b"]

    code, out, _ = ohf(clouds.conf, "requests", "show", request_id, "--json")
    shown = decoded(RequestShow, out)
    assert [(p.request_id, p.provider, p.asked) for p in shown.parts] == [
        (request_id, "a", 3),
        (f"{request_id}.2", "b", 2),
    ]
    assert len(shown.machines) == 5
    assert {e.kind for e in shown.events} >= {"request_created", "machine_changed"}

    code, out, _ = ohf(clouds.conf, "requests", "show", request_id)
    assert code == 0 and "parts" in out and f"{request_id}.2" in out and "events" in out

    code, out, _ = ohf(clouds.conf, "templates", "--json")
    (template,) = decoded(TemplateList, out).templates
    assert (template.in_use, template.available) == (5, 15)
    assert template.rooms == {"a": 7, "b": 8}

    code, out, _ = ohf(clouds.conf, "templates")
    assert "a:7 b:8" in out


@pytest.mark.e2e
def test_listing_filters_and_a_missing_request(clouds: Clouds) -> None:  # noqa: F811
    request_id = ask(clouds.conf, 1)["requestId"]
    poll(clouds.conf, request_id)
    assert decoded(RequestList, ohf(clouds.conf, "requests", "--json", "--status", "running")[1])
    none = decoded(RequestList, ohf(clouds.conf, "requests", "--json", "--template", "x")[1])
    assert none.requests == []
    code, _, err = ohf(clouds.conf, "requests", "show", "req-nope")
    assert code == 1 and err.strip() == "ohf requests show: no request 'req-nope' in the store"
    code, _, err = ohf(clouds.conf, "requests", "--since", "soon")
    assert code == 2 and "--since 'soon'" in err
    assert os.path.exists(clouds.conf / "work" / "ohf-state.json")


def test_an_unknown_option_is_refused_by_the_commands_own_parser_and_never_guessed() -> None:
    code, out, err = run("init", "--subnet", "subnet-1", "--yes")
    assert code == 2 and out == ""
    assert "usage: ohf init" in err and "ohf init: error: unrecognized arguments: --subnet" in err
