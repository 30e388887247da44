"""The effect vocabulary: what the core may ask the outside world to do, as frozen structs.

A program (see `ohf.program`) yields these; an interpreter (`ohf.effects.aws`,
`ohf.effects.fake`, or a test's script) performs each and sends back a `Result`.
"""

from __future__ import annotations

import msgspec

from ohf.model import State


class SpotMarket(msgspec.Struct, frozen=True, kw_only=True):
    """Spot market options for RunInstances."""

    max_price: str | None = None


class RootVolume(msgspec.Struct, frozen=True, kw_only=True):
    """Root EBS volume overrides (the device name is the AMI's, found by the interpreter)."""

    size_gib: int | None = None
    volume_type: str | None = None
    iops: int | None = None


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


Intent = RunInstances | DescribeInstances | TerminateInstances | ResolveImage | ReadText | SaveState
