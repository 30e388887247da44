"""`ohf install-scripts DIR`: write HF's five provider scripts and a sample conf into a plugin dir.

HF runs `<providerplugins>/<name>/scripts/<call>.sh -f FILE`; each script only execs this
interpreter's `python -m ohf <call>`, so the plugin always runs the ohf installed with it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from ohf.messages import INPUTS

CALLS = tuple(INPUTS)

SAMPLE_TOML = """\
# ohf: the IBM Spectrum Symphony Host Factory provider for AWS. Sample config: edit, then check
# it offline with `python -m ohf validate --config /path/to/ohf.toml`.
#
# Where ohf looks: --config PATH, $OHF_CONFIG, then ohf.toml in $HF_PROVIDER_CONFDIR (HF's
# provider instance dir), $PRO_CONF_DIR or the current dir. With no ohf.toml it reads IBM's
# awsprov_config.json + awsprov_templates.json from those dirs instead.

# Also read IBM-format templates from this file (relative to this file's dir). Its templateIds
# must differ from the inline ones below.
# templates_file = "awsprov_templates.json"

[aws]
region = "us-east-1"
# A named profile of the HF service user; by default the standard chain is used (environment,
# ~/.aws, the EC2 instance profile), which is what an HF master on EC2 wants.
# profile = "hostfactory"
# An AWS-compatible endpoint, e.g. a local moto_server for tests.
# endpoint_url = "http://127.0.0.1:5000"
# connect_timeout = 5.0
# read_timeout = 20.0
# max_attempts = 4

[storage]
# ohf remembers what it launched: "json" (one file, by default
# $HF_PROVIDER_WORKDIR/ohf-state.json), "sqlite" (larger sites) or "dynamodb"
# (an HA pair of HF masters; set table, then run `ohf storage init`).
type = "json"
# path = "/var/lib/ohf/ohf-state.json"
lock_timeout = 30.0
retention_days = 7
# table = "ohf-state"

[logging]
level = "INFO"
# Default: $HF_PROVIDER_LOGDIR/ohf.log. Never stdout, which carries HF's JSON answer.
# file = "/var/log/ohf/ohf.log"

# One [[templates]] table per HF template, with the keys of IBM's awsprov_templates.json.
[[templates]]
templateId = "OnDemand-c5"
maxNumber = 10                   # units HF may hold at once; -1 = unlimited
# An AMI id (ami-...) or an SSM parameter path, resolved at launch.
imageId = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
subnetId = "subnet-REPLACE-ME"   # your subnet; "subnet-a,subnet-b" spreads over several
vmType = "c5.large"
instanceTags = "cluster=symphony;managed-by=ohf"
# securityGroupIds = ["sg-REPLACE-ME"]
# keyName = "my-key"
# instanceProfile = "symphony-compute"
# userDataScript = "/opt/symphony/join-cluster.sh"
# Derived from vmType when left out; an administrator's values always win:
# attributes = { type = ["String", "X86_64"], ncpus = ["Numeric", "1"], nram = ["Numeric", "4096"] }
"""

SAMPLE_TEMPLATES = {
    "templates": [
        {
            "templateId": "Spot-m5",
            "maxNumber": 20,
            "attributes": {
                "type": ["String", "X86_64"],
                "ncpus": ["Numeric", "1"],
                "nram": ["Numeric", "8192"],
            },
            "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "subnetId": "subnet-REPLACE-ME",
            "vmType": "m5.large",
            "priceType": "spot",
            "instanceTags": "cluster=symphony;managed-by=ohf",
        }
    ]
}


def script_text(python: str, call: str, config: str | None = None) -> str:
    """The shell script HF runs for `call`: exec this interpreter's `python -m ohf <call>`."""
    lines = ["#!/bin/sh"]
    if config:
        lines.append(f"export OHF_CONFIG={shlex.quote(config)}")
    lines.append(f'exec {shlex.quote(python)} -P -m ohf {call} "$@"')
    return "\n".join(lines) + "\n"


