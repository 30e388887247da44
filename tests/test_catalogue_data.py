"""Checks on the bundled instance-type catalogue and the script that builds it."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).parent.parent
CATALOGUE = REPO_ROOT / "ohf/data/instance_types.json"
SCRIPT = REPO_ROOT / "scripts/refresh_catalogue.py"

KNOWN_ARCHES = {"x86_64", "arm64", "i386", "x86_64_mac", "arm64_mac"}

# Families a Host Factory deployment is realistically configured with today;
# losing any of them on a refresh would break existing templates.
CURRENT_FAMILIES = (
    "c5", "c6i", "c7i", "m5", "m6i", "m7i", "r5", "r6i", "r7i",
    "c6g", "c7g", "m7g", "t3", "hpc6a", "hpc7g",
)  # fmt: skip


@cache
def catalogue() -> dict[str, Any]:
    with CATALOGUE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_catalogue", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_header() -> None:
    data = catalogue()
    assert set(data) == {"source", "generated", "types"}
    assert data["source"].startswith(("moto-", "aws:"))
    assert len(data["generated"]) == 10  # YYYY-MM-DD


def test_type_count_is_plausible() -> None:
    # moto 5.2.5 ships 1395; a sharp drop means a truncated or failed refresh.
    assert len(catalogue()["types"]) > 1000


@pytest.mark.parametrize("family", CURRENT_FAMILIES)
def test_covers_current_family(family: str) -> None:
    sizes = [name for name in catalogue()["types"] if name.split(".", 1)[0] == family]
    assert sizes, f"no {family}.* types in catalogue"


def test_every_entry_is_well_formed() -> None:
    bad = {}
    for name, entry in catalogue()["types"].items():
        ok = (
            isinstance(entry, list)
            and len(entry) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) for v in entry[:3])
            and entry[0] >= entry[1] >= 1
            and entry[2] > 0
            and entry[3] in KNOWN_ARCHES
        )
        if not ok:
            bad[name] = entry
    assert not bad


def test_types_are_sorted() -> None:
    names = list(catalogue()["types"])
    assert names == sorted(names)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("c5.large", [2, 1, 4096, "x86_64"]),
        ("m5.8xlarge", [32, 16, 131072, "x86_64"]),
        ("c7g.large", [2, 2, 4096, "arm64"]),
    ],
)
def test_known_entries(name: str, expected: list[object]) -> None:
    assert catalogue()["types"][name] == expected


def _record(name: str, vcpu_info: dict[str, int], mib: int, arches: list[str]) -> dict[str, Any]:
    return {
        "InstanceType": name,
        "VCpuInfo": vcpu_info,
        "MemoryInfo": {"SizeInMiB": mib},
        "ProcessorInfo": {"SupportedArchitectures": arches},
    }


def test_convert_synthetic_records() -> None:
    records = [
        # DefaultCores present: used as-is.
        _record(
            "zz.large",
            {"DefaultVCpus": 4, "DefaultCores": 2, "DefaultThreadsPerCore": 2},
            8192,
            ["x86_64"],
        ),
        # No DefaultCores: vCPUs / DefaultThreadsPerCore.
        _record("aa.xlarge", {"DefaultVCpus": 8, "DefaultThreadsPerCore": 2}, 16384, ["arm64"]),
        # Neither: cores == vCPUs.
        _record("mm.small", {"DefaultVCpus": 1}, 2048, ["i386", "x86_64"]),
    ]
    out = script().convert(records)
    assert list(out) == ["aa.xlarge", "mm.small", "zz.large"]
    assert out["zz.large"] == (4, 2, 8192, "x86_64")
    assert out["aa.xlarge"] == (8, 4, 16384, "arm64")
    assert out["mm.small"] == (1, 1, 2048, "i386")


def test_render_is_valid_deterministic_json() -> None:
    mod = script()
    types = mod.convert(
        [
            _record("b.large", {"DefaultVCpus": 2, "DefaultCores": 1}, 4096, ["x86_64"]),
            _record("a.large", {"DefaultVCpus": 2}, 4096, ["arm64"]),
        ]
    )
    text = mod.render("moto-0.0.0", "2024-01-02", types)
    assert text == mod.render("moto-0.0.0", "2024-01-02", dict(reversed(types.items())))
    assert json.loads(text) == {
        "source": "moto-0.0.0",
        "generated": "2024-01-02",
        "types": {"a.large": [2, 2, 4096, "arm64"], "b.large": [2, 1, 4096, "x86_64"]},
    }
    # One type per line keeps refresh diffs reviewable.
    assert text.splitlines()[1:3] == [
        '"a.large":[2,2,4096,"arm64"],',
        '"b.large":[2,1,4096,"x86_64"]',
    ]
