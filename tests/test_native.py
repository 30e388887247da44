"""Native fragments and secure defaults, offline: the merge and substitution laws, the keys ohf
keeps, refusals at load, and the IMDS warnings of `ohf validate`."""

from __future__ import annotations

import base64
import copy
import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from returns.result import Failure

from ohf import Provider
from ohf.acquire import base_spec
from ohf.config import Config, decode_template
from ohf.effects.aws.create_fleets import ec2_fleet_params, group_params, spot_fleet_config
from ohf.effects.aws.instances import on_interfaces, run_instances_params
from ohf.effects.aws.launch_templates import launch_template_data
from ohf.fleets import fleet_spec
from ohf.imds import imdsv1_allowed, tokenless_metadata_calls, user_data_text
from ohf.model import Template
from ohf.native import (
    AUTO_SCALING_GROUP,
    EC2_FLEET,
    LAUNCH_TEMPLATE_DATA,
    RUN_INSTANCES,
    SPOT_FLEET,
    Owned,
    conflicts,
    leaves,
    merged,
    placeholders,
    substituted,
)
from ohf.native import Path as KeyPath
from ohf.templates import check_template

# --- The merge ---------------------------------------------------------------------------------

# Keys that always hold a table and keys that always hold a value: the merge is associative
# exactly when no key holds a table in one fragment and a value in another.
TABLE_KEYS = st.sampled_from(["A", "B", "C"])
VALUE_KEYS = st.sampled_from(["x", "y", "z"])
VALUES = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=4), st.lists(st.integers(), max_size=3)
)
FRAGMENTS = st.recursive(
    st.dictionaries(VALUE_KEYS, VALUES, max_size=3),
    lambda tables: st.builds(
        lambda values, nested: {**values, **nested},
        st.dictionaries(VALUE_KEYS, VALUES, max_size=3),
        st.dictionaries(TABLE_KEYS, tables, max_size=3),
    ),
    max_leaves=12,
)


def at(tree: Any, path: KeyPath) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@given(FRAGMENTS, FRAGMENTS, FRAGMENTS)
def test_merge_is_associative_when_every_key_keeps_its_kind(a: Any, b: Any, c: Any) -> None:
    assert merged(merged(a, b), c) == merged(a, merged(b, c))


def test_merge_is_not_associative_when_a_key_changes_kind() -> None:
    # Why the law above needs kind-stable keys: a value in the middle replaces a table on the
    # left, but merges away on the right.
    a, b, c = {"k": {"x": 1}}, {"k": 2}, {"k": {"y": 3}}
    assert merged(merged(a, b), c) == {"k": {"y": 3}}
    assert merged(a, merged(b, c)) == {"k": {"x": 1, "y": 3}}


@given(FRAGMENTS, FRAGMENTS)
def test_merge_is_idempotent_and_has_the_empty_fragment_as_identity(a: Any, b: Any) -> None:
    assert merged(a, a) == a
    assert merged(merged(a, b), b) == merged(a, b)
    assert merged(a, {}) == a == merged({}, a)


@given(FRAGMENTS, FRAGMENTS)
def test_the_fragment_wins_where_it_speaks_and_the_base_stays_elsewhere(a: Any, b: Any) -> None:
    both = merged(a, b)
    spoken = [p for p, _ in leaves(b)]
    for path, value in leaves(b):
        if value == {}:
            # An empty table adds its key, and keeps whatever table the base had there.
            assert isinstance(at(both, path), dict)
        else:
            assert at(both, path) == value
    for path, value in leaves(a):
        if not any(path[: len(p)] == p or p[: len(path)] == path for p in spoken):
            assert at(both, path) == value


@given(FRAGMENTS, FRAGMENTS)
def test_merge_changes_neither_input(a: Any, b: Any) -> None:
    before = copy.deepcopy((a, b))
    result = merged(a, b)
    assert (a, b) == before
    for _, value in leaves(result):
        if isinstance(value, list):
            value.append("mutated")
    assert (a, b) == before


