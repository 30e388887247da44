"""Pure template logic: normalise IBM/ORB fields, derive attributes, compute availability."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import Catalogue
from ohf.model import LOST_STATES, TERMINAL_STATES, OhfError, ProviderApi, Request, State, Template
from ohf.native import problems as fragment_problems
from ohf.room import Room, hf_number, left

SSM_PREFIXES = ("/", "resolve:ssm:")
_ARCH_TYPE = {
    "x86_64": "X86_64",
    "arm64": "ARM64",
    "i386": "X86_64",
    "x86_64_mac": "X86_64",
    "arm64_mac": "ARM64",
}


def instance_types(template: Template) -> tuple[tuple[str, int], ...]:
    """The template's instance types with their weights (capacity units per instance)."""
    if template.vm_types:
        return tuple(template.vm_types.items())
    if template.vm_type:
        return ((template.vm_type, 1),)
    return ()


def subnets(template: Template) -> tuple[str, ...]:
    """The template's subnets: `subnetIds`, or `subnetId` as a list or comma-separated string."""
    raw: Iterable[str]
    if template.subnet_ids:
        raw = template.subnet_ids
    elif isinstance(template.subnet_id, list):
        raw = template.subnet_id
    elif template.subnet_id:
        raw = template.subnet_id.split(",")
    else:
        raw = ()
    return tuple(s.strip() for s in raw if s.strip())


def security_groups(template: Template) -> tuple[str, ...]:
    """Security group ids, from a list or a comma-separated string."""
    raw = template.security_group_ids
    items = raw.split(",") if isinstance(raw, str) else (raw or [])
    return tuple(s.strip() for s in items if s.strip())


def parse_tags(text: str | None) -> Result[tuple[tuple[str, str], ...], OhfError]:
    """Parse IBM's `instanceTags` ("k1=v1;k2=v2") into (key, value) pairs."""
    if not text:
        return Success(())
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return Failure(OhfError(message=f"instanceTags: {item!r} is not of the form key=value"))
        if key.strip().lower().startswith("aws:"):
            return Failure(
                OhfError(message=f"instanceTags: keys may not start with 'aws:' ({key!r})")
            )
        pairs.append((key.strip(), value.strip()))
    return Success(tuple(pairs))


def is_ssm_parameter(image_id: str) -> bool:
    """True when `imageId` names an SSM parameter to resolve rather than an AMI id."""
    return image_id.startswith(SSM_PREFIXES)


def ssm_parameter_name(image_id: str) -> str:
    """The SSM parameter name in `imageId` (without a `resolve:ssm:` prefix)."""
    return image_id.removeprefix("resolve:ssm:")


def provider_api(template: Template) -> ProviderApi:
    """The AWS API a template launches with: `providerApi`, else chosen from the IBM fields.

    Spot or heterogeneous capacity over `vmTypes` needs a fleet: a Spot Fleet when the template
    names a `fleetRole` (as IBM's own provider does), else an EC2 Fleet. Everything else, and spot
    of a single `vmType`, uses RunInstances.
    """
    if template.provider_api is not None:
        return template.provider_api
    if template.price_type == "heterogeneous" or (
        template.price_type == "spot" and template.vm_types
    ):
        return "SpotFleet" if template.fleet_role else "EC2Fleet"
    return "RunInstances"


def _fleet_problem(template: Template, api: ProviderApi) -> str | None:
    """What keeps a template from launching with its (fleet) API, if anything."""
    if api == "RunInstances":
        if template.price_type == "heterogeneous":
            return "priceType heterogeneous needs providerApi EC2Fleet, SpotFleet or ASG"
        return None
    if not instance_types(template):
        return f"providerApi {api} needs vmType or vmTypes (one override per type)"
    if api == "SpotFleet" and not template.fleet_role:
        return "providerApi SpotFleet needs fleetRole (the IAM role of the Spot Fleet)"
    if api == "SpotFleet" and template.fleet_type == "instant":
        return "fleetType instant is not available for SpotFleet (use request or maintain)"
    if api == "ASG" and not subnets(template):
        return "providerApi ASG needs subnetId (the group's VPC subnets)"
    if api in ("SpotFleet", "ASG") and template.launch_template_id and template.image_id:
        return (
            f"providerApi {api} cannot override the AMI of launchTemplateId: drop imageId and "
            "put the AMI in the launch template"
        )
    return None


