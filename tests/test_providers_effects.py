"""The shell side of several providers: credentials per provider (profile, assumed role with
external id), routing intents to a provider's AWS, a breaker per provider, and `ohf health`
per provider.

moto's STS gives an assumed role credentials that moto maps to the role's account, so two
providers assuming roles in two accounts see two separate clouds in one in-process moto. moto
does not check a role's trust policy (so a wrong external id is accepted); that refusal is
scripted with botocore's Stubber, with AWS's own error shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from returns.result import Failure, Success

from ohf.codes import OPEN_CODE
from ohf.config import AwsConfig, Config, ProviderConfig
from ohf.effects import aws, circuit, health
from ohf.effects.aws import clients as aws_clients
from ohf.effects.circuit import BREAKER_FILE, BreakerFile, circuits, open_circuits
from ohf.effects.files import Settings, load_settings
from ohf.effects.providers import provider_clouds, routed
from ohf.intents import (
    At,
    DescribeInstances,
    Intent,
    LaunchSpec,
    ResolveImage,
    RunInstances,
    TerminateInstances,
)
from ohf.model import REQUEST_TAG, OhfError
from ohf.program import Answer, Interpreter
from tests.conftest import AL2023, ec2_client, hf_env, run_ohf

EAST_ROLE = "arn:aws:iam::222222222222:role/ohf"
WEST_ROLE = "arn:aws:iam::333333333333:role/ohf-west"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto, without its AMI catalogue (seconds per test) and with static keys."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _image(clients: aws.ClientGetter) -> str:
    """Register an image in the account and region `clients` call (moto loads none here)."""
    return str(
        clients("ec2").register_image(
            Name="node",
            RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]
    )


def _spec(image: str, token: str, request_id: str) -> LaunchSpec:
    return LaunchSpec(
        image_id=image,
        instance_type="c5.large",
        min_count=2,
        max_count=2,
        client_token=token,
        tags=((REQUEST_TAG, request_id),),
    )


def _assumed(moto_account: str) -> list[Any]:
    """The AssumeRole calls moto's STS received for roles in `moto_account`."""
    from moto.sts.models import sts_backends

    return list(sts_backends[moto_account]["aws"].assumed_roles)


# --- Credentials per provider -------------------------------------------------------------------


def test_two_providers_assuming_roles_in_two_accounts_see_separate_instances(moto: None) -> None:
    config = Config(
        aws=AwsConfig(region="us-east-1", max_attempts=1),
        providers=(
            ProviderConfig(name="east", role_arn=EAST_ROLE, external_id="site-42"),
            ProviderConfig(name="west", region="us-west-2", role_arn=WEST_ROLE),
        ),
    )
    calls: list[str] = []
    getters: dict[str, aws.ClientGetter] = {}

    def make(settings: AwsConfig) -> Interpreter:
        clients = aws.client_getter(settings, calls.append)
        getters[settings.role_arn or ""] = clients
        return aws.make_interpreter(settings, clients=clients)

    cloud = routed(provider_clouds(config, make), default="east")
    east, west = getters[EAST_ROLE], getters[WEST_ROLE]
    images = {"east": _image(east), "west": _image(west)}

    launched = {
        name: cloud(At(provider=name, intent=RunInstances(spec=_spec(images[name], name, "r-1"))))
        for name in ("east", "west")
    }

    ids = {name: {i.instance_id for i in answer.unwrap()} for name, answer in launched.items()}
    assert all(len(found) == 2 for found in ids.values())
    seen = {
        name: cloud(At(provider=name, intent=DescribeInstances(request_ids=("r-1",))))
        for name in ("east", "west")
    }
    # The same request tag in both accounts: each provider sees its own two machines only.
    assert {n: {i.instance_id for i in a.unwrap()} for n, a in seen.items()} == ids
    owners = {
        name: {r["OwnerId"] for r in getter("ec2").describe_instances()["Reservations"]}
        for name, getter in (("east", east), ("west", west))
    }
    assert owners == {"east": {"222222222222"}, "west": {"333333333333"}}
    assert west("ec2").meta.region_name == "us-west-2"
    # Terminating through one provider leaves the other's machines alone.
    cloud(At(provider="east", intent=TerminateInstances(instance_ids=tuple(ids["east"]))))
    after = cloud(At(provider="west", intent=DescribeInstances(request_ids=("r-1",)))).unwrap()
    assert {i.state for i in after} == {"running"}
    # One AssumeRole per provider, however many calls and services (ec2 and sts) it used.
    identity = east("sts").get_caller_identity()["Arn"]
    assert identity.startswith("arn:aws:sts::222222222222:assumed-role/ohf/")
    assert calls.count("AssumeRole") == 2
    (east_role,) = _assumed("222222222222")
    (west_role,) = _assumed("333333333333")
    assert (east_role.role_arn, east_role.external_id, east_role.session_name) == (
        EAST_ROLE,
        "site-42",
        "ohf",
    )
    assert (west_role.role_arn, west_role.external_id, west_role.session_name) == (
        WEST_ROLE,
        None,
        "ohf",
    )


