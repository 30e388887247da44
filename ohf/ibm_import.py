"""IBM's `awsprov_config.json` + `awsprov_templates.json` as one ohf.toml document (pure).

The files are decoded by `ohf.config`'s own IBM decoders, so whatever ohf honours of them (today
and after keys are added to `IbmProviderConfig`) is carried over; the rest is listed, key by
key: config keys ohf does not declare, values TOML cannot hold, empty ids. Values that are
carried over but look like the placeholders of IBM's samples (`ami-27a1`, `maxNumber` 0) are
listed too, to be fixed before the first request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.config import Config, decode_template_file
from ohf.ibm import IbmProviderConfig, decode_ibm_config
from ohf.model import OhfError, Template
from ohf.starter import SECTIONS
from ohf.templates import is_ssm_parameter, security_groups, subnets
from ohf.toml_text import dump

_ID = r"-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
_AMI = re.compile(r"^ami" + _ID)
_SUBNET = re.compile(r"^subnet" + _ID)
_GROUP = re.compile(r"^sg" + _ID)
_DECLARED = frozenset(f.encode_name for f in msgspec.structs.fields(IbmProviderConfig))
_TEMPLATE_DEFAULTS: dict[str, Any] = {
    f.encode_name: f.default for f in msgspec.structs.fields(Template)
}


class Converted(msgspec.Struct, frozen=True, kw_only=True):
    """The ohf.toml document, what could not be carried over, and what to check before use."""

    document: dict[str, Any]
    dropped: tuple[str, ...] = ()
    check: tuple[str, ...] = ()


def _fail(message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=message, code="config"))


def _without_none(item: Any, where: str, lost: list[str]) -> Any:
    """`item` with every null removed (TOML has none), each removal recorded in `lost`."""
    if isinstance(item, Mapping):
        kept = {}
        for name, inner in item.items():
            if inner is None:
                lost.append(f"{where}.{name}: null (TOML has no null; ohf reads it as unset)")
            else:
                kept[name] = _without_none(inner, f"{where}.{name}", lost)
        return kept
    if isinstance(item, list | tuple):
        if any(v is None for v in item):
            lost.append(f"{where}: null items of the list")
        return [
            _without_none(v, f"{where}[{i}]", lost) for i, v in enumerate(item) if v is not None
        ]
    return item


def _changed(struct: Any) -> dict[str, Any]:
    """The fields of a config section that differ from ohf's defaults, as TOML keys."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        current = getattr(struct, field.name)
        default = field.default if field.default is not msgspec.NODEFAULT else None
        if current is not None and current != default:
            out[field.encode_name] = msgspec.to_builtins(current)
    return out


def config_sections(config: Config) -> dict[str, Any]:
    """Every section of `config` (templates aside) as a table of its non-default keys."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(Config):
        if field.name in ("templates", "templates_file", "ibm_unhonoured"):
            continue
        current = getattr(config, field.name)
        if isinstance(current, msgspec.Struct):
            changed = _changed(current)
            if changed or field.name in SECTIONS:
                out[field.encode_name] = changed
        elif current:
            out[field.encode_name] = [_changed(each) for each in current]
    return out


def _ibm_config(raw: bytes, source: str) -> Result[tuple[Config, list[str], list[str]], OhfError]:
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return _fail(f"cannot read {source}: {exc}")
    if not isinstance(data, dict):
        return _fail(f"{source}: expected a JSON object")
    decoded = decode_ibm_config(raw, source=source)
    if isinstance(decoded, Failure):
        return decoded
    config = decoded.unwrap()
    dropped = [
        f"{source}: {name}: ohf has no such setting" for name in data if name not in _DECLARED
    ]
    same: list[str] = []
    for name in (n for n in data if n in _DECLARED):
        alone = msgspec.json.encode({k: v for k, v in data.items() if k != name})
        if decode_ibm_config(alone, source=source) == decoded:
            shown = msgspec.json.encode(data[name]).decode()
            same.append(f"{source}: {name} = {shown}: not written, changes nothing")
    return Success((config, dropped, same))


def _template_body(template: Template, where: str, dropped: list[str]) -> dict[str, Any]:
    body = {
        name: value
        for name, value in msgspec.to_builtins(template).items()
        if value is not None and value != _TEMPLATE_DEFAULTS.get(name, msgspec.NODEFAULT)
    }
    extras = body.pop("extras", {})
    return _without_none({**body, **extras}, where, dropped)  # type: ignore[no-any-return]


def placeholders(template: Template, where: str) -> list[str]:
    """What in a carried-over template looks like a sample's placeholder, to fix before use."""
    out: list[str] = []
    image = template.image_id
    if image and not is_ssm_parameter(image) and not _AMI.match(image):
        out.append(f"{where}.imageId {image!r} is not an AMI id: set yours (or an SSM path)")
    out += [
        f"{where}.subnetId {s!r} is not a subnet id: set your subnet"
        for s in subnets(template)
        if not _SUBNET.match(s)
    ]
    out += [
        f"{where}.securityGroupIds {g!r} is not a security group id"
        for g in security_groups(template)
        if not _GROUP.match(g)
    ]
    if template.max_number == 0:
        out.append(f"{where}.maxNumber is 0: HF can launch nothing from it until it is raised")
    return out