def check_fragments(template: Template) -> Result[Template, OhfError]:
    """The template's native fragments and secure-default fields, as its API would send them:
    checked when the config loads, so a key ohf owns is refused before any request."""
    api = provider_api(template)
    found = fragment_problems(template, api) + _root_problems(template, api)
    if found:
        where = f"template {template.template_id!r}"
        return Failure(OhfError(message=f"{where}: {'; '.join(found)}", code="config"))
    return Success(template)


def _root_problems(template: Template, api: ProviderApi) -> list[str]:
    """Settings of ohf's own that would reach no request, or that AWS would refuse."""
    out = []
    if template.kms_key_id and template.encrypted is False:
        out.append("kmsKeyId encrypts the root volume: drop encrypted = false")
    ours = {
        "metadataOptions": template.metadata_options,
        "encrypted": template.encrypted,
        "kmsKeyId": template.kms_key_id,
    }
    given = [key for key, value in ours.items() if value is not None]
    if given and api != "RunInstances" and template.launch_template_id:
        out.append(
            f"{', '.join(given)} would reach no instance: providerApi {api} launches from "
            "launchTemplateId as it is, so set them in that launch template"
        )
    return out


def check_template(template: Template) -> Result[Template, OhfError]:
    """Cross-field rules that a type annotation cannot state."""
    where = f"template {template.template_id!r}"
    problem = _fleet_problem(template, provider_api(template))
    if problem is not None:
        return Failure(OhfError(message=f"{where}: {problem}"))
    fragments = check_fragments(template)
    if isinstance(fragments, Failure):
        return fragments
    if not template.image_id and not template.launch_template_id:
        return Failure(OhfError(message=f"{where}: needs imageId (or launchTemplateId)"))
    if not instance_types(template) and not template.launch_template_id:
        return Failure(OhfError(message=f"{where}: needs vmType or vmTypes"))
    if template.vm_type and template.vm_types:
        return Failure(OhfError(message=f"{where}: give vmType or vmTypes, not both"))
    for name in ("type", "ncpus", "nram", "ncores"):
        value = template.attributes.get(name)
        if value is not None and value[0] not in ("String", "Numeric", "Boolean"):
            return Failure(
                OhfError(message=f"{where}: attributes.{name} kind must be String or Numeric")
            )
    return (
        parse_tags(template.instance_tags)
        .map(lambda _: template)
        .alt(lambda e: OhfError(message=f"{where}: {e.message}"))
    )


def missing_attributes(template: Template) -> bool:
    """True when some mandatory attribute must be derived from the catalogue."""
    return any(k not in template.attributes for k in ("type", "ncpus", "nram", "ncores"))


def attributes(
    template: Template, catalogue: Catalogue
) -> Result[dict[str, tuple[str, str]], OhfError]:
    """HF attributes: what the administrator wrote, completed from the instance-type catalogue.

    With several instance types the smallest value of each is used, so HF never plans for more
    CPU or memory than the smallest machine it may get.
    """
    written = {k: (kind, _text(v)) for k, (kind, v) in template.attributes.items()}
    if not missing_attributes(template):
        return Success(written)
    names = [name for name, _ in instance_types(template)]
    infos = [catalogue.types.get(name) for name in names]
    unknown = [n for n, i in zip(names, infos, strict=True) if i is None]
    needed = [k for k in ("type", "ncpus", "nram") if k not in written]
    if (unknown or not names) and needed:
        what = ", ".join(unknown) if unknown else "no vmType"
        return Failure(
            OhfError(
                message=(
                    f"template {template.template_id!r}: cannot derive attributes "
                    f"{'/'.join(needed)} ({what} not in the instance-type catalogue); "
                    "write them in `attributes` or refresh the catalogue"
                )
            )
        )
    known = [i for i in infos if i is not None]
    if not known:
        return Success(written)
    derived = {
        "type": ("String", _ARCH_TYPE.get(known[0].arch, known[0].arch.upper())),
        "ncpus": ("Numeric", str(min(i.cores for i in known))),
        "ncores": ("Numeric", str(min(i.cores for i in known))),
        "nram": ("Numeric", str(min(i.mib for i in known))),
    }
    return Success({**derived, **written})


