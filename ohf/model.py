"""The data ohf reasons about: templates, requests, machines, state and errors, as frozen structs.

Everything here is a plain immutable value. Behaviour lives in the pure modules
(`templates`, `acquire`, `status`, `release`); I/O lives in `ohf.effects`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

PriceType = Literal["ondemand", "spot", "heterogeneous"]
ProviderApi = Literal["RunInstances", "EC2Fleet", "SpotFleet", "ASG"]
AllocationStrategy = Literal[
    "capacityOptimized",
    "capacityOptimizedPrioritized",
    "diversified",
    "lowestPrice",
    "priceCapacityOptimized",
]
FleetType = Literal["instant", "request", "maintain"]
RequestStatus = Literal["running", "complete", "complete_with_error"]
MachineResult = Literal["executing", "succeed", "fail"]
# EC2 instance states, plus "gone" for an instance AWS no longer reports at all.
InstanceState = Literal[
    "pending", "running", "stopping", "stopped", "shutting-down", "terminated", "gone"
]
Phase = Literal["launching", "launched", "failed"]

# Every resource ohf creates carries these tags, so it can be found even if state is lost.
REQUEST_TAG = "ohf:request-id"
TEMPLATE_TAG = "ohf:template-id"
# IBM's AWS_TAG_InstanceID tag (`[aws] tag_instance_id`): on each instance and its volumes.
INSTANCE_ID_TAG = "InstanceID"

TemplateId = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
AttributeValue = tuple[str, str | int | float]


class OhfError(msgspec.Struct, frozen=True, kw_only=True):
    """A failure a human can act on: what went wrong and, where known, where."""

    message: str
    code: str = "error"


class MetadataOptions(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename="camel",
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """The instance metadata service (IMDS) of a template's instances; unset keys: AWS's default.

    `httpTokens = "required"` is IMDSv2 only (a session token on every call); "optional" also
    allows IMDSv1, which a server-side request forgery can read credentials through.
    """

    http_tokens: Literal["optional", "required"] | None = None
    http_put_response_hop_limit: Annotated[int, Meta(ge=1, le=64)] | None = None
    http_endpoint: Literal["enabled", "disabled"] | None = None


class Template(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One HF template, in IBM's `awsprov_templates.json` vocabulary (plus ORB's `providerApi`)."""

    template_id: TemplateId
    max_number: Annotated[int, Meta(ge=-1, le=10_000)]
    attributes: dict[str, AttributeValue] = {}
    image_id: str | None = None
    subnet_id: str | list[str] | None = None
    subnet_ids: list[str] | None = None
    vm_type: str | None = None
    vm_types: dict[str, Annotated[int, Meta(ge=1, le=10_000)]] | None = None
    price_type: PriceType = "ondemand"
    percent_on_demand: Annotated[int, Meta(ge=0, le=100)] | None = None
    vm_types_on_demand: dict[str, int] | None = None
    vm_types_priority: dict[str, int] | None = None
    max_spot_price: Annotated[float, Meta(gt=0)] | str | None = None
    allocation_strategy: AllocationStrategy | None = None
    allocation_strategy_on_demand: Literal["lowestPrice", "prioritized"] | None = None
    pools_count: Annotated[int, Meta(ge=1)] | None = None
    fleet_role: str | None = None
    spot_fleet_request_expiry: Annotated[int, Meta(ge=1)] | None = None
    key_name: str | None = None
    security_group_ids: list[str] | str | None = None
    instance_tags: str | None = None
    instance_profile: str | None = None
    user_data: str | None = None
    user_data_script: str | None = None
    root_device_volume_size: Annotated[int, Meta(ge=1, le=65_536)] | None = None
    volume_type: Literal["standard", "gp2", "gp3", "io1", "io2", "sc1", "st1"] | None = None
    iops: Annotated[int, Meta(ge=100)] | None = None
    ebs_optimized: bool | None = None
    placement_group_name: str | None = None
    tenancy: Literal["default", "dedicated", "host"] | None = None
    launch_template_id: str | None = None
    launch_template_version: str | int | None = None
    fleet_type: FleetType | None = None
    interface_type: Literal["interface", "efa", "efa-only"] | None = None
    efa_count: Annotated[int, Meta(ge=0, le=32)] | None = None
    # IMDS settings, and encryption of the root volume (kmsKeyId implies encrypted): nothing is
    # sent when unset, so the AMI's and the account's defaults hold.
    metadata_options: MetadataOptions | None = None
    encrypted: bool | None = None
    kms_key_id: Annotated[str, Meta(min_length=1)] | None = None
    # Native AWS fragments in boto3's spelling, merged into what ohf sends (`ohf.native`):
    # RunInstances; the launch template ohf creates for a fleet or group; the fleet/group call.
    run_instances: dict[str, Any] | None = None
    launch_template_data: dict[str, Any] | None = None
    fleet: dict[str, Any] | None = None
    provider_api: ProviderApi | None = None
    # The `[[providers]]` this template may be placed on (all enabled ones when unset);
    # one name pins it.
    providers: list[str] | None = None
    # Keys ohf does not know: kept so getAvailableTemplates echoes them unchanged.
    extras: dict[str, Any] = {}


