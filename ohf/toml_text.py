"""A small TOML writer for what ohf's config holds: tables, arrays of tables, inline values.

Pure. `dump(document)` writes top-level scalars first, then one `[table]` per mapping and one
`[[table]]` per element of a list of mappings; anything nested deeper (`vmTypes`, template
extras, `attributes`) is written inline, which TOML reads back to the same value. Only the
types `tomllib` gives back are written: str, int, float, bool, lists and mappings. Comments
are attached to top-level names: `comments["aws"]` goes above `[aws]`, `comments["templates[1]"]`
above the second `[[templates]]`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
# TOML forbids control characters other than tab in comments.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class TomlTypeError(TypeError):
    """A value TOML (or this writer) cannot hold: None, a date, an object."""


def key(name: str) -> str:
    """A key, bare when TOML allows it, else quoted."""
    return name if _BARE_KEY.fullmatch(name) else string(name)


def string(text: str) -> str:
    """A TOML basic string, every character that needs it escaped."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _float(number: float) -> str:
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return repr(number)


def value(item: Any) -> str:
    """Any value as an inline TOML value (mappings as inline tables)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        return _float(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Mapping):
        inner = ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(item, Sequence):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise TomlTypeError(f"TOML cannot hold {type(item).__name__} {item!r}")


def _is_table_array(item: Any) -> bool:
    return (
        isinstance(item, Sequence)
        and not isinstance(item, str)
        and bool(item)
        and all(isinstance(v, Mapping) for v in item)
    )


def _is_section(item: Any) -> bool:
    return isinstance(item, Mapping) or _is_table_array(item)


def comment(text: str) -> list[str]:
    """Lines of text as TOML comment lines (control characters made spaces)."""
    return [f"# {_CONTROL.sub(' ', line)}".rstrip() for line in text.splitlines()]


def _pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{key(k)} = {value(v)}" for k, v in table.items()]


def dump(
    document: Mapping[str, Any], comments: Mapping[str, str] | None = None, header: str = ""
) -> str:
    """The TOML text of `document`; `tomllib.loads(dump(d)) == d` for every document of
    strings, ints, floats (not NaN), bools, lists and mappings with string keys."""
    notes = comments or {}
    lines = comment(header) if header else []
    plain = {k: v for k, v in document.items() if not _is_section(v)}
    if plain:
        lines += ["", *_pairs(plain)] if lines else _pairs(plain)
    for name, item in document.items():
        if isinstance(item, Mapping):
            lines += ["", *comment(notes.get(name, "")), f"[{key(name)}]", *_pairs(item)]
        elif _is_table_array(item):
            for index, table in enumerate(item):
                note = notes.get(f"{name}[{index}]", notes.get(name, "") if index == 0 else "")
                lines += ["", *comment(note), f"[[{key(name)}]]", *_pairs(table)]
    return "\n".join(lines).lstrip("\n") + "\n"
