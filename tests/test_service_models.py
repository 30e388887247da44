"""Service models cut to ohf's operations lose nothing ohf uses, and the list of operations is
what the interpreters and the rest of ohf actually call.

The cut itself is pure (`ohf.service_models`) and is checked against the models of the botocore
installed here: every operation kept is the same operation (its input and output shapes, its
errors, its paginator and waiters), every exception is kept, and clients on cut and full models
resolve the same endpoints. The operation list is derived two ways: by running every intent the
AWS interpreter performs (moto, in-process) and recording the operations its clients call, and
by reading every AWS call spelled in ohf's source.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore import xform_name
from returns.result import Failure, Success

from ohf.effects.aws import models
from ohf.service_models import (
    OPERATIONS,
    PAGINATORS,
    RULES,
    SERVICE,
    WAITERS,
    check_document,
    cut_document,
    cut_service,
    digest,
    reachable,
    unusable_document,
    unusable_reason,
)

PACKAGE = Path(__file__).resolve().parent.parent / "ohf"
VERSION = botocore.__version__


@pytest.fixture(scope="module")
def full() -> dict[str, tuple[str, dict[str, Any]]]:
    """botocore's own model files of each service ohf cuts: {service: (api version, parts)}."""
    return {service: models.full_parts(service) for service in OPERATIONS}


def _cut(full: Mapping[str, tuple[str, dict[str, Any]]], service: str) -> dict[str, Any]:
    api_version, parts = full[service]
    return cut_document(service, VERSION, api_version, parts).unwrap()


def canonical(
    model: botocore.model.ServiceModel, shape: Any, seen: frozenset[str] = frozenset()
) -> Any:
    """A shape as what a request or parse depends on: type, wire names, traits, members."""
    if shape is None:
        return None
    if shape.name in seen:
        return ("recursive", shape.name)
    seen = seen | {shape.name}
    traits = {k: v for k, v in shape.metadata.items() if k not in ("documentation",)}
    body: Any = None
    if shape.type_name == "structure":
        body = {n: canonical(model, m, seen) for n, m in shape.members.items()}
    elif shape.type_name == "list":
        body = canonical(model, shape.member, seen)
    elif shape.type_name == "map":
        body = (canonical(model, shape.key, seen), canonical(model, shape.value, seen))
    return (
        shape.name,
        shape.type_name,
        repr(sorted(shape.serialization.items())),
        repr(sorted(traits.items())),
        body,
    )


# --- The cut, pure -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_every_operation_kept_is_the_same_operation_as_in_the_full_model(
    full: dict[str, tuple[str, dict[str, Any]]], service: str
) -> None:
    whole = botocore.model.ServiceModel(full[service][1][SERVICE], service)
    cut = botocore.model.ServiceModel(_cut(full, service)[SERVICE], service)

    assert OPERATIONS[service] <= set(cut.operation_names)
    assert len(cut.operation_names) < len(whole.operation_names)
    for name in cut.operation_names:
        mine, theirs = cut.operation_model(name), whole.operation_model(name)
        assert canonical(cut, mine.input_shape) == canonical(whole, theirs.input_shape)
        assert canonical(cut, mine.output_shape) == canonical(whole, theirs.output_shape)
        assert [e.name for e in mine.error_shapes] == [e.name for e in theirs.error_shapes]
        assert (mine.http, mine.metadata, mine.endpoint_discovery) == (
            theirs.http,
            theirs.metadata,
            theirs.endpoint_discovery,
        )
    # Every modelled exception is kept, so error parsing and client.exceptions are unchanged.
    assert sorted(s.name for s in cut.error_shapes) == sorted(s.name for s in whole.error_shapes)
    assert cut.metadata == whole.metadata


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_paginators_and_waiters_are_those_of_the_operations_kept(
    full: dict[str, tuple[str, dict[str, Any]]], service: str
) -> None:
    document = _cut(full, service)
    kept = document[SERVICE]["operations"].keys()
    whole = full[service][1]
    if whole[PAGINATORS] is not None:
        expected = {k: v for k, v in whole[PAGINATORS]["pagination"].items() if k in kept}
        assert document[PAGINATORS]["pagination"] == expected
    if whole[WAITERS] is not None:
        waiters = whole[WAITERS]["waiters"]
        expected = {k: v for k, v in waiters.items() if v["operation"] in kept}
        assert document[WAITERS]["waiters"] == expected
    assert document[RULES] == whole[RULES]


