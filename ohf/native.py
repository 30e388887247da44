"""Native AWS fragments, pure: merge them into ohf's requests, fill their placeholders, and
refuse the keys ohf must keep.

A template may carry raw AWS parameters in boto3's own spelling: `runInstances` (merged into
RunInstances), `launchTemplateData` (into the LaunchTemplateData of the launch template ohf
creates for a fleet or group) and `fleet` (into CreateFleet, the Spot Fleet request config or
CreateAutoScalingGroup, by `providerApi`). The core substitutes `${request_id}`,
`${template_id}` and `${machine_count}` per request and sends the fragment on the intent; the
interpreter, which alone builds boto3's parameters, merges it in with `merged`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from ohf.model import ProviderApi, Template

Kind = Literal["runInstances", "launchTemplateData", "fleet"]
Path = tuple[str, ...]

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
PLACEHOLDERS = ("request_id", "template_id", "machine_count")


def merged(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged in: tables merge key by key, anything else is replaced.

    Lists are replaced, never concatenated: AWS lists are ordered and often keyed
    (`DeviceIndex`, `DeviceName`), so appending would send two entries for one device, and the
    only list ohf needs to keep whole (its tags) is a key no fragment may set. Neither input is
    changed, and the result shares no mutable part with them.
    """
    out = {key: _copied(value) for key, value in base.items()}
    for key, value in overlay.items():
        mine = out.get(key)
        if isinstance(mine, Mapping) and isinstance(value, Mapping):
            out[key] = merged(mine, value)
        else:
            out[key] = _copied(value)
    return out


def _copied(value: Any) -> Any:
    # A fresh copy: the interpreter may add to the parameters it merged (boto3 never does).
    if isinstance(value, Mapping):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copied(v) for v in value]
    return value


def placeholders(request_id: str, template_id: str, machine_count: int) -> dict[str, str | int]:
    """The values of the placeholders a fragment may use, for one request (or part)."""
    return {"request_id": request_id, "template_id": template_id, "machine_count": machine_count}


def substituted(fragment: Any, values: Mapping[str, str | int]) -> Any:
    """`fragment` with every `${name}` in its string values replaced by `values[name]`.

    A string that is nothing but one placeholder takes the value itself, so
    `"MinTargetCapacity": "${machine_count}"` sends a number, as AWS wants there.
    Unknown placeholders are left as written (the config check refuses them).
    """
    if isinstance(fragment, Mapping):
        return {k: substituted(v, values) for k, v in fragment.items()}
    if isinstance(fragment, list | tuple):
        return [substituted(v, values) for v in fragment]
    if not isinstance(fragment, str):
        return fragment
    whole = _PLACEHOLDER.fullmatch(fragment)
    if whole is not None and whole.group(1) in values:
        return values[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), fragment)


