"""An in-memory EC2/SSM/Auto Scaling that performs ohf's cloud intents like the boto3 interpreter.

Public API, for tests of ohf and of tools built on it: the cloud is a frozen `FakeCloud`
value, `step(cloud, intent)` is a pure transition returning the next cloud and the answer, and
`interpreter(ref)` wraps a `CloudRef` (the one explicit mutable cell) for `ohf.program.run`.

Beyond what moto models, the fake can run out of capacity per instance type (partial and failed
launches), inject any AWS error on the next call of an operation, keep terminating instances in
`shutting-down` for one poll, interrupt spot instances, and let terminated instances vanish.

Fleets and groups (EC2 Fleet, Spot Fleet, Auto Scaling group), where moto falls short:
- weights: `target_units` is filled in capacity units, taking overrides by `priority` (lower
  first, none last), then in listed order; a weighted type may overshoot the target by less
  than its weight. The per-type `capacity` (and `exhaust`) limits what starts: a pool that cannot
  give all it is asked for reports "InsufficientInstanceCapacity" and the next pool is tried.
  Allocation strategies, pool counts and spot prices are not modelled.
- `on_demand_units` of the target launch on-demand, the rest spot (no fallback between them).
- an `instant` EC2 Fleet launches within CreateFleet and answers instances and pool errors; it
  does nothing afterwards. Other fleets and groups answer only their id and fill in
  `tick(cloud)`: a `request` fleet makes one attempt (activity "error" with the pool errors if
  it fell short); a `maintain` fleet or a group tops up to its target on every tick, replacing
  instances that ended. A Spot Fleet past `valid_until` is cancelled by AWS
  ("cancelled_running" while its instances live, then "cancelled"). Spot Fleet has no instant
  type: the boto3 interpreter asks for a one-time request, and so does the fake.
- DescribeFleets answers AWS's states ("gone" for an unknown id or a deleted group; a deleted
  EC2 Fleet is "deleted_running"/"deleted", a cancelled Spot Fleet "cancelled_running"/
  "cancelled"), fulfilled units as the weights of live instances, and errors where the boto3
  interpreter finds them: an instant fleet's launch errors, the history of a fleet whose
  activity is "error", the failed scaling activities of a group short of its target.
- ModifyFleetTarget never terminates (no-termination excess policy; groups are assumed to
  protect instances from scale-in) and, like AWS, refuses fleets other than `maintain` ones
  ("FleetNotInModifiableState"). TerminateInGroup lowers the group's desired capacity by each
  instance's weight; ids not in the group are terminated plainly. DeleteFleet leaves instances
  alone, except that an `instant` EC2 Fleet (TerminateInstances=True, which AWS requires) and a
  group (ForceDelete) take their remaining pending/running instances with them.
- a launch template name already in use answers the existing template, as the boto3
  interpreter does (AWS itself says InvalidLaunchTemplateName.AlreadyExistsException).
- spot interruptions: `notify_interruption` marks a spot instance for termination (AWS takes it
  120 s later, on the first tick after that); `interrupt` takes it now and records the notice
  it had 120 s before. A notice shows in DescribeSpotSignals until the instance is terminated;
  on-demand instances never get one. Rebalance recommendations are not modelled: no describe
  API shows them, so the boto3 interpreter never reports one.

A long run (a simulated year) calls `forget(cloud)` now and then: AWS stops showing terminated
instances and deleted fleets after a while, and so does the fake.

Time: `tick(cloud)` runs at the start of every DescribeInstances and DescribeFleets (whether or
not the call itself fails), so fleets fill and notices land between HF polls without test code
doing anything; call `tick` directly for explicit control. Move the clock with
`msgspec.structs.replace(cloud, now=...)`.

Operation names, for `inject(Fault(operation=...))` and the `calls` record; an intent makes the
calls the boto3 interpreter makes: RunInstances, DescribeInstances, TerminateInstances,
GetParameter, CreateLaunchTemplate (+ DescribeLaunchTemplates when the name is taken),
DeleteLaunchTemplate, CreateFleet / RequestSpotFleet / CreateAutoScalingGroup, DescribeFleets /
DescribeSpotFleetRequests / DescribeAutoScalingGroups (one per API in the intent; then one
DescribeFleetHistory per fleet in "error" and one DescribeScalingActivities for short groups,
whose faults only drop the errors), ModifyFleet / ModifySpotFleetRequest /
UpdateAutoScalingGroup, TerminateInstanceInAutoScalingGroup (one per instance, then one
TerminateInstances for ids not in the group), DescribeFleets + DeleteFleets /
CancelSpotFleetRequests (+ DescribeSpotFleetRequests when already cancelled) /
DeleteAutoScalingGroup, DescribeSpotInstanceRequests, CreateTags (one per instance tagged with
its InstanceID; every instance has one volume, `vol-` + its id's digits, whose CreateTags tags
are in `volume_tags`). A fault fails its whole intent before any of the intent's effects.
"""

from ohf.effects.fake.cloud import (
    SPOT_NOTICE_SECONDS,
    Answer,
    FakeCloud,
    FakeFleet,
    FakeInstance,
    FakeLaunchTemplate,
    Fault,
    fleet_instances,
    live_instances,
    new_cloud,
    owned_resources,
)
from ohf.effects.fake.dispatch import CloudRef, interpreter, step
from ohf.effects.fake.disturb import (
    exhaust,
    forget,
    inject,
    interrupt,
    notify_interruption,
    terminate_outside,
    vanish,
)
from ohf.effects.fake.fleets import tick

__all__ = [
    "SPOT_NOTICE_SECONDS",
    "Answer",
    "CloudRef",
    "FakeCloud",
    "FakeFleet",
    "FakeInstance",
    "FakeLaunchTemplate",
    "Fault",
    "exhaust",
    "fleet_instances",
    "forget",
    "inject",
    "interpreter",
    "interrupt",
    "live_instances",
    "new_cloud",
    "notify_interruption",
    "owned_resources",
    "step",
    "terminate_outside",
    "tick",
    "vanish",
]
