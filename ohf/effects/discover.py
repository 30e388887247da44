"""`ohf init`'s look at the account: identity, region, network, key pairs, AMIs, offered types.

Read-only AWS calls (STS GetCallerIdentity; EC2 DescribeVpcs, DescribeSubnets,
DescribeSecurityGroups, DescribeKeyPairs, DescribeInstanceTypeOfferings, DescribeImages; SSM
GetParameter(s)) on
the clients the door makes as for HF calls, gathered into one `ohf.discovery.Discovery`. Each
step tells `progress` what it found; the first AWS failure ends it as a one-line reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from returns.result import Failure, Result, Success

from ohf.codes import CREDENTIAL_CODES, PERMISSION_CODES
from ohf.discovery import (
    ALL_CANDIDATES,
    IMAGE_PARAMETERS,
    Arch,
    Discovery,
    Image,
    SecurityGroup,
    Subnet,
    Vpc,
)
from ohf.effects.aws import iam_action
from ohf.model import OhfError
from ohf.templates import is_ssm_parameter, ssm_parameter_name

Clients = Callable[[str], Any]
Progress = Callable[[str], None]
_FILTER_VALUES = 200  # EC2's limit on the values of one filter
_KEPT = 200  # characters of AWS's own message kept in a reason


def _name(tags: list[dict[str, str]] | None) -> str:
    return next((t["Value"] for t in tags or () if t.get("Key") == "Name"), "")


def _pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def reason(operation: str, exc: Exception, endpoint: str | None = None) -> OhfError:
    """A failed AWS call as one line an administrator can act on."""
    from botocore import exceptions as bx

    where = endpoint or "AWS"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {}) or {}
        code, text = str(err.get("Code", "Unknown")), _one_line(str(err.get("Message", "")))
        if code in PERMISSION_CODES:
            message = (
                f"{operation}: access denied: the identity lacks {iam_action(operation, text)} "
                f"({code})"
            )
        elif code in CREDENTIAL_CODES:
            message = f"{operation}: AWS rejected the credentials ({code}): {text[:_KEPT]}"
        else:
            message = f"{operation}: {code}: {text[:_KEPT]}"
        return OhfError(message=message, code=code)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        message = (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass "
            "--profile, or run where an instance role provides them"
        )
        return OhfError(message=message, code="credentials")
    if isinstance(exc, bx.NoRegionError):
        message = "no AWS region: pass --region, or set AWS_REGION or the profile's region"
        return OhfError(message=message, code="config")
    if isinstance(exc, bx.ProfileNotFound):
        return OhfError(message=_one_line(str(exc)), code="config")
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return OhfError(message=f"{operation}: {where} did not answer in time", code="connection")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionError):
        message = f"{operation}: cannot reach {where}: {_one_line(str(exc))}"
        return OhfError(message=message, code="connection")
    return OhfError(message=f"{operation}: {type(exc).__name__}: {_one_line(str(exc))}")


def _identity(clients: Clients, progress: Progress) -> tuple[str, str, str]:
    region = clients("ec2").meta.region_name
    if not region:
        from botocore.exceptions import NoRegionError

        raise NoRegionError
    found = clients("sts").get_caller_identity()
    progress(f"identity: {found['Arn']} (account {found['Account']})")
    progress(f"region: {region}")
    return str(found["Account"]), str(found["Arn"]), str(region)


def _vpcs(ec2: Any, progress: Progress) -> tuple[Vpc, ...]:
    vpcs = tuple(
        Vpc(
            vpc_id=v["VpcId"],
            cidr=v.get("CidrBlock", ""),
            is_default=bool(v.get("IsDefault")),
            name=_name(v.get("Tags")),
        )
        for v in _pages(ec2, "describe_vpcs", "Vpcs")
    )
    default = next((v.vpc_id for v in vpcs if v.is_default), None)
    progress(f"VPCs: {len(vpcs)} ({f'default {default}' if default else 'no default VPC'})")
    return vpcs


def _subnets(ec2: Any, progress: Progress) -> tuple[Subnet, ...]:
    subnets = tuple(
        Subnet(
            subnet_id=s["SubnetId"],
            vpc_id=s["VpcId"],
            zone=s["AvailabilityZone"],
            free=int(s.get("AvailableIpAddressCount", 0)),
            cidr=s.get("CidrBlock", ""),
            name=_name(s.get("Tags")),
        )
        for s in _pages(ec2, "describe_subnets", "Subnets")
    )
    zones = sorted({s.zone for s in subnets})
    progress(f"subnets: {len(subnets)} in {len(zones)} zone(s)")
    return subnets


def _groups(ec2: Any, progress: Progress) -> tuple[SecurityGroup, ...]:
    groups = tuple(
        SecurityGroup(
            group_id=g["GroupId"],
            vpc_id=g.get("VpcId", ""),
            name=g.get("GroupName", ""),
            description=g.get("Description", ""),
        )
        for g in _pages(ec2, "describe_security_groups", "SecurityGroups")
    )
    progress(f"security groups: {len(groups)}")
    return groups


def _key_pairs(ec2: Any, progress: Progress) -> tuple[str, ...]:
    names = tuple(sorted(k["KeyName"] for k in ec2.describe_key_pairs().get("KeyPairs", [])))
    progress(f"key pairs: {len(names)}")
    return names


def _images(ssm: Any, progress: Progress) -> tuple[Image, ...]:
    by_name = {name: arch for arch, name in IMAGE_PARAMETERS.items()}
    answer = ssm.get_parameters(Names=list(by_name))
    found = {
        p["Name"]: Image(parameter=p["Name"], image_id=p["Value"], arch=by_name[p["Name"]])
        for p in answer.get("Parameters", [])
        if p.get("Name") in by_name
    }
    # In ohf's order (x86_64 first: the default), whatever order SSM answers in.
    images = tuple(found[name] for name in by_name if name in found)
    shown = ", ".join(f"{i.arch} {i.image_id}" for i in images) or "none"
    progress(f"Amazon Linux 2023 images: {shown}")
    return images


def _given_image(clients: Clients, image: str, known: tuple[Image, ...]) -> tuple[Image, ...]:
    """The administrator's `--image` (an AMI id or SSM parameter), looked up for its
    architecture; raises AWS's error when the region has no such image."""
    if any(image in (i.parameter, i.image_id) for i in known):
        return ()
    ami = image
    if is_ssm_parameter(image):
        ami = clients("ssm").get_parameter(Name=ssm_parameter_name(image))["Parameter"]["Value"]
    found = clients("ec2").describe_images(ImageIds=[ami]).get("Images", [])
    if not found:  # some endpoints answer an empty list rather than InvalidAMIID.NotFound
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": "InvalidAMIID.NotFound", "Message": f"no image {ami}"}}
        raise ClientError(error, "DescribeImages")
    arch: Arch = "arm64" if str(found[0].get("Architecture", "")).startswith("arm64") else "x86_64"
    return (Image(parameter=image, image_id=ami, arch=arch),)


