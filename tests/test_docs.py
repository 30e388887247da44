"""The documentation holds together: every relative link and `#anchor` in the README and
`docs/` resolves, every sample config in `examples/` passes `ohf validate`, every TOML snippet
in the docs parses, and the command reference names every command of the command table."""

from __future__ import annotations

import io
import re
import tomllib
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from ohf.cli import main
from ohf.cli.parser import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)


def anchors(page: Path) -> set[str]:
    """The heading anchors GitHub makes for `page` (duplicates get -1, -2...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if not heading:
            continue
        text = heading.group(1).strip().lower().replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(FENCE.sub("", page.read_text()))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n## Some `code` here\n\n[a](#some-code-here) [b](#nope) [c](x.md)\n")
    assert anchors(page) == {"title", "some-code-here"}
    assert links(page) == ["#some-code-here", "#nope", "x.md"]


def test_the_readme_stays_a_front_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_toml_snippet_parses(page: Path) -> None:
    for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S):
        tomllib.loads(block)


EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_passes_validate(example: Path) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out):
        code = main(["validate", "--config", str(example)])
    out.flush()
    printed = out.buffer.getvalue().decode()
    assert code == 0, printed
    assert "FAIL" not in printed


def test_the_command_reference_names_every_command() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    for command in COMMANDS:
        assert f"| `{command.name}` |" in reference, command.name
