"""The committed JSON Schemas are exactly what the structs generate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ohf.schema import all_schemas, normalised, render

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_committed_schema_matches_generated(name: str) -> None:
    committed = SCHEMAS / name
    assert committed.exists(), f"{name} missing: run `nox -s schemas`"
    assert committed.read_bytes() == render(all_schemas()[name]), (
        f"{name} is stale: run `nox -s schemas` and commit the result"
    )


def test_no_schema_file_without_a_struct() -> None:
    on_disk = {str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.json")}
    assert on_disk == set(all_schemas())


def test_template_schema_states_the_id_pattern_and_limits() -> None:
    schema = json.loads((SCHEMAS / "templates.schema.json").read_text())
    template = schema["$defs"]["Template"]
    assert template["properties"]["templateId"]["pattern"] == "^[0-9A-Za-z_-]{1,64}$"
    assert template["properties"]["maxNumber"]["minimum"] == -1
    assert template["properties"]["maxNumber"]["maximum"] == 10_000
    assert "extras" not in template["properties"]
    assert template["additionalProperties"] is True


def test_request_machines_schema_requires_a_positive_count() -> None:
    schema = json.loads((SCHEMAS / "hf/requestMachines.input.schema.json").read_text())
    ask = schema["$defs"]["TemplateAsk"]
    assert ask["properties"]["machineCount"]["minimum"] == 1
    assert set(ask["required"]) == {"templateId", "machineCount"}


def test_schemas_are_valid_json_documents() -> None:
    for name in all_schemas():
        doc = msgspec.json.decode((SCHEMAS / name).read_bytes())
        assert doc["$schema"].startswith("https://json-schema.org/")


def _indented(node: Any) -> Any:
    """`node` as another msgspec release might emit it: docstrings with their indentation
    kept, every object's keys and `required` in reverse order."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key in reversed(list(node)):
            value = node[key]
            if key == "description" and isinstance(value, str):
                out[key] = value.replace("\n", "\n    ")
            elif key == "required" and isinstance(value, list):
                out[key] = list(reversed(value))
            else:
                out[key] = _indented(value)
        return out
    if isinstance(node, list):
        return [_indented(item) for item in node]
    return node


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_schema_bytes_do_not_depend_on_msgspec_presentation(name: str) -> None:
    schema = all_schemas()[name]
    assert render(normalised(_indented(schema))) == render(schema)


def test_descriptions_are_cleaned_docstrings() -> None:
    schema = json.loads((SCHEMAS / "config.schema.json").read_text())
    description = schema["$defs"]["ProviderConfig"]["description"]
    assert "\n    " not in description
    assert description.startswith("One `[[providers]]` entry")
    assert "\n\nUnset connection keys" in description