def _offerings(
    ec2: Any, zones: list[str], types: tuple[str, ...], progress: Progress
) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(types), _FILTER_VALUES):
        filters = [
            {"Name": "location", "Values": zones},
            {"Name": "instance-type", "Values": list(types[start : start + _FILTER_VALUES])},
        ]
        pages = _pages(
            ec2,
            "describe_instance_type_offerings",
            "InstanceTypeOfferings",
            LocationType="availability-zone",
            Filters=filters,
        )
        for offer in pages:
            found.setdefault(offer["InstanceType"], []).append(offer["Location"])
    progress(f"instance types: {len(found)} of {len(types)} candidates offered here")
    return {t: tuple(sorted(z)) for t, z in found.items()}


def discover(
    clients: Clients,
    *,
    types: Iterable[str] = (),
    image: str | None = None,
    progress: Progress = lambda _: None,
    endpoint: str | None = None,
) -> Result[Discovery, OhfError]:
    """Everything `init` needs from the account, or the first AWS failure as a reason.

    `types` are looked up besides ohf's own candidates, and `image` besides the current Amazon
    Linux AMIs (the administrator's `--instance-types` and `--image`).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    wanted = tuple(dict.fromkeys((*ALL_CANDIDATES, *types)))
    operation = "GetCallerIdentity"
    try:
        account, arn, region = _identity(clients, progress)
        ec2 = clients("ec2")
        operation = "DescribeVpcs"
        vpcs = _vpcs(ec2, progress)
        operation = "DescribeSubnets"
        subnets = _subnets(ec2, progress)
        operation = "DescribeSecurityGroups"
        groups = _groups(ec2, progress)
        operation = "DescribeKeyPairs"
        key_pairs = _key_pairs(ec2, progress)
        operation = "GetParameters"
        images = _images(clients("ssm"), progress)
        if image:
            operation = "DescribeImages"
            images += _given_image(clients, image, images)
        operation = "DescribeInstanceTypeOfferings"
        zones = sorted({s.zone for s in subnets})
        offerings = _offerings(ec2, zones, wanted, progress) if zones else {}
    except (BotoCoreError, ClientError) as exc:
        return Failure(reason(operation, exc, endpoint))
    return Success(
        Discovery(
            account=account,
            arn=arn,
            region=region,
            vpcs=vpcs,
            subnets=subnets,
            groups=groups,
            key_pairs=key_pairs,
            images=images,
            offerings=offerings,
        )
    )
