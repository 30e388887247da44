"""`ohf init`: a working ohf.toml from what the AWS account has, or from IBM's awsprov_*.json.

The account is read through the front door (`Provider.discover`), the choices and the file's
text are pure (`ohf.discovery`, `ohf.starter`, `ohf.ibm_import`); this face asks the questions,
writes the file and says what to do next. The file is checked as `ohf validate` checks it
before it takes its name, so a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from pathlib import Path

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import Catalogue
from ohf.cli import prompts
from ohf.cli.commands import failed
from ohf.discovery import (
    FLEET_SPOT,
    ON_DEMAND,
    Choices,
    Discovery,
    Wishes,
    candidates,
    choose,
    default_subnets,
    groups_of,
    offered,
    subnets_of,
    vpcs_in_order,
)
from ohf.model import OhfError
from ohf.validation import Validation, verdict_line

COMMAND = "init"
_DISCOVERY_FLAGS = ("subnets", "security_groups", "image", "key_name", "instance_types")


def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def wishes_of(args: argparse.Namespace) -> Wishes:
    """What the flags ask for."""
    return Wishes(
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        subnets=_ids(args.subnets),
        security_groups=_ids(args.security_groups),
        image=args.image,
        key_name=args.key_name,
        instance_types=_ids(args.instance_types),
    )


def init(args: argparse.Namespace) -> int:
    """`ohf init [DIR]`: discover, ask (on a terminal, unless --yes), write, validate."""
    target = Path(args.dir).expanduser() / "ohf.toml"
    if args.from_ibm:
        return from_ibm(args, target)
    if target.exists() and not args.force:
        return failed(COMMAND, f"{target} exists: pass --force to replace it")
    if not args.yes and not sys.stdin.isatty():
        return failed(
            COMMAND, "stdin is not a terminal, so nothing can be asked: pass --yes (and flags)"
        )
    from ohf.config import AwsConfig
    from ohf.effects.files import read_catalogue
    from ohf.provider import Provider

    wishes = wishes_of(args)
    aws = AwsConfig(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    print("Looking at your AWS account:", file=sys.stderr, flush=True)
    found = Provider.discover(
        aws, types=wishes.instance_types, image=wishes.image, progress=_progress
    )
    if isinstance(found, Failure):
        return failed(COMMAND, found.failure())
    catalogue = read_catalogue()
    try:
        if not args.yes:
            wishes = ask(found.unwrap(), wishes, catalogue)
        chosen = choose(found.unwrap(), wishes, catalogue)
        if isinstance(chosen, Failure):
            return failed(COMMAND, chosen.failure())
        from ohf.starter import config_text, fleet_id, on_demand_id

        text = config_text(chosen.unwrap())
        if not args.yes:
            summary(chosen.unwrap())
        if not args.yes and not prompts.confirm(f"Write {target}?"):
            return failed(COMMAND, "not confirmed: nothing written")
    except prompts.NoAnswer:
        return failed(COMMAND, "stdin ended before every question was answered: nothing written")
    except KeyboardInterrupt:
        return failed(COMMAND, "interrupted: nothing written")
    written = write_config(target, text, force=args.force)
    if isinstance(written, Failure):
        return failed(COMMAND, written.failure())
    report(target, written.unwrap())
    next_steps(target, on_demand_id(chosen.unwrap()), fleet_id(chosen.unwrap()))
    return 0


# --- Questions ---------------------------------------------------------------------------------


def _type_line(name: str, catalogue: Catalogue) -> str:
    info = catalogue.types.get(name)
    return name if info is None else f"{name:<12} {info.vcpus:>3} vCPU {info.mib / 1024:>6g} GiB"


def ask(found: Discovery, wishes: Wishes, catalogue: Catalogue) -> Wishes:
    """The flags' wishes completed by questions (only what the flags leave open, and only
    where there is something to choose from)."""
    replace = msgspec.structs.replace
    vpcs = vpcs_in_order(found)
    if not wishes.subnets and vpcs and (len(vpcs) > 1 or not vpcs[0].is_default):
        default = 0 if vpcs[0].is_default else None
        lines = [
            f"{v.vpc_id}  {v.cidr:<18} {v.name}{'  (default VPC)' if v.is_default else ''}"
            for v in vpcs
        ]
        wishes = replace(wishes, vpc=vpcs[prompts.one("VPC:", lines, default)].vpc_id)
    if not wishes.image and not wishes.given_types() and len(found.images) > 1:
        lines = [
            f"Amazon Linux 2023 {i.arch:<7} {i.image_id}  (SSM parameter: always the current AMI)"
            for i in found.images
        ]
        wishes = replace(wishes, arch=found.images[prompts.one("Image:", lines, 0)].arch)
    chosen = choose(found, wishes, catalogue)
    if isinstance(chosen, Failure):
        return wishes  # `init` reports why, the same way as without questions
    now = chosen.unwrap()
    if not wishes.subnets:
        mine = subnets_of(found, now.vpc_id)
        lines = [
            f"{s.subnet_id}  {s.zone:<12} {s.cidr:<18} {s.free:>6} free  {s.name}" for s in mine
        ]
        marked = [
            i for i, s in enumerate(mine) if s in default_subnets(found, now.vpc_id, now.arch)
        ]
        picked = prompts.many("Subnets (the hosts' network; several spread them):", lines, marked)
        wishes = replace(wishes, subnets=tuple(mine[i].subnet_id for i in picked))
    groups = groups_of(found, now.vpc_id)
    if not wishes.security_groups and len(groups) > 1:
        lines = [f"{g.group_id}  {g.name:<20} {g.description[:50]}" for g in groups]
        marked = [i for i, g in enumerate(groups) if g.group_id in now.security_groups]
        picked = prompts.many("Security groups:", lines, marked)
        wishes = replace(wishes, security_groups=tuple(groups[i].group_id for i in picked))
    if not wishes.key_name and found.key_pairs:
        lines = ["none (no SSH key on the hosts)", *found.key_pairs]
        index = prompts.one("Key pair:", lines, 0)
        wishes = replace(wishes, key_name=found.key_pairs[index - 1] if index else None)
    if not wishes.instance_types:
        wishes = _ask_types(found, wishes, catalogue)
    return wishes


def _ask_types(found: Discovery, wishes: Wishes, catalogue: Catalogue) -> Wishes:
    chosen = choose(found, wishes, catalogue)
    if isinstance(chosen, Failure):
        return wishes
    now = chosen.unwrap()
    zones = {s.zone for s in found.subnets if s.subnet_id in now.subnets}
    types = offered(found, zones, candidates(now.arch))
    if not types:
        return wishes
    lines = [_type_line(t, catalogue) for t in types]
    preferred = next((t for t in ON_DEMAND[now.arch] if t in types), types[0])
    index = prompts.one("Instance type of the on-demand template:", lines, types.index(preferred))
    marked = [i for i, t in enumerate(types) if t in FLEET_SPOT[now.arch]]
    picked = prompts.many("Spot instance types of the fleet template:", lines, marked)
    return msgspec.structs.replace(
        wishes, on_demand_type=types[index], fleet_types=tuple(types[i] for i in picked)
    )


def summary(chosen: Choices) -> None:
    """The choices in a few lines, before asking to write them."""
    groups = ", ".join(chosen.security_groups) or "the VPC's default"
    lines = [
        f"account {chosen.account}, region {chosen.region}, {chosen.vpc_id}",
        f"subnets: {', '.join(chosen.subnets)}",
        f"security groups: {groups}; key pair: {chosen.key_name or 'none'}",
        f"image: {chosen.image}",
        f"on-demand template: {chosen.on_demand_type}",
        f"fleet template: spot {', '.join(chosen.fleet_spot)}; "
        f"on-demand {', '.join(chosen.fleet_on_demand)}",
    ]
    print("\nohf.toml will hold:", *(f"  {line}" for line in lines), sep="\n", file=sys.stderr)


# --- Writing -----------------------------------------------------------------------------------


def _missing_dirs(directory: Path) -> list[Path]:
    """The directories `mkdir -p directory` would create, deepest first."""
    out: list[Path] = []
    while not directory.exists() and directory != directory.parent:
        out.append(directory)
        directory = directory.parent
    return out


def _clean(leftovers: list[Path]) -> None:
    for path in leftovers:
        # A directory something else was put in meanwhile is left alone (rmdir refuses).
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)


def _problems(result: Validation) -> str:
    found = [verdict_line(v) for v in result.templates if not v.ok]
    if result.listing_error:
        found.append(f"templates: {result.listing_error}")
    return "; ".join(found)


def write_config(target: Path, text: str, *, force: bool) -> Result[Validation, OhfError]:
    """Write `text` to `target` only once it passes `ohf validate`'s checks, and never over an
    existing file unless `force`; on any failure nothing is left (created dirs included)."""
    from ohf.effects.files import write_bytes
    from ohf.provider import Provider

    created = _missing_dirs(target.parent)
    draft = target.with_name(f".{target.name}.init-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _clean(created)
        return Failure(OhfError(message=f"cannot create {target.parent}: {exc}", code="output"))
    leftovers = [draft, *created]
    written = write_bytes(draft, text.encode("utf-8"), what="config")
    if isinstance(written, Success):
        # Readable by HF's service user, who may not be the one running init; nothing secret.
        with contextlib.suppress(OSError):
            draft.chmod(0o644)
    opened = written.bind(lambda _: Provider.open(str(draft), os.environ, cwd=os.getcwd()))
    if isinstance(opened, Failure):
        _clean(leftovers)
        return Failure(opened.failure())
    result = opened.unwrap().validate()
    if not result.ok:
        _clean(leftovers)
        message = f"the config would not pass `ohf validate`: {_problems(result)}"
        return Failure(OhfError(message=message, code="config"))
    try:
        if force:
            os.replace(draft, target)
        else:
            os.link(draft, target)  # unlike a rename, never replaces a file created meanwhile
            draft.unlink()
    except OSError as exc:
        _clean(leftovers)
        reason = f"{target} exists: pass --force to replace it" if target.exists() else str(exc)
        return Failure(OhfError(message=f"cannot write {target}: {reason}", code="output"))
    return Success(result)


def report(target: Path, result: Validation) -> None:
    """What was written, with `ohf validate`'s verdicts."""
    print(f"Wrote {target.absolute()}")
    for verdict in result.templates:
        print(f"  {verdict_line(verdict)}")
    for warning in result.warnings:
        print(f"  warning: {warning}")


