"""The design's rules, checked: a pure core, lazy AWS imports, a fast template call."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import hf_env

PACKAGE = Path(__file__).resolve().parent.parent / "ohf"
# The shell: effects, the CLI entry and the call orchestration that hands effects around.
SHELL = {"cli.py", "__main__.py"}
IMPURE_MODULES = {
    "boto3",
    "botocore",
    "sqlite3",
    "subprocess",
    "socket",
    "fcntl",
    "tempfile",
    "shutil",
}
IMPURE_CALLS = {"open", "read_bytes", "read_text", "write_bytes", "write_text", "mkdir", "unlink"}


def _core_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "effects" not in p.parts and p.name not in SHELL]


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: p.name)
def test_core_module_imports_no_io_library(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & IMPURE_MODULES, f"{path.name} imports {imported & IMPURE_MODULES}"
    assert "os" not in imported, f"{path.name} imports os"


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: p.name)
def test_core_module_opens_no_file(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }
    assert not calls & IMPURE_CALLS, f"{path.name} calls {calls & IMPURE_CALLS}"


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


def test_template_call_imports_no_aws_module(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text(
        '{"templates": [{"templateId": "t1", "maxNumber": 2, "imageId": "ami-12345678",'
        ' "vmType": "c5.large", "subnetId": "subnet-1"}]}'
    )
    names, stdout = _imported_modules(conf, "getAvailableTemplates", "{}", tmp_path)
    assert b'"templateId":"t1"' in stdout
    aws = {n for n in names if n.split(".")[0] in {"boto3", "botocore", "s3transfer"}}
    assert not aws, f"getAvailableTemplates imported {sorted(aws)[:5]}"
    assert "hypothesis" not in names


def test_bad_input_imports_no_aws_module(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text('{"templates": []}')
    names, stdout = _imported_modules(conf, "requestMachines", "{not json", tmp_path)
    assert b"not valid JSON" in stdout
    assert not {n for n in names if n.startswith(("boto3", "botocore"))}


def test_template_call_imports_nothing_of_the_api_stack(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "awsprov_templates.json").write_text(
        '{"templates": [{"templateId": "t1", "maxNumber": 2, "imageId": "ami-12345678",'
        ' "vmType": "c5.large", "subnetId": "subnet-1"}]}'
    )
    names, stdout = _imported_modules(conf, "getAvailableTemplates", "{}", tmp_path)
    assert b'"templateId":"t1"' in stdout
    api = {n for n in names if n.split(".")[0] in {"litestar", "uvicorn", "jwt", "anyio"}}
    assert not api, f"getAvailableTemplates imported {sorted(api)[:5]}"
    assert not {n for n in names if n.startswith("ohf.api")}