def test_the_cut_drops_documentation_and_most_of_the_size(
    full: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    import msgspec

    ec2 = _cut(full, "ec2")
    text = msgspec.json.encode(ec2[SERVICE])
    assert b'"documentation"' not in text
    assert len(text) * 10 < len(msgspec.json.encode(full["ec2"][1][SERVICE]))


def test_a_cut_naming_an_operation_the_model_lacks_is_refused(
    full: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    cut = cut_service(full["ssm"][1][SERVICE], {"GetParameter", "LaunchRockets"})
    assert cut == Failure("the model has no operation LaunchRockets")


def test_the_endpoint_discovery_operation_is_kept_with_the_cut(
    full: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    operations = _cut(full, "dynamodb")[SERVICE]["operations"]
    assert "DescribeEndpoints" in operations


def _broken(document: dict[str, Any], how: str) -> Any:
    import copy

    broken = copy.deepcopy(document)
    if how == "botocore":
        broken["botocore"] = "0.0.1"
    elif how == "digest":
        broken["digest"] = "0" * 12
    elif how == "operation":
        del broken[SERVICE]["operations"]["GetParameter"]
    elif how == "shape":
        broken[SERVICE]["shapes"].pop(
            broken[SERVICE]["operations"]["GetParameter"]["input"]["shape"]
        )
    elif how == "paginator":
        broken[PAGINATORS]["pagination"]["LaunchRockets"] = {}
    elif how == "shapes":
        broken[SERVICE]["shapes"] = []
    elif how == "list":
        broken = [broken]
    return broken


@pytest.mark.parametrize(
    "how", ["botocore", "digest", "operation", "shape", "paginator", "shapes", "list"]
)
def test_a_cached_document_is_checked_whole(
    full: dict[str, tuple[str, dict[str, Any]]], how: str
) -> None:
    document = _cut(full, "ssm")
    assert check_document(document, "ssm", VERSION) == Success(document)
    assert isinstance(check_document(_broken(document, how), "ssm", VERSION), Failure)


def test_a_record_that_no_cut_can_be_made_names_why_and_only_for_its_version() -> None:
    record = unusable_document("ec2", VERSION, "no RunInstances")
    assert unusable_reason(record, "ec2", VERSION) == "no RunInstances"
    assert unusable_reason(record, "ec2", "0.0.1") is None
    assert unusable_reason({**record, "digest": "x"}, "ec2", VERSION) is None


def test_the_digest_changes_with_the_operations_kept() -> None:
    assert digest("ec2") == digest("ec2", OPERATIONS["ec2"])
    assert digest("ec2") != digest("ec2", {*OPERATIONS["ec2"], "RebootInstances"})


def test_reachable_follows_members_lists_and_maps() -> None:
    shapes = {
        "A": {"type": "structure", "members": {"b": {"shape": "B"}}},
        "B": {"type": "list", "member": {"shape": "C"}},
        "C": {"type": "map", "key": {"shape": "K"}, "value": {"shape": "A"}},
        "K": {"type": "string"},
        "Z": {"type": "string"},
    }
    assert reachable(shapes, ["A"]) == {"A", "B", "C", "K"}


# --- Clients on cut models ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> models.CutModels:
    """Cut models cached once for the module's clients."""
    return models.CutModels([str(tmp_path_factory.mktemp("cache"))])


def _clients_pair(cache: models.CutModels, service: str, **keys: Any) -> tuple[Any, Any]:
    """A client on the cut model and one on the full model."""
    cut = botocore.session.Session()
    models.install(cut, cache)
    return cut.create_client(service, **keys), botocore.session.Session().create_client(
        service, **keys
    )


ENDPOINT_SETTINGS = {
    "us-east-1": {"region_name": "us-east-1"},
    "eu-west-3": {"region_name": "eu-west-3"},
    "gov": {"region_name": "us-gov-west-1"},
    "china": {"region_name": "cn-north-1"},
    "endpoint_url": {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:9"},
    "fips": {"region_name": "us-east-1", "config": {"use_fips_endpoint": True}},
    "dualstack": {"region_name": "us-west-2", "config": {"use_dualstack_endpoint": True}},
}


@pytest.mark.parametrize("service", sorted(OPERATIONS))
@pytest.mark.parametrize("setting", sorted(ENDPOINT_SETTINGS))
def test_clients_on_cut_and_full_models_resolve_the_same_endpoint(
    cache: models.CutModels, service: str, setting: str
) -> None:
    import botocore.config

    keys = dict(ENDPOINT_SETTINGS[setting])
    if "config" in keys:
        keys["config"] = botocore.config.Config(**keys["config"])
    cut, whole = _clients_pair(cache, service, **keys)
    assert (cut.meta.endpoint_url, cut.meta.region_name, cut.meta.partition) == (
        whole.meta.endpoint_url,
        whole.meta.region_name,
        whole.meta.partition,
    )
    assert len(cut.meta.method_to_api_mapping) < len(whole.meta.method_to_api_mapping)
    assert sorted(cut.exceptions._code_to_exception) == sorted(whole.exceptions._code_to_exception)


@pytest.mark.parametrize(
    "variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS"]
)
def test_endpoints_from_the_environment_reach_clients_on_cut_models(
    cache: models.CutModels, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    service = "sts" if variable.endswith("STS") else "ec2"
    cut, whole = _clients_pair(cache, service, region_name="eu-west-1")
    assert cut.meta.endpoint_url == whole.meta.endpoint_url == "http://127.0.0.1:9"


def test_paginators_and_waiters_of_cut_clients_work_as_before(cache: models.CutModels) -> None:
    ec2, _ = _clients_pair(cache, "ec2", region_name="us-east-1")
    dynamodb, whole = _clients_pair(cache, "dynamodb", region_name="us-east-1")
    assert ec2.can_paginate("describe_instances")
    assert "instance_running" in ec2.waiter_names
    assert dynamodb.get_waiter("table_exists").config.operation == "DescribeTable"
    # Only the waiters polling an operation kept: the rest would call what the cut lacks.
    kept = {
        name
        for name in whole.waiter_names
        if whole.get_waiter(name).config.operation in OPERATIONS["dynamodb"]
    }
    assert set(dynamodb.waiter_names) == kept >= {"table_exists", "table_not_exists"}


# --- The operation list, derived ------------------------------------------------------------------


def _snake_operations() -> dict[str, list[tuple[str, str]]]:
    """botocore's method name of every operation of ohf's services -> [(service, operation)]."""
    session = botocore.session.Session()
    found: dict[str, list[tuple[str, str]]] = {}
    for service in OPERATIONS:
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), []).append((service, operation))
    return found


def test_every_aws_call_spelled_in_ohfs_source_is_an_operation_of_the_cut() -> None:
    """Method calls (`ec2.describe_images(`), paginator and waiter names (`"describe_fleets"`)
    anywhere in ohf: the interpreter, `ohf health`, `ohf init`, the DynamoDB store."""
    snake = _snake_operations()
    missing = set()
    for path in PACKAGE.rglob("*.py"):
        if "strategies" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            for service, operation in snake.get(name or "", ()):
                if operation not in OPERATIONS[service] and len(snake[name or ""]) == 1:
                    missing.add(f"{service}.{operation} ({path.relative_to(PACKAGE)})")
    assert not missing, f"add to ohf.service_models.OPERATIONS: {sorted(missing)}"


def _examples(image: str, subnets: tuple[str, str]) -> Iterator[Any]:
    """Intents of every type the interpreter performs, in an order that makes each meaningful
    (a fleet is described after it was created), covering each performer's branches."""
    from ohf.intents import (
        CreateFleet,
        CreateLaunchTemplate,
        DeleteFleet,
        DeleteLaunchTemplate,
        DescribeFleets,
        DescribeInstances,
        DescribeSpotSignals,
        FleetSpec,
        LaunchSpec,
        ModifyFleetTarget,
        Override,
        ResolveImage,
        RootVolume,
        RunInstances,
        TagInstanceIds,
        TerminateInGroup,
        TerminateInstances,
    )
    from ohf.model import REQUEST_TAG

    unknown = "i-0123456789abcdef0"
    tags = ((REQUEST_TAG, "req-1"),)
    spec = LaunchSpec(
        image_id=image,
        instance_type="c5.large",
        min_count=1,
        max_count=1,
        tags=tags,
        client_token="req-1",
        root_volume=RootVolume(size_gib=20),
    )
    launched = yield RunInstances(spec=spec)
    ids = tuple(i.instance_id for i in launched)
    yield DescribeInstances(request_ids=("req-1",), instance_ids=ids)
    yield ResolveImage(parameter="/ohf/test/image")
    yield TagInstanceIds(instances=tuple((i, ()) for i in ids))
    yield DescribeSpotSignals(instance_ids=ids)
    lt = yield CreateLaunchTemplate(name="ohf-req-1", spec=spec)
    yield CreateLaunchTemplate(name="ohf-req-1", spec=spec)  # taken: answered from a describe
    overrides = (Override(instance_type="c5.large", subnet_id=subnets[0]),)
    fleets = {}
    for api, kind in (
        ("EC2Fleet", "maintain"),
        ("EC2Fleet", "instant"),
        ("SpotFleet", "maintain"),
        ("ASG", "instant"),
    ):
        fleet = FleetSpec(
            api=api,  # type: ignore[arg-type]
            name=f"ohf-{api}-{kind}",
            launch_template_id=lt,
            overrides=overrides,
            target_units=2,
            fleet_type=kind,  # type: ignore[arg-type]
            client_token=f"{api}-{kind}",
            subnets=subnets,
            fleet_role="arn:aws:iam::123456789012:role/fleet",
            allocation_strategy="lowestPrice",
        )
        launch = yield CreateFleet(spec=fleet)
        fleets[(api, kind)] = launch.fleet_id
    yield DescribeFleets(fleets=tuple((api, i) for (api, _), i in fleets.items()))
    for (api, _), fleet_id in fleets.items():
        yield ModifyFleetTarget(api=api, fleet_id=fleet_id, target_units=1)  # type: ignore[arg-type]
    group = fleets[("ASG", "instant")]
    members = yield DescribeInstances(request_ids=(), instance_ids=ids)
    yield TerminateInGroup(group=group, instance_ids=(*ids, unknown))
    for (api, _), fleet_id in fleets.items():
        yield DeleteFleet(api=api, fleet_id=fleet_id)  # type: ignore[arg-type]
    yield DeleteLaunchTemplate(launch_template_id=lt)
    yield TerminateInstances(instance_ids=(*ids, unknown))
    del members


def test_the_operations_the_interpreter_calls_for_every_intent_are_in_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every intent type the AWS interpreter performs, run against moto on clients built on
    cut models; the operations their clients called are recorded as they are sent. A new intent
    (or a new call in a performer) whose operation is not in OPERATIONS fails here, by name."""
    import boto3
    from moto import mock_aws

    from ohf.config import AwsConfig
    from ohf.effects.aws import client_getter, make_interpreter
    from ohf.effects.aws.interpreter import PERFORMERS
    from tests.moto_patched import patched

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    called: set[tuple[str, str]] = set()
    performed: set[type] = set()
    config = AwsConfig(region="us-east-1", max_attempts=1)
    with patched(), mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        image = ec2.register_image(Name="node", RootDeviceName="/dev/sda1")["ImageId"]
        subnets = tuple(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2])
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/ohf/test/image", Value=image, Type="String"
        )
        made = client_getter(config, None, models=models.CutModels([str(tmp_path)]))

        def recorded(service: str) -> Any:
            client = made(service)
            client.meta.events.register(
                "before-call", lambda model, **_: called.add((service, model.name))
            )
            return client

        interpret = make_interpreter(config, clients=recorded)
        examples = _examples(image, subnets)  # type: ignore[arg-type]
        intent = next(examples)
        while True:
            performed.add(type(intent))
            answer = interpret(intent)
            try:
                intent = examples.send(answer.value_or(None))
            except StopIteration:
                break
    assert performed == set(PERFORMERS), "give every intent the interpreter performs an example"
    strays = sorted(f"{s}.{op}" for s, op in called if op not in OPERATIONS.get(s, ()))
    assert not strays, f"add to ohf.service_models.OPERATIONS: {strays}"
    assert "full model" not in caplog.text, caplog.text  # an operation the cut lacks
    assert {("ec2", "RunInstances"), ("autoscaling", "CreateAutoScalingGroup")} <= called


# --- The cache ------------------------------------------------------------------------------------


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def test_a_missing_cut_is_built_once_written_and_then_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = models.CutModels([str(tmp_path)]).document("ssm")
    (written,) = _files(tmp_path)
    assert written == tmp_path / f"botocore-{VERSION}" / f"ssm-{digest('ssm')}.json"

    def no_build(service: str) -> Any:
        raise AssertionError("rebuilt a cut that was cached")

    monkeypatch.setattr(models, "full_parts", no_build)
    assert models.CutModels([str(tmp_path)]).document("ssm") == built


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"format": 1}', b"[1, 2]"])
def test_a_corrupt_cut_is_rebuilt_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    good = models.CutModels([str(tmp_path)]).document("sts")
    (path,) = _files(tmp_path)
    path.write_bytes(damage)
    caplog.set_level("INFO", logger="ohf.aws")

    assert models.CutModels([str(tmp_path)]).document("sts") == good
    assert "rebuilding" in caplog.text
    assert models.CutModels([str(tmp_path)]).document("sts") == good  # read, whole again


def test_a_directory_that_cannot_be_written_gives_way_to_the_next(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    beside_state = tmp_path / "state-dir"

    document = models.CutModels([str(blocked / "models"), str(beside_state)]).document("ssm")

    assert document is not None
    assert len(_files(beside_state)) == 1


def test_with_no_directory_to_write_the_cut_is_still_used_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    cut = models.CutModels([str(blocked / "models")])

    assert cut.document("ssm") is not None
    assert cut.document("ssm") is not None
    assert caplog.text.count("cannot write the cut ssm model") == 1


def test_a_model_lacking_an_operation_falls_back_to_the_full_model_and_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = models.full_parts

    def older_botocore(service: str) -> Any:
        import copy

        api_version, parts = real(service)
        parts = copy.deepcopy(parts)  # botocore's loader caches what it read: leave it be
        del parts[SERVICE]["operations"]["GetParameters"]
        return api_version, parts

    monkeypatch.setattr(models, "full_parts", older_botocore)
    assert models.CutModels([str(tmp_path)]).document("ssm") is None
    assert caplog.text.count("no operation GetParameters; using botocore's full ssm model") == 1

    # The next process reads the record and goes straight to the full model, saying so.
    monkeypatch.setattr(models, "full_parts", lambda service: pytest.fail("tried again"))
    caplog.clear()
    assert models.CutModels([str(tmp_path)]).document("ssm") is None
    assert "using botocore's full ssm model" in caplog.text


def test_a_service_ohf_does_not_cut_gets_botocores_whole_model_and_endpoints(
    tmp_path: Path,
) -> None:
    from ohf.config import AwsConfig
    from ohf.effects.aws import client_getter

    cut = models.CutModels([str(tmp_path)])
    iam = client_getter(AwsConfig(region="us-west-2"), None, models=cut)("iam")
    whole = botocore.session.Session().create_client("iam", region_name="us-west-2")
    assert "create_user" in iam.meta.method_to_api_mapping
    # IAM is global: botocore's endpoints.json names its partition endpoint and region.
    assert (iam.meta.endpoint_url, iam.meta.region_name) == (
        whole.meta.endpoint_url,
        whole.meta.region_name,
    )


def test_models_replaced_by_aws_data_path_are_botocores_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "my-models"))
    session = botocore.session.Session()
    models.install(session, models.CutModels([str(tmp_path / "cache")]))
    ec2 = session.create_client("ec2", region_name="us-east-1")
    assert "describe_volumes" in ec2.meta.method_to_api_mapping
    assert not (tmp_path / "cache").exists()


def test_cache_directories_follow_xdg_then_home_then_the_state(tmp_path: Path) -> None:
    state = str(tmp_path / "work" / "ohf-state.json")
    beside = str(tmp_path / "work" / ".ohf-cache" / "models")
    assert models.cache_dirs({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, state) == (
        "/x/ohf/models",
        beside,
    )
    assert models.cache_dirs({"XDG_CACHE_HOME": "relative", "HOME": "/h"}, state) == (
        "/h/.cache/ohf/models",
        beside,
    )
    assert models.cache_dirs({"OHF_CACHE_DIR": "/o", "HOME": "/h"})[:2] == (
        "/o/models",
        "/h/.cache/ohf/models",
    )


SIXTEEN = """
import hashlib, sys
import msgspec
from ohf.effects.aws.models import CutModels
document = CutModels([sys.argv[1]]).document("ec2")
print(hashlib.sha256(msgspec.json.encode(document)).hexdigest())
"""


def test_sixteen_processes_building_the_same_cut_at_once_all_read_a_whole_one(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(PACKAGE.parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SIXTEEN, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(16)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]

    assert all(p.returncode == 0 for p in procs), [e.decode()[-500:] for _, e in outputs]
    assert len({out for out, _ in outputs}) == 1  # every process holds the same cut
    (written,) = _files(tmp_path)  # one file, no temp file left behind
    assert check_document(models._cached(written.read_bytes(), "ec2").unwrap(), "ec2", VERSION)


def test_an_operation_the_cut_lacks_is_called_on_the_full_model_saying_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from moto import mock_aws

    from ohf.config import AwsConfig
    from ohf.effects.aws import client_getter

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    calls: list[str] = []
    with mock_aws():
        ec2 = client_getter(
            AwsConfig(region="us-east-1"), calls.append, models=models.CutModels([str(tmp_path)])
        )("ec2")
        assert "describe_regions" not in ec2.meta.method_to_api_mapping
        for _ in range(2):
            assert ec2.describe_regions(RegionNames=["us-east-1"])["Regions"]
    assert calls == ["DescribeRegions", "DescribeRegions"]  # the hook reaches the full client
    assert caplog.text.count("has no describe_regions; calling it on the full model") == 1
    with pytest.raises(AttributeError):
        ec2.no_such_operation  # noqa: B018


# --- Credential sources through sessions on cut models ------------------------------------------


def test_a_profiles_credential_process_is_run_by_the_cut_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys

    from ohf.config import AwsConfig
    from ohf.effects.aws import source_session

    printed = {"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "s"}
    script = tmp_path / "creds.py"
    script.write_text(f"print({json.dumps(json.dumps(printed))})")
    config = tmp_path / "config"
    config.write_text(f"[profile hpc]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)

    session = source_session(
        AwsConfig(region="us-east-1", profile="hpc"), models.CutModels([str(tmp_path / "c")])
    )

    assert session.get_credentials().access_key == "AKIDPROCESS"


def test_web_identity_credentials_are_assumed_through_the_cut_sts_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from moto import mock_aws

    from ohf.config import AwsConfig
    from ohf.effects.aws import source_session

    token = tmp_path / "token"
    token.write_text("a-web-identity-token")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/hf")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    calls: list[str] = []
    with mock_aws(config={"core": {"mock_credentials": False}}):  # no keys from moto either
        session = source_session(
            AwsConfig(region="us-east-1"), models.CutModels([str(tmp_path / "c")])
        )
        # botocore's provider makes its STS client from the cut session: watch what it sends.
        session.botocore_session.register(
            "before-call.sts", lambda model, **_: calls.append(model.name)
        )
        credentials = session.get_credentials().get_frozen_credentials()
    assert calls == ["AssumeRoleWithWebIdentity"]
    assert credentials.token  # temporary credentials, from STS
    assert "full model" not in caplog.text
