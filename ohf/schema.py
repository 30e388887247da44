"""JSON Schemas for the config file, the template file and every HF input and output.

Generated from the structs themselves (`msgspec.json.schema`), so they cannot drift from the
code; `nox -s schemas` writes them to `schemas/` and a test fails if the committed copies differ.
What msgspec leaves to taste (docstring indentation in `description`, the order of keys and of
`required`) is normalised, so the bytes depend on ohf's structs, not on the msgspec release.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from ohf.config import Config
from ohf.events import Event
from ohf.listings import MachineList, MachineRow, PartRow, RequestList, RequestRow, TemplateList
from ohf.messages import INPUTS, OUTPUTS
from ohf.model import Template

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class RequestShow(msgspec.Struct, frozen=True, kw_only=True):
    """`ohf requests show ID --json`: the request, its parts and machines, and its events."""

    request: RequestRow
    parts: list[PartRow]
    machines: list[MachineRow]
    events: list[Event]


# The `--json` documents of the listing commands.
LISTINGS: dict[str, tuple[Any, str]] = {
    "templates": (TemplateList, "ohf templates --json"),
    "requests": (RequestList, "ohf requests --json"),
    "requests-show": (RequestShow, "ohf requests show ID --json"),
    "machines": (MachineList, "ohf machines --json"),
}


class TemplatesDocument(msgspec.Struct, frozen=True, kw_only=True):
    """IBM's `awsprov_templates.json`."""

    templates: list[Template]


def _without_extras(schema: dict[str, Any]) -> dict[str, Any]:
    # `extras` holds unknown template keys after decoding; in a file they are just extra keys.
    # `ibm_unhonoured` holds what ohf read from IBM's awsprov_config.json, never a config key.
    for name, definition in schema.get("$defs", {}).items():
        if name == "Template":
            definition["properties"].pop("extras", None)
            definition["additionalProperties"] = True
        if name == "Config":
            definition["properties"].pop("ibm_unhonoured", None)
    return schema


def normalised(node: Any) -> Any:
    """`node` with presentation fixed: descriptions as `inspect.cleandoc` leaves them, every
    object's keys sorted, `required` sorted (a set in JSON Schema's meaning)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key in sorted(node):
            value = node[key]
            if key == "description" and isinstance(value, str):
                out[key] = inspect.cleandoc(value)
            elif key == "required" and isinstance(value, list):
                out[key] = sorted(value)
            else:
                out[key] = normalised(value)
        return out
    if isinstance(node, list):
        return [normalised(item) for item in node]
    return node


def _schema(kind: Any, title: str) -> dict[str, Any]:
    body = _without_extras(msgspec.json.schema(kind))
    schema: dict[str, Any] = normalised({"$schema": DIALECT, "title": title, **body})
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by its file name under `schemas/`."""
    out = {
        "config.schema.json": _schema(Config, "ohf config file (ohf.toml / ohf.json)"),
        "templates.schema.json": _schema(TemplatesDocument, "awsprov_templates.json"),
    }
    for call, kind in INPUTS.items():
        out[f"hf/{call}.input.schema.json"] = _schema(kind, f"HF {call} input")
    for call, kind in OUTPUTS.items():
        out[f"hf/{call}.output.schema.json"] = _schema(kind, f"HF {call} output")
    for command, (kind, title) in LISTINGS.items():
        out[f"cli/{command}.schema.json"] = _schema(kind, title)
    return out


def render(schema: dict[str, Any]) -> bytes:
    """Stable, readable bytes of one schema file."""
    return msgspec.json.format(msgspec.json.encode(schema), indent=2) + b"\n"
