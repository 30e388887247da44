"""The `[[providers]]` and `[placement]` config: decoding, what is refused, and `provider_aws`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from ohf import strategies as ohf_st
from ohf.config import (
    AwsConfig,
    Config,
    PlacementConfig,
    ProviderConfig,
    decode_config,
    provider_aws,
)
from ohf.effects.files import load_settings
from ohf.model import State
from ohf.placement import SHORTHAND, effective, providers_of, rooms
from ohf.room import total

PROPS = settings(max_examples=100, deadline=None)

# The lead's example (DESIGN of issue 7), with a template that uses it.
TOML = b"""
[aws]
region = "us-east-1"
max_attempts = 4

[placement]
policy = "weighted"
failover = false
list_per_provider = true

[[providers]]
name = "east"
region = "us-east-1"
profile = "hpc-east"
endpoint_url = "http://127.0.0.1:5001"
enabled = true
priority = 10
weight = 3
[providers.defaults]
subnetId = ["subnet-a"]
securityGroupIds = ["sg-1"]
imageId = "ami-123"
[providers.templates.gpu]
maxNumber = 20

[[providers]]
name = "west"
region = "us-west-2"
role_arn = "arn:aws:iam::222222222222:role/ohf"
external_id = "site-42"
enabled = false

[[templates]]
templateId = "gpu"
maxNumber = 8
vmType = "g5.xlarge"
providers = ["east", "west"]