# What an empty id in these lists leaves to AWS's defaults (ohf refuses empty ids at load).
_ID_LISTS = {
    "securityGroupIds": "the VPC's default group applies",
    "subnetIds": "the other subnets are used",
    "subnetId": "the other subnets are used",
}


def _without_empty_ids(raw: bytes, source: str, dropped: list[str]) -> bytes:
    """IBM's templates with the empty strings of its id lists (its samples carry
    `"securityGroupIds": [""]`) left out, each listed as not carried over."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw  # decode_template_file says what is wrong with it
    templates = document.get("templates") if isinstance(document, dict) else None
    if not isinstance(templates, list):
        return raw
    for template in templates:
        if not isinstance(template, dict):
            continue
        for key, consequence in _ID_LISTS.items():
            ids = template.get(key)
            if isinstance(ids, list) and any(isinstance(i, str) and not i.strip() for i in ids):
                kept = [i for i in ids if not (isinstance(i, str) and not i.strip())]
                where = f"{source}: {template.get('templateId', '?')}.{key}"
                dropped.append(f"{where}: empty ids ({consequence})")
                if kept:
                    template[key] = kept
                else:
                    del template[key]
    return msgspec.json.encode(document)


def convert(
    config_raw: bytes | None,
    templates_raw: bytes,
    *,
    config_source: str = "awsprov_config.json",
    templates_source: str = "awsprov_templates.json",
    aws: Mapping[str, str] | None = None,
) -> Result[Converted, OhfError]:
    """IBM's two files as one ohf.toml document; `aws` keys (the flags) replace theirs."""
    dropped: list[str] = []
    check: list[str] = []
    config = Config()
    if config_raw is None:
        check.append(f"no {config_source}: [aws] takes ohf's defaults")
    else:
        read = _ibm_config(config_raw, config_source)
        if isinstance(read, Failure):
            return read
        config, lost, same = read.unwrap()
        dropped += lost + same
    decoded = decode_template_file(
        _without_empty_ids(templates_raw, templates_source, dropped), source=templates_source
    )
    if isinstance(decoded, Failure):
        return decoded
    document = config_sections(config)
    document["aws"] = {**document.get("aws", {}), **(aws or {})}
    # The two keys an administrator looks for first, written even at their defaults.
    document["storage"] = {"type": config.storage.type, **document.get("storage", {})}
    document["logging"] = {"level": config.logging.level, **document.get("logging", {})}
    bodies = []
    for template in decoded.unwrap():
        where = f"{templates_source}: {template.template_id}"
        bodies.append(_template_body(template, where, dropped))
        check += placeholders(template, where)
    document["templates"] = bodies
    return Success(Converted(document=document, dropped=tuple(dropped), check=tuple(check)))


def converted_text(converted: Converted, sources: str) -> str:
    """The ohf.toml text of a conversion: what it came from and what it left out, in comments."""
    lines = [f"ohf config converted by `ohf init --from-ibm` from {sources}."]
    if converted.dropped:
        lines += ["Not carried over:", *(f"  {d}" for d in converted.dropped)]
    if converted.check:
        lines += ["To check:", *(f"  {c}" for c in converted.check)]
    notes = {
        **SECTIONS,
        "templates": "HF templates, as they were in IBM's awsprov_templates.json.",
    }
    return dump(converted.document, notes, "\n".join(lines))