def sample_files() -> dict[str, str]:
    """The sample conf files: name -> text."""
    return {
        "ohf.toml": SAMPLE_TOML,
        "awsprov_templates.json": json.dumps(SAMPLE_TEMPLATES, indent=2) + "\n",
    }


def registration(plugin_dir: Path) -> str:
    """How to register the plugin with HF (hostProviderPlugins.json, hostProviders.json)."""
    name = plugin_dir.name or "ohf"
    inst = f"{name}inst"
    return f"""\
Register it with Host Factory (then restart HF: egosh service stop/start HostFactory):
  1. $HF_TOP/conf/providerplugins/hostProviderPlugins.json, in "providerplugins":
       {{"name": "{name}", "enabled": 1, "scriptPath": "{plugin_dir}/scripts/"}}
  2. $HF_TOP/conf/providers/hostProviders.json, in "providers":
       {{"name": "{inst}", "enabled": 1, "plugin": "{name}",
        "confPath": "${{HF_CONFDIR}}/providers/{inst}/",
        "workPath": "${{HF_WORKDIR}}/providers/{inst}/", "logPath": "${{HF_LOGDIR}}/"}}
  3. $HF_TOP/conf/requestors/hostRequestors.json: add "{inst}" to your requestor's "providers".
"""


def _write_script(path: Path, text: str) -> None:
    # Written aside and renamed, so HF never runs a half-written script during a reinstall.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(0o755)
    os.replace(partial, path)


def _write_new(path: Path, text: str) -> bool:
    """Create `path` with `text` unless it exists (an administrator may have edited it)."""
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        return False
    return True


def install_scripts(target: str, config: str | None) -> int:
    """Write the five scripts (always) and the sample conf (only if absent) into `target`."""
    plugin_dir = Path(os.path.abspath(Path(target).expanduser()))
    config_path = os.path.abspath(Path(config).expanduser()) if config else None
    python = sys.executable
    if not python:
        print("ohf install-scripts: cannot tell which Python runs ohf", file=sys.stderr)
        return 1
    try:
        scripts = plugin_dir / "scripts"
        conf = plugin_dir / "conf"
        scripts.mkdir(parents=True, exist_ok=True)
        conf.mkdir(parents=True, exist_ok=True)
        for call in CALLS:
            _write_script(scripts / f"{call}.sh", script_text(python, call, config_path))
        written = {name: _write_new(conf / name, text) for name, text in sample_files().items()}
    except OSError as exc:
        print(f"ohf install-scripts: cannot write into {plugin_dir}: {exc}", file=sys.stderr)
        return 1
    print(f"ohf provider plugin in {plugin_dir}")
    print(f"  scripts/  {', '.join(f'{c}.sh' for c in CALLS)}")
    print(f'            each runs: {shlex.quote(python)} -P -m ohf <call> "$@"')
    if config_path:
        print(f"            with OHF_CONFIG={config_path}")
        if not Path(config_path).is_file():
            print(f"  note: {config_path} does not exist yet; start from {conf / 'ohf.toml'}")
    for name, new in written.items():
        state = "sample written" if new else "exists, kept unchanged"
        print(f"  conf/{name}: {state}")
    print()
    if config_path:
        print(f"Config: the scripts read {config_path}.")
    else:
        inst = f"{plugin_dir.name or 'ohf'}inst"
        print(
            "Config: ohf reads ohf.toml (or IBM's awsprov_*.json) from HF's provider conf dir,\n"
            f"  $HF_PROVIDER_CONFDIR (e.g. $HF_TOP/conf/providers/{inst}/). Copy and edit\n"
            f"  {conf / 'ohf.toml'}\n"
            "  there, or rerun with --config PATH to point the scripts at one file."
        )
    shown = config_path or str(conf / "ohf.toml")
    print(f"Check it offline: {shlex.quote(python)} -m ohf validate --config {shlex.quote(shown)}")
    print()
    print(registration(plugin_dir), end="")
    return 0
