"""What `ohf init` finds in an AWS account, and the set-up it chooses from it (pure).

`ohf.effects.discover` fills a `Discovery`; `choose` turns it and what the administrator asked
for (`Wishes`: flags or answers) into `Choices`, every default filled in and every given id
checked against what the account has, or a one-line reason why not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import Catalogue
from ohf.model import OhfError

Arch = Literal["x86_64", "arm64"]
ARCHES: tuple[Arch, ...] = ("x86_64", "arm64")
# AWS's public parameters naming the current Amazon Linux 2023 AMIs, one per architecture.
IMAGE_PARAMETERS: Mapping[Arch, str] = {
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}
# The starter templates' types, in order of preference, as compute (c), general (m) and
# memory (r) families of current generations: the on-demand template takes the first offered
# of ON_DEMAND; the fleet runs its on-demand part on FLEET_ON_DEMAND, its spot part on
# FLEET_SPOT (more pools: more spot capacity, fewer interruptions).
ON_DEMAND: Mapping[Arch, tuple[str, ...]] = {
    "x86_64": ("c5.large", "c6i.large", "m5.large", "m6i.large"),
    "arm64": ("c7g.large", "c6g.large", "m7g.large", "m6g.large"),
}
FLEET_ON_DEMAND: Mapping[Arch, tuple[str, ...]] = {
    "x86_64": ("m5.large", "m5.xlarge"),
    "arm64": ("m6g.large", "m6g.xlarge"),
}
FLEET_SPOT: Mapping[Arch, tuple[str, ...]] = {
    "x86_64": ("c5.large", "c5.xlarge", "c6i.large", "c6i.xlarge", "m6i.large", "m6i.xlarge"),
    "arm64": ("c6g.large", "c6g.xlarge", "c7g.large", "c7g.xlarge", "m7g.large", "m7g.xlarge"),
}
EXTRA: Mapping[Arch, tuple[str, ...]] = {
    "x86_64": ("c7i.large", "m7i.large", "r5.large", "r6i.large", "t3.large"),
    "arm64": ("r6g.large", "r7g.large", "t4g.large"),
}


def candidates(arch: Arch) -> tuple[str, ...]:
    """Every instance type `init` offers for `arch`, in order of preference."""
    seen = dict.fromkeys(
        (*ON_DEMAND[arch], *FLEET_ON_DEMAND[arch], *FLEET_SPOT[arch], *EXTRA[arch])
    )
    return tuple(seen)


ALL_CANDIDATES: tuple[str, ...] = tuple(t for arch in ARCHES for t in candidates(arch))


class Vpc(msgspec.Struct, frozen=True, kw_only=True):
    """One VPC: its id, address range, whether it is the region's default, its Name tag."""

    vpc_id: str
    cidr: str = ""
    is_default: bool = False
    name: str = ""


class Subnet(msgspec.Struct, frozen=True, kw_only=True):
    """One subnet: where it is (VPC, zone) and how many addresses it has left."""

    subnet_id: str
    vpc_id: str
    zone: str
    free: int = 0
    cidr: str = ""
    name: str = ""


class SecurityGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One security group of a VPC."""

    group_id: str
    vpc_id: str
    name: str = ""
    description: str = ""


class Image(msgspec.Struct, frozen=True, kw_only=True):
    """A current AMI from AWS's public SSM parameters: the parameter and what it names now."""

    parameter: str
    image_id: str
    arch: Arch


