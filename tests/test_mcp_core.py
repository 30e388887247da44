"""The MCP face without the SDK: what the config resource masks, the tool table over the fake
cloud (writes refused unless allowed, arguments checked), lost machines from the event log,
health per provider with its breaker, and `ohf mcp`'s own command-line errors.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ohf.breaker import Breaker
from ohf.config import ApiConfig, AwsConfig, Config, McpConfig, ProviderConfig, decode_config
from ohf.effects.health import Check, Report
from ohf.events import Event
from ohf.mcp.answers import (
    NoArguments,
    RequestAsk,
    ReturnMachinesAsk,
    breaker_view,
    health_answer,
    lost_machines,
)
from ohf.mcp.guide import prompt, read
from ohf.mcp.masking import MASK, masked_config, masked_script, masked_url
from ohf.mcp.tools import TOOLS, call
from ohf.model import Machine, Request, Template
from ohf.testing import door, fake_provider

NOW = 1_700_000_000
TEMPLATE = Template(
    template_id="t1", max_number=3, image_id="ami-0123456789abcdef0", vm_type="c5.large"
)

# --- what the config resource masks -----------------------------------------------------------


def secret_config() -> Config:
    template = msgspec.structs.replace(
        TEMPLATE,
        user_data="#!/bin/sh\nexport JOIN_TOKEN=tok-123",
        key_name="hpc-key",
        run_instances={"UserData": "c2VjcmV0", "EbsOptimized": True},
        extras={"vendorPassword": "pw-1", "AWS_SECRET_ACCESS_KEY": "sk-1", "team": "hpc"},
    )
    return Config(
        aws=AwsConfig(
            region="eu-west-1",
            profile="hpc",
            endpoint_url="https://user:pw-2@ec2.example.com:8443/path?sig=s-1",
            credentials_file="/etc/ohf/credentials",
            role_arn="arn:aws:iam::222222222222:role/ohf",
            external_id="site-42",
            credential_script="/opt/sso/creds.sh --account hpc --password pw-3",
        ),
        providers=(
            ProviderConfig(
                name="east",
                external_id="ext-east",
                credentials_file="/etc/ohf/east",
                credential_script="/opt/east.sh 'quoted arg'",
                defaults={"userData": "tok-456", "subnetId": "subnet-1"},
                templates={"t1": {"instanceProfile": "prof", "apiToken": "tok-789"}},
            ),
        ),
        api=ApiConfig(secret="hs-1", secret_env="OHF_API_SECRET", jwks_url="https://x/jwks"),
        templates=(template,),
        ibm_unhonoured={"AWS_CREDENTIAL_FILE": "/root/.aws/c", "AWS_PROXY_HOST": "proxy"},
    )


def test_the_config_resource_masks_secrets_and_where_they_live() -> None:
    shown = masked_config(secret_config(), "/etc/ohf/ohf.toml")
    text = msgspec.json.encode(shown).decode()
    for secret in (
        "pw-1", "pw-2", "pw-3", "sk-1", "s-1", "site-42", "ext-east", "tok-123", "tok-456",
        "tok-789", "hs-1", "c2VjcmV0", "/etc/ohf/credentials", "/etc/ohf/east", "/root/.aws/c",
        "quoted arg", "--account",
    ):  # fmt: skip
        assert secret not in text, secret
    config = shown["config"]
    aws, (east,), (template,) = config["aws"], config["providers"], config["templates"]
    assert aws["external_id"] == aws["credentials_file"] == MASK
    assert aws["credential_script"] == f"/opt/sso/creds.sh {MASK}"  # the program stays
    assert aws["endpoint_url"] == f"https://{MASK}@ec2.example.com:8443/path?{MASK}"
    assert east["credential_script"] == f"/opt/east.sh {MASK}"
    assert east["defaults"] == {"userData": MASK, "subnetId": "subnet-1"}
    assert east["templates"] == {"t1": {"instanceProfile": "prof", "apiToken": MASK}}
    assert template["userData"] == MASK and template["runInstances"]["UserData"] == MASK
    assert template["vendorPassword"] == template["AWS_SECRET_ACCESS_KEY"] == MASK
    assert config["api"]["secret"] == MASK
    assert config["ibm_unhonoured"] == {"AWS_CREDENTIAL_FILE": MASK, "AWS_PROXY_HOST": "proxy"}
    # Names are not secrets: which account, role, profile, key pair, variable.
    assert (aws["profile"], aws["role_arn"]) == ("hpc", "arn:aws:iam::222222222222:role/ohf")
    assert (template["keyName"], template["team"]) == ("hpc-key", "hpc")
    assert config["api"]["secret_env"] == "OHF_API_SECRET"
    assert template["runInstances"]["EbsOptimized"] is True
    assert shown["source"] == "/etc/ohf/ohf.toml"


def test_masking_keeps_what_is_not_secret() -> None:
    assert masked_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert masked_script("/opt/creds.sh") == "/opt/creds.sh"
    assert masked_script("'unclosed") == MASK
    shown = masked_config(Config(templates=(TEMPLATE,)), "<test>")["config"]
    assert "userData" not in shown["templates"][0]  # unset keys are left out
    assert shown["mcp"] == {"allow_writes": False, "port": 8765, "call_timeout": 120.0}


def test_the_mcp_section_is_checked_like_every_other() -> None:
    decoded = decode_config(b"[mcp]\nallow_writes = true\n", fmt="toml", source="ohf.toml")
    assert decoded.unwrap().mcp == McpConfig(allow_writes=True)
    typo = decode_config(b"[mcp]\nallow_write = true\n", fmt="toml", source="ohf.toml")
    assert "unknown field `allow_write`" in typo.failure().message
    port = decode_config(b"[mcp]\nport = 0\n", fmt="toml", source="ohf.toml")
    assert "`$.mcp.port`" in port.failure().message


# --- the tool table over the fake cloud ---------------------------------------------------------


def test_write_tools_are_refused_unless_allowed_and_go_through_hfs_checks(
    tmp_path: Path,
) -> None:
    provider = door(fake_provider([TEMPLATE], tmp_path))
    ask = {"template_id": "t1", "count": 2}
    refused = call(provider, "request_machines", ask, allow_writes=False)
    assert "request_machines is turned off" in refused.failure().message
    assert provider.requests().unwrap() == []

    accepted = call(provider, "request_machines", ask, allow_writes=True).unwrap()
    assert accepted.request_id.startswith("req-")
    over = call(provider, "request_machines", ask, allow_writes=True)  # 2 of 3 in use
    assert "1" in over.failure().message and len(provider.requests().unwrap()) == 1

    ids = [m.machine_id for m in provider.machines().unwrap()]
    returned = call(provider, "return_machines", {"machine_ids": ids}, allow_writes=True)
    assert returned.unwrap().request_id.startswith("ret-")


def test_arguments_are_decoded_strictly() -> None:
    assert msgspec.convert({}, NoArguments) == NoArguments()
    with pytest.raises(msgspec.ValidationError, match="unknown field `extra`"):
        msgspec.convert({"request_id": "r", "extra": 1}, RequestAsk)
    with pytest.raises(msgspec.ValidationError, match="length >= 1"):
        msgspec.convert({"machine_ids": []}, ReturnMachinesAsk)


def test_every_tool_says_what_it_is_and_no_tool_takes_a_path() -> None:
    for tool in TOOLS:
        assert tool.description and tool.title
        fields = {f.name for f in msgspec.structs.fields(tool.takes)}
        assert not fields & {"path", "file", "uri", "config", "command"}, tool.name
    writes = {t.name for t in TOOLS if t.writes}
    assert writes == {"request_machines", "return_machines"}
    for tool in TOOLS:
        if tool.writes:
            assert "COSTS" in tool.description and "CHANGES" in tool.description


def test_resources_and_prompts_answer_or_say_why_not(tmp_path: Path) -> None:
    provider = door(fake_provider([TEMPLATE], tmp_path))
    summary = msgspec.json.decode(read(provider, "ohf://state/summary").unwrap())
    assert summary["requests"] == {} and summary["units_in_use"] == {"t1": 0}
    assert "no resource" in read(provider, "file:///etc/passwd").failure().message
    assert "req-1" in prompt("why_is_request_stuck", {"request_id": "req-1"}, NOW).unwrap()
    assert "2023-11-14" in prompt("spot_machines_lost", None, NOW).unwrap()
    assert "needs provider" in prompt("is_provider_healthy", {}, NOW).failure().message


# --- lost machines, health per provider ---------------------------------------------------


def _event(at: int, kind: str, part: str, *machines: Machine, **more: Any) -> Event:
    return Event(
        at=at,
        correlation="c",
        call="getRequestStatus",
        kind=kind,  # type: ignore[arg-type]
        request_id=part,
        machines=machines,
        **more,
    )


def changed(machine: Machine, **changes: Any) -> Machine:
    return msgspec.structs.replace(machine, **changes)


def test_lost_machines_are_read_from_the_event_log() -> None:
    header = Request(
        request_id="req-1.2",
        parent="req-1",
        provider="east",
        template_id="t1",
        machine_count=3,
        client_token="x",
        created_at=NOW,
    )
    spot = Machine(
        machine_id="i-1",
        lifecycle="spot",
        state="running",
        instance_type="m5.large",
        message="Server.SpotInstanceTermination",
    )
    other = Machine(machine_id="i-2", lifecycle="spot", state="running")
    ours = Machine(machine_id="i-3", state="running")
    events = [
        _event(NOW, "request_created", "req-1.2", spot, other, ours, request=header),
        _event(NOW + 60, "machine_changed", "req-1.2", changed(spot, state="terminated")),
        _event(NOW + 70, "machine_changed", "req-1.2", changed(other, state="stopped")),
        _event(NOW + 80, "machine_changed", "req-1.2", other),  # started again: not lost
        _event(
            NOW + 90,
            "machine_changed",
            "req-1.2",
            changed(ours, state="terminated", returned_by="ret-1"),  # HF's return: not lost
        ),
    ]
    found = lost_machines(events, NOW)
    assert found.count == 1
    (lost,) = found.machines
    assert (lost.machine_id, lost.request_id, lost.provider) == ("i-1", "req-1", "east")
    assert (lost.lost_at, lost.lost_at_utc) == (NOW + 60, "2023-11-14T22:14:20Z")
    assert lost.message == "Server.SpotInstanceTermination"
    assert lost_machines(events, NOW + 61).count == 0
    assert lost_machines(events, NOW, price_type="on-demand").count == 0
    assert lost_machines(events, NOW, provider="west").count == 0


def test_health_is_split_per_provider_with_its_breaker() -> None:
    report = Report(
        ok=False,
        providers=["east", "west"],
        checks=[
            Check(check="region", target="us-east-1", ok=True, provider="east"),
            Check(check="credentials", target="sts", ok=False, detail="nope", provider="west"),
            Check(check="store", target="json x", ok=True),
        ],
    )
    breakers = {"west": Breaker(failures=5, first_failure_at=NOW - 10, open_until=NOW + 50)}
    answer = health_answer(report, breakers, NOW)
    east, west = answer.providers
    assert (east.ok, east.breaker.state) == (True, "closed")
    assert (west.ok, west.breaker.state, west.breaker.open_until_utc) == (
        False,
        "open",
        "2023-11-14T22:14:10Z",
    )
    assert answer.ok is False and [c.check for c in answer.store] == ["store"]
    assert [p.provider for p in health_answer(report, breakers, NOW, "east").providers] == ["east"]
    assert breaker_view(breakers["west"], NOW + 60).state == "half-open"


# --- the command line ---------------------------------------------------------------------------


def _ohf(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_without_the_extra_ohf_mcp_says_how_to_install_it() -> None:
    # `None` in sys.modules makes `import mcp` fail as if the package were not installed.
    done = _ohf("import sys; sys.modules['mcp'] = None; from ohf.cli import main; main(['mcp'])")
    assert done.stderr.strip() == (
        "ohf mcp: the MCP server needs the mcp extra (mcp is missing): pip install 'ohf-aws[mcp]'"
    )


def test_port_goes_with_http() -> None:
    done = _ohf("import sys; from ohf.cli import main; sys.exit(main(['mcp', '--port', '9']))")
    assert done.returncode == 2 and "--port goes with --http" in done.stderr


MCP_DOC = Path(__file__).resolve().parent.parent / "docs" / "mcp.md"


def test_the_docs_mcp_examples_are_what_ohf_reads() -> None:
    text = MCP_DOC.read_text()
    (toml,) = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith("toml")]
    decoded = decode_config(toml.encode(), fmt="toml", source="README").unwrap()
    assert decoded.mcp == McpConfig()  # the documented defaults are the real ones
    clients = [
        msgspec.json.decode(b.split("\n", 1)[1])
        for b in text.split("```")[1::2]
        if b.startswith("json")
    ]
    assert clients[0]["mcpServers"]["ohf"]["args"][0] == "mcp"
    assert clients[1]["mcpServers"]["ohf"]["url"] == "http://127.0.0.1:8765/mcp"