def _text(value: str | int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def live_units(request: Request) -> int:
    """Units of the request's machines that are neither returned nor stopping or ending."""
    return sum(
        m.units for m in request.machines if m.returned_by is None and m.state not in LOST_STATES
    )


def request_units(request: Request) -> int:
    """Capacity units a request holds: reserved while launching or filling, else live machines."""
    live = sum(
        m.units
        for m in request.machines
        if m.returned_by is None and m.state not in TERMINAL_STATES
    )
    if request.phase == "launching":
        return max(live, request.machine_count)
    if request.fleet_id is not None and not request.fleet_done and not request.cleaned_up:
        # A filling (or maintaining) fleet may still launch up to its target.
        return max(live, request.fleet_target + request.fleet_headroom)
    return live


def units_held(state: State, template_id: str, provider: str | None = None) -> int:
    """Units of a template its requests hold (machines and reservations), on one provider's
    requests when `provider` is given ("" is the `[aws]` one), else on all of them."""
    return sum(
        request_units(r)
        for r in state.requests.values()
        if r.template_id == template_id and (provider is None or r.provider == provider)
    )


def room_left(template: Template, state: State, provider: str | None = None) -> Room:
    """The units HF may still ask of `template` (as given: a provider's view for `provider`)."""
    return left(template.max_number, units_held(state, template.template_id, provider))


def find_template(templates: Iterable[Template], template_id: str) -> Template | None:
    """The template with this id, if any."""
    return next((t for t in templates if t.template_id == template_id), None)


def field_defaults(cls: type[msgspec.Struct], *, factories: bool) -> dict[str, Any]:
    """Each field's default by its encoded name (NODEFAULT if it has none); a default factory's
    value if `factories`, else NODEFAULT for it. Read from the struct's own tables, as
    `msgspec.structs.fields` reads them, without evaluating every annotation as it does."""
    names = cls.__struct_encode_fields__
    given = cls.__struct_defaults__
    padded = (msgspec.NODEFAULT,) * (len(names) - len(given)) + tuple(given)
    return {name: _default(value, factories) for name, value in zip(names, padded, strict=True)}


class _Probe(msgspec.Struct):
    value: list[Any] = msgspec.field(default_factory=list)


# The type msgspec wraps a default factory in (what `msgspec.structs.fields` tells them by).
_Factory = type(_Probe.__struct_defaults__[0])


def _default(value: Any, factories: bool) -> Any:
    if not isinstance(value, _Factory):
        return value
    return value.factory() if factories else msgspec.NODEFAULT


@functools.cache
def _defaults() -> dict[str, Any]:
    return field_defaults(Template, factories=False)


def template_out(
    template: Template, attrs: Mapping[str, tuple[str, str]], room: Room
) -> dict[str, Any]:
    """A template as getAvailableTemplates reports it: every key echoed, attributes complete."""
    body = {
        k: v
        for k, v in msgspec.to_builtins(template).items()
        if v is not None and v != _defaults().get(k, msgspec.NODEFAULT)
    }
    extras = body.pop("extras", {})
    return {
        **extras,
        **body,
        "templateId": template.template_id,
        "maxNumber": template.max_number,
        "availableNumber": hf_number(room),
        "attributes": {k: [kind, value] for k, (kind, value) in attrs.items()},
    }
