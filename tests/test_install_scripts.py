"""`ohf install-scripts DIR`: HF's five scripts exec this interpreter, and the sample conf works."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
from returns.result import Success

from ohf.config import decode_template_file, merge_templates
from ohf.effects.files import load_settings
from ohf.effects.install import CALLS, script_text
from ohf.templates import check_template

SCRIPTS = (
    "getAvailableTemplates",
    "requestMachines",
    "getRequestStatus",
    "requestReturnMachines",
    "getReturnRequests",
)


def install(target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ohf", "install-scripts", str(target), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OHF_", "PRO_"))}
    env.update(extra)
    return env


def test_the_five_scripts_each_exec_this_interpreter(tmp_path: Path) -> None:
    plugin = tmp_path / "providerplugins" / "ohf"
    proc = install(plugin)
    assert proc.returncode == 0, proc.stderr
    assert CALLS == SCRIPTS
    assert sorted(p.name for p in (plugin / "scripts").iterdir()) == sorted(
        f"{c}.sh" for c in SCRIPTS
    )
    for call in SCRIPTS:
        script = plugin / "scripts" / f"{call}.sh"
        mode = stat.S_IMODE(script.stat().st_mode)
        assert mode == 0o755, f"{script}: mode {oct(mode)}"
        lines = script.read_text().splitlines()
        assert lines == ["#!/bin/sh", f'exec {shlex.quote(sys.executable)} -P -m ohf {call} "$@"']


def test_summary_says_how_to_register_the_plugin_with_hf(tmp_path: Path) -> None:
    proc = install(tmp_path / "providerplugins" / "ohf")
    assert proc.returncode == 0, proc.stderr
    assert "hostProviderPlugins.json" in proc.stdout
    assert "hostProviders.json" in proc.stdout
    assert f'"scriptPath": "{tmp_path}/providerplugins/ohf/scripts/"' in proc.stdout
    assert '"plugin": "ohf"' in proc.stdout


def test_sample_conf_decodes_with_ohfs_own_loader(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    assert install(plugin).returncode == 0
    conf = plugin / "conf"
    loaded = load_settings(str(conf / "ohf.toml"), {}, str(tmp_path))
    assert isinstance(loaded, Success), loaded
    settings = loaded.unwrap()
    assert settings.config.aws.region == "us-east-1"
    assert [t.template_id for t in settings.config.templates] == ["OnDemand-c5"]
    template = settings.config.templates[0]
    assert template.image_id is not None and template.image_id.startswith("/aws/service/")
    assert isinstance(check_template(template), Success)

    from_file = decode_template_file((conf / "awsprov_templates.json").read_bytes(), source="t")
    assert isinstance(from_file, Success), from_file
    assert all(isinstance(check_template(t), Success) for t in from_file.unwrap())
    # The commented `templates_file` line must work once uncommented: no templateId clash.
    assert isinstance(merge_templates(settings.config, from_file.unwrap(), source="t"), Success)


def test_uncommenting_templates_file_adds_the_ibm_sample(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    assert install(plugin).returncode == 0
    conf = plugin / "conf"
    text = (conf / "ohf.toml").read_text()
    assert '# templates_file = "awsprov_templates.json"' in text
    both = conf / "both.toml"
    both.write_text(text.replace("# templates_file", "templates_file"))
    loaded = load_settings(str(both), {}, str(tmp_path))
    assert isinstance(loaded, Success), loaded
    assert [t.template_id for t in loaded.unwrap().config.templates] == ["OnDemand-c5", "Spot-m5"]


def test_rerun_keeps_an_edited_conf_and_rewrites_the_scripts(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    assert install(plugin).returncode == 0
    edited = (plugin / "conf" / "ohf.toml").read_text() + "# edited by the admin\n"
    (plugin / "conf" / "ohf.toml").write_text(edited)
    script = plugin / "scripts" / "requestMachines.sh"
    script.write_text("#!/bin/sh\necho broken\n")
    script.chmod(0o600)

    proc = install(plugin)

    assert proc.returncode == 0, proc.stderr
    assert (plugin / "conf" / "ohf.toml").read_text() == edited
    assert "conf/ohf.toml: exists, kept unchanged" in proc.stdout
    assert "exec " in script.read_text() and "echo broken" not in script.read_text()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert not list((plugin / "scripts").glob(".*"))


def test_installed_script_answers_getavailabletemplates_from_the_sample(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    assert install(plugin).returncode == 0
    infile = tmp_path / "in.json"
    infile.write_text("{}")
    env = clean_env(
        HF_PROVIDER_CONFDIR=str(plugin / "conf"),
        HF_PROVIDER_WORKDIR=str(tmp_path / "work"),
        HF_PROVIDER_LOGDIR=str(tmp_path / "log"),
    )

    proc = subprocess.run(
        [str(plugin / "scripts" / "getAvailableTemplates.sh"), "-f", str(infile)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    reply = json.loads(proc.stdout)
    [template] = reply["templates"]
    assert template["templateId"] == "OnDemand-c5"
    assert template["maxNumber"] == 10
    assert template["availableNumber"] == 10
    assert template["vmType"] == "c5.large"
    assert template["attributes"]["type"] == ["String", "X86_64"]
    assert {"ncpus", "nram"} <= template["attributes"].keys()


def test_config_option_pins_the_scripts_to_one_file(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    assert install(plugin).returncode == 0
    # A path with a space and a quote, to prove the export line is shell-quoted.
    pinned = tmp_path / "site conf's" / "ohf.toml"
    pinned.parent.mkdir()
    pinned.write_text((plugin / "conf" / "ohf.toml").read_text())
    proc = install(plugin, "--config", str(pinned))
    assert proc.returncode == 0, proc.stderr
    lines = (plugin / "scripts" / "getAvailableTemplates.sh").read_text().splitlines()
    assert lines[1] == f"export OHF_CONFIG={shlex.quote(str(pinned))}"
    assert sum(line.startswith("exec ") for line in lines) == 1

    infile = tmp_path / "in.json"
    infile.write_text("{}")
    work = tmp_path / "work"
    run = subprocess.run(
        [str(plugin / "scripts" / "getAvailableTemplates.sh"), "-f", str(infile)],
        env=clean_env(HF_PROVIDER_WORKDIR=str(work), HF_PROVIDER_LOGDIR=str(work)),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert [t["templateId"] for t in json.loads(run.stdout)["templates"]] == ["OnDemand-c5"]


def test_interpreter_path_is_shell_quoted() -> None:
    python = "/opt/my python/bin/python3"
    text = script_text(python, "requestMachines", "/etc/o'hf/ohf.toml")
    exec_line = text.splitlines()[-1]
    assert shlex.split(exec_line) == ["exec", python, "-P", "-m", "ohf", "requestMachines", "$@"]
    assert shlex.split(text.splitlines()[1]) == ["export", "OHF_CONFIG=/etc/o'hf/ohf.toml"]


def test_unwritable_target_fails_with_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    proc = install(blocker / "plugin")

    assert proc.returncode == 1
    assert "cannot write into" in proc.stderr and str(blocker) in proc.stderr


def test_sample_templates_json_is_plain_json() -> None:
    from ohf.effects.install import sample_files

    assert msgspec.json.decode(sample_files()["awsprov_templates.json"])["templates"]