def test_a_provider_with_a_profile_uses_that_profiles_keys(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = aws.client_getter(AwsConfig(region="us-east-1"), None)("iam")
    iam.create_user(UserName="hf-east")
    key = iam.create_access_key(UserName="hf-east")["AccessKey"]
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[hpc-east]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    config = Config(
        aws=AwsConfig(region="us-east-1"),
        providers=(
            ProviderConfig(name="east", profile="hpc-east", credentials_file=str(credentials)),
            ProviderConfig(name="west"),
        ),
    )
    identities: dict[str, str] = {}

    def make(settings: AwsConfig) -> Interpreter:
        clients = aws.client_getter(settings, None)
        identities[settings.profile or "default"] = clients("sts").get_caller_identity()["Arn"]
        return aws.make_interpreter(settings, clients=clients)

    provider_clouds(config, make)

    assert identities["hpc-east"].endswith(":user/hf-east")
    assert not identities["default"].endswith(":user/hf-east")  # the default chain's keys


def test_a_refused_assume_role_names_the_action_and_the_role(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(3)  # the set-up's three IAM calls go unchecked
    def refused() -> Answer:
        iam = aws.client_getter(AwsConfig(region="us-east-1"), None)("iam")
        iam.create_user(UserName="hf")
        policy = {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}
        iam.put_user_policy(
            UserName="hf",
            PolicyName="ec2-only",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [policy]}),
        )
        key = iam.create_access_key(UserName="hf")["AccessKey"]
        # The user's keys for this test only (monkeypatch puts the static ones back).
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        config = AwsConfig(region="us-east-1", role_arn=EAST_ROLE, max_attempts=1)
        return aws.make_interpreter(config)(DescribeInstances(request_ids=("r-1",)))

    answer = refused()

    assert isinstance(answer, Failure)
    error = answer.failure()
    assert error.code == "AccessDenied"
    assert error.message.startswith(f"DescribeInstances: cannot assume role {EAST_ROLE}")
    assert "sts:AssumeRole" in error.message
    assert "trust policy" in error.message


def _stubbed_source(
    responses: list[dict[str, Any] | str], expected: dict[str, Any]
) -> tuple[SimpleNamespace, Any, list[dict[str, Any]]]:
    """A stand-in for the source session whose STS client answers `responses` in order (a str
    is an error code), each call expected with `expected`; also what the client was made with."""
    import boto3
    from botocore.credentials import Credentials
    from botocore.stub import Stubber

    sts = boto3.client("sts", region_name="eu-west-1")
    stubber = Stubber(sts)
    for response in responses:
        if isinstance(response, str):
            stubber.add_client_error(
                "assume_role",
                service_error_code=response,
                service_message=(
                    "User: arn:aws:iam::123456789012:user/hf is not authorized to perform: "
                    f"sts:AssumeRole on resource: {EAST_ROLE}"
                ),
                http_status_code=403,
                expected_params=expected,
            )
        else:
            stubber.add_response("assume_role", response, expected)
    stubber.activate()
    made: list[dict[str, Any]] = []

    def client(service: str, **keys: Any) -> Any:
        made.append({"service": service, **keys})
        return sts

    source = SimpleNamespace(
        get_credentials=lambda: Credentials("AKIDSOURCE", "secret"),
        region_name="eu-west-1",
        client=client,
    )
    return source, stubber, made


def _role_credentials(key: str, expires: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": expires,
        },
        "AssumedRoleUser": {"AssumedRoleId": "AROA:ohf-site", "Arn": f"{EAST_ROLE}/ohf-site"},
    }