[[templates]]
templateId = "cpu"
maxNumber = 4
vmType = "c5.large"
imageId = "ami-own"
"""

SOURCE = "/etc/ohf/ohf.toml"


def decoded(raw: bytes = TOML) -> Config:
    return decode_config(raw, fmt="toml", source=SOURCE).unwrap()


def check_example(config: Config) -> None:
    """What the example config says, as `Config`."""
    assert config.placement == PlacementConfig(
        policy="weighted", failover=False, list_per_provider=True
    )
    east, west = config.providers
    assert east == ProviderConfig(
        name="east",
        region="us-east-1",
        profile="hpc-east",
        endpoint_url="http://127.0.0.1:5001",
        enabled=True,
        priority=10,
        weight=3,
        defaults={"subnetId": ["subnet-a"], "securityGroupIds": ["sg-1"], "imageId": "ami-123"},
        templates={"gpu": {"maxNumber": 20}},
    )
    assert west == ProviderConfig(
        name="west",
        region="us-west-2",
        role_arn="arn:aws:iam::222222222222:role/ohf",
        external_id="site-42",
        enabled=False,
    )
    gpu, cpu = config.templates
    assert gpu.providers == ["east", "west"]
    assert cpu.providers is None


def test_toml_providers_and_placement_decode() -> None:
    check_example(decoded())


def test_json_config_decodes_like_toml() -> None:
    doc = tomllib.loads(TOML.decode())
    from_json = decode_config(json.dumps(doc).encode(), fmt="json", source="ohf.json").unwrap()
    assert from_json == decoded()


def test_load_settings_reads_providers_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ohf.toml"
    path.write_bytes(TOML)
    settings_ = load_settings(str(path), {}, str(tmp_path)).unwrap()
    assert settings_.source == str(path)
    check_example(settings_.config)


def test_ohf_config_can_name_a_json_config_with_providers(tmp_path: Path) -> None:
    path = tmp_path / "ohf.json"
    path.write_text(json.dumps(tomllib.loads(TOML.decode())))
    loaded = load_settings(None, {"OHF_CONFIG": str(path)}, str(tmp_path / "elsewhere"))
    check_example(loaded.unwrap().config)


def test_the_example_gives_each_provider_its_own_view_of_a_template() -> None:
    config = decoded()
    east, west = config.providers
    gpu, cpu = config.templates
    on_east = effective(gpu, east).unwrap()
    assert (on_east.max_number, on_east.subnet_id, on_east.image_id) == (
        20,
        ["subnet-a"],
        "ami-123",
    )
    assert effective(gpu, west).unwrap() == gpu
    # cpu sets its own imageId: east's default does not replace it.
    assert effective(cpu, east).unwrap().image_id == "ami-own"
    # west is disabled: HF sees east's 20 gpu units, and cpu's 4 on east.
    assert total(rooms(gpu, config.providers, State()).values()) == 20
    assert total(rooms(cpu, config.providers, State()).values()) == 4


def test_without_providers_aws_is_the_one_provider() -> None:
    config = decoded(b'[aws]\nregion = "eu-west-1"\n')
    assert config.providers == ()
    assert config.placement == PlacementConfig()
    assert config.placement.policy == "first_available"
    assert config.placement.failover
    assert not config.placement.list_per_provider
    assert providers_of(config) == (SHORTHAND,)
    assert provider_aws(config.aws, SHORTHAND) == config.aws


def test_a_provider_needs_only_a_name() -> None:
    (east,) = decoded(b'[[providers]]\nname = "east"\n').providers
    assert east == ProviderConfig(name="east")
    assert (east.enabled, east.priority, east.weight) == (True, 100, 1)
    assert (east.defaults, east.templates) == ({}, {})


def test_aws_section_can_assume_a_role() -> None:
    config = decoded(
        b"[aws]\n"
        b'role_arn = "arn:aws-us-gov:iam::123456789012:role/path/ohf"\n'
        b'external_id = "xid"\n'
        b'role_session_name = "ohf@site-1"\n'
    )
    assert config.aws.role_arn == "arn:aws-us-gov:iam::123456789012:role/path/ohf"
    assert (config.aws.external_id, config.aws.role_session_name) == ("xid", "ohf@site-1")
    assert AwsConfig().role_session_name == "ohf"


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        (b'[placement]\npolicy = "random"\n', ("$.placement.policy", "random")),
        (b"[placement]\nfailover = 1\n", ("$.placement.failover",)),
        (b"[placement]\nlist_per_template = true\n", ("$.placement", "list_per_template")),
        (b'[[providers]]\nname = "east"\nweight = 0\n', ("$.providers[0].weight",)),
        (b'[[providers]]\nname = "east"\nweight = 10001\n', ("$.providers[0].weight",)),
        (b'[[providers]]\nname = "east"\npriority = -1\n', ("$.providers[0].priority",)),
        (
            b'[[providers]]\nname = "east"\nrole_arn = "arn:aws:iam::1234:role/ohf"\n',
            ("$.providers[0].role_arn",),
        ),
        (
            b'[[providers]]\nname = "east"\nrole_arn = "arn:aws:iam::123456789012:user/ohf"\n',
            ("$.providers[0].role_arn",),
        ),
        (b'[[providers]]\nname = "east"\nexternal_id = "x"\n', ("$.providers[0].external_id",)),
        (b'[[providers]]\nname = "east west"\n', ("$.providers[0].name",)),
        (b'[[providers]]\nname = "gpu.east"\n', ("$.providers[0].name",)),
        (b'[[providers]]\nname = ""\n', ("$.providers[0].name",)),
        (b'[[providers]]\nname = "' + b"x" * 33 + b'"\n', ("$.providers[0].name",)),
        (b'[[providers]]\nregion = "us-east-1"\n', ("$.providers[0]", "name")),
        (
            b'[[providers]]\nname = "a"\n[[providers]]\nname = "b"\nregoin = "us-east-1"\n',
            ("$.providers[1]", "regoin"),
        ),
        (b'[[providers]]\nname = "east"\nenabled = "yes"\n', ("$.providers[0].enabled",)),
        (b'[[providers]]\nname = "east"\ndefaults = ["a"]\n', ("$.providers[0].defaults",)),
        (
            b'[[providers]]\nname = "east"\n[providers.templates]\ngpu = 5\n',
            ("$.providers[0].templates",),
        ),
        (b'[providers]\nname = "east"\n', ("$.providers",)),
        (b'[aws]\nrole_arn = "ohf"\n', ("$.aws.role_arn",)),
        (b'[aws]\nrole_session_name = "a b"\n', ("$.aws.role_session_name",)),
    ],
)
def test_bad_provider_and_placement_values_are_refused_naming_the_key(
    raw: bytes, needles: tuple[str, ...]
) -> None:
    result = decode_config(raw, fmt="toml", source=SOURCE)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == "config"
    assert SOURCE in error.message
    for needle in needles:
        assert needle in error.message, (needle, error.message)


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        (
            '[[providers]]\nname = "east"\n[[providers]]\nname = "east"\n',
            ("provider 'east' is defined twice",),
        ),
        (
            '[[providers]]\nname = "east"\n'
            '[[templates]]\ntemplateId = "gpu"\nmaxNumber = 1\nproviders = ["west"]\n',
            ("template 'gpu'", "unknown provider 'west'", "known: east"),
        ),
        (
            '[[templates]]\ntemplateId = "gpu"\nmaxNumber = 1\nproviders = ["east"]\n',
            ("unknown provider 'east'", "[[providers]]"),
        ),
        (
            '[[providers]]\nname = "east"\n[providers.templates.gpu2]\nmaxNumber = 1\n'
            '[[templates]]\ntemplateId = "gpu"\nmaxNumber = 1\n',
            ("provider 'east'", "templates.gpu2 names no template"),
        ),
        (
            '[[providers]]\nname = "east"\n[providers.defaults]\nvmType = 5\n'
            '[[templates]]\ntemplateId = "gpu"\nmaxNumber = 1\n',
            ("provider 'east'", "template 'gpu'", "vmType"),
        ),
        (
            '[[providers]]\nname = "east"\n[providers.templates.gpu]\nmaxNumber = "lots"\n'
            '[[templates]]\ntemplateId = "gpu"\nmaxNumber = 1\n',
            ("provider 'east'", "template 'gpu'", "maxNumber"),
        ),
    ],
)
def test_load_settings_refuses_inconsistent_providers_naming_the_file(
    tmp_path: Path, toml: str, needles: tuple[str, ...]
) -> None:
    path = tmp_path / "ohf.toml"
    path.write_text(toml)
    result = load_settings(str(path), {}, str(tmp_path))
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == "config"
    assert str(path) in error.message
    for needle in needles:
        assert needle in error.message, (needle, error.message)


def test_templates_from_templates_file_are_checked_against_the_providers(tmp_path: Path) -> None:
    (tmp_path / "awsprov_templates.json").write_text(
        json.dumps({"templates": [{"templateId": "gpu", "maxNumber": 2, "providers": ["west"]}]})
    )
    path = tmp_path / "ohf.toml"
    path.write_text('templates_file = "awsprov_templates.json"\n[[providers]]\nname = "east"\n')
    result = load_settings(str(path), {}, str(tmp_path))
    assert isinstance(result, Failure)
    assert "unknown provider 'west'" in result.failure().message
    path.write_text(
        'templates_file = "awsprov_templates.json"\n[[providers]]\nname = "east"\n'
        '[[providers]]\nname = "west"\n'
    )
    (gpu,) = load_settings(str(path), {}, str(tmp_path)).unwrap().config.templates
    assert gpu.providers == ["west"]


# --- provider_aws: the [aws] settings as one provider uses them ------------------------------

CONNECTION_KEYS = (
    "region",
    "profile",
    "credentials_file",
    "role_arn",
    "external_id",
    "endpoint_url",
)


def test_a_providers_own_connection_keys_win_and_aws_gives_the_rest() -> None:
    aws = AwsConfig(
        region="us-east-1",
        profile="default-profile",
        endpoint_url="http://127.0.0.1:5000",
        credentials_file="/etc/ohf/credentials",
        connect_timeout=2.0,
        read_timeout=9.0,
        max_attempts=7,
        retry_budget=11.0,
        breaker_threshold=3,
        breaker_window=30,
        breaker_cooldown=15,
        role_session_name="site-session",
    )
    west = ProviderConfig(
        name="west",
        region="us-west-2",
        role_arn="arn:aws:iam::222222222222:role/ohf",
        external_id="site-42",
    )
    got = provider_aws(aws, west)
    assert got == msgspec.structs.replace(
        aws,
        region="us-west-2",
        role_arn="arn:aws:iam::222222222222:role/ohf",
        external_id="site-42",
    )
    east = ProviderConfig(name="east", profile="hpc-east", endpoint_url="http://127.0.0.1:5001")
    assert provider_aws(aws, east) == msgspec.structs.replace(
        aws, profile="hpc-east", endpoint_url="http://127.0.0.1:5001"
    )
    assert provider_aws(aws, ProviderConfig(name="bare")) == aws


def test_the_shorthand_provider_uses_aws_unchanged() -> None:
    aws = AwsConfig(region="eu-west-1", role_arn="arn:aws:iam::123456789012:role/x")
    assert provider_aws(aws, SHORTHAND) is aws


def optional_text() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.text(alphabet="abcdefgh-/:0123456789", min_size=2, max_size=8))


def role_arns() -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.integers(10**11, 10**12 - 1).map(lambda n: f"arn:aws:iam::{n}:role/ohf"),
    )


@st.composite
def aws_configs(draw: st.DrawFn) -> AwsConfig:
    return AwsConfig(
        region=draw(st.one_of(st.none(), st.sampled_from(ohf_st.REGIONS))),
        profile=draw(optional_text()),
        credentials_file=draw(optional_text()),
        role_arn=draw(role_arns()),
        external_id=draw(optional_text()),
        endpoint_url=draw(optional_text()),
        max_attempts=draw(st.integers(1, 20)),
        breaker_threshold=draw(st.integers(1, 1000)),
    )


@PROPS
@given(aws_configs(), ohf_st.provider_configs(max_size=1), st.data())
def test_provider_aws_takes_each_connection_key_from_the_provider_else_aws(
    aws: AwsConfig, providers: tuple[ProviderConfig, ...], data: st.DataObject
) -> None:
    own: dict[str, Any] = {
        "region": data.draw(st.one_of(st.none(), st.sampled_from(ohf_st.REGIONS))),
        "profile": data.draw(optional_text()),
        "credentials_file": data.draw(optional_text()),
        "role_arn": data.draw(role_arns()),
        "external_id": data.draw(optional_text()),
        "endpoint_url": data.draw(optional_text()),
    }
    (prov,) = providers
    prov = msgspec.structs.replace(prov, **own)
    got = provider_aws(aws, prov)
    # A provider's own role brings only its own external id; any other key comes from the
    # provider, else from [aws].
    paired = {"external_id": "role_arn"}
    for key in CONNECTION_KEYS:
        mine = getattr(prov, key)
        if key in paired and getattr(prov, paired[key]) is not None:
            assert getattr(got, key) == mine, key
        else:
            assert getattr(got, key) == (mine if mine is not None else getattr(aws, key)), key
    # Everything else (timeouts, retries, breaker, session name) is [aws]'s.
    assert others(got) == others(aws)


def others(aws: AwsConfig) -> dict[str, Any]:
    """The keys of `[aws]` that are not about where and as whom to connect."""
    return {k: v for k, v in msgspec.structs.asdict(aws).items() if k not in CONNECTION_KEYS}


def test_a_providers_own_role_never_gets_the_aws_sections_external_id() -> None:
    aws = AwsConfig(role_arn="arn:aws:iam::111111111111:role/home", external_id="home-secret")
    theirs = ProviderConfig(name="partner", role_arn="arn:aws:iam::222222222222:role/ohf")
    inherits = ProviderConfig(name="same-role", region="eu-west-1")
    assert provider_aws(aws, theirs).external_id is None
    assert provider_aws(aws, theirs).role_arn == "arn:aws:iam::222222222222:role/ohf"
    assert provider_aws(aws, inherits).external_id == "home-secret"
    assert provider_aws(aws, inherits).role_arn == aws.role_arn


def test_a_misspelt_provider_key_is_refused_with_a_suggestion() -> None:
    from ohf.model import Template
    from ohf.placement import check_providers

    t1 = Template(template_id="t1", max_number=1)
    typo = ProviderConfig(name="east", defaults={"subnetID": "subnet-1"})
    error = check_providers(Config(templates=(t1,), providers=(typo,)))
    assert isinstance(error, Failure)
    assert "defaults.subnetID is not a template key (did you mean 'subnetId'?)" in (
        error.failure().message
    )
    override = ProviderConfig(name="east", templates={"t1": {"maxNumbr": 3}})
    error = check_providers(Config(templates=(t1,), providers=(override,)))
    assert isinstance(error, Failure)
    assert "templates.t1.maxNumbr" in error.failure().message
    assert "'maxNumber'" in error.failure().message


def test_an_empty_providers_list_is_refused() -> None:
    from ohf.model import Template
    from ohf.placement import check_providers

    nowhere = Template(template_id="t1", max_number=1, providers=[])
    error = check_providers(Config(templates=(nowhere,), providers=(ProviderConfig(name="a"),)))
    assert isinstance(error, Failure) and "providers = []" in error.failure().message


def test_defaults_can_set_keys_whose_model_default_the_template_kept() -> None:
    from ohf.model import Template

    plain = Template(template_id="t1", max_number=1)
    spot_here = ProviderConfig(
        name="cheap", defaults={"priceType": "spot", "attributes": {"zone": ["String", "b"]}}
    )
    view = effective(plain, spot_here).unwrap()
    assert view.price_type == "spot"
    assert view.attributes == {"zone": ("String", "b")}
    # A template that says otherwise keeps its own.
    own = Template(template_id="t1", max_number=1, price_type="heterogeneous")
    assert effective(own, spot_here).unwrap().price_type == "heterogeneous"


def test_an_ibm_conf_dir_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "awsprov_templates.json").write_text(
        json.dumps({"templates": [{"templateId": "t1", "maxNumber": 1, "providers": ["nowhere"]}]})
    )
    loaded = load_settings(None, {"HF_PROVIDER_CONFDIR": str(tmp_path)}, str(tmp_path))
    assert isinstance(loaded, Failure)
    message = loaded.failure().message
    assert "awsprov_templates.json" in message and "unknown provider 'nowhere'" in message
