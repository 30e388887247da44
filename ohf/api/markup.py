"""HTML built in Python with one escaping function: `esc` for text, `el` for elements.

Every value the status page shows (template ids, instance types, AWS's messages, anything a
user or AWS wrote) reaches the page through `esc`, directly or as an `el` child or attribute.
Only `Safe` strings, which `esc` and `el` alone make, pass through unescaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

# Elements that have no end tag.
_VOID = frozenset({"meta", "link", "input", "br", "hr", "img"})

Attr = str | int | bool | None


class Safe(str):
    """Markup that is already escaped; any other `str` is text."""

    __slots__ = ()


Child = Safe | str | int | None | Iterable["Child"]


def esc(value: object) -> Safe:
    """`value` as HTML text, safe in element content and in double-quoted attributes."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape(str(value), quote=True))


def _flat(children: Iterable[Child]) -> Iterable[Safe]:
    for child in children:
        if child is None:
            continue
        if isinstance(child, str | int):
            yield esc(child)
        else:
            yield from _flat(child)


def _attributes(attrs: dict[str, Attr]) -> str:
    out = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        out.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(out)


def el(tag: str, *children: Child, **attrs: Attr) -> Safe:
    """The element `tag` with `children` (text is escaped) and `attrs` (`class_` is `class`,
    `aria_label` is `aria-label`; True is a bare attribute, None and False are left out)."""
    opening = f"<{tag}{_attributes(attrs)}>"
    if tag in _VOID:
        return Safe(opening)
    return Safe(opening + "".join(_flat(children)) + f"</{tag}>")


def join(parts: Iterable[Child]) -> Safe:
    """Several pieces of markup (or text, escaped) one after another."""
    return Safe("".join(_flat(parts)))
