"""What the real cloud does on its own, or others do to it: interruptions, faults, shortages."""

from __future__ import annotations

import msgspec

from ohf.effects.fake.cloud import _LIVE, _SPOT_REASON, SPOT_NOTICE_SECONDS, FakeCloud, Fault
from ohf.effects.fake.instances import _set_state
from ohf.model import SpotSignal


def notify_interruption(cloud: FakeCloud, instance_id: str, at: int | None = None) -> FakeCloud:
    """AWS marks a spot instance for termination at `at` (default now); it runs 120 s more.

    A no-op for an on-demand, ended or already marked instance. (Rebalance recommendations are
    not modelled: no describe API shows them, so the boto3 interpreter never reports one.)
    """
    item = cloud.instances.get(instance_id)
    if item is None or item.instance.lifecycle != "spot" or item.instance.state not in _LIVE:
        return cloud
    if cloud.signals.get(instance_id):
        return cloud
    when = cloud.now if at is None else at
    signal = SpotSignal(
        instance_id=instance_id, kind="interruption", at=when, reason="marked-for-termination"
    )
    return msgspec.structs.replace(cloud, signals={**cloud.signals, instance_id: (signal,)})


def interrupt(cloud: FakeCloud, instance_id: str) -> FakeCloud:
    """AWS reclaims an instance: it starts shutting down (a spot one had its notice 120 s ago)."""
    cloud = notify_interruption(cloud, instance_id, at=cloud.now - SPOT_NOTICE_SECONDS)
    return _set_state(cloud, instance_id, "shutting-down", _SPOT_REASON)


def terminate_outside(cloud: FakeCloud, instance_id: str) -> FakeCloud:
    """Someone terminates an instance from the console."""
    return _set_state(cloud, instance_id, "terminated", "Client.UserInitiatedShutdown")


def vanish(cloud: FakeCloud) -> FakeCloud:
    """An hour later: terminated instances are no longer listed at all."""
    return msgspec.structs.replace(
        cloud,
        instances={i: x for i, x in cloud.instances.items() if x.instance.state != "terminated"},
    )


def inject(cloud: FakeCloud, *faults: Fault) -> FakeCloud:
    """Queue AWS errors for the next calls of their operations."""
    return msgspec.structs.replace(cloud, faults=cloud.faults + faults)


def exhaust(cloud: FakeCloud, instance_type: str) -> FakeCloud:
    """AWS runs out of an instance type: nothing more of it starts (fleets fall short)."""
    if instance_type in cloud.exhausted:
        return cloud
    return msgspec.structs.replace(cloud, exhausted=(*cloud.exhausted, instance_type))


def forget(cloud: FakeCloud) -> FakeCloud:
    """Days later: what AWS no longer shows, gone from the fake too, so a long run stays small.

    Terminated instances vanish (with their notices, volume tags and launch tokens), fleets
    deleted, cancelled or expired with no instance left are gone (with their tokens), and the
    `calls` record starts again.
    """
    instances = {i: x for i, x in cloud.instances.items() if x.instance.state != "terminated"}
    members = {x.fleet_id for x in instances.values() if x.fleet_id is not None}
    volumes = {v for x in instances.values() for v in x.instance.volume_ids}
    fleets = {
        f: fleet
        for f, fleet in cloud.fleets.items()
        if not (fleet.deleted or fleet.expired) or f in members
    }
    return msgspec.structs.replace(
        cloud,
        instances=instances,
        fleets=fleets,
        tokens={t: ids for t, ids in cloud.tokens.items() if any(i in instances for i in ids)},
        fleet_tokens={t: f for t, f in cloud.fleet_tokens.items() if f in fleets},
        signals={i: s for i, s in cloud.signals.items() if i in instances},
        volume_tags={v: tags for v, tags in cloud.volume_tags.items() if v in volumes},
        calls=(),
    )
