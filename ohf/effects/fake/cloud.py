"""The fake cloud as a value: its instances, templates, fleets, faults; what is left in it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result

from ohf.intents import FleetSpec, LaunchSpec
from ohf.model import REQUEST_TAG, FleetApi, FleetLaunch, Instance, OhfError, SpotSignal

Answer = Result[Any, OhfError]
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
# A spot interruption notice comes two minutes before AWS takes the instance.
SPOT_NOTICE_SECONDS = 120
_SPOT_REASON = "Server.SpotInstanceTermination: Spot instance termination"
_LIVE: frozenset[str] = frozenset({"pending", "running"})


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """An AWS error to raise on the next call of `operation`."""

    operation: str
    code: str
    message: str = "injected by the fake cloud"


class FakeInstance(msgspec.Struct, frozen=True, kw_only=True):
    """An instance as the fake cloud holds it (with the fleet/group that launched it, if any)."""

    instance: Instance
    tags: dict[str, str] = {}
    spec_token: str = ""
    fleet_id: str | None = None
    # Capacity units it counts for in its fleet or group (the override's weight).
    units: int = 1


class FakeLaunchTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """A launch template: its name and the launch parameters (tags included) it holds."""

    launch_template_id: str
    name: str
    spec: LaunchSpec


class FakeFleet(msgspec.Struct, frozen=True, kw_only=True):
    """An EC2 Fleet, Spot Fleet request or Auto Scaling group as the fake cloud holds it."""

    fleet_id: str
    api: FleetApi
    spec: FleetSpec
    target_units: int
    on_demand_units: int
    state: str = "submitted"
    activity: str = "pending_fulfillment"
    # The pool errors of the latest launch attempt that fell short.
    errors: tuple[str, ...] = ()
    # A `request` fleet makes one launch attempt only.
    attempted: bool = False
    expired: bool = False
    deleted: bool = False
    # An `instant` fleet's CreateFleet answer, repeated for a repeated ClientToken.
    launch: FleetLaunch | None = None


class FakeCloud(msgspec.Struct, frozen=True, kw_only=True):
    """The whole fake cloud, as a value."""

    instances: dict[str, FakeInstance] = {}
    tokens: dict[str, tuple[str, ...]] = {}
    parameters: dict[str, str] = {}
    # Instances of each type that can still start (None: unlimited; a type missing: none).
    capacity: dict[str, int] | None = None
    # Types AWS has run out of for now, whatever `capacity` says.
    exhausted: tuple[str, ...] = ()
    faults: tuple[Fault, ...] = ()
    counter: int = 0
    now: int = 1_700_000_000
    calls: tuple[str, ...] = ()
    launch_templates: dict[str, FakeLaunchTemplate] = {}
    fleets: dict[str, FakeFleet] = {}
    # ClientToken of a CreateFleet / RequestSpotFleet -> the fleet it created.
    fleet_tokens: dict[str, str] = {}
    signals: dict[str, tuple[SpotSignal, ...]] = {}
    # Serial number of the last launch template or fleet id handed out.
    serial: int = 0
    # Tags CreateTags put on volumes (each instance has one volume, `Instance.volume_ids`,
    # which carries its launch tags too, as TagSpecifications would put them there).
    volume_tags: dict[str, dict[str, str]] = {}


def new_cloud(
    *,
    parameters: Mapping[str, str] | None = None,
    capacity: Mapping[str, int] | None = None,
    now: int = 1_700_000_000,
) -> FakeCloud:
    """A fresh fake cloud; `capacity` limits how many instances of each type can ever start."""
    al2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    default_params = {al2023: "ami-0fa1ce0000000001"}
    return FakeCloud(
        parameters={**default_params, **(parameters or {})},
        capacity=None if capacity is None else dict(capacity),
        now=now,
    )


def _take_fault(cloud: FakeCloud, operation: str) -> tuple[FakeCloud, Fault | None]:
    for index, fault in enumerate(cloud.faults):
        if fault.operation == operation:
            rest = cloud.faults[:index] + cloud.faults[index + 1 :]
            return msgspec.structs.replace(cloud, faults=rest), fault
    return cloud, None


def _error(operation: str, code: str, message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=f"{operation}: {code}: {message}", code=code))


def error_codes(errors: tuple[str, ...]) -> tuple[str, ...]:
    """The codes of the fake's own "CODE: message (place)" pool errors: what AWS gives as each
    error's `ErrorCode` beside its message, in order, once each."""
    return tuple(dict.fromkeys(e.split(":", 1)[0] for e in errors))


def _next_serial(cloud: FakeCloud) -> tuple[FakeCloud, int]:
    return msgspec.structs.replace(cloud, serial=cloud.serial + 1), cloud.serial + 1


def live_instances(cloud: FakeCloud) -> dict[str, Instance]:
    """Instances that are not terminated (what still costs money)."""
    return {
        i: x.instance
        for i, x in cloud.instances.items()
        if x.instance.state not in ("terminated", "shutting-down")
    }


def fleet_instances(cloud: FakeCloud, fleet_id: str) -> dict[str, Instance]:
    """Every instance a fleet or group launched, whatever its state now."""
    return {i: x.instance for i, x in cloud.instances.items() if x.fleet_id == fleet_id}


def owned_resources(
    cloud: FakeCloud, *, tag: str | None = REQUEST_TAG
) -> dict[str, tuple[str, ...]]:
    """Launch templates, fleets and groups still present, by kind, that carry `tag` (None: all).

    Kinds: "LaunchTemplate", "EC2Fleet", "SpotFleet", "ASG". ohf tags what it creates with
    `ohf:request-id`, so by default this is what ohf created and has not deleted.
    """

    def tagged(tags: Iterable[tuple[str, str]]) -> bool:
        return tag is None or any(key == tag for key, _ in tags)

    found: dict[str, tuple[str, ...]] = {
        "LaunchTemplate": tuple(
            i for i, lt in cloud.launch_templates.items() if tagged(lt.spec.tags)
        )
    }
    for api in ("EC2Fleet", "SpotFleet", "ASG"):
        found[api] = tuple(
            i
            for i, f in cloud.fleets.items()
            if f.api == api and not f.deleted and tagged(f.spec.tags)
        )
    return found
