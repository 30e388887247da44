"""IBM's `awsprov_config.json` and `awsprov_templates.json`: every key honoured or named.

IBM's own published samples (tests/data/ibm/<provider>/, copied unchanged; see SOURCE there) load,
validate with the expected warnings and serve getAvailableTemplates unchanged, once their
`"securityGroupIds": [""]` placeholder (an error at load, as EC2 would refuse it) is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure

from ohf.config import AwsConfig, Config, decode_config, decode_template_file
from ohf.ibm import (
    IBM_UNHONOURED,
    decode_ibm_config,
    unhonoured_config_keys,
    unhonoured_template_keys,
)
from ohf.model import Template
from ohf.provider import Provider
from ohf.validation import warnings
from tests.conftest import AL2023, default_subnet, ec2_client, hf_env, write_ibm_conf

DATA = Path(__file__).parent / "data" / "ibm"
PUBLISHED = ("aws", "awsv2")


def ibm(**keys: Any) -> Config:
    return decode_ibm_config(json.dumps(keys).encode(), source="awsprov_config.json").unwrap()


# --- awsprov_config.json --------------------------------------------------------------------------


def test_the_awsv2_keys_map_onto_ohfs_own() -> None:
    config = ibm(
        AWS_REGION="eu-west-1",
        AWS_CREDENTIAL_SCRIPT="/opt/creds.sh",
        AWS_SPOT_TERMINATE_ON_RECLAIM=True,
        AWS_TAG_InstanceID=True,
    )
    assert config.aws == AwsConfig(
        region="eu-west-1",
        credential_script="/opt/creds.sh",
        terminate_spot_on_notice=True,
        tag_instance_id=True,
        connect_timeout=5.0,
        max_attempts=4,
    )
    assert config.ibm_unhonoured == {}
    assert warnings(config) == []


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("FALSE", False), (" True ", True), ("", False)]
)
def test_ibm_flags_may_be_strings_as_javas_jackson_reads_them(text: str, value: bool) -> None:
    config = ibm(AWS_SPOT_TERMINATE_ON_RECLAIM=text, AWS_TAG_InstanceID=text)
    assert config.aws.terminate_spot_on_notice is value
    assert config.aws.tag_instance_id is value


def test_an_ibm_flag_that_is_not_a_boolean_is_an_error_naming_it() -> None:
    result = decode_ibm_config(b'{"AWS_TAG_InstanceID": "sometimes"}', source="/c/awsprov.json")
    assert isinstance(result, Failure)
    assert "/c/awsprov.json" in result.failure().message
    assert "AWS_TAG_InstanceID must be true or false" in result.failure().message


def test_keys_ohf_does_not_honour_are_kept_and_each_is_a_warning_naming_it() -> None:
    config = ibm(
        AWS_REGION="us-east-1",
        AWS_KEY_FILE="/opt/lsf/conf/resource_connector/aws/data",
        AWS_CREDENTIAL_RENEW_MARGIN="600",
        INSTANCE_CREATION_TIMEOUT=15,
        AWS_REGOIN="us-west-2",
    )
    assert config.ibm_unhonoured == {
        "AWS_KEY_FILE": "/opt/lsf/conf/resource_connector/aws/data",
        "AWS_CREDENTIAL_RENEW_MARGIN": "600",
        "INSTANCE_CREATION_TIMEOUT": 15,
        "AWS_REGOIN": "us-west-2",
    }
    lines = unhonoured_config_keys(config)
    assert len(lines) == 4
    by_key = {line.split(":")[1].split()[0]: line for line in lines}
    assert set(by_key) == {*IBM_UNHONOURED, "AWS_REGOIN"}
    assert "never creates key pairs" in by_key["AWS_KEY_FILE"]
    assert "/opt/lsf/conf/resource_connector/aws/data" in by_key["AWS_KEY_FILE"]
    assert "Expiration" in by_key["AWS_CREDENTIAL_RENEW_MARGIN"]
    assert "a typo?" in by_key["AWS_REGOIN"]
    # An unknown key may hold anything: its value is never shown.
    assert "us-west-2" not in by_key["AWS_REGOIN"]
    assert lines == warnings(config)


def test_unhonoured_keys_cannot_be_smuggled_into_ohf_toml() -> None:
    result = decode_config(b'[ibm_unhonoured]\nAWS_KEY_FILE = "/x"\n', fmt="toml", source="o.toml")
    assert "`ibm_unhonoured` is not a config key" in result.failure().message


# --- awsprov_templates.json ----------------------------------------------------------------------


def template(**keys: Any) -> Template:
    raw = {"templateId": "t1", "maxNumber": 2, "vmType": "c5.large", **keys}
    (decoded,) = decode_template_file(
        json.dumps({"templates": [raw]}).encode(), source="f"
    ).unwrap()
    return decoded


def test_template_keys_ohf_does_not_read_are_warnings_with_what_to_use() -> None:
    config = Config(
        templates=(
            template(spotPrice=0.1, ec2FleetConfig="/x.json", onDemandTargetCapacityRatio=0.5),
            template(templateId="t2", priority=10, gpuextend="ngpus=1", siteKey="x"),
        )
    )
    lines = unhonoured_template_keys(config)
    assert lines == [
        "template t1: ec2FleetConfig is not honoured: ohf builds the EC2 Fleet request itself: "
        "set providerApi = EC2Fleet with fleetType, allocationStrategy, percentOnDemand",
        "template t1: onDemandTargetCapacityRatio is not honoured: use percentOnDemand (0-100) "
        "instead of this ratio",
        "template t1: spotPrice is not honoured: IBM's providers launch spot instances at this "
        "maximum price; ohf does not read it and launches on-demand: set priceType = spot and "
        "maxSpotPrice",
        # priority and gpuextend are HF's (LSF's) own: echoed, so honoured.
        "template t2: siteKey is not honoured: not a template key ohf or IBM's providers know: "
        "echoed to HF, otherwise unused",
    ]


def test_ibm_style_user_data_exports_are_a_warning_a_script_is_not() -> None:
    exports = Config(templates=(template(userData="zone=us_west_2a;rack=r1"),))
    (line,) = unhonoured_template_keys(exports)
    assert "template t1: userData 'zone=us_west_2a;rack=r1' looks like IBM's key=value" in line
    script = Config(templates=(template(userData="#!/bin/sh\nZONE=a\n"),))
    assert unhonoured_template_keys(script) == []


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ({"securityGroupIds": [""]}, "securityGroupIds[0]"),
        ({"securityGroupIds": ["sg-1", "  "]}, "securityGroupIds[1]"),
        ({"subnetId": ["subnet-1", ""]}, "subnetId[1]"),
        ({"subnetIds": [""]}, "subnetIds[0]"),
    ],
)
def test_an_empty_string_in_an_id_list_is_an_error_naming_template_and_key(
    keys: dict[str, Any], where: str
) -> None:
    raw = {"templateId": "Template-VM-1", "maxNumber": 2, "vmType": "t2.micro", **keys}
    result = decode_template_file(json.dumps({"templates": [raw]}).encode(), source="/c/t.json")
    assert isinstance(result, Failure)
    message = result.failure().message
    assert "/c/t.json templates[0]: template 'Template-VM-1'" in message
    assert f"{where} is an empty string" in message


def test_an_empty_id_list_in_ohf_toml_is_fine_an_empty_id_is_not() -> None:
    body = '[[templates]]\ntemplateId = "t"\nmaxNumber = 1\nvmType = "c5.large"\n'
    assert decode_config(
        body.encode() + b"securityGroupIds = []\n", fmt="toml", source="o.toml"
    ).unwrap()
    bad = decode_config(body.encode() + b'securityGroupIds = [""]\n', fmt="toml", source="o.toml")
    assert "securityGroupIds[0] is an empty string" in bad.failure().message


# --- IBM's published samples ---------------------------------------------------------------------


def published(provider: str, tmp_path: Path, *, fixed: bool) -> Path:
    """A conf dir with IBM's published files for `provider`; `fixed`: without the placeholder."""
    conf = tmp_path / provider
    shutil.copytree(DATA / provider, conf)
    if fixed:
        path = conf / "awsprov_templates.json"
        doc = json.loads(path.read_text())
        for each in doc["templates"]:
            assert each.pop("securityGroupIds") == [""]
        path.write_text(json.dumps(doc))
    return conf