def test_a_wrong_external_id_fails_naming_the_role_and_the_parameters_are_sent(
    moto: None,
) -> None:
    config = AwsConfig(
        region="eu-west-1",
        role_arn=EAST_ROLE,
        external_id="not-the-one",
        role_session_name="ohf-site",
        endpoint_url="http://127.0.0.1:1",
        max_attempts=1,
    )
    expected = {"RoleArn": EAST_ROLE, "RoleSessionName": "ohf-site", "ExternalId": "not-the-one"}
    source, stubber, made = _stubbed_source(["AccessDenied"], expected)
    session = aws.assumed_session(config, None, source=source)
    # EC2 is never reached (the endpoint is closed): credentials are needed first.
    interpret = aws.make_interpreter(
        config, clients=lambda service: aws_clients._make_client(config, service, None, session)
    )

    answer = interpret(DescribeInstances(request_ids=("r-1",)))

    stubber.assert_no_pending_responses()  # AssumeRole was called, with exactly `expected`
    assert isinstance(answer, Failure)
    assert answer.failure().code == "AccessDenied"
    message = answer.failure().message
    assert f"cannot assume role {EAST_ROLE} (sts:AssumeRole, AccessDenied)" in message
    assert "external_id" in message
    # STS is asked in the provider's region, at its endpoint, with the source's keys.
    (sts,) = made
    assert (sts["service"], sts["region_name"], sts["endpoint_url"]) == (
        "sts",
        "eu-west-1",
        "http://127.0.0.1:1",
    )
    assert sts["aws_access_key_id"] == "AKIDSOURCE"


def test_without_an_external_id_none_is_sent_and_expiring_credentials_are_renewed(
    moto: None,
) -> None:
    config = AwsConfig(region="us-east-1", role_arn=EAST_ROLE, max_attempts=1)
    now = datetime.now(UTC)
    source, stubber, _ = _stubbed_source(
        [
            _role_credentials("ASIAFIRST0000000", now + timedelta(minutes=2)),
            _role_credentials("ASIASECOND000000", now + timedelta(hours=1)),
        ],
        {"RoleArn": EAST_ROLE, "RoleSessionName": "ohf"},
    )
    session = aws.assumed_session(config, None, source=source)
    ec2 = aws_clients._make_client(config, "ec2", None, session)
    keys: list[str] = []

    def access_key(request: Any, **_: Any) -> None:
        signed = request.headers["Authorization"]  # bytes in recent botocore, str in 1.34
        text = signed.decode() if isinstance(signed, bytes) else signed
        keys.append(text.split("Credential=")[1].split("/")[0])

    ec2.meta.events.register("before-send", access_key)

    for _ in range(3):
        ec2.describe_instances()

    stubber.assert_no_pending_responses()
    # The first credentials were near their end: the next call assumed the role again, and
    # the fresh ones served every call after it.
    assert keys == ["ASIAFIRST0000000", "ASIASECOND000000", "ASIASECOND000000"]


def test_no_source_credentials_is_the_usual_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = AwsConfig(region="us-east-1", role_arn=EAST_ROLE, max_attempts=1)

    answer = aws.make_interpreter(config)(DescribeInstances(request_ids=("r-1",)))

    assert isinstance(answer, Failure)
    assert answer.failure().code == "credentials"
    assert "no AWS credentials found" in answer.failure().message


# --- Routing --------------------------------------------------------------------------------------


def _recorder(name: str, log: list[tuple[str, Intent]]) -> Interpreter:
    def interpret(intent: Intent) -> Answer:
        log.append((name, intent))
        return Success(name)

    return interpret


def test_routed_sends_at_to_its_provider_and_bare_intents_to_the_default() -> None:
    log: list[tuple[str, Intent]] = []
    cloud = routed({n: _recorder(n, log) for n in ("east", "west")}, default="west")
    resolve = ResolveImage(parameter="/p")

    answers = [
        cloud(At(provider="east", intent=resolve)),
        cloud(resolve),
        cloud(At(provider="west", intent=resolve)),
    ]

    assert [a.unwrap() for a in answers] == ["east", "west", "west"]
    # The provider's interpreter gets the bare intent, never the `At` wrapper.
    assert log == [("east", resolve), ("west", resolve), ("west", resolve)]


