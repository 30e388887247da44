"""The effect vocabulary: what the core may ask the outside world to do, as frozen structs.

A program (see `ohf.program`) yields these; an interpreter (`ohf.effects.aws`,
`ohf.effects.fake`, or a test's script) performs each and sends back a `Result`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ohf.model import FleetApi, FleetType, MetadataOptions, State


class SpotMarket(msgspec.Struct, frozen=True, kw_only=True):
    """Spot market options for RunInstances."""

    max_price: str | None = None


class RootVolume(msgspec.Struct, frozen=True, kw_only=True):
    """Root EBS volume overrides (the device name is the AMI's, found by the interpreter)."""

    size_gib: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    # Sent only when True (False or None: the AMI's and the account's default encryption).
    encrypted: bool | None = None
    kms_key_id: str | None = None


class LaunchSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one RunInstances call needs, as data."""

    image_id: str | None
    instance_type: str | None
    min_count: int
    max_count: int
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    key_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    client_token: str
    user_data: str | None = None
    instance_profile: str | None = None
    spot: SpotMarket | None = None
    root_volume: RootVolume | None = None
    ebs_optimized: bool | None = None
    placement_group: str | None = None
    tenancy: str | None = None
    launch_template_id: str | None = None
    launch_template_version: str | None = None
    interface_type: str | None = None
    efa_count: int | None = None
    metadata_options: MetadataOptions | None = None
    # The template's native fragments, placeholders filled: merged by the interpreter into
    # the RunInstances request, or into the LaunchTemplateData of CreateLaunchTemplate.
    native_run_instances: dict[str, Any] = {}
    native_launch_template_data: dict[str, Any] = {}


class RunInstances(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Launch instances. Result: the launched `Instance`s."""

    spec: LaunchSpec


class DescribeInstances(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Describe instances tagged with any of `request_ids`, or with any of `instance_ids`.

    Result: the `Instance`s found (missing ones are simply absent). Paginated by the
    interpreter, so one intent covers any number of machines.
    """

    request_ids: tuple[str, ...] = ()
    instance_ids: tuple[str, ...] = ()


class TerminateInstances(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Terminate instances. Result: `{instance id: new state}`; ids EC2 no longer knows: "gone"."""

    instance_ids: tuple[str, ...]


class ResolveImage(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Resolve an SSM parameter (e.g. `/aws/service/ami-...`) to an AMI id. Result: `str`."""

    parameter: str


class ReadText(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Read a text file, such as a template's `userDataScript`. Result: `str`."""

    path: str


class SaveState(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Write a state checkpoint now (e.g. before calling AWS). Result: `None`."""

    state: State


class CreateLaunchTemplate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Create a launch template from `spec` (its counts, type and subnet are ignored).

    Tags in `spec.tags` go on the template and, through its TagSpecifications, on every
    instance and volume launched from it. Result: the launch template id (`str`).
    """

    name: str
    spec: LaunchSpec


class DeleteLaunchTemplate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Delete a launch template ohf created. Result: `None` (an unknown id counts as deleted)."""

    launch_template_id: str


class Override(msgspec.Struct, frozen=True, kw_only=True):
    """One (instance type x subnet) pool of a fleet, with its weight in capacity units."""

    instance_type: str
    subnet_id: str | None = None
    weight: int = 1
    # Lower is preferred (prioritized allocation strategies only).
    priority: int | None = None
    image_id: str | None = None


class FleetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one CreateFleet / RequestSpotFleet / CreateAutoScalingGroup call needs."""

    api: FleetApi
    # ASG name; for fleets, a name tag. Derived from the request id, so unique per request.
    name: str
    launch_template_id: str
    launch_template_version: str = "$Latest"
    overrides: tuple[Override, ...]
    target_units: int
    on_demand_units: int = 0
    # EC2Fleet: instant | request | maintain; SpotFleet: request | maintain; ASG: ignored.
    fleet_type: FleetType = "instant"
    allocation_strategy: str | None = None
    allocation_strategy_on_demand: str | None = None
    max_spot_price: str | None = None
    pools_count: int | None = None
    fleet_role: str | None = None
    # Epoch seconds after which a SpotFleet request expires (spotFleetRequestExpiry).
    valid_until: int | None = None
    client_token: str
    # Tags for the fleet/group resource itself (instances get theirs from the launch template).
    tags: tuple[tuple[str, str], ...] = ()
    subnets: tuple[str, ...] = ()
    # The template's `fleet` fragment, placeholders filled: merged by the interpreter into
    # CreateFleet, the Spot Fleet request config or CreateAutoScalingGroup.
    native_fleet: dict[str, Any] = {}


class CreateFleet(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Create an EC2 Fleet, a Spot Fleet request or an Auto Scaling group. Result: `FleetLaunch`."""

    spec: FleetSpec


class DescribeFleets(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Describe fleets/groups by (api, id), batched per API. Result: `{id: FleetInfo}`.

    A fleet AWS no longer knows is answered with state "gone".
    """

    fleets: tuple[tuple[FleetApi, str], ...]


class ModifyFleetTarget(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Set a fleet's or group's target capacity (units) without terminating anything.

    Result: `None`. Used before terminating returned machines so AWS does not replace them.
    AWS modifies only `maintain` fleets (others: "FleetNotInModifiableState"); a group's
    instances are protected from scale-in, so lowering its desired capacity ends nothing.
    """

    api: FleetApi
    fleet_id: str
    target_units: int
    on_demand_units: int = 0


class TerminateInGroup(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Terminate instances of an Auto Scaling group, lowering its desired capacity each time.

    Result: `{instance id: new state}`; ids not (or no longer) in the group are terminated
    plainly without lowering it; ids EC2 no longer knows: "gone".
    """

    group: str
    instance_ids: tuple[str, ...]


class DeleteFleet(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Delete a fleet or group ohf created, leaving its instances alone. Result: `None`.

    An unknown id counts as deleted. An `instant` EC2 Fleet (AWS requires TerminateInstances)
    and a group (ForceDelete) take any instances still running with them.
    """

    api: FleetApi
    fleet_id: str


class DescribeSpotSignals(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Spot interruption / rebalance notices for these instances. Result: `tuple[SpotSignal]`."""

    instance_ids: tuple[str, ...]


class TagInstanceIds(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Tag each instance and its volumes `InstanceID=<instance id>` (IBM's AWS_TAG_InstanceID).

    `instances`: (instance id, its volume ids) pairs. One CreateTags per instance, since one
    call gives every resource it names the same value. Result: `{instance id: ""}` for each
    tagged, `{instance id: why not}` for each refused; after a refusal that would refuse the
    rest too (permissions, throttling past retries) the rest are not tried and are absent.
    """

    instances: tuple[tuple[str, tuple[str, ...]], ...]


FleetIntent = (
    CreateLaunchTemplate
    | DeleteLaunchTemplate
    | CreateFleet
    | DescribeFleets
    | ModifyFleetTarget
    | TerminateInGroup
    | DeleteFleet
    | DescribeSpotSignals
)


class At(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Perform `intent` (a cloud intent) in the account and region of provider `provider`.

    Programs yield bare intents; `ohf.program.on` wraps them for the provider a request lives
    on, and the routing interpreter (`ohf.effects.providers.routed`) sends each to its AWS.
    Result: whatever `intent`'s result is.
    """

    provider: str
    # A cloud intent (typed loosely: the union below names At itself).
    intent: Any


# Performed by the shell itself, never by a provider's AWS.
LOCAL_INTENTS = (ReadText, SaveState)

Intent = (
    At
    | RunInstances
    | DescribeInstances
    | TerminateInstances
    | ResolveImage
    | ReadText
    | SaveState
    | TagInstanceIds
    | FleetIntent
)
