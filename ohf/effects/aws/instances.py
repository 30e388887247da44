"""Plain instances: RunInstances parameters, describe by tag or id, terminate, resolve images."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

from returns.result import Failure, Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.errors import Answer, _timed
from ohf.intents import (
    DescribeInstances,
    LaunchSpec,
    ResolveImage,
    RunInstances,
    TerminateInstances,
)
from ohf.model import REQUEST_TAG, TEMPLATE_TAG, Instance, InstanceState, MetadataOptions
from ohf.native import merged

FILTER_VALUES_MAX = 200  # EC2's limit on values in one filter
PAGE_SIZE = 1000  # DescribeInstances' largest page
TERMINATE_BATCH = 1000
_INSTANCE_ID = re.compile(r"i-[0-9a-f]+")
_STATES = frozenset({"pending", "running", "stopping", "stopped", "shutting-down", "terminated"})


def chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def instance_fields(
    *,
    instance_id: str,
    state: str | None,
    instance_type: str | None,
    private_ip: str | None,
    public_ip: str | None,
    private_dns: str | None,
    launch_time: int,
    tags: dict[str, str],
    lifecycle: str | None,
    state_reason: str | None,
    volume_ids: tuple[str, ...],
) -> Instance:
    """An `Instance` observation from the members ohf reads of an instance, however they
    were read (botocore's dicts, or `instance_pages` reading the XML as it streams in)."""
    return Instance(
        instance_id=instance_id,
        state=state if state in _STATES else "pending",  # type: ignore[arg-type]
        instance_type=instance_type or "",
        private_ip=private_ip or None,
        public_ip=public_ip or None,
        private_dns=private_dns or "",
        launch_time=launch_time,
        request_id=tags.get(REQUEST_TAG),
        template_id=tags.get(TEMPLATE_TAG),
        lifecycle="spot" if lifecycle == "spot" else "on-demand",
        state_reason=state_reason or "",
        volume_ids=volume_ids,
    )


def instance_of(raw: dict[str, Any]) -> Instance:
    """An `Instance` observation from one DescribeInstances/RunInstances item."""
    launched = raw.get("LaunchTime")
    return instance_fields(
        instance_id=raw["InstanceId"],
        state=(raw.get("State") or {}).get("Name"),
        instance_type=raw.get("InstanceType"),
        private_ip=raw.get("PrivateIpAddress"),
        public_ip=raw.get("PublicIpAddress"),
        private_dns=raw.get("PrivateDnsName"),
        launch_time=int(launched.timestamp()) if launched is not None else 0,
        tags={t["Key"]: t["Value"] for t in raw.get("Tags", []) or []},
        lifecycle=raw.get("InstanceLifecycle"),
        state_reason=(raw.get("StateReason") or {}).get("Message"),
        volume_ids=tuple(
            m["Ebs"]["VolumeId"]
            for m in raw.get("BlockDeviceMappings", []) or []
            if (m.get("Ebs") or {}).get("VolumeId")
        ),
    )


def network_interfaces(spec: LaunchSpec) -> list[dict[str, Any]]:
    """EFA interfaces, one per network card; an `efa-only` one is never the primary interface."""
    placement: dict[str, Any] = {}
    if spec.subnet_id:
        placement["SubnetId"] = spec.subnet_id
    if spec.security_group_ids:
        placement["Groups"] = list(spec.security_group_ids)
    kind = spec.interface_type if spec.interface_type not in (None, "interface") else "efa"
    cards = max(spec.efa_count or 1, 1)
    if kind == "efa-only":
        primary = {"DeviceIndex": 0, "NetworkCardIndex": 0, "InterfaceType": "interface"}
        extra = [
            {"DeviceIndex": 1, "NetworkCardIndex": card, "InterfaceType": "efa-only"}
            for card in range(cards)
        ]
        return [{**i, **placement} for i in (primary, *extra)]
    return [
        {"DeviceIndex": 0 if card == 0 else 1, "NetworkCardIndex": card, "InterfaceType": kind}
        | placement
        for card in range(cards)
    ]


def run_instances_params(spec: LaunchSpec, root_device: str | None) -> dict[str, Any]:
    """RunInstances keyword arguments for a `LaunchSpec` (pure; the device name is looked up)."""
    tags = [{"Key": k, "Value": v} for k, v in spec.tags]
    params: dict[str, Any] = {
        "MinCount": spec.min_count,
        "MaxCount": spec.max_count,
        "ClientToken": spec.client_token,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    optional = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,
        "KeyName": spec.key_name,
        "UserData": spec.user_data,
        "EbsOptimized": spec.ebs_optimized,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if spec.instance_profile:
        key = "Arn" if spec.instance_profile.startswith("arn:") else "Name"
        params["IamInstanceProfile"] = {key: spec.instance_profile}
    if spec.spot is not None:
        options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if spec.spot.max_price:
            options["MaxPrice"] = spec.spot.max_price
        params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
    if spec.root_volume is not None and root_device:
        ebs = {
            "VolumeSize": spec.root_volume.size_gib,
            "VolumeType": spec.root_volume.volume_type,
            "Iops": spec.root_volume.iops,
            "DeleteOnTermination": True,
            "Encrypted": True if spec.root_volume.encrypted else None,
            "KmsKeyId": spec.root_volume.kms_key_id,
        }
        params["BlockDeviceMappings"] = [
            {"DeviceName": root_device, "Ebs": {k: v for k, v in ebs.items() if v is not None}}
        ]
    placement = {"GroupName": spec.placement_group, "Tenancy": spec.tenancy}
    if any(placement.values()):
        params["Placement"] = {k: v for k, v in placement.items() if v}
    if spec.launch_template_id:
        params["LaunchTemplate"] = {
            "LaunchTemplateId": spec.launch_template_id,
            "Version": spec.launch_template_version or "$Default",
        }
    if (spec.interface_type and spec.interface_type != "interface") or spec.efa_count:
        params["NetworkInterfaces"] = network_interfaces(spec)
    else:
        if spec.subnet_id:
            params["SubnetId"] = spec.subnet_id
        if spec.security_group_ids:
            params["SecurityGroupIds"] = list(spec.security_group_ids)
    imds = metadata_options(spec.metadata_options)
    if imds:
        params["MetadataOptions"] = imds
    return on_interfaces(merged(params, spec.native_run_instances))


def metadata_options(options: MetadataOptions | None) -> dict[str, Any]:
    """EC2's MetadataOptions for a template's `metadataOptions` (only the keys it sets)."""
    if options is None:
        return {}
    values = {
        "HttpTokens": options.http_tokens,
        "HttpPutResponseHopLimit": options.http_put_response_hop_limit,
        "HttpEndpoint": options.http_endpoint,
    }
    return {k: v for k, v in values.items() if v is not None}


def on_interfaces(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with the subnet and security groups moved onto the network interfaces, if any.

    EC2 refuses an instance-level subnet or security groups beside `NetworkInterfaces`, so when
    a native fragment lays out interfaces, the subnet ohf is trying and the template's groups go
    on each interface that names no subnet (or groups, or existing interface) of its own.
    """
    interfaces = params.get("NetworkInterfaces")
    if not interfaces or not ({"SubnetId", "SecurityGroupIds"} & params.keys()):
        return params
    out = {k: v for k, v in params.items() if k not in ("SubnetId", "SecurityGroupIds")}
    placed = {"SubnetId": params.get("SubnetId"), "Groups": params.get("SecurityGroupIds")}
    out["NetworkInterfaces"] = [
        interface
        if "NetworkInterfaceId" in interface
        else {**{k: v for k, v in placed.items() if v is not None}, **interface}
        for interface in interfaces
    ]
    return out


def _root_device(clients: ClientGetter, image_id: str | None) -> str | None:
    if not image_id:
        return None
    answer = _timed("DescribeImages", lambda: clients("ec2").describe_images(ImageIds=[image_id]))
    images: list[dict[str, Any]] = answer.map(lambda r: r.get("Images", [])).value_or([])
    return images[0].get("RootDeviceName", "/dev/xvda") if images else "/dev/xvda"


def _run(clients: ClientGetter, intent: RunInstances) -> Answer:
    spec = intent.spec
    root = _root_device(clients, spec.image_id) if spec.root_volume else None
    params = run_instances_params(spec, root)
    return _timed("RunInstances", lambda: clients("ec2").run_instances(**params)).map(
        lambda r: tuple(instance_of(i) for i in r.get("Instances", []))
    )


def page_instances(page: dict[str, Any]) -> list[Instance]:
    """The observations of one DescribeInstances page: read as it streamed in, or from
    botocore's dicts (a Stubber's answer, or a page the stream reader left to botocore)."""
    from ohf.effects.aws.instance_pages import STREAMED

    streamed: list[Instance] | None = page.get(STREAMED)
    if streamed is not None:
        return streamed
    return [instance_of(i) for r in page.get("Reservations", []) for i in r["Instances"]]


def _describe_pages(clients: ClientGetter, filters: list[dict[str, Any]]) -> list[Instance]:
    from ohf.effects.aws.instance_pages import streaming

    paginator = clients("ec2").get_paginator("describe_instances")
    # Each page is folded into observations as it arrives; no page outlives its own turn.
    with streaming():
        return paginator.collect(  # type: ignore[no-any-return]
            page_instances, Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}
        )


def _describe(clients: ClientGetter, intent: DescribeInstances) -> Answer:
    queries = [
        [{"Name": f"tag:{REQUEST_TAG}", "Values": list(c)}]
        for c in chunks(intent.request_ids, FILTER_VALUES_MAX)
    ] + [
        [{"Name": "instance-id", "Values": list(c)}]
        for c in chunks(intent.instance_ids, FILTER_VALUES_MAX)
    ]
    found: dict[str, Instance] = {}
    for filters in queries:
        answer = _timed("DescribeInstances", partial(_describe_pages, clients, filters))
        if isinstance(answer, Failure):
            return answer
        found.update((i.instance_id, i) for i in answer.unwrap())
    return Success(tuple(found.values()))


def _terminate_batch(ec2: Any, ids: tuple[str, ...]) -> Answer:
    """Terminate `ids`; ids EC2 does not know are dropped and retried once, reported gone."""
    gone: set[str] = set()
    pending = ids
    for _ in range(3):
        if not pending:
            break
        answer = _timed(
            "TerminateInstances", partial(ec2.terminate_instances, InstanceIds=list(pending))
        )
        if isinstance(answer, Success):
            states: dict[str, InstanceState] = {
                i["InstanceId"]: i["CurrentState"]["Name"]
                for i in answer.unwrap().get("TerminatingInstances", [])
            }
            return Success({**states, **dict.fromkeys(gone, "gone")})
        error = answer.failure()
        if not error.code.startswith("InvalidInstanceID"):
            return answer
        missing = set(_INSTANCE_ID.findall(error.message)) & set(pending)
        if not missing:
            return answer
        gone |= missing
        pending = tuple(i for i in pending if i not in missing)
    return Success(dict.fromkeys(gone, "gone"))


def _terminate(clients: ClientGetter, intent: TerminateInstances) -> Answer:
    states: dict[str, InstanceState] = {}
    for batch in chunks(intent.instance_ids, TERMINATE_BATCH):
        answer = _terminate_batch(clients("ec2"), batch)
        if isinstance(answer, Failure):
            return answer
        states.update(answer.unwrap())
    return Success(states)


def _resolve(clients: ClientGetter, intent: ResolveImage) -> Answer:
    return _timed("GetParameter", lambda: clients("ssm").get_parameter(Name=intent.parameter)).map(
        lambda r: str(r["Parameter"]["Value"])
    )
