"""`ohf completion bash|zsh|fish`: shell completion scripts, generated from the command table."""

from __future__ import annotations

import argparse

from ohf.cli.parser import COMMANDS, parser

_FILE_OPTIONS = ("--config", "--file", "-f", "--from-ibm")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(sub: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(option, help) of a command, long and short spellings alike."""
    return [
        (spelling, (action.help or "").replace("'", ""))
        for action in sub._actions
        for spelling in action.option_strings
    ]


def _all(sub: argparse.ArgumentParser) -> str:
    """A command's words and options, space-separated."""
    return " ".join([*_words(sub), *(option for option, _ in _options(sub))])


def _words(sub: argparse.ArgumentParser) -> list[str]:
    return [
        str(choice)
        for action in sub._actions
        if not action.option_strings and action.choices
        for choice in action.choices
    ]


def bash() -> str:
    """A bash completion script (`source <(ohf completion bash)`)."""
    subs = _subparsers()
    names = " ".join(c.name for c in COMMANDS)
    cases = "\n".join(f'        {c.name}) words="{_all(subs[c.name])}";;' for c in COMMANDS)
    return f"""# bash completion for ohf: source <(ohf completion bash)
_ohf() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{names} --help --version" -- "$cur"))
        return
    fi
    case "$prev" in
        {"|".join(_FILE_OPTIONS)}) COMPREPLY=($(compgen -f -- "$cur")); return;;
    esac
    case "${{COMP_WORDS[1]}}" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _ohf ohf
"""


def zsh() -> str:
    """A zsh completion script (`ohf completion zsh > "${fpath[1]}/_ohf"`)."""
    subs = _subparsers()
    described = "\n".join(f"    '{c.name}:{c.summary.replace(chr(39), '')}'" for c in COMMANDS)
    cases = "\n".join(f"    {c.name}) compadd -- {_all(subs[c.name])}; _files;;" for c in COMMANDS)
    return f"""#compdef ohf
# zsh completion for ohf: ohf completion zsh > "${{fpath[1]}}/_ohf"
_ohf() {{
  local -a commands
  commands=(
{described}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case $words[2] in
{cases}
  esac
}}
_ohf "$@"
"""


def fish() -> str:
    """A fish completion script (`ohf completion fish > ~/.config/fish/completions/ohf.fish`)."""
    subs = _subparsers()
    lines = ["# fish completion for ohf: ohf completion fish | source", "complete -c ohf -f"]
    for c in COMMANDS:
        summary = c.summary.replace("'", "")
        lines.append(f"complete -c ohf -n '__fish_use_subcommand' -a {c.name} -d '{summary}'")
        seen = f"-n '__fish_seen_subcommand_from {c.name}'"
        for word in _words(subs[c.name]):
            lines.append(f"complete -c ohf {seen} -a {word}")
        for option, text in _options(subs[c.name]):
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            needs_file = " -F" if option in _FILE_OPTIONS else ""
            lines.append(f"complete -c ohf {seen} {flag}{needs_file} -d '{text}'")
    return "\n".join(lines) + "\n"


SCRIPTS = {"bash": bash, "zsh": zsh, "fish": fish}