def open_conf(conf: Path) -> Provider:
    return Provider.open(env=hf_env(conf), cwd=str(conf)).unwrap()


@pytest.mark.parametrize("provider", PUBLISHED)
def test_the_published_templates_are_refused_for_their_empty_security_group(
    provider: str, tmp_path: Path
) -> None:
    conf = published(provider, tmp_path, fixed=False)
    result = Provider.open(env=hf_env(conf), cwd=str(conf))
    assert isinstance(result, Failure)
    message = result.failure().message
    assert str(conf / "awsprov_templates.json") in message
    assert "template 'Template-VM-1': securityGroupIds[0] is an empty string" in message


@pytest.mark.parametrize("provider", PUBLISHED)
def test_the_published_files_load_validate_with_the_expected_warnings(
    provider: str, tmp_path: Path
) -> None:
    door = open_conf(published(provider, tmp_path, fixed=True))
    config = door.settings.config
    assert config.aws.region == "us-west-2"
    assert config.aws.credentials_file == "/home/aws/credentials"
    assert config.ibm_unhonoured == {}

    result = door.validate()

    assert result.ok, result
    assert result.warnings == [
        f"template Template-VM-{n}: userData 'zone=us_west_2{z}' looks like IBM's key=value "
        "exports for its user_data.sh; ohf gives userData to the instance as its user data, "
        "verbatim (put the whole script in userData or userDataScript)"
        for n, z in ((1, "a"), (2, "b"))
    ] + [
        # ohf's own secure-defaults warning: IBM's templates leave IMDSv1 open.
        f"template 'Template-VM-{n}' allows IMDSv1 (httpTokens is not set) unless its AMI or "
        'the account\'s defaults require tokens: set metadataOptions.httpTokens = "required" '
        "once its user data and software speak IMDSv2"
        for n in (1, 2)
    ]


