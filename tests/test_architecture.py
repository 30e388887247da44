"""The design's rules, checked: imports run one way, a pure core, small modules, lazy AWS.

Layers, outermost first: faces (`cli`, `api/`, `mcp/`) -> the front door (`hf`, `provider`) ->
the core (data, intents, programs) <- effects (interpreters, stores), which depend on the core's
vocabulary and never the reverse. `testing` and `strategies` are test support, public for
users' property tests: they may reach the fake cloud and the door.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import hf_env

PACKAGE = Path(__file__).resolve().parent.parent / "ohf"
DOOR = {"ohf.hf", "ohf.provider", "ohf.shell"}
TEST_SUPPORT = ("ohf.testing", "ohf.strategies")
# The core may not touch the world: no I/O library, no clock, no randomness, no environment,
# and none of the layers around it.
CORE_BANNED = {
    "os",
    "time",
    "uuid",
    "random",
    "datetime",
    "boto3",
    "botocore",
    "sqlite3",
    "subprocess",
    "socket",
    "fcntl",
    "tempfile",
    "shutil",
    "ohf.effects",
    "ohf.hf",
    "ohf.provider",
    "ohf.cli",
    "ohf.api",
    "ohf.mcp",
    "ohf.testing",
    "ohf.strategies",
}
IMPURE_CALLS = {"open", "read_bytes", "read_text", "write_bytes", "write_text", "mkdir", "unlink"}
# Interpreter wiring: only the door builds the shell from these; faces never do.
WIRING = {
    "ohf.effects.aws",
    "ohf.effects.fake",
    "ohf.effects.providers",
    "ohf.effects.circuit",
    "ohf.effects.local",
    "ohf.effects.logs",
    "ohf.effects.store",
    "ohf.effects.store_json",
    "ohf.effects.store_sqlite",
    "ohf.effects.store_dynamodb",
}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> str:
    if name == "ohf":
        return "package"
    if name == "ohf.__main__" or name.startswith(("ohf.cli", "ohf.api", "ohf.mcp")):
        return "face"
    if name in DOOR:
        return "door"
    if name.startswith("ohf.effects"):
        return "effects"
    if name.startswith(TEST_SUPPORT):
        return "test support"
    return "core"


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def reaches(imported: set[str], banned: set[str]) -> set[str]:
    return {i for i in imported for b in banned if i == b or i.startswith(b + ".")}


def of_layer(kind: str) -> list[str]:
    return [n for n in MODULES if layer(n) == kind]


def test_the_layers_are_what_the_design_says() -> None:
    core = set(of_layer("core"))
    assert {"ohf.model", "ohf.intents", "ohf.codes", "ohf.parts", "ohf.acquire"} <= core
    assert {"ohf.cli", "ohf.api.app", "ohf.api.serve", "ohf.mcp.server"} <= set(of_layer("face"))
    assert set(of_layer("door")) == DOOR
    assert "ohf.effects.intents" not in MODULES, "intents are the core's vocabulary"


@pytest.mark.parametrize("name", of_layer("core"))
def test_the_core_imports_nothing_impure_and_nothing_around_it(name: str) -> None:
    bad = reaches(imports_of(MODULES[name]), CORE_BANNED)
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", of_layer("core"))
def test_the_core_opens_no_file(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    calls = {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }
    assert not calls & IMPURE_CALLS, f"{name} calls {calls & IMPURE_CALLS}"


@pytest.mark.parametrize("name", of_layer("effects"))
def test_effects_depend_on_the_core_never_on_the_door_or_faces(name: str) -> None:
    bad = reaches(imports_of(MODULES[name]), DOOR | {"ohf.cli", "ohf.api", "ohf.mcp"})
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(DOOR))
def test_the_door_never_imports_a_face(name: str) -> None:
    bad = reaches(imports_of(MODULES[name]), {"ohf.cli", "ohf.api", "ohf.mcp", *TEST_SUPPORT})
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", of_layer("face"))
def test_faces_go_through_the_door_and_never_wire_interpreters(name: str) -> None:
    bad = reaches(imports_of(MODULES[name]), WIRING | {"ohf.program", "ohf.hf.handle"})
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_checks_above_see_a_violation() -> None:
    # A face that wired an interpreter itself, or a core module reading the clock, is caught.
    assert reaches({"ohf.effects.aws.make_interpreter"}, WIRING)
    assert reaches({"time"}, CORE_BANNED) and reaches({"ohf.effects.fake"}, CORE_BANNED)
    assert not reaches({"ohf.effects.awsome"}, WIRING)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_is_too_long_to_hold_in_one_head(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_every_module_has_a_docstring(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no module docstring"


def _imported_modules(conf: Path, call: str, body: str, tmp: Path) -> tuple[set[str], bytes]:
    infile = tmp / "in.json"
    infile.write_text(body)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ohf", call, "-f", str(infile)],
        env=hf_env(conf),
        capture_output=True,
        check=False,
        timeout=60,
    )
    names = set()
    for line in proc.stderr.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names, proc.stdout


def _one_template(tmp_path: Path) -> Path:
    """An IBM conf dir with one RunInstances template (attributes from the catalogue)."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text(
        '{"templates": [{"templateId": "t1", "maxNumber": 2, "imageId": "ami-12345678",'
        ' "vmType": "c5.large", "subnetId": "subnet-1"}]}'
    )
    return conf


def test_template_call_imports_no_aws_module(tmp_path: Path) -> None:
    conf = _one_template(tmp_path)
    names, stdout = _imported_modules(conf, "getAvailableTemplates", "{}", tmp_path)
    assert b'"templateId":"t1"' in stdout
    aws = {n for n in names if n.split(".")[0] in {"boto3", "botocore", "s3transfer"}}
    assert not aws, f"getAvailableTemplates imported {sorted(aws)[:5]}"
    assert not {n for n in names if n.startswith("ohf.effects.aws")}
    assert "hypothesis" not in names


