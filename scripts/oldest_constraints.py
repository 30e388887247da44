"""Write `constraints/oldest.txt`: each dependency pinned to the lower bound pyproject.toml gives.

Covers the runtime dependencies and those of the extras in `EXTRAS`; `nox -s tests_oldest`
installs `-e .[test,api,mcp]` under these constraints, so the suite proves the bounds true.
Only the simple forms pyproject.toml uses are read (`name[extras]>=X,<Y`, no markers); a
requirement this script cannot read, or one without an inclusive lower bound (`>=`, `~=` or
`==`), is reported and nothing is written. `tests/test_constraints.py` checks the committed file
is what this script writes (`python scripts/oldest_constraints.py` to regenerate it).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints" / "oldest.txt"
EXTRAS = ("api", "mcp", "test")
HEADER = (
    f"# Each dependency's lowest version in pyproject.toml (runtime, {', '.join(EXTRAS)}).\n"
    "# Written by scripts/oldest_constraints.py: do not edit. Used by `nox -s tests_oldest`.\n"
)

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[A-Za-z0-9._,\s-]*)\])?\s*(?P<specifiers>[^;]*?)\s*$"
)
_SPECIFIER = re.compile(r"^\s*(?P<op>===|==|!=|~=|>=|<=|>|<)\s*(?P<version>[A-Za-z0-9.*+!_-]+)\s*$")
_LOWER = ("==", "~=", ">=")


class BoundError(ValueError):
    """Requirements with no usable lower bound (one message per requirement)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of `-`, `_`, `.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bound(requirement: str) -> tuple[str, str]:
    """(normalised name, lowest allowed version) of `name[extras]>=X,<Y`; ValueError if none."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"{requirement!r}: not of the form name[extras]>=X,<Y (no markers)")
    name = normalise(match["name"])
    specifiers = [s for s in match["specifiers"].split(",") if s.strip()]
    lowers: list[str] = []
    for specifier in specifiers:
        spec = _SPECIFIER.match(specifier)
        if spec is None:
            raise ValueError(f"{requirement!r}: cannot read the specifier {specifier.strip()!r}")
        if spec["op"] in _LOWER:
            lowers.append(spec["version"])
    if len(lowers) != 1 or "*" in lowers[0]:
        raise ValueError(f"{requirement!r}: needs exactly one lower bound (>=, ~= or ==)")
    return name, lowers[0]


def requirements(pyproject: dict[str, object]) -> list[str]:
    """The runtime requirements, then those of each extra in `EXTRAS`."""
    project = pyproject.get("project")
    if not isinstance(project, dict):
        raise BoundError(["pyproject.toml has no [project] table"])
    extras = project.get("optional-dependencies", {})
    found: list[str] = list(project.get("dependencies", []))
    missing = [extra for extra in EXTRAS if extra not in extras]
    if missing:
        raise BoundError([f"pyproject.toml has no extra {extra!r}" for extra in missing])
    for extra in EXTRAS:
        found.extend(extras[extra])
    return found


def constraints(pyproject_text: str) -> str:
    """The text of `constraints/oldest.txt` for this pyproject.toml; BoundError lists problems."""
    pins: dict[str, str] = {}
    problems: list[str] = []
    for requirement in requirements(tomllib.loads(pyproject_text)):
        try:
            name, version = lower_bound(requirement)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if pins.setdefault(name, version) != version:
            problems.append(f"{name}: two lower bounds, {pins[name]} and {version}")
    if problems:
        raise BoundError(problems)
    return HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))


def main() -> int:
    try:
        text = constraints(PYPROJECT.read_text(encoding="utf-8"))
    except BoundError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    CONSTRAINTS.parent.mkdir(exist_ok=True)
    CONSTRAINTS.write_text(text, encoding="utf-8")
    print(f"wrote {CONSTRAINTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