def next_steps(target: Path, on_demand: str, fleet: str) -> None:
    """How to go on: plug ohf into HF, check AWS, make a first request."""
    config = shlex.quote(str(target.absolute()))
    ask = shlex.quote(f'{{"template": {{"templateId": "{on_demand}", "machineCount": 1}}}}')
    print(
        "\nNext steps:\n"
        "  1. Install ohf as an HF provider plugin whose scripts use this config:\n"
        "       ohf install-scripts $EGO_TOP/hostfactory/conf/providerplugins/ohf"
        f" --config {config}\n"
        "  2. Check credentials, network, images and instance types against AWS:\n"
        f"       ohf health --config {config}\n"
        f"  3. A first request (one {on_demand} machine; {fleet} is the spot fleet), then its\n"
        "     status with the requestId it answers:\n"
        f"       ohf requestMachines --config {config} -d {ask}\n"
        f"       ohf getRequestStatus --config {config}"
        """ -d '{"requests": [{"requestId": "REQUEST_ID"}]}'"""
    )


# --- From IBM's files --------------------------------------------------------------------------


def _ibm_file(directory: Path, kind: str) -> Path | None:
    from ohf.config import ibm_file_names

    names = ibm_file_names("config" if kind == "config" else "templates", os.environ)
    return next((directory / n for n in names if (directory / n).is_file()), None)


