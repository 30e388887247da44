"""Run `ohf.cli.main` and SIGKILL the process at a chosen step: a crash at a known point.

    python -m tests.support.killer WHEN ARGS...

`WHEN` is one of
- `before:<Intent>:<n>` / `after:<Intent>:<n>`: right before / after the interpreter performs
  the n-th intent of that type (`*` for any type), counted from 1;
- `before-reply`: the call has finished, its state committed, and is about to print its reply;
- `before-call:<module>.<function>:<n>`: right before the n-th call of a module-level function
  (for a point inside a store's commit, e.g. `ohf.effects.store_json.save`).
ARGS are `ohf`'s own. The patches live in this child process only: ohf's code has no test hooks.
If the step never comes, the call runs to its end as usual.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any


def die() -> None:
    """SIGKILL this process: no cleanup, no flush, no atexit, as `kill -9` from outside."""
    os.kill(os.getpid(), signal.SIGKILL)


def parse_when(when: str) -> tuple[str, str, int]:
    """(`before`|`after`|`before-call`|`before-reply`, intent type or function, occurrence)."""
    if when == "before-reply":
        return when, "*", 0
    moment, target, count = when.split(":")
    if moment not in ("before", "after", "before-call") or int(count) < 1:
        raise SystemExit(f"killer: bad WHEN {when!r}")
    return moment, target, int(count)


def dying_interpreter(
    interpret: Callable[[Any], Any], moment: str, kind: str, count: int
) -> Callable[[Any], Any]:
    """`interpret`, dying before or after the `count`-th intent of type `kind`."""
    seen = 0

    def wrapped(intent: Any) -> Any:
        nonlocal seen
        hit = kind in ("*", type(intent).__name__)
        seen += hit
        if hit and seen == count and moment == "before":
            die()
        answer = interpret(intent)
        if hit and seen == count and moment == "after":
            die()
        return answer

    return wrapped


def dying_function(function: Callable[..., Any], count: int) -> Callable[..., Any]:
    """`function`, dying right before its `count`-th call."""
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == count:
            die()
        return function(*args, **kwargs)

    return wrapped


def install(when: str) -> None:
    """Patch ohf so this process dies at `when`; `ohf.program.run` before anything imports it."""
    moment, target, count = parse_when(when)
    if moment == "before-call":
        module_name, _, name = target.rpartition(".")
        module = importlib.import_module(module_name)
        setattr(module, name, dying_function(getattr(module, name), count))
        return
    import ohf.program

    original = ohf.program.run
    if moment in ("before", "after"):

        def run(program: Any, interpret: Callable[[Any], Any]) -> Any:
            return original(program, dying_interpreter(interpret, moment, target, count))

        ohf.program.run = run  # type: ignore[assignment]
    import ohf.cli

    if moment == "before-reply":

        def emit(reply: Any) -> int:
            die()
            return 1

        ohf.cli.emit = emit  # type: ignore[assignment]
        return
    # Modules that imported `run` by name before the patch (none today) get it too.
    for module in list(sys.modules.values()):
        if (
            getattr(module, "__name__", "").startswith("ohf")
            and getattr(module, "run", None) is original
        ):
            module.run = ohf.program.run  # type: ignore[attr-defined]


def main(argv: Sequence[str]) -> int:
    """Install the kill point, then run ohf as `python -m ohf` would."""
    if not argv:
        raise SystemExit(__doc__)
    install(argv[0])
    import ohf.cli

    return ohf.cli.main(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