def test_an_unknown_provider_fails_with_a_config_error_naming_the_known_ones() -> None:
    log: list[tuple[str, Intent]] = []
    cloud = routed({n: _recorder(n, log) for n in ("east", "west")}, default="east")

    answer = cloud(At(provider="gone", intent=ResolveImage(parameter="/p")))

    assert isinstance(answer, Failure)
    error = answer.failure()
    assert error.code == "config"
    assert error.message.startswith("provider 'gone' is not configured (known: east, west); ")
    assert log == []
    # A default that is not configured fails the same way for bare intents.
    lost = routed({"east": _recorder("east", log)}, default="west")(ResolveImage(parameter="/p"))
    assert isinstance(lost, Failure) and lost.failure().code == "config"


def test_provider_clouds_makes_one_per_provider_disabled_ones_too() -> None:
    config = Config(
        aws=AwsConfig(region="us-east-1", endpoint_url="http://aws:1", max_attempts=7),
        providers=(
            ProviderConfig(name="east"),
            ProviderConfig(name="west", region="us-west-2", role_arn=WEST_ROLE, enabled=False),
        ),
    )
    made: list[AwsConfig] = []

    def make(settings: AwsConfig) -> Interpreter:
        made.append(settings)
        return _recorder(settings.region or "", [])

    clouds = provider_clouds(config, make)

    assert list(clouds) == ["east", "west"]
    assert [(m.region, m.role_arn, m.endpoint_url, m.max_attempts) for m in made] == [
        ("us-east-1", None, "http://aws:1", 7),
        ("us-west-2", WEST_ROLE, "http://aws:1", 7),
    ]
    assert clouds["west"](ResolveImage(parameter="/p")).unwrap() == "us-west-2"
    # `[aws]` alone is the one provider, named "".
    alone = provider_clouds(Config(aws=AwsConfig(region="eu-west-1")), make)
    assert list(alone) == [""] and made[-1] == AwsConfig(region="eu-west-1")


# --- A breaker per provider ----------------------------------------------------------------------


def _settings(tmp_path: Path, *names: str, **aws_keys: Any) -> Settings:
    config = Config(
        aws=AwsConfig(region="us-east-1", **aws_keys),
        providers=tuple(ProviderConfig(name=n) for n in names),
    )
    return Settings(
        config=config,
        source="<test>",
        conf_dir=str(tmp_path),
        state_path=str(tmp_path / "ohf-state.json"),
        log_path=None,
    )


def _throttled(calls: list[str], name: str) -> Interpreter:
    def interpret(intent: Intent) -> Answer:
        calls.append(name)
        return Failure(OhfError(message="slow down", code="RequestLimitExceeded"))

    return interpret


def _fine(calls: list[str], name: str) -> Interpreter:
    def interpret(intent: Intent) -> Answer:
        calls.append(name)
        return Success(())

    return interpret


def _saved(tmp_path: Path) -> dict[str, Any]:
    return dict(
        msgspec.json.decode((tmp_path / BREAKER_FILE).read_bytes(), type=BreakerFile).breakers
    )


DESCRIBE = DescribeInstances(request_ids=("r-1",))


def test_one_providers_open_breaker_does_not_refuse_another(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "east", "west", breaker_threshold=3, breaker_cooldown=60)
    calls: list[str] = []
    clouds = {"east": _throttled(calls, "east"), "west": _fine(calls, "west")}

    with circuits(settings, clouds, lambda: 1000, env={}) as guarded:
        for _ in range(3):
            guarded["east"](DESCRIBE)
        refused = guarded["east"](DESCRIBE)
        served = guarded["west"](DESCRIBE)

    assert isinstance(refused, Failure) and refused.failure().code == OPEN_CODE
    assert "provider:east" in refused.failure().message
    assert isinstance(served, Success)
    assert calls == ["east", "east", "east", "west"]  # the refused call never reached east
    breakers = _saved(tmp_path)
    assert breakers["provider:east"].open_until == 1060
    assert "provider:west" not in breakers  # closed and unchanged: nothing to write
    assert open_circuits(settings, 1000, env={}) == frozenset({"east"})
    assert open_circuits(settings, 1059, env={}) == frozenset({"east"})
    assert open_circuits(settings, 1060, env={}) == frozenset()  # cool-down over: a probe may go

    # The next call (another process) starts from the file: east still refuses, west serves.
    calls.clear()
    with circuits(settings, clouds, lambda: 1010, env={}) as guarded:
        assert guarded["east"](DESCRIBE).failure().code == OPEN_CODE
        assert isinstance(guarded["west"](DESCRIBE), Success)
    assert calls == ["west"]