def leaves(fragment: Any, at: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (key path, value) of a fragment where the value is not a table (lists are values)."""
    if isinstance(fragment, Mapping) and fragment:
        for key, value in fragment.items():
            yield from leaves(value, (*at, str(key)))
    elif at:
        yield at, fragment


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# Keys ohf sets itself, per fragment and API, with the reason shown when a fragment sets one.
_COUNT = "the count HF asks for"
_TOKEN = "ohf's idempotency token"
_TAGS = "its tags ohf:request-id, ohf:template-id and instanceTags; add yours with instanceTags"
_LAUNCH_TEMPLATE = "ohf's launch template, or launchTemplateId"
_TYPES = "vmType / vmTypes"
_DRY_RUN = "a dry run launches nothing"
Owned = tuple[tuple[Path, str], ...]
RUN_INSTANCES: Owned = (
    (("MinCount",), _COUNT),
    (("MaxCount",), _COUNT),
    (("ClientToken",), _TOKEN),
    (("TagSpecifications",), _TAGS),
    (("LaunchTemplate",), "launchTemplateId / launchTemplateVersion"),
    (("InstanceType",), f"{_TYPES}: ohf picks one per attempt"),
    (("SubnetId",), "subnetId: ohf tries each subnet in turn"),
    (("ImageId",), "imageId"),
    (("DryRun",), _DRY_RUN),
)
LAUNCH_TEMPLATE_DATA: Owned = (
    (("TagSpecifications",), _TAGS),
    (("InstanceType",), f"{_TYPES}: the fleet's overrides pick it"),
    (("ImageId",), "imageId"),
)
EC2_FLEET: Owned = (
    (("ClientToken",), _TOKEN),
    (("DryRun",), _DRY_RUN),
    (("Type",), "fleetType"),
    (("TargetCapacitySpecification",), f"{_COUNT}, in units"),
    (("LaunchTemplateConfigs",), f"{_LAUNCH_TEMPLATE} with overrides from {_TYPES}/subnetId"),
    (("TagSpecifications",), _TAGS),
    (("ExcessCapacityTerminationPolicy",), "no-termination: lowering a fleet ends nothing"),
)
SPOT_FLEET: Owned = (
    (("ClientToken",), _TOKEN),
    (("IamFleetRole",), "fleetRole"),
    (("TargetCapacity",), f"{_COUNT}, in units"),
    (("OnDemandTargetCapacity",), "priceType / percentOnDemand"),
    (("TargetCapacityUnitType",), "ohf counts units"),
    (("LaunchTemplateConfigs",), f"{_LAUNCH_TEMPLATE} with overrides from {_TYPES}/subnetId"),
    (("LaunchSpecifications",), _LAUNCH_TEMPLATE),
    (("Type",), "fleetType"),
    (("ExcessCapacityTerminationPolicy",), "noTermination: lowering a fleet ends nothing"),
    (("TagSpecifications",), _TAGS),
)
AUTO_SCALING_GROUP: Owned = (
    (("AutoScalingGroupName",), "ohf names the group after the request"),
    (("MinSize",), _COUNT),
    (("MaxSize",), _COUNT),
    (("DesiredCapacity",), _COUNT),
    (("DesiredCapacityType",), "ohf counts units"),
    (("LaunchTemplate",), _LAUNCH_TEMPLATE),
    (("LaunchConfigurationName",), _LAUNCH_TEMPLATE),
    (("InstanceId",), _LAUNCH_TEMPLATE),
    (("MixedInstancesPolicy", "LaunchTemplate"), f"{_LAUNCH_TEMPLATE} with overrides"),
    (
        ("MixedInstancesPolicy", "InstancesDistribution", "OnDemandBaseCapacity"),
        "priceType / percentOnDemand",
    ),
    (
        ("MixedInstancesPolicy", "InstancesDistribution", "OnDemandPercentageAboveBaseCapacity"),
        "priceType / percentOnDemand",
    ),
    (("Tags",), _TAGS),
    (("NewInstancesProtectedFromScaleIn",), "protection: lowering a group ends nothing"),
    (("VPCZoneIdentifier",), "subnetId"),
)
FLEET_OWNED: Mapping[ProviderApi, Owned] = {
    "EC2Fleet": EC2_FLEET,
    "SpotFleet": SPOT_FLEET,
    "ASG": AUTO_SCALING_GROUP,
}


def owned_keys(kind: Kind, api: ProviderApi) -> Owned:
    """The key paths ohf sets in fragment `kind`'s request for a template of `api`."""
    if kind == "runInstances":
        return RUN_INSTANCES
    if kind == "launchTemplateData":
        return LAUNCH_TEMPLATE_DATA
    return FLEET_OWNED.get(api, ())


def conflicts(fragment: Mapping[str, Any], owned: Owned) -> list[tuple[Path, str]]:
    """The fragment's key paths that would change a key ohf owns, with the reason.

    A fragment touches an owned key when it sets it or anything under it, or replaces a table
    holding it by something that is not a table (a table merges key by key, leaving it be).
    """
    found: list[tuple[Path, str]] = []
    for path, value in leaves(fragment):
        for key, why in owned:
            if path[: len(key)] == key:
                found.append((key, why))
            elif key[: len(path)] == path and not isinstance(value, Mapping):
                found.append((path, why))
    return list(dict.fromkeys(found))


def fragments(template: Template) -> tuple[tuple[Kind, dict[str, Any]], ...]:
    """The template's non-empty fragments, by template key."""
    kinds: tuple[tuple[Kind, dict[str, Any] | None], ...] = (
        ("runInstances", template.run_instances),
        ("launchTemplateData", template.launch_template_data),
        ("fleet", template.fleet),
    )
    return tuple((kind, body) for kind, body in kinds if body)


def _misplaced(kind: Kind, template: Template, api: ProviderApi) -> str | None:
    """Why fragment `kind` would reach no request of this template, if it would not."""
    if kind == "runInstances" and api != "RunInstances":
        return (
            f"runInstances applies to providerApi RunInstances, this template uses {api}: "
            "use launchTemplateData (instances) or fleet"
        )
    if kind != "runInstances" and api == "RunInstances":
        return f"{kind} applies to providerApi EC2Fleet, SpotFleet or ASG: use runInstances"
    if kind == "launchTemplateData" and template.launch_template_id:
        return (
            "launchTemplateData is merged into the launch template ohf creates, and "
            "launchTemplateId means ohf creates none: put it in that launch template"
        )
    return None


def problems(template: Template, api: ProviderApi) -> list[str]:
    """What is wrong with the template's fragments for `api`: each names the key path."""
    out: list[str] = []
    for kind, body in fragments(template):
        misplaced = _misplaced(kind, template, api)
        if misplaced is not None:
            out.append(misplaced)
            continue
        for path, why in conflicts(body, owned_keys(kind, api)):
            out.append(f"{kind}.{'.'.join(path)} is set by ohf ({why})")
        for path, value in leaves(body):
            for text in _strings(value):
                for name in _PLACEHOLDER.findall(text):
                    if name not in PLACEHOLDERS:
                        known = ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                        out.append(
                            f"{kind}.{'.'.join(path)}: unknown placeholder ${{{name}}} "
                            f"(known: {known})"
                        )
    return out
