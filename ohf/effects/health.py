"""`ohf health`: check, against the real cloud, that the provider can work, and say what cannot.

For each provider (each `[[providers]]` entry, or `[aws]` alone): the region, the credentials
(STS GetCallerIdentity; an EC2 call if STS is unreachable; a credential script is run for it),
the role when one is assumed, and each template it may run, as the provider sees it: image (AMI
id or SSM parameter), subnets, security groups, key pair and instance types. Then that the state
store is readable. A disabled provider is listed, not checked. Each check is one row (provider,
check, target, ok, detail); the rows print as a table or as JSON, and any failed row makes the
exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from returns.result import Failure

from ohf.config import AwsConfig, ProviderConfig, provider_aws
from ohf.effects.files import Settings
from ohf.model import Template
from ohf.placement import allowed, effective, label, providers_of
from ohf.templates import instance_types, security_groups, subnets

Clients = Callable[[str], Any]
# The boto3 clients of one provider's AWS settings (`ohf.effects.aws.client_getter`).
ClientsFor = Callable[[AwsConfig], Clients]


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One health verdict: what was checked, on what, whether it is fine, and why not.

    `provider` names the provider checked (its label: "aws" for `[aws]` alone), None for
    checks of ohf itself (the store); `skipped` marks a disabled provider, not checked.
    """

    check: str
    target: str
    ok: bool
    detail: str = ""
    provider: str | None = None
    skipped: bool = False


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """All verdicts; `ok` when every one is. `providers`: the providers' labels, in order."""

    ok: bool
    checks: list[Check]
    providers: list[str] = []


def _error(exc: Exception) -> str:
    """AWS's own words for a failure: `Code: Message`, else the exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _attempt(check: str, target: str, call: Callable[[], str]) -> Check:
    try:
        return Check(check=check, target=target, ok=True, detail=call())
    except Exception as exc:  # every failure, AWS or local, is a row, never a crash
        return Check(check=check, target=target, ok=False, detail=_error(exc))


def region(clients: Clients) -> Check:
    """The region the EC2 client uses (from config, environment or profile)."""

    def name() -> str:
        found = clients("ec2").meta.region_name
        if not found:
            raise ValueError("no AWS region configured (set [aws] region or AWS_REGION)")
        return str(found)

    checked = _attempt("region", "aws", name)
    return msgspec.structs.replace(checked, target=checked.detail if checked.ok else "aws")


def credentials(clients: Clients) -> Check:
    """Who ohf calls AWS as: STS GetCallerIdentity, or an EC2 call if STS cannot be reached."""

    def identity() -> str:
        try:
            return str(clients("sts").get_caller_identity()["Arn"])
        except Exception as exc:
            code = _error(exc).split(":", 1)[0]
            if any(w in code for w in ("Credential", "Token", "Signature", "AccessDenied", "Auth")):
                raise
            clients("ec2").describe_availability_zones()
            return f"EC2 reachable (STS not: {_error(exc)})"

    return _attempt("credentials", "sts", identity)


def assumed_role(clients: Clients, role_arn: str) -> Check:
    """That the role can be assumed: GetCallerIdentity with its credentials names it."""
    return _attempt("role", role_arn, lambda: str(clients("sts").get_caller_identity()["Arn"]))


def _image(clients: Clients, image: str) -> str:
    ami = image
    if image.startswith("/"):
        ami = clients("ssm").get_parameter(Name=image)["Parameter"]["Value"]
    images = clients("ec2").describe_images(ImageIds=[ami])["Images"]
    if not images:
        raise LookupError(f"image {ami} not found")
    detail = str(images[0].get("Name") or ami)
    return f"{ami} ({detail})" if ami != image else detail


def _present(kind: str, wanted: tuple[str, ...], found: Iterable[str]) -> str:
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise LookupError(f"{kind} not found: {', '.join(missing)}")
    return f"{len(wanted)} found"


def template_checks(clients: Clients, template: Template) -> list[Check]:
    """The template's image, subnets, security groups and instance types, one row each."""
    tid = template.template_id

    def ec2() -> Any:  # made on first use, inside each attempt, so its failure is a row
        return clients("ec2")

    rows: list[Check] = []
    if template.image_id:
        image = template.image_id
        rows.append(_attempt("image", f"{tid}: {image}", lambda: _image(clients, image)))
    elif not template.launch_template_id:
        rows.append(Check(check="image", target=tid, ok=False, detail="no imageId"))
    nets = subnets(template)
    if nets:
        rows.append(
            _attempt(
                "subnets",
                f"{tid}: {', '.join(nets)}",
                lambda: _present(
                    "subnet",
                    nets,
                    (
                        s["SubnetId"]
                        for s in ec2().describe_subnets(SubnetIds=list(nets))["Subnets"]
                    ),
                ),
            )
        )
    groups = security_groups(template)
    if groups:
        rows.append(
            _attempt(
                "security groups",
                f"{tid}: {', '.join(groups)}",
                lambda: _present(
                    "security group",
                    groups,
                    (
                        g["GroupId"]
                        for g in ec2().describe_security_groups(GroupIds=list(groups))[
                            "SecurityGroups"
                        ]
                    ),
                ),
            )
        )
    if template.key_name:
        # ohf never creates key pairs (IBM's providers do, with AWS_KEY_FILE): say if it is missing.
        key = template.key_name
        rows.append(
            _attempt(
                "key pair",
                f"{tid}: {key}",
                lambda: _present(
                    "key pair",
                    (key,),
                    (k["KeyName"] for k in ec2().describe_key_pairs(KeyNames=[key])["KeyPairs"]),
                ),
            )
        )
    types = tuple(dict.fromkeys([t for t, _ in instance_types(template)]))
    if types:
        rows.append(
            _attempt(
                "instance types",
                f"{tid}: {', '.join(types)}",
                lambda: _present(
                    "instance type",
                    types,
                    (
                        t["InstanceType"]
                        for t in ec2().describe_instance_types(InstanceTypes=list(types))[
                            "InstanceTypes"
                        ]
                    ),
                ),
            )
        )
    return rows