def test_every_changed_breaker_is_saved_in_one_write_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, "east", "west", breaker_threshold=2)
    calls: list[str] = []
    clouds = {"east": _throttled(calls, "east"), "west": _throttled(calls, "west")}
    writes: list[dict[str, Any]] = []
    save = circuit.save

    def counted(path: Path, breakers: dict[str, Any]) -> None:
        writes.append(dict(breakers))
        save(path, breakers)

    monkeypatch.setattr(circuit, "save", counted)

    with circuits(settings, clouds, lambda: 500, env={}) as guarded:
        for name in ("east", "west", "east", "west"):
            guarded[name](DESCRIBE)
        assert not (tmp_path / BREAKER_FILE).exists()

    assert len(writes) == 1
    assert {k: b.open_until for k, b in writes[0].items()} == {
        "provider:east": 560,
        "provider:west": 560,
    }
    assert _saved(tmp_path) == writes[0]


def test_the_aws_shorthand_keeps_its_endpoint_breaker(tmp_path: Path) -> None:
    settings = _settings(tmp_path, breaker_threshold=1)
    calls: list[str] = []

    with circuits(settings, {"": _throttled(calls, "")}, lambda: 100, env={}) as guarded:
        guarded[""](DESCRIBE)
    # The single-provider helper reads the same breaker.
    with circuit.circuit(settings, _fine(calls, ""), lambda: 101, env={}) as cloud:
        refused = cloud(DESCRIBE)

    assert list(_saved(tmp_path)) == ["us-east-1"]
    assert refused.failure().code == OPEN_CODE
    assert open_circuits(settings, 101, env={}) == frozenset({""})
    assert calls == [""]


def test_an_unreadable_breaker_file_leaves_every_circuit_closed(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "east", "west")
    (tmp_path / BREAKER_FILE).write_bytes(b"{not json")

    assert open_circuits(settings, 0, env={}) == frozenset()


# --- ohf health per provider ---------------------------------------------------------------------


