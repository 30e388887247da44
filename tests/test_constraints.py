"""`constraints/oldest.txt` is what `scripts/oldest_constraints.py` writes from pyproject.toml.

`nox -s tests_oldest` installs under that file, so it must follow every change of a lower bound.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints" / "oldest.txt"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "oldest_constraints", ROOT / "scripts" / "oldest_constraints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _script()


def _pins(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("==") for line in lines)


def test_committed_constraints_are_what_the_script_writes() -> None:
    assert CONSTRAINTS.read_text(encoding="utf-8") == script.constraints(PYPROJECT.read_text()), (
        "constraints/oldest.txt is stale: run `python scripts/oldest_constraints.py` and commit it"
    )


def test_every_runtime_test_api_and_mcp_requirement_is_pinned_to_its_lower_bound() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]
    expected = {}
    for requirement in [*project["dependencies"], *extras["test"], *extras["api"], *extras["mcp"]]:
        name = re.split(r"[\[<>=~!;, ]", requirement, maxsplit=1)[0].lower()
        bound = re.search(r">=\s*([^,;\s]+)", requirement)
        assert bound is not None, requirement
        expected[name] = bound[1]
    assert _pins(CONSTRAINTS.read_text(encoding="utf-8")) == expected


def test_a_raised_bound_changes_the_file() -> None:
    text = PYPROJECT.read_text()
    raised, count = re.subn(r'"toolz>=[^"]*"', '"toolz>=9.9"', text)
    assert count == 1
    written = script.constraints(raised)
    assert _pins(written)["toolz"] == "9.9"
    assert written != CONSTRAINTS.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("boto3>=1.34", ("boto3", "1.34")),
        ("pyjwt[crypto]>=2.10", ("pyjwt", "2.10")),
        ("moto[server,ec2,ssm]>=5.2,<6", ("moto", "5.2")),
        ("Typing_Extensions <5, >= 4.1", ("typing-extensions", "4.1")),
        ("foo~=1.4.2", ("foo", "1.4.2")),
        ("foo==3.0", ("foo", "3.0")),
    ],
)
def test_lower_bound_reads_the_simple_forms(requirement: str, expected: tuple[str, str]) -> None:
    assert script.lower_bound(requirement) == expected


@pytest.mark.parametrize(
    "requirement",
    ["toolz", "toolz<2", "toolz>0.12", "toolz>=0.12,>=0.13", "toolz==0.*", "toolz>=1; os_name"],
)
def test_a_requirement_without_a_usable_lower_bound_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="toolz"):
        script.lower_bound(requirement)


def test_the_script_reports_every_requirement_without_a_lower_bound() -> None:
    text = PYPROJECT.read_text()
    broken = text.replace('"toolz>=', '"toolz<99,!=', 1).replace('"pytest>=', '"pytest<', 1)
    with pytest.raises(script.BoundError) as caught:
        script.constraints(broken)
    assert len(caught.value.problems) == 2
    assert any("toolz" in p for p in caught.value.problems)
    assert any("pytest" in p for p in caught.value.problems)
