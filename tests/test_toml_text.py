"""The TOML writer: what it writes, TOML reads back unchanged, for every document of ohf's shape."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ohf.toml_text import TomlTypeError, dump, string, value

keys = st.text(max_size=12)
scalars = (
    st.text(max_size=30)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.booleans()
)
# Inline values: scalars, arrays and nested tables (vmTypes, attributes, template extras).
inline = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
tables = st.dictionaries(keys, inline, max_size=6)
# A config document: top-level keys, [tables] and [[arrays of tables]].
documents = st.dictionaries(
    keys,
    inline | tables | st.lists(tables, min_size=1, max_size=3),
    max_size=6,
)


@given(documents)
def test_what_dump_writes_toml_reads_back_unchanged(document: dict[str, Any]) -> None:
    assert tomllib.loads(dump(document)) == document


@given(documents, st.dictionaries(keys, st.text(max_size=40), max_size=4), st.text(max_size=60))
def test_comments_never_change_the_data(
    document: dict[str, Any], comments: dict[str, str], header: str
) -> None:
    assert tomllib.loads(dump(document, comments, header)) == document


@given(st.text())
def test_every_string_survives_its_escapes(text: str) -> None:
    assert tomllib.loads(f"x = {string(text)}") == {"x": text}


def test_the_shape_ohf_configs_have() -> None:
    document = {
        "aws": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:5000"},
        "storage": {"type": "json", "retention_days": 7.5},
        "templates": [
            {
                "templateId": "Fleet",
                "vmTypes": {"c5.large": 2, "c5.xlarge": 4},
                "attributes": {"type": ["String", "X86_64"]},
                "securityGroupIds": ["sg-1"],
                "ebsOptimized": True,
            },
            {"templateId": "Other", "note": 'say "hi"\n\tthen\\go'},
        ],
    }
    text = dump(document, {"aws": "Where AWS is.", "templates[1]": "The second one."}, "Top")
    assert text.startswith("# Top\n")
    assert "# Where AWS is.\n[aws]\n" in text
    assert '\n[[templates]]\ntemplateId = "Fleet"\n' in text
    assert 'vmTypes = { "c5.large" = 2, "c5.xlarge" = 4 }' in text
    assert "# The second one.\n[[templates]]\n" in text
    assert tomllib.loads(text) == document


def test_top_level_values_come_before_the_first_table() -> None:
    text = dump({"aws": {"region": "x"}, "templates_file": "t.json"})
    assert text.index("templates_file") < text.index("[aws]")
    assert tomllib.loads(text) == {"aws": {"region": "x"}, "templates_file": "t.json"}


def test_comment_text_cannot_break_out_of_its_comment() -> None:
    text = dump({"a": {"b": 1}}, {"a": "line one\nb = 2\x00\x1b"}, "x\r\n[evil]")
    assert tomllib.loads(text) == {"a": {"b": 1}}


@pytest.mark.parametrize("bad", [None, object(), {1: 2}.keys()])
def test_values_toml_cannot_hold_are_refused(bad: Any) -> None:
    with pytest.raises((TomlTypeError, TypeError)):
        value(bad)