@pytest.mark.parametrize("provider", PUBLISHED)
def test_the_published_templates_are_served_unchanged(provider: str, tmp_path: Path) -> None:
    conf = published(provider, tmp_path, fixed=True)
    listed = open_conf(conf).templates().unwrap().templates
    written = json.loads((conf / "awsprov_templates.json").read_text())["templates"]

    assert [t["templateId"] for t in listed] == ["Template-VM-1", "Template-VM-2"]
    for served, original in zip(listed, written, strict=True):
        # Every key as written, with its value; attributes as written plus what HF requires.
        assert {k: served[k] for k in original if k != "attributes"} == {
            k: v for k, v in original.items() if k != "attributes"
        }
        assert served["attributes"].items() >= original["attributes"].items()
        assert served["attributes"]["nram"] == ["Numeric", "1024"]  # t2.micro
        assert served["availableNumber"] == 0  # maxNumber 0


def test_health_says_whether_a_templates_key_pair_exists(tmp_path: Path, aws: str) -> None:
    # The counterpart of refusing AWS_KEY_FILE: ohf never creates the key pair, so it says when
    # EC2 lacks one.
    template = {
        "templateId": "t1",
        "maxNumber": 2,
        "imageId": AL2023,
        "subnetId": default_subnet(aws),
        "vmType": "t3.micro",
        "keyName": "Lsf-Key",
    }
    conf = write_ibm_conf(tmp_path / "conf", aws, [template])

    def key_row() -> Any:
        report = Provider.open(env=hf_env(conf), cwd=str(conf)).unwrap().health()
        (row,) = [c for c in report.checks if c.check == "key pair"]
        return row

    missing = key_row()
    assert not missing.ok and missing.target == "t1: Lsf-Key"
    assert "InvalidKeyPair.NotFound" in missing.detail
    ec2_client(aws).create_key_pair(KeyName="Lsf-Key")
    assert key_row().ok