def from_ibm(args: argparse.Namespace, target: Path) -> int:
    """`ohf init --from-ibm DIR`: IBM's awsprov_config.json + awsprov_templates.json as one
    ohf.toml, and every key that could not be carried over."""
    from ohf.effects.files import read_bytes
    from ohf.ibm_import import convert, converted_text

    given = [f"--{f.replace('_', '-')}" for f in _DISCOVERY_FLAGS if getattr(args, f)]
    if given:
        print(
            f"ohf init: error: --from-ibm takes the templates from IBM's file, not {given[0]}",
            file=sys.stderr,
        )
        return 2
    if target.exists() and not args.force:
        return failed(COMMAND, f"{target} exists: pass --force to replace it")
    source = Path(args.from_ibm).expanduser()
    templates = _ibm_file(source, "templates")
    if templates is None:
        return failed(COMMAND, f"no awsprov_templates.json in {source}")
    config = _ibm_file(source, "config")
    raw_templates = read_bytes(templates, what="templates file")
    raw_config = read_bytes(config, what="provider config") if config else Success(None)
    if isinstance(raw_templates, Failure):
        return failed(COMMAND, raw_templates.failure())
    if isinstance(raw_config, Failure):
        return failed(COMMAND, raw_config.failure())
    flags = {"region": args.region, "profile": args.profile, "endpoint_url": args.endpoint_url}
    converted = convert(
        raw_config.unwrap(),
        raw_templates.unwrap(),
        config_source=config.name if config else "awsprov_config.json",
        templates_source=templates.name,
        aws={k: v for k, v in flags.items() if v},
    )
    if isinstance(converted, Failure):
        return failed(COMMAND, converted.failure())
    result = converted.unwrap()
    credentials = result.document["aws"].get("credentials_file")
    if credentials and not Path(credentials).expanduser().is_file():
        line = f"[aws] credentials_file {credentials} does not exist on this host"
        result = msgspec.structs.replace(result, check=(line, *result.check))
    sources = " and ".join(str(p.absolute()) for p in (config, templates) if p is not None)
    written = write_config(target, converted_text(result, sources), force=args.force)
    if isinstance(written, Failure):
        return failed(COMMAND, written.failure())
    report(target, written.unwrap())
    print("Not carried over:" + ("" if result.dropped else " nothing"))
    for line in result.dropped:
        print(f"  {line}")
    if result.check:
        print("To check before the first request:")
        for line in result.check:
            print(f"  {line}")
    return 0