def test_lists_are_replaced_not_concatenated() -> None:
    base = {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda"}], "Placement": {"Tenancy": "x"}}
    fragment = {
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdf"}],
        "Placement": {"GroupName": "g"},
    }
    assert merged(base, fragment) == {
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdf"}],
        "Placement": {"Tenancy": "x", "GroupName": "g"},
    }


# --- Substitution ------------------------------------------------------------------------------

SAFE_TEXT = st.text(st.characters(blacklist_characters="${}"), max_size=8)
PLACED = st.lists(
    st.one_of(SAFE_TEXT, st.sampled_from(["${request_id}", "${template_id}", "${machine_count}"])),
    max_size=4,
).map("".join)
STRING_FRAGMENTS = st.recursive(
    st.dictionaries(VALUE_KEYS, st.one_of(PLACED, st.lists(PLACED, max_size=2)), max_size=3),
    lambda tables: st.dictionaries(TABLE_KEYS, tables, max_size=3),
    max_leaves=10,
)
VALUES_OF = st.builds(
    placeholders,
    SAFE_TEXT.map(lambda s: f"req-{s}"),
    st.from_regex(r"[0-9A-Za-z_-]{1,8}", fullmatch=True),
    st.integers(1, 1000),
)


def strings(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in strings(v)]
    return [tree] if isinstance(tree, str) else []


@given(STRING_FRAGMENTS, VALUES_OF)
def test_substitution_leaves_no_known_placeholder_and_is_idempotent(
    fragment: Any, values: dict[str, Any]
) -> None:
    done = substituted(fragment, values)
    assert not [s for s in strings(done) if "${" in s]
    assert substituted(done, values) == done
    assert [p for p, _ in leaves(done)] == [p for p, _ in leaves(fragment)]


@given(STRING_FRAGMENTS, STRING_FRAGMENTS, VALUES_OF)
def test_substitution_commutes_with_the_merge(a: Any, b: Any, values: dict[str, Any]) -> None:
    assert substituted(merged(a, b), values) == merged(
        substituted(a, values), substituted(b, values)
    )


@given(FRAGMENTS.filter(lambda f: "${" not in str(f)), VALUES_OF)
def test_a_fragment_without_placeholders_is_sent_as_written(
    fragment: Any, values: dict[str, Any]
) -> None:
    assert substituted(fragment, values) == fragment


def test_a_lone_machine_count_becomes_a_number_and_text_keeps_its_type() -> None:
    values = placeholders("req-1", "gpu", 3)
    fragment = {
        "OnDemandOptions": {"MinTargetCapacity": "${machine_count}"},
        "Name": "${template_id}-${request_id} x${machine_count}",
        "Keep": "${unknown} and $HOME",
    }
    assert substituted(fragment, values) == {
        "OnDemandOptions": {"MinTargetCapacity": 3},
        "Name": "gpu-req-1 x3",
        "Keep": "${unknown} and $HOME",
    }


# --- Keys ohf owns -----------------------------------------------------------------------------

SUBNETS = ["subnet-1", "subnet-2"]
TEMPLATE = Template(
    template_id="t",
    max_number=10,
    image_id="ami-12345678",
    vm_types={"c5.large": 1, "c5.xlarge": 2},
    subnet_id=SUBNETS,
    security_group_ids=["sg-1"],
    instance_tags="team=hpc",
    price_type="heterogeneous",
    percent_on_demand=50,
    fleet_role="arn:aws:iam::123456789012:role/fleet",
    provider_api="EC2Fleet",
    root_device_volume_size=20,
)
FREE_KEYS = ["MetadataOptions", "CpuOptions", "Placement", "SpotOptions", "OnDemandOptions"]


def fragments_over(owned: Owned) -> st.SearchStrategy[dict[str, Any]]:
    """Fragments mixing keys ohf owns (and tables on their way) with keys it leaves alone."""
    owned_keys = [key for key, _ in owned]
    # Free keys and tables holding owned keys weigh four times an owned key: most fragments
    # then pass the check and the law below has something to say.
    free = sorted(set(FREE_KEYS) | {k[0] for k in owned_keys if len(k) > 1})
    tops = free * 4 + sorted({k[0] for k in owned_keys if len(k) == 1})
    deeper = sorted({k[1] for k in owned_keys if len(k) > 1} | {"Inner"})
    value = st.one_of(st.integers(0, 5), st.text(max_size=3), st.lists(st.integers(), max_size=2))
    nested = st.dictionaries(
        st.sampled_from(deeper),
        st.one_of(
            value,
            st.dictionaries(
                st.sampled_from(
                    ["OnDemandBaseCapacity", "OnDemandPercentageAboveBaseCapacity", "X"]
                ),
                value,
                max_size=2,
            ),
        ),
        max_size=2,
    )
    return st.dictionaries(st.sampled_from(tops), st.one_of(value, nested), max_size=3)


def owned_values(params: dict[str, Any], owned: Owned) -> list[Any]:
    out = []
    for key, _ in owned:
        node: Any = params
        for part in key:
            node = node.get(part, "<absent>") if isinstance(node, dict) else "<absent>"
        out.append(node)
    return out


def run_params(fragment: dict[str, Any]) -> dict[str, Any]:
    spec = base_spec(msgspec.structs.replace(TEMPLATE, provider_api="RunInstances"), "r", None, "")
    spec = msgspec.structs.replace(spec, instance_type="c5.large", subnet_id="subnet-1")
    return run_instances_params(
        msgspec.structs.replace(spec, native_run_instances=fragment), "/dev/xvda"
    )


def template_data(fragment: dict[str, Any]) -> dict[str, Any]:
    spec = base_spec(TEMPLATE, "r", None, "echo")
    return launch_template_data(
        msgspec.structs.replace(spec, native_launch_template_data=fragment), "/dev/xvda"
    )


def fleet_params(api: str, build: Any) -> Any:
    def params(fragment: dict[str, Any]) -> dict[str, Any]:
        spec = fleet_spec(
            TEMPLATE,
            api,  # type: ignore[arg-type]
            request_id="r",
            launch_template_id="lt-1",
            launch_template_version="$Latest",
            image_override=None,
            target=4,
            now=0,
        )
        return build(msgspec.structs.replace(spec, native_fleet=fragment))  # type: ignore[no-any-return]

    return params


BUILDERS = [
    ("RunInstances", RUN_INSTANCES, run_params),
    ("LaunchTemplateData", LAUNCH_TEMPLATE_DATA, template_data),
    ("CreateFleet", EC2_FLEET, fleet_params("EC2Fleet", ec2_fleet_params)),
    ("SpotFleetRequestConfig", SPOT_FLEET, fleet_params("SpotFleet", spot_fleet_config)),
    ("CreateAutoScalingGroup", AUTO_SCALING_GROUP, fleet_params("ASG", group_params)),
]


@pytest.mark.parametrize(("operation", "owned", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
@given(data=st.data())
def test_a_fragment_the_config_accepts_never_changes_a_key_ohf_owns(
    operation: str, owned: Owned, build: Any, data: st.DataObject
) -> None:
    fragment = data.draw(fragments_over(owned))
    assume(not conflicts(fragment, owned))
    ours, theirs = build({}), build(fragment)
    assert owned_values(theirs, owned) == owned_values(ours, owned)
    # ...while everything else it says is sent as it says it (an empty table merges away).
    for path, value in leaves(fragment):
        if value != {}:
            assert at(theirs, path) == value


@pytest.mark.parametrize(("operation", "owned", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
@given(data=st.data())
def test_a_fragment_touching_an_owned_key_is_refused(
    operation: str, owned: Owned, build: Any, data: st.DataObject
) -> None:
    key, _ = data.draw(st.sampled_from(owned))
    deeper = data.draw(st.lists(st.sampled_from(["Inner", "Value"]), max_size=2))
    fragment: Any = data.draw(st.one_of(st.integers(), st.text(max_size=3)))
    for part in reversed((*key, *deeper)):
        fragment = {part: fragment}
    assert conflicts(fragment, owned)[0][0] == key


def test_every_owned_key_is_one_ohf_sends_or_one_that_would_bypass_it() -> None:
    # Owned keys ohf does not send itself replace what it sends (LaunchSpecifications for a
    # Spot Fleet's launch template configs, LaunchConfigurationName for a group's template...).
    bypasses = {
        "DryRun",
        "LaunchTemplate",
        "LaunchSpecifications",
        "TargetCapacityUnitType",
        "DesiredCapacityType",
        "LaunchConfigurationName",
        "InstanceId",
        "ImageId",
        "InstanceType",
        "SubnetId",
        "ExcessCapacityTerminationPolicy",
    }
    for operation, owned, build in BUILDERS:
        params = build({})
        for key, _ in owned:
            sent = owned_values(params, ((key, ""),)) != ["<absent>"]
            assert sent or key[0] in bypasses, f"{operation}: {key} is neither sent nor a bypass"


def test_a_fragments_interfaces_take_the_subnet_ohf_tries_and_the_groups() -> None:
    params = {
        "SubnetId": "subnet-2",
        "SecurityGroupIds": ["sg-1"],
        "NetworkInterfaces": [
            {"DeviceIndex": 0, "InterfaceType": "efa"},
            {"DeviceIndex": 1, "SubnetId": "subnet-9"},
            {"DeviceIndex": 2, "NetworkInterfaceId": "eni-1"},
        ],
    }
    assert on_interfaces(params) == {
        "NetworkInterfaces": [
            {"DeviceIndex": 0, "InterfaceType": "efa", "SubnetId": "subnet-2", "Groups": ["sg-1"]},
            {"DeviceIndex": 1, "SubnetId": "subnet-9", "Groups": ["sg-1"]},
            {"DeviceIndex": 2, "NetworkInterfaceId": "eni-1"},
        ]
    }


# --- Refusals at load --------------------------------------------------------------------------


def decoded(**fields: Any) -> Template:
    raw = {"templateId": "x", "maxNumber": 4, "imageId": "ami-12345678", "vmType": "c5.large"}
    return decode_template({**raw, **fields}, where="test").unwrap()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"runInstances": {"ClientToken": "t"}}, "runInstances.ClientToken is set by ohf"),
        ({"runInstances": {"InstanceType": "c5.9xlarge"}}, "runInstances.InstanceType is set"),
        ({"runInstances": {"TagSpecifications": []}}, "runInstances.TagSpecifications is set"),
        ({"runInstances": {"LaunchTemplate": {"Version": "2"}}}, "runInstances.LaunchTemplate is"),
        (
            {"providerApi": "ASG", "subnetId": "s", "fleet": {"AutoScalingGroupName": "g"}},
            "fleet.AutoScalingGroupName is set by ohf",
        ),
        (
            {"providerApi": "ASG", "subnetId": "s", "fleet": {"MixedInstancesPolicy": 1}},
            "fleet.MixedInstancesPolicy is set by ohf",
        ),
        (
            {"providerApi": "EC2Fleet", "fleet": {"ClientToken": "t"}},
            "fleet.ClientToken is set by ohf",
        ),
        ({"fleet": {"Type": "maintain"}}, "fleet applies to providerApi EC2Fleet, SpotFleet or"),
        ({"providerApi": "EC2Fleet", "runInstances": {"CpuOptions": {}}}, "runInstances applies"),
        (
            {"providerApi": "EC2Fleet", "launchTemplateId": "lt-1", "launchTemplateData": {"A": 1}},
            "launchTemplateData is merged into the launch template ohf creates",
        ),
        (
            {"runInstances": {"AdditionalInfo": "${requestid}"}},
            "runInstances.AdditionalInfo: unknown placeholder ${requestid}",
        ),
        ({"kmsKeyId": "k", "encrypted": False}, "kmsKeyId encrypts the root volume"),
        (
            {"providerApi": "EC2Fleet", "launchTemplateId": "lt-1", "encrypted": True},
            "encrypted would reach no instance",
        ),
    ],
)
def test_the_check_at_load_refuses_naming_the_key_path(fields: dict[str, Any], named: str) -> None:
    checked = check_template(decoded(**fields))
    assert isinstance(checked, Failure)
    assert checked.failure().message.startswith("template 'x': ")
    assert named in checked.failure().message


def test_a_config_with_an_owned_key_is_refused_by_every_call(tmp_path: Path) -> None:
    conf = tmp_path / "ohf.toml"
    conf.write_text(
        '[[templates]]\ntemplateId = "x"\nmaxNumber = 2\nimageId = "ami-12345678"\n'
        'vmType = "c5.large"\n[templates.runInstances]\nMinCount = 3\n'
    )
    for call in ("getAvailableTemplates", "validate"):
        args = [sys.executable, "-m", "ohf", call, "--config", str(conf)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 1
        assert "template 'x': runInstances.MinCount is set by ohf" in proc.stdout


def test_a_provider_default_with_an_owned_key_names_the_provider() -> None:
    from ohf.placement import check_providers

    config = msgspec.convert(
        {"providers": [{"name": "east", "defaults": {"runInstances": {"MaxCount": 1}}}]}, Config
    )
    config = msgspec.structs.replace(config, templates=(decoded(),))
    checked = check_providers(config)
    assert isinstance(checked, Failure)
    assert checked.failure().message.endswith(
        "runInstances.MaxCount is set by ohf (the count HF asks for) on provider 'east'"
    )


def test_secure_fields_reach_the_launch_spec_and_nothing_when_unset() -> None:
    plain = base_spec(decoded(), "r", "ami-1", None)
    assert plain.metadata_options is None and plain.root_volume is None
    params = run_instances_params(plain, "/dev/xvda")
    assert "MetadataOptions" not in params and "BlockDeviceMappings" not in params
    secure = decoded(metadataOptions={"httpTokens": "required"}, kmsKeyId="k")
    params = run_instances_params(base_spec(secure, "r", "ami-1", None), "/dev/xvda")
    assert params["MetadataOptions"] == {"HttpTokens": "required"}
    assert params["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "Encrypted": True, "KmsKeyId": "k"},
        }
    ]


def test_metadata_options_refuse_an_unknown_key_and_a_bad_hop_limit() -> None:
    assert isinstance(
        decode_template(
            {"templateId": "x", "maxNumber": 1, "metadataOptions": {"httpToken": "required"}},
            where="t",
        ),
        Failure,
    )
    assert isinstance(
        decode_template(
            {"templateId": "x", "maxNumber": 1, "metadataOptions": {"httpPutResponseHopLimit": 65}},
            where="t",
        ),
        Failure,
    )


# --- IMDS warnings -----------------------------------------------------------------------------

IBM_USER_DATA = (
    "#!/bin/bash\n"
    "INSTANCE_ID=$(curl http://169.254.169.254/latest/meta-data/instance-id)\n"
    "echo $INSTANCE_ID >> /tmp/hostname\n"
)
WITH_TOKEN = (
    "#!/bin/bash\n"
    'T=$(curl -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl'
    '-seconds: 60")\n'
    'curl -H "X-aws-ec2-metadata-token: $T" http://169.254.169.254/latest/meta-data/instance-id\n'
)
REQUIRED = {"metadataOptions": {"httpTokens": "required"}}


def config_of(*templates: Template) -> Config:
    return Config(templates=templates)


@pytest.mark.parametrize(
    "user_data",
    [
        IBM_USER_DATA,
        base64.b64encode(IBM_USER_DATA.encode()).decode(),
        base64.b64encode(gzip.compress(IBM_USER_DATA.encode())).decode(),
    ],
    ids=["text", "base64", "gzip-base64"],
)
def test_requiring_tokens_warns_of_user_data_that_calls_imds_without_one(user_data: str) -> None:
    (line,) = tokenless_metadata_calls(config_of(decoded(userData=user_data, **REQUIRED)), {})
    assert line.startswith("template 'x' requires IMDSv2 tokens but its userData calls")
    assert "line 2: INSTANCE_ID=$(curl http://169.254.169.254/latest/meta-data/instance-id)" in line


@pytest.mark.parametrize(
    "fields",
    [
        {"userData": WITH_TOKEN, **REQUIRED},
        {"userData": IBM_USER_DATA},
        {"userData": IBM_USER_DATA, "metadataOptions": {"httpTokens": "optional"}},
        {"userData": "#!/bin/sh\necho hello\n", **REQUIRED},
    ],
    ids=["asks-a-token", "tokens-not-required", "tokens-optional", "no-imds-call"],
)
def test_no_tokenless_warning_where_user_data_would_work(fields: dict[str, Any]) -> None:
    assert tokenless_metadata_calls(config_of(decoded(**fields)), {}) == []


def test_a_runinstances_fragment_requiring_tokens_counts_as_requiring_them() -> None:
    template = decoded(
        userData=IBM_USER_DATA, runInstances={"MetadataOptions": {"HttpTokens": "required"}}
    )
    assert len(tokenless_metadata_calls(config_of(template), {})) == 1
    assert imdsv1_allowed(config_of(template)) == []


def test_imdsv1_is_a_warning_unless_tokens_are_required_or_imds_is_off() -> None:
    open_ = imdsv1_allowed(
        config_of(
            decoded(), decoded(templateId="o", **{"metadataOptions": {"httpTokens": "optional"}})
        )
    )
    assert open_ == [
        "template 'x' allows IMDSv1 (httpTokens is not set) unless its AMI or the account's "
        'defaults require tokens: set metadataOptions.httpTokens = "required" once its user '
        "data and software speak IMDSv2",
        "template 'o' allows IMDSv1 (httpTokens = \"optional\") unless its AMI or the account's "
        'defaults require tokens: set metadataOptions.httpTokens = "required" once its user '
        "data and software speak IMDSv2",
    ]
    closed = [
        decoded(**REQUIRED),
        decoded(metadataOptions={"httpEndpoint": "disabled"}),
        decoded(providerApi="EC2Fleet", launchTemplateId="lt-1", vmTypes={"c5.large": 1}),
    ]
    assert imdsv1_allowed(config_of(*closed)) == []


def test_imds_warnings_name_the_provider_whose_view_differs() -> None:
    config = msgspec.convert(
        {
            "providers": [
                {"name": "east", "defaults": {"metadataOptions": {"httpTokens": "required"}}},
                {"name": "west"},
            ]
        },
        Config,
    )
    config = msgspec.structs.replace(config, templates=(decoded(),))
    (line,) = imdsv1_allowed(config)
    assert line.startswith("template 'x' on provider 'west' allows IMDSv1")


def test_user_data_text_leaves_plain_text_and_binary_alone() -> None:
    assert user_data_text("true") == "true"  # base64 of bytes that are not text
    assert user_data_text("#!/bin/sh\necho") == "#!/bin/sh\necho"


def test_validate_reads_a_user_data_script_for_the_warning(tmp_path: Path) -> None:
    script = tmp_path / "boot.sh"
    script.write_text(IBM_USER_DATA)
    conf = tmp_path / "ohf.toml"
    conf.write_text(
        '[[templates]]\ntemplateId = "x"\nmaxNumber = 2\nimageId = "ami-12345678"\n'
        f'vmType = "c5.large"\nuserDataScript = "{script}"\n'
        '[templates.metadataOptions]\nhttpTokens = "required"\n'
        '[[templates]]\ntemplateId = "gone"\nmaxNumber = 2\nimageId = "ami-12345678"\n'
        f'vmType = "c5.large"\nuserDataScript = "{tmp_path}/missing.sh"\n'
        '[templates.metadataOptions]\nhttpTokens = "required"\n'
    )
    result = Provider.open(str(conf), cwd=str(tmp_path)).unwrap().validate()
    assert result.ok
    assert result.warnings == [
        f"template 'x' requires IMDSv2 tokens but its userDataScript {script} calls the metadata "
        "service without one (line 2: INSTANCE_ID=$(curl "
        "http://169.254.169.254/latest/meta-data/instance-id)): ask for a token first (PUT "
        "http://169.254.169.254/latest/api/token) and send it as X-aws-ec2-metadata-token"
    ]


def test_validate_passes_good_fragments_offline(tmp_path: Path) -> None:
    conf = tmp_path / "ohf.toml"
    conf.write_text(
        '[[templates]]\ntemplateId = "x"\nmaxNumber = 2\nimageId = "ami-12345678"\n'
        'vmType = "c5.large"\n'
        '[templates.runInstances.MetadataOptions]\nHttpTokens = "required"\n'
        "HttpPutResponseHopLimit = 2\n"
    )
    result = Provider.open(str(conf), cwd=str(tmp_path)).unwrap().validate()
    assert result.ok, result.templates


TEMPLATES_DOC = Path(__file__).resolve().parent.parent / "docs" / "templates.md"


def test_the_documented_examples_load_and_validate(tmp_path: Path) -> None:
    text = TEMPLATES_DOC.read_text()
    section = text[text.index("### Native AWS fragments") :]
    block = section[
        section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml"))
    ]
    conf = tmp_path / "ohf.toml"
    conf.write_text('[aws]\nregion = "us-east-1"\n\n' + block)
    result = Provider.open(str(conf), cwd=str(tmp_path)).unwrap().validate()
    assert [t.template_id for t in result.templates if t.ok] == [
        "reserved-c5",
        "imdsv2-c5",
        "fleet-encrypted",
    ], result.templates


def test_a_template_without_the_new_keys_is_listed_as_before() -> None:
    from ohf.room import UNLIMITED
    from ohf.templates import template_out

    new = {"metadataOptions", "encrypted", "kmsKeyId", "runInstances", "launchTemplateData"}
    assert not (new | {"fleet"}) & template_out(decoded(), {}, UNLIMITED).keys()
