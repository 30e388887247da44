"""The config `ohf init` writes: `Choices` -> an ohf.toml document and its commented text (pure).

Two starter templates: on-demand instances of one type (RunInstances), and an EC2 Fleet of
several types weighted by vCPUs, mostly spot (priceCapacityOptimized) with an on-demand part
on types of its own. Attributes (type, ncpus, nram) are left out: ohf derives them from the
bundled instance-type catalogue, so they always match the types.
"""

from __future__ import annotations

import textwrap
from typing import Any

from ohf.discovery import Choices
from ohf.toml_text import dump

ON_DEMAND_MAX = 10  # instances
FLEET_MAX = 64  # units: vCPUs, since the fleet's types are weighted by vCPUs
PERCENT_ON_DEMAND = 25

SECTIONS = {
    "aws": (
        "Where and as whom ohf calls AWS. Without profile, the standard chain: environment,\n"
        "~/.aws of the HF service user, or the instance role of an HF master on EC2."
    ),
    "storage": (
        "What ohf launched, remembered between HF calls: json (one file, by default in\n"
        '$HF_PROVIDER_WORKDIR), "sqlite" for larger sites, "dynamodb" for an HA pair of masters.'
    ),
    "logging": "ohf's log: by default $HF_PROVIDER_LOGDIR/ohf.log (never stdout, HF's channel).",
}


def on_demand_id(choices: Choices) -> str:
    """The on-demand template's id, after its type (`OnDemand-c5-large`)."""
    return "OnDemand-" + choices.on_demand_type.replace(".", "-")


def fleet_id(choices: Choices) -> str:
    """The fleet template's id, after its architecture (`SpotFleet-x86_64`)."""
    return f"SpotFleet-{choices.arch}"


# Secure by default for a new site: IMDSv2 only (hop limit 2 lets containers on the host reach
# it), and an encrypted root volume (the account's default EBS key).
SECURE = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}}


def _where(choices: Choices) -> dict[str, Any]:
    """The keys both templates share: image, network, key, IMDSv2 and an encrypted root."""
    out: dict[str, Any] = {
        "imageId": choices.image,
        "subnetId": ",".join(choices.subnets),
        **SECURE,
        "encrypted": True,
    }
    if choices.security_groups:
        out["securityGroupIds"] = list(choices.security_groups)
    if choices.key_name:
        out["keyName"] = choices.key_name
    return out


def templates(choices: Choices) -> list[dict[str, Any]]:
    """The two starter templates, in IBM's template vocabulary."""
    on_demand = {
        "templateId": on_demand_id(choices),
        "maxNumber": ON_DEMAND_MAX,
        "providerApi": "RunInstances",
        "priceType": "ondemand",
        "vmType": choices.on_demand_type,
        **_where(choices),
    }
    fleet = {
        "templateId": fleet_id(choices),
        "maxNumber": FLEET_MAX,
        "providerApi": "EC2Fleet",
        "priceType": "heterogeneous",
        "percentOnDemand": PERCENT_ON_DEMAND,
        "allocationStrategy": "priceCapacityOptimized",
        "vmTypes": dict(choices.fleet_spot),
        "vmTypesOnDemand": dict(choices.fleet_on_demand),
        **_where(choices),
    }
    return [on_demand, fleet]


def document(choices: Choices) -> dict[str, Any]:
    """The whole config as data: `[aws]`, `[storage]`, `[logging]`, `[[templates]]`."""
    aws: dict[str, Any] = {"region": choices.region}
    if choices.profile:
        aws["profile"] = choices.profile
    if choices.endpoint_url:
        aws["endpoint_url"] = choices.endpoint_url
    return {
        "aws": aws,
        "storage": {"type": "json"},
        "logging": {"level": "INFO"},
        "templates": templates(choices),
    }


def _wrapped(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, width=94) for p in paragraphs)


def comments(choices: Choices) -> dict[str, str]:
    """What each section is, for the administrator who opens the file next."""
    spot = ", ".join(choices.fleet_spot)
    on_demand = ", ".join(choices.fleet_on_demand)
    return {
        **SECTIONS,
        "templates[0]": _wrapped(
            "HF templates (the keys of IBM's awsprov_templates.json). attributes (type, ncpus, "
            "nram) are derived from the instance types; write them to override. Both "
            "templates require IMDSv2 (metadataOptions) and encrypt the root volume.",
            f"On-demand {choices.on_demand_type} instances, launched with RunInstances in the "
            "first subnet, in the next ones when it lacks capacity. maxNumber counts instances.",
        ),
        "templates[1]": _wrapped(
            f"An EC2 Fleet: {100 - PERCENT_ON_DEMAND}% spot over {spot}; the rest on-demand on "
            f"{on_demand}. Types are weighted by vCPUs: maxNumber and HF's machineCount count "
            "vCPUs."
        ),
    }


def header(choices: Choices) -> str:
    """The file's opening comment: what wrote it, for which account, how to check it."""
    account = f"account {choices.account}, " if choices.account else ""
    return (
        f"ohf config written by `ohf init` ({account}region {choices.region}, {choices.vpc_id}).\n"
        "Check it offline with `ohf validate --config FILE`, against AWS with `ohf health`.\n"
        "Every key is described in ohf's docs (configuration, templates and fleets)."
    )


def config_text(choices: Choices) -> str:
    """The ohf.toml text for these choices."""
    return dump(document(choices), comments(choices), header(choices))