class Instance(msgspec.Struct, frozen=True, kw_only=True):
    """What the cloud says about one instance (an observation, not a record)."""

    instance_id: str
    state: InstanceState
    instance_type: str = ""
    private_ip: str | None = None
    public_ip: str | None = None
    private_dns: str = ""
    launch_time: int = 0
    request_id: str | None = None
    template_id: str | None = None
    lifecycle: Literal["on-demand", "spot"] = "on-demand"
    state_reason: str = ""
    # The EBS volumes attached to it (DescribeInstances' block device mappings).
    volume_ids: tuple[str, ...] = ()


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """One instance ohf launched, as last observed, with the result ohf reported to HF."""

    machine_id: str
    name: str = ""
    instance_type: str = ""
    units: int = 1
    state: InstanceState = "pending"
    private_ip: str | None = None
    public_ip: str | None = None
    launch_time: int = 0
    lifecycle: Literal["on-demand", "spot"] = "on-demand"
    result: MachineResult = "executing"
    returned_by: str | None = None
    message: str = ""
    # It and its volumes carry the tag `InstanceID=<its id>` (`[aws] tag_instance_id`).
    id_tagged: bool = False


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """An acquire request: what HF asked for and the machines launched for it."""

    request_id: str
    template_id: str
    machine_count: int
    client_token: str
    created_at: int
    provider_api: ProviderApi = "RunInstances"
    phase: Phase = "launching"
    image_id: str | None = None
    machines: tuple[Machine, ...] = ()
    status: RequestStatus = "running"
    message: str = ""
    # Fleet-backed requests (EC2Fleet, SpotFleet, ASG): the AWS resources ohf created for it.
    fleet_id: str | None = None
    fleet_type: FleetType | None = None
    launch_template_id: str | None = None
    # Units the fleet or group is asked to hold now (lowered as HF returns machines), and how
    # many of them are on-demand.
    fleet_target: int = 0
    fleet_on_demand: int = 0
    # Units a fleet may overshoot its target by (largest weight - 1): AWS fills whole instances.
    fleet_headroom: int = 0
    # The fleet will add no more machines (instant, fulfilled, stopped short, or lowered to 0).
    fleet_done: bool = False
    # Fleet/group and ohf's launch template deleted; nothing of this request is left in AWS.
    cleaned_up: bool = False
    # When the request became settled (final, all machines ended): the clock for pruning.
    ended_at: int | None = None
    # False from the record until requestMachines answers HF: a request still False when another
    # call sees it was cut off (killed), so HF never learnt its id and will never use it.
    answered: bool = True
    # The `[[providers]]` entry whose account and region hold this request's AWS resources
    # ("" = the only provider, configured by `[aws]`).
    provider: str = ""
    # AWS's error codes behind `message` (why its fleet or group stopped short), as AWS gave
    # them: what failover decides by.
    error_codes: tuple[str, ...] = ()
    # Set on a part placed on another provider when the first could not take it all: the
    # HF request id it belongs to (HF knows only that id; its status covers every part).
    parent: str | None = None
    # HF chose the provider (`<templateId>.<provider>`): no part goes anywhere else.
    pinned: bool = False


FleetApi = Literal["EC2Fleet", "SpotFleet", "ASG"]


class FleetInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What AWS says about one fleet or Auto Scaling group (an observation)."""

    fleet_id: str
    api: FleetApi
    # "active", "submitted", "modifying", "cancelled", "failed", "deleted", "expired", "gone"...
    state: str
    # AWS's activity: "pending_fulfillment", "fulfilled", "error", "" when not reported.
    activity: str = ""
    target_units: int = 0
    fulfilled_units: float = 0.0
    # Why it falls short, for people ("CODE: message"), and AWS's codes for it, in order: the
    # fleet's `Errors[].ErrorCode`, its history's error subtypes, a group's failed activities.
    errors: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()


class FleetLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """What creating a fleet or group answered: its id and, for `instant`, the instances."""

    fleet_id: str
    instances: tuple[Instance, ...] = ()
    errors: tuple[str, ...] = ()
    # AWS's `Errors[].ErrorCode` of an instant fleet's launch, in order.
    codes: tuple[str, ...] = ()


class SpotSignal(msgspec.Struct, frozen=True, kw_only=True):
    """A notice that AWS will take a spot instance back (interruption or rebalance)."""

    instance_id: str
    kind: Literal["interruption", "rebalance"]
    # When AWS marked it (epoch seconds); interruptions land 120 s later.
    at: int
    reason: str = ""


class ReturnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A return request: the machines HF gave back, by id."""

    request_id: str
    created_at: int
    machine_ids: tuple[str, ...]
    status: RequestStatus = "running"
    message: str = ""
    # When the return completed: the clock for pruning.
    ended_at: int | None = None


class State(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ohf remembers between HF calls."""

    version: int = 1
    requests: dict[str, Request] = {}
    returns: dict[str, ReturnRequest] = {}


TERMINAL_STATES: frozenset[str] = frozenset({"shutting-down", "terminated", "gone"})
ENDED_STATES: frozenset[str] = frozenset({"terminated", "gone"})
# States in which a machine is lost to HF (or being lost): it counts for nothing any more.
LOST_STATES: frozenset[str] = TERMINAL_STATES | {"stopping", "stopped"}