def store_check(settings: Settings) -> Check:
    """The state store can be read (file present and decodable, or table reachable)."""
    from returns.result import Failure

    from ohf.effects import store

    target = store.describe(settings)
    state = store.read(settings)
    if isinstance(state, Failure):
        return Check(check="store", target=target, ok=False, detail=state.failure().message)
    held = state.unwrap()
    return Check(
        check="store",
        target=target,
        ok=True,
        detail=f"{len(held.requests)} request(s), {len(held.returns)} return(s)",
    )


def provider_checks(
    settings: Settings, provider: ProviderConfig, clients_for: ClientsFor
) -> list[Check]:
    """One provider's rows: region, credentials (and role), and its view of each template it
    may run; a disabled provider is one skipped row."""
    name = label(provider.name)
    if not provider.enabled:
        return [
            Check(
                check="provider",
                target=name,
                ok=True,
                detail="disabled (enabled = false): not checked",
                provider=name,
                skipped=True,
            )
        ]
    aws = provider_aws(settings.config.aws, provider)
    clients = clients_for(aws)
    rows = [region(clients)]
    if aws.role_arn:
        # Who assumes the role, then the role: a refusal shows which of the two is wrong.
        rows.append(credentials(clients_for(msgspec.structs.replace(aws, role_arn=None))))
        rows.append(assumed_role(clients, aws.role_arn))
    else:
        rows.append(credentials(clients))
    for template in settings.config.templates:
        if not allowed(template, provider):
            continue
        view = effective(template, provider)
        if isinstance(view, Failure):
            rows.append(
                Check(
                    check="template",
                    target=template.template_id,
                    ok=False,
                    detail=view.failure().message,
                )
            )
            continue
        rows += template_checks(clients, view.unwrap())
    return [msgspec.structs.replace(row, provider=name) for row in rows]


def report(settings: Settings, clients_for: ClientsFor) -> Report:
    """Every check, in order: each provider's (region, credentials, templates), then the store."""
    providers = providers_of(settings.config)
    checks: list[Check] = []
    for provider in providers:
        checks += provider_checks(settings, provider, clients_for)
    checks.append(store_check(settings))
    return Report(
        ok=all(c.ok for c in checks),
        checks=checks,
        providers=[label(p.name) for p in providers],
    )


def table(result: Report) -> str:
    """The report as an aligned text table, with a closing verdict line."""
    # The provider column only when there is more than the `[aws]` one to tell apart.
    named = result.providers not in ([], ["aws"])
    head = ("PROVIDER",) if named else ()
    rows = [(*head, "CHECK", "TARGET", "RESULT", "DETAIL")] + [
        (
            *((c.provider or "-",) if named else ()),
            c.check,
            c.target,
            "skipped" if c.skipped else "ok" if c.ok else "FAIL",
            c.detail,
        )
        for c in result.checks
    ]
    last = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(last)]
    lines = [
        "  ".join([*(r[i].ljust(widths[i]) for i in range(last)), r[last]]).rstrip() for r in rows
    ]
    failed = sum(not c.ok for c in result.checks)
    lines.append("healthy" if result.ok else f"{failed} check(s) failed")
    return "\n".join(lines)