def test_bad_input_imports_no_aws_module(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text('{"templates": []}')
    names, stdout = _imported_modules(conf, "requestMachines", "{not json", tmp_path)
    assert b"not valid JSON" in stdout
    assert not {n for n in names if n.startswith(("boto3", "botocore"))}


# The REST API's and the MCP SDK's stacks: never on the HF path (only their faces load them).
SERVER_STACKS = {"litestar", "uvicorn", "jwt", "anyio", "mcp", "mcp_types", "pydantic", "starlette"}


def test_hf_calls_import_nothing_of_the_api_or_mcp_stacks(tmp_path: Path) -> None:
    conf = _one_template(tmp_path)
    calls = (
        ("getAvailableTemplates", "{}", b'"templateId":"t1"'),
        ("getRequestStatus", '{"requests": []}', b'"requests":[]'),
    )
    for call, body, answered in calls:
        names, stdout = _imported_modules(conf, call, body, tmp_path)
        assert answered in stdout, stdout
        stacks = {n for n in names if n.split(".")[0] in SERVER_STACKS}
        assert not stacks, f"{call} imported {sorted(stacks)[:5]}"
        assert not {n for n in names if n.startswith(("ohf.api", "ohf.mcp"))}


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith("ohf.mcp")])
def test_only_the_mcp_server_module_imports_the_sdk(name: str) -> None:
    sdk = reaches(imports_of(MODULES[name]), {"mcp", "mcp_types"})
    assert bool(sdk) == (name == "ohf.mcp.server"), f"{name} imports {sorted(sdk)}"


# --- What one HF call loads -------------------------------------------------------------------
# HF starts a process per call, every few seconds: each call loads what it needs and no more.
# (Read from sys.modules at the end of the call: `-X importtime` does not see modules imported
# through importlib, as the store backends and the interpreter's performers are.)

LOADED = (
    "import sys, ohf.cli\n"
    "code = ohf.cli.main(sys.argv[1:])\n"
    "sys.stderr.write('\\nLOADED ' + ' '.join(sorted(sys.modules)))\n"
)
# Never on any HF call: boto3 (and s3transfer, most of `import boto3`), argparse (the operator's
# CLI), toolz, importlib.resources (the catalogue is read as a plain file).
NEVER = ("boto3", "s3transfer", "argparse", "toolz", "ohf.cli.parser", "ohf.cli.commands")
# Not for templates: AWS, programs, breakers, temp files, TOML for a JSON config, hints.
NOT_FOR_TEMPLATES = (
    "botocore",
    "urllib3",
    "importlib.resources",
    "zipfile",
    "tempfile",
    "tomllib",
    "difflib",
    "fractions",
    "ohf.effects.aws",
    "ohf.effects.circuit",
    "ohf.program",
    "ohf.intents",
    "ohf.events",
    "ohf.parts",
    "ohf.poll",
    "ohf.release",
    "ohf.service_models",
)
# Performers of intents no plain RunInstances template yields.
FLEET_PERFORMERS = tuple(
    f"ohf.effects.aws.{m}"
    for m in ("create_fleets", "describe_fleets", "change_fleets", "launch_templates", "tags")
)


def _loaded(conf: Path, call: str, body: object, tmp: Path, **env: str) -> tuple[set[str], bytes]:
    import json

    infile = tmp / f"in-{call}.json"
    infile.write_text(json.dumps(body))
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, call, "-f", str(infile)],
        env={**hf_env(conf), **env},
        capture_output=True,
        check=False,
        timeout=120,
    )
    tail = proc.stderr.decode().rpartition("\nLOADED ")[2]
    return set(tail.split()), proc.stdout


@functools.cache
def _at_startup() -> frozenset[str]:
    """What this interpreter loads before any code runs: a site's `.pth` files may import
    (certifi, say, and with it importlib.resources); that is not the call's doing."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return frozenset(proc.stdout.decode().split())


def _loaded_of(names: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(
        n for n in names - _at_startup() if any(n == p or n.startswith(p + ".") for p in packages)
    )


def test_the_template_call_loads_only_what_listing_templates_needs(tmp_path: Path) -> None:
    conf = _one_template(tmp_path)
    names, stdout = _loaded(conf, "getAvailableTemplates", {}, tmp_path)
    assert b'"nram":["Numeric","4096"]' in stdout  # the catalogue was read
    assert not _loaded_of(names, NEVER + NOT_FOR_TEMPLATES)


def test_aws_calls_load_botocore_on_cut_models_and_only_their_own_program(
    ibm_conf: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    ask = {"template": {"templateId": "OnDemand-c5", "machineCount": 2}}
    names, stdout = _loaded(ibm_conf, "requestMachines", ask, tmp_path, XDG_CACHE_HOME=str(cache))
    assert b"requestId" in stdout, stdout
    assert "botocore" in names
    assert not _loaded_of(names, (*NEVER, "ohf.poll", "ohf.release", *FLEET_PERFORMERS))
    # Its clients were built on cut models, cached where the user's cache is.
    cut = sorted(p.name.split("-")[0] for p in cache.glob("ohf/models/botocore-*/*.json"))
    assert cut == ["ec2", "endpoints", "ssm"]

    request = {"requests": [{"requestId": __import__("json").loads(stdout)["requestId"]}]}
    names, stdout = _loaded(
        ibm_conf, "getRequestStatus", request, tmp_path, XDG_CACHE_HOME=str(cache)
    )
    assert b'"machines"' in stdout, stdout
    assert not _loaded_of(names, (*NEVER, "ohf.release", *FLEET_PERFORMERS))