def _default_network(clients: aws.ClientGetter) -> tuple[str, str]:
    ec2 = clients("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    return str(subnet), str(group)


def _clients(config: AwsConfig) -> aws.ClientGetter:
    return aws.client_getter(config, None)


def _health_settings(tmp_path: Path, east: AwsConfig, west: AwsConfig, *, swap: bool) -> Settings:
    """Providers east (default account), west (a role in another account, us-west-2) and a
    disabled one; template gpu takes image and network from each provider's defaults, local
    runs on east only. `swap`: west's defaults name east's subnet."""
    east_clients = aws.client_getter(east, None)
    west_clients = aws.client_getter(west, None)
    east_net, west_net = _default_network(east_clients), _default_network(west_clients)
    west_subnet = east_net[0] if swap else west_net[0]
    (tmp_path / "ohf.toml").write_text(
        f"""
[aws]
region = "us-east-1"
max_attempts = 1

[[providers]]
name = "east"
[providers.defaults]
imageId = "{_image(east_clients)}"
subnetId = "{east_net[0]}"
securityGroupIds = ["{east_net[1]}"]

[[providers]]
name = "west"
region = "us-west-2"
role_arn = "{WEST_ROLE}"
external_id = "site-42"
[providers.defaults]
imageId = "{_image(west_clients)}"
subnetId = "{west_subnet}"
securityGroupIds = ["{west_net[1]}"]

[[providers]]
name = "old"
region = "eu-west-1"
enabled = false

[[templates]]
templateId = "gpu"
maxNumber = 4
vmType = "c5.large"

[[templates]]
templateId = "local"
maxNumber = 2
vmType = "m5.large"
providers = ["east"]
"""
    )
    loaded = load_settings(
        str(tmp_path / "ohf.toml"), {"HF_PROVIDER_WORKDIR": str(tmp_path)}, str(tmp_path)
    )
    return loaded.unwrap()


def test_health_checks_each_provider_with_its_view_of_each_template(
    moto: None, tmp_path: Path
) -> None:
    east = AwsConfig(region="us-east-1", max_attempts=1)
    west = AwsConfig(region="us-west-2", role_arn=WEST_ROLE, external_id="site-42")
    settings = _health_settings(tmp_path, east, west, swap=False)

    result = health.report(settings, lambda config: aws.client_getter(config, None))

    assert result.ok, health.table(result)
    assert result.providers == ["east", "west", "old"]
    rows = {(c.provider, c.check, c.target.split(":")[0]): c for c in result.checks}
    template_rows = {"image", "subnets", "security groups", "instance types"}
    assert set(rows) == {
        ("east", "region", "us-east-1"),
        ("east", "credentials", "sts"),
        *(("east", check, t) for check in template_rows for t in ("gpu", "local")),
        ("west", "region", "us-west-2"),
        ("west", "credentials", "sts"),
        ("west", "role", "arn"),
        *(("west", check, "gpu") for check in template_rows),
        ("old", "provider", "old"),
        (None, "store", f"json {tmp_path / 'ohf-state.json'}"),
    }
    # West's identity is the source's; the role row shows the role assumed in its account.
    assert ":123456789012:" in rows[("west", "credentials", "sts")].detail
    role = rows[("west", "role", "arn")]
    assert role.target == WEST_ROLE
    assert role.detail.startswith("arn:aws:sts::333333333333:assumed-role/ohf-west/")
    old = rows[("old", "provider", "old")]
    assert (old.ok, old.skipped, old.detail) == (
        True,
        True,
        "disabled (enabled = false): not checked",
    )
    table = health.table(result)
    assert table.splitlines()[0].split() == ["PROVIDER", "CHECK", "TARGET", "RESULT", "DETAIL"]
    assert [line.split()[:4] for line in table.splitlines() if line.startswith("old")] == [
        ["old", "provider", "old", "skipped"]
    ]
    assert table.rstrip().endswith("healthy")


def test_health_fails_the_provider_whose_view_names_a_resource_its_account_lacks(
    moto: None, tmp_path: Path
) -> None:
    east = AwsConfig(region="us-east-1", max_attempts=1)
    west = AwsConfig(region="us-west-2", role_arn=WEST_ROLE, external_id="site-42")
    settings = _health_settings(tmp_path, east, west, swap=True)

    result = health.report(settings, lambda config: aws.client_getter(config, None))

    assert not result.ok
    failed = [(c.provider, c.check, c.target.split(":")[0]) for c in result.checks if not c.ok]
    assert failed == [("west", "subnets", "gpu")]  # east's subnet is fine on east
    assert "InvalidSubnetID.NotFound" in next(c.detail for c in result.checks if not c.ok)
    table = health.table(result)
    (row,) = [line for line in table.splitlines() if "FAIL" in line]
    assert row.split()[:3] == ["west", "subnets", "gpu:"]


def test_health_shows_a_refused_role_on_its_provider_only(moto: None, tmp_path: Path) -> None:
    east = AwsConfig(region="us-east-1", max_attempts=1)
    west = AwsConfig(region="us-west-2", role_arn=WEST_ROLE, external_id="site-42")
    settings = _health_settings(tmp_path, east, west, swap=False)
    from botocore.exceptions import ClientError

    def clients_for(config: AwsConfig) -> aws.ClientGetter:
        if config.role_arn is None:
            return aws.client_getter(config, None)

        def refused(service: str) -> Any:
            error = {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}
            raise ClientError(error, "AssumeRole")

        return refused

    result = health.report(settings, clients_for)

    failed = {(c.provider, c.check) for c in result.checks if not c.ok}
    assert ("west", "role") in failed
    assert not {p for p, _ in failed} - {"west"}
    role = next(c for c in result.checks if c.check == "role")
    assert role.target == WEST_ROLE and "AccessDenied" in role.detail


def test_ohf_health_cli_reports_each_provider_against_moto_server(tmp_path: Path, aws: str) -> None:
    east = AwsConfig(region="us-east-1", endpoint_url=aws)
    west = AwsConfig(region="us-east-1", endpoint_url=aws, role_arn=EAST_ROLE, external_id="x-9")
    networks = {
        name: _default_network(_clients(config))
        for name, config in (("east", east), ("west", west))
    }
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ohf.toml").write_text(
        f"""
[aws]
region = "us-east-1"
endpoint_url = "{aws}"

[[providers]]
name = "east"
[providers.defaults]
subnetId = "{networks["east"][0]}"
securityGroupIds = ["{networks["east"][1]}"]

[[providers]]
name = "west"
role_arn = "{EAST_ROLE}"
external_id = "x-9"
[providers.defaults]
subnetId = "{networks["west"][0]}"
securityGroupIds = ["{networks["west"][1]}"]

[[providers]]
name = "spare"
enabled = false

[[templates]]
templateId = "Good"
maxNumber = 4
imageId = "{AL2023}"
vmType = "c5.large"
"""
    )

    proc = subprocess.run(
        [sys.executable, "-m", "ohf", "health", "--json"],
        env=hf_env(conf),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["providers"] == ["east", "west", "spare"]
    by_provider: dict[str | None, list[str]] = {}
    for check in report["checks"]:
        by_provider.setdefault(check["provider"], []).append(check["check"])
    checks = ["image", "subnets", "security groups", "instance types"]
    assert by_provider == {
        "east": ["region", "credentials", *checks],
        "west": ["region", "credentials", "role", *checks],
        "spare": ["provider"],
        None: ["store"],
    }
    role = next(c for c in report["checks"] if c["check"] == "role")
    assert role["detail"].startswith("arn:aws:sts::222222222222:assumed-role/ohf/")


# --- The HF calls with a provider that assumes a role --------------------------------------------


def test_hf_calls_launch_and_return_in_the_assumed_roles_account(tmp_path: Path, aws: str) -> None:
    role = AwsConfig(region="us-east-1", endpoint_url=aws, role_arn=EAST_ROLE, external_id="x-9")
    in_role = _clients(role)("ec2")
    subnet, group = _default_network(_clients(role))
    conf = tmp_path / "conf"
    conf.mkdir()
    # The disabled provider comes first: nothing is placed (or warmed) there.
    (conf / "ohf.toml").write_text(
        f"""
[aws]
region = "us-east-1"
endpoint_url = "{aws}"

[[providers]]
name = "old"
enabled = false

[[providers]]
name = "site"
role_arn = "{EAST_ROLE}"
external_id = "x-9"
[providers.defaults]
subnetId = "{subnet}"
securityGroupIds = ["{group}"]

[[templates]]
templateId = "Good"
maxNumber = 4
imageId = "{AL2023}"
vmType = "c5.large"
"""
    )

    code, asked, err = run_ohf(
        "requestMachines", {"template": {"templateId": "Good", "machineCount": 2}}, conf
    )
    assert code == 0, (asked, err)
    request_id = asked["requestId"]  # type: ignore[index]
    for _ in range(10):
        code, status, err = run_ohf(
            "getRequestStatus", {"requests": [{"requestId": request_id}]}, conf
        )
        assert code == 0, (status, err)
        (req,) = status["requests"]  # type: ignore[index]
        if req["status"] != "running":
            break
    assert req["status"] == "complete", req
    machines = {m["machineId"] for m in req["machines"]}

    assert len(machines) == 2
    owned = {
        i["InstanceId"]: r["OwnerId"]
        for r in in_role.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert owned == dict.fromkeys(machines, "222222222222")
    assert ec2_client(aws).describe_instances()["Reservations"] == []  # the default account

    code, returned, err = run_ohf(
        "requestReturnMachines",
        {"machines": [{"name": m["name"], "machineId": m["machineId"]} for m in req["machines"]]},
        conf,
    )
    assert code == 0, (returned, err)
    states = {
        i["State"]["Name"]
        for r in in_role.describe_instances(InstanceIds=sorted(machines))["Reservations"]
        for i in r["Instances"]
    }
    assert states == {"terminated"}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # EC2 answers capacity errors with HTTP 500: they must keep their code (no retry,
        # no breaker, the core fails over), while other 5xx codes stay transient.
        ("InsufficientInstanceCapacity", "InsufficientInstanceCapacity"),
        ("InsufficientHostCapacity", "InsufficientHostCapacity"),
        ("SomethingBrokeInside", "InternalError"),
    ],
)
def test_a_5xx_capacity_error_keeps_its_code(code: str, expected: str) -> None:
    from botocore.exceptions import ClientError

    from ohf.effects.aws import is_transient_exception
    from ohf.effects.aws.errors import _client_error

    exc = ClientError(
        {
            "Error": {"Code": code, "Message": "no room"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        "RunInstances",
    )
    error = _client_error("RunInstances", exc)
    assert error.code == expected
    assert is_transient_exception(exc) == (expected == "InternalError")