class Discovery(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `init` learnt about the account and region, in one value."""

    account: str
    arn: str
    region: str
    vpcs: tuple[Vpc, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    groups: tuple[SecurityGroup, ...] = ()
    key_pairs: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    # Instance type -> the zones (of the discovered subnets) where it is offered.
    offerings: dict[str, tuple[str, ...]] = {}


class Wishes(msgspec.Struct, frozen=True, kw_only=True):
    """What the administrator asked for (flags or answers); empty means "choose for me"."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    vpc: str | None = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    image: str | None = None
    arch: Arch | None = None
    key_name: str | None = None
    # `--instance-types`: the first for the on-demand template and the fleet's on-demand part,
    # the others (or the first alone) for the fleet's spot part.
    instance_types: tuple[str, ...] = ()
    # Answers to `init`'s questions: the on-demand template's type, the fleet's spot types.
    on_demand_type: str | None = None
    fleet_types: tuple[str, ...] = ()

    def given_types(self) -> tuple[str, ...]:
        """Every instance type asked for, once each."""
        named = (*self.instance_types, self.on_demand_type or "", *self.fleet_types)
        return tuple(dict.fromkeys(t for t in named if t))


class Choices(msgspec.Struct, frozen=True, kw_only=True):
    """The set-up `init` writes: where, as whom, and the starter templates' ingredients."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    account: str = ""
    vpc_id: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...] = ()
    image: str
    arch: Arch
    key_name: str | None = None
    on_demand_type: str
    # Instance type -> weight (its vCPUs) for the fleet's spot and on-demand parts.
    fleet_spot: dict[str, int]
    fleet_on_demand: dict[str, int]


def _fail(message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=message, code="input"))


def vpcs_in_order(found: Discovery) -> tuple[Vpc, ...]:
    """The VPCs, the region's default first."""
    return tuple(sorted(found.vpcs, key=lambda v: (not v.is_default, v.vpc_id)))


def default_vpc(found: Discovery) -> Vpc | None:
    """The region's default VPC, if it still has one."""
    return next((v for v in found.vpcs if v.is_default), None)


def subnets_of(found: Discovery, vpc_id: str) -> tuple[Subnet, ...]:
    """The VPC's subnets, by zone."""
    return tuple(sorted((s for s in found.subnets if s.vpc_id == vpc_id), key=lambda s: s.zone))


def groups_of(found: Discovery, vpc_id: str) -> tuple[SecurityGroup, ...]:
    """The VPC's security groups, its `default` group first."""
    mine = (g for g in found.groups if g.vpc_id == vpc_id)
    return tuple(sorted(mine, key=lambda g: (g.name != "default", g.name, g.group_id)))


def arch_of(instance_type: str, catalogue: Catalogue) -> Arch | None:
    """The architecture of an instance type, from the catalogue (None: not in it)."""
    info = catalogue.types.get(instance_type)
    if info is None:
        return None
    return "arm64" if info.arch.startswith("arm64") else "x86_64"


def offered(found: Discovery, zones: Iterable[str], types: Iterable[str]) -> tuple[str, ...]:
    """Those of `types` offered in every one of `zones`, in the given order."""
    wanted = set(zones)
    return tuple(t for t in types if wanted <= set(found.offerings.get(t, ())))


def default_subnets(found: Discovery, vpc_id: str, arch: Arch) -> tuple[Subnet, ...]:
    """The VPC's subnets with free addresses, in zones that offer the preferred on-demand type
    (all of them when no zone does: the types are then checked one by one)."""
    usable = [s for s in subnets_of(found, vpc_id) if s.free > 0] or list(subnets_of(found, vpc_id))
    preferred = next(
        (t for t in ON_DEMAND[arch] if any(s.zone in found.offerings.get(t, ()) for s in usable)),
        None,
    )
    if preferred is None:
        return tuple(usable)
    zones = set(found.offerings[preferred])
    return tuple(s for s in usable if s.zone in zones)


def image_for(found: Discovery, arch: Arch) -> Image | None:
    """The discovered Amazon Linux 2023 image of `arch`."""
    return next((i for i in found.images if i.arch == arch), None)


def _pick_subnets(
    found: Discovery, wishes: Wishes, arch: Arch
) -> Result[tuple[Subnet, ...], OhfError]:
    if wishes.subnets:
        by_id = {s.subnet_id: s for s in found.subnets}
        missing = [s for s in wishes.subnets if s not in by_id]
        if missing:
            return _fail(f"subnet {missing[0]} not found in {found.region}")
        picked = tuple(by_id[s] for s in wishes.subnets)
        vpcs = sorted({s.vpc_id for s in picked})
        if len(vpcs) > 1:
            return _fail(f"the subnets are in several VPCs ({', '.join(vpcs)}): give one VPC's")
        if wishes.vpc and vpcs[0] != wishes.vpc:
            return _fail(f"subnet {picked[0].subnet_id} is in {vpcs[0]}, not in {wishes.vpc}")
        return Success(picked)
    default = default_vpc(found)
    vpc = wishes.vpc or (default.vpc_id if default else None)
    if vpc is None:
        return _fail(
            f"{found.region} has no default VPC: pass --subnets (and --security-groups) "
            "of the VPC the hosts should run in"
        )
    if vpc not in {v.vpc_id for v in found.vpcs}:
        return _fail(f"VPC {vpc} not found in {found.region}")
    picked = default_subnets(found, vpc, arch)
    if not picked:
        return _fail(f"VPC {vpc} has no subnet: create one, or pass --subnets")
    return Success(picked)


def _pick_groups(
    found: Discovery, wishes: Wishes, vpc_id: str
) -> Result[tuple[str, ...], OhfError]:
    mine = groups_of(found, vpc_id)
    if not wishes.security_groups:
        return Success(tuple(g.group_id for g in mine if g.name == "default")[:1])
    known = {g.group_id: g for g in found.groups}
    for group in wishes.security_groups:
        if group not in known:
            return _fail(f"security group {group} not found in {found.region}")
        if known[group].vpc_id != vpc_id:
            return _fail(
                f"security group {group} is in {known[group].vpc_id}, the subnets in {vpc_id}"
            )
    return Success(wishes.security_groups)


def _pick_arch(found: Discovery, wishes: Wishes, catalogue: Catalogue) -> Result[Arch, OhfError]:
    image = next((i for i in found.images if wishes.image in (i.parameter, i.image_id)), None)
    arches: dict[str, Arch | None] = {t: arch_of(t, catalogue) for t in wishes.given_types()}
    unknown = [t for t, a in arches.items() if a is None]
    if unknown:
        return _fail(
            f"instance type {unknown[0]} is not in ohf's catalogue: check the name "
            "(or refresh the catalogue: scripts/refresh_catalogue.py)"
        )
    kinds = {a for a in arches.values() if a is not None}
    if len(kinds) > 1:
        return _fail("the instance types mix x86_64 and arm64: one template runs one image")
    given = next(iter(kinds), None)
    for source in (image.arch if image else None, wishes.arch):
        if source is not None and given is not None and source != given:
            return _fail(f"the instance types are {given}, the image is {source}")
    return Success(given or (image.arch if image else None) or wishes.arch or "x86_64")


def _weights(types: Iterable[str], catalogue: Catalogue) -> dict[str, int]:
    return {t: catalogue.types[t].vcpus for t in types if t in catalogue.types}


def _pick_types(
    found: Discovery, wishes: Wishes, zones: tuple[str, ...], arch: Arch, catalogue: Catalogue
) -> Result[tuple[str, dict[str, int], dict[str, int]], OhfError]:
    for wanted in wishes.given_types():
        lacking = [z for z in zones if z not in found.offerings.get(wanted, ())]
        if lacking:
            return _fail(f"{wanted} is not offered in {', '.join(lacking)} (of the subnets' zones)")
    flag = wishes.instance_types
    on_demand = (wishes.on_demand_type, *flag[:1], *offered(found, zones, ON_DEMAND[arch]))
    spot = wishes.fleet_types or flag[1:] or flag[:1] or offered(found, zones, FLEET_SPOT[arch])
    first = next((t for t in on_demand if t), None)
    if first is None or not spot:
        return _fail(
            f"none of ohf's {arch} candidate types is offered in every zone of the subnets "
            f"({', '.join(zones)}): pass --instance-types or --subnets"
        )
    fleet_on_demand = flag[:1] or offered(found, zones, FLEET_ON_DEMAND[arch]) or (first,)
    return Success((first, _weights(spot, catalogue), _weights(fleet_on_demand, catalogue)))


def choose(found: Discovery, wishes: Wishes, catalogue: Catalogue) -> Result[Choices, OhfError]:
    """The whole set-up: what was asked, checked against the account, and defaults for the rest."""
    arch_result = _pick_arch(found, wishes, catalogue)
    if isinstance(arch_result, Failure):
        return arch_result
    arch = arch_result.unwrap()
    subnets = _pick_subnets(found, wishes, arch)
    if isinstance(subnets, Failure):
        return subnets
    picked = subnets.unwrap()
    vpc_id = picked[0].vpc_id
    groups = _pick_groups(found, wishes, vpc_id)
    if isinstance(groups, Failure):
        return groups
    if wishes.key_name and wishes.key_name not in found.key_pairs:
        return _fail(f"key pair {wishes.key_name!r} not found in {found.region}")
    current = image_for(found, arch)
    image = wishes.image or (current.parameter if current else None)
    if image is None:
        return _fail(f"no Amazon Linux 2023 {arch} image found in SSM: pass --image AMI")
    zones = tuple(sorted({s.zone for s in picked}))
    types = _pick_types(found, wishes, zones, arch, catalogue)
    if isinstance(types, Failure):
        return types
    on_demand, spot, fleet_on_demand = types.unwrap()
    return Success(
        Choices(
            region=found.region,
            profile=wishes.profile,
            endpoint_url=wishes.endpoint_url,
            account=found.account,
            vpc_id=vpc_id,
            subnets=tuple(s.subnet_id for s in picked),
            security_groups=groups.unwrap(),
            image=image,
            arch=arch,
            key_name=wishes.key_name,
            on_demand_type=on_demand,
            fleet_spot=spot,
            fleet_on_demand=fleet_on_demand,
        )
    )
