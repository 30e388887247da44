"""AWS service models cut to the operations ohf calls: pure functions over botocore's own dicts.

Building a botocore client parses its service's whole model (EC2: 4.5 MB of JSON, 800+
operations) although ohf calls a few dozen operations. `cut_document` derives, from the model
botocore ships, one document per service holding only those operations, the shapes they reach
and every modelled exception (so `client.exceptions` and error parsing are unchanged), with the
documentation strings dropped, plus the paginators and waiters of the operations kept, so
`get_paginator`/`get_waiter` stay consistent with the cut. `check_document` says whether a
cached document is still one this ohf and this botocore would have made.
The files and the loader that hands these to botocore live in `ohf.effects.aws.models`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from returns.result import Failure, Result, Success

FORMAT = 1  # bump when the document's layout or the cut's rules change

# Every operation ohf calls, per service: the interpreter's intents, `ohf health`, `ohf init`,
# the DynamoDB store, and the STS calls botocore makes for ohf's credentials (AssumeRole for
# `role_arn`, AssumeRoleWithWebIdentity for a web-identity profile or environment).
# tests/test_service_models.py derives the list from what the interpreters do and checks it.
OPERATIONS: Mapping[str, frozenset[str]] = {
    "ec2": frozenset(
        {
            "CancelSpotFleetRequests",
            "CreateFleet",
            "CreateLaunchTemplate",
            "CreateTags",
            "DeleteFleets",
            "DeleteLaunchTemplate",
            "DescribeAvailabilityZones",
            "DescribeFleetHistory",
            "DescribeFleets",
            "DescribeImages",
            "DescribeInstanceTypeOfferings",
            "DescribeInstanceTypes",
            "DescribeInstances",
            "DescribeKeyPairs",
            "DescribeLaunchTemplates",
            "DescribeSecurityGroups",
            "DescribeSpotFleetRequestHistory",
            "DescribeSpotFleetRequests",
            "DescribeSpotInstanceRequests",
            "DescribeSubnets",
            "DescribeVpcs",
            "ModifyFleet",
            "ModifySpotFleetRequest",
            "RequestSpotFleet",
            "RunInstances",
            "TerminateInstances",
        }
    ),
    "autoscaling": frozenset(
        {
            "CreateAutoScalingGroup",
            "DeleteAutoScalingGroup",
            "DescribeAutoScalingGroups",
            "DescribeScalingActivities",
            "TerminateInstanceInAutoScalingGroup",
            "UpdateAutoScalingGroup",
        }
    ),
    "ssm": frozenset({"GetParameter", "GetParameters"}),
    "sts": frozenset({"AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"}),
    "dynamodb": frozenset(
        {
            "BatchWriteItem",
            "CreateTable",
            "DeleteItem",
            "DescribeTable",
            "GetItem",
            "PutItem",
            "Query",
            "TransactWriteItems",
        }
    ),
}
# Services botocore's own credential providers make clients of, from the session they serve
# (SSO, its token refresh, `aws login`): their endpoints stay in the cut endpoints, with ohf's.
CREDENTIAL_SERVICES = ("sso", "sso-oidc", "signin")
# The name of the cut of botocore's endpoints.json among the documents.
ENDPOINTS = "endpoints"
# The model files of a service a client may load, and those a document carries.
SERVICE, PAGINATORS, WAITERS, RULES = (
    "service-2",
    "paginators-1",
    "waiters-2",
    "endpoint-rule-set-1",
)
PARTS = (SERVICE, PAGINATORS, WAITERS, RULES)
_DOCS = frozenset({"documentation", "documentationUrl"})
_REF_KEYS = ("member", "key", "value")


def digest(service: str, operations: Iterable[str] | None = None) -> str:
    """A short name for (FORMAT, the operations kept; for the endpoints, the services kept):
    part of a cached document's file name, so two ohf versions sharing a cache never overwrite
    each other's cut."""
    if operations is None:
        operations = endpoint_services() if service == ENDPOINTS else OPERATIONS.get(service, ())
    ops = sorted(operations)
    return hashlib.sha256(f"{FORMAT}:{service}:{','.join(ops)}".encode()).hexdigest()[:12]


def _undocumented(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in _DOCS}


def _shape(shape: Mapping[str, Any]) -> dict[str, Any]:
    out = _undocumented(shape)
    if "members" in out:
        out["members"] = {name: _undocumented(ref) for name, ref in out["members"].items()}
    for key in _REF_KEYS:
        if key in out:
            out[key] = _undocumented(out[key])
    return out


def _operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    out = _undocumented(operation)
    for key in ("input", "output"):
        if key in out:
            out[key] = _undocumented(out[key])
    if "errors" in out:
        out["errors"] = [_undocumented(e) for e in out["errors"]]
    return out


def _referenced(shape: Mapping[str, Any]) -> Iterator[str]:
    for key in _REF_KEYS:
        if key in shape:
            yield shape[key]["shape"]
    for ref in shape.get("members", {}).values():
        yield ref["shape"]


def _roots(operation: Mapping[str, Any]) -> Iterator[str]:
    for key in ("input", "output"):
        if key in operation:
            yield operation[key]["shape"]
    for error in operation.get("errors", ()):
        yield error["shape"]


def reachable(shapes: Mapping[str, Any], roots: Iterable[str]) -> set[str]:
    """The names of `roots` and of every shape they reach through members, lists and maps."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_referenced(shapes[name]))
    return seen


def cut_service(model: Mapping[str, Any], operations: Iterable[str]) -> Result[dict[str, Any], str]:
    """`model` (a service-2 document) with only `operations`, the shapes they reach, and every
    exception shape; the endpoint-discovery operation, if the service has one, is kept too."""
    wanted = set(operations)
    all_ops: Mapping[str, Any] = model.get("operations", {})
    missing = sorted(wanted - all_ops.keys())
    if missing:
        return Failure(f"the model has no operation {', '.join(missing)}")
    wanted |= {name for name, op in all_ops.items() if op.get("endpointoperation")}
    shapes: Mapping[str, Any] = model.get("shapes", {})
    roots = [r for name in sorted(wanted) for r in _roots(all_ops[name])]
    roots += [name for name, shape in shapes.items() if shape.get("exception")]
    try:
        kept = reachable(shapes, roots)
    except KeyError as exc:
        return Failure(f"the model names a shape it lacks: {exc}")
    return Success(
        {
            **_undocumented(model),
            "operations": {name: _operation(all_ops[name]) for name in sorted(wanted)},
            "shapes": {name: _shape(shapes[name]) for name in sorted(kept)},
        }
    )


def cut_paginators(document: Mapping[str, Any] | None, operations: Iterable[str]) -> Any:
    """The paginators of the kept operations only (None when the service has none)."""
    if document is None:
        return None
    kept = set(operations)
    pages = document.get("pagination", {})
    return {**document, "pagination": {k: v for k, v in pages.items() if k in kept}}


def cut_waiters(document: Mapping[str, Any] | None, operations: Iterable[str]) -> Any:
    """The waiters that poll a kept operation only (None when the service has none)."""
    if document is None:
        return None
    kept = set(operations)
    waiters = document.get("waiters", {})
    return {
        **document,
        "waiters": {k: v for k, v in waiters.items() if v.get("operation") in kept},
    }


def cut_document(
    service: str, botocore_version: str, api_version: str, full: Mapping[str, Any]
) -> Result[dict[str, Any], str]:
    """The document cached for `service`: its cut model files and what they were cut from.

    `full` maps each of `PARTS` to botocore's document (None where the service has none).
    """
    operations = OPERATIONS.get(service)
    if operations is None:
        return Failure(f"ohf calls no operation of {service}")
    cut = cut_service(full.get(SERVICE) or {}, operations)
    if isinstance(cut, Failure):
        return Failure(f"botocore {botocore_version}'s {service} model: {cut.failure()}")
    model = cut.unwrap()
    kept = model["operations"].keys()
    return Success(
        {
            **_header(service, botocore_version),
            "api_version": api_version,
            SERVICE: model,
            PAGINATORS: cut_paginators(full.get(PAGINATORS), kept),
            WAITERS: cut_waiters(full.get(WAITERS), kept),
            RULES: full.get(RULES),
        }
    )


def _header(service: str, botocore_version: str) -> dict[str, Any]:
    """What every cached document starts with: what it is a cut of, and by which rules."""
    return {
        "format": FORMAT,
        "service": service,
        "botocore": botocore_version,
        "digest": digest(service),
    }


def _header_problem(document: Any, service: str, botocore_version: str) -> str | None:
    if not isinstance(document, dict):
        return "not a JSON object"
    for key, value in _header(service, botocore_version).items():
        if document.get(key) != value:
            return f"{key} is {document.get(key)!r}, not {value!r}"
    return None


def check_document(
    document: Any, service: str, botocore_version: str
) -> Result[dict[str, Any], str]:
    """`document` if it is the cut this ohf makes of this botocore's `service` model, whole:
    its operations all there, every shape they name present, paginators and waiters naming
    only operations it has; else why not."""
    problem = _header_problem(document, service, botocore_version)
    if problem is not None:
        return Failure(problem)
    model = document.get(SERVICE)
    if not isinstance(model, dict) or not isinstance(document.get("api_version"), str):
        return Failure("no service model or API version")
    operations = model.get("operations")
    shapes = model.get("shapes")
    if not isinstance(operations, dict) or not isinstance(shapes, dict):
        return Failure("no operations or shapes")
    missing = sorted(OPERATIONS[service] - operations.keys())
    if missing:
        return Failure(f"no operation {', '.join(missing)}")
    try:
        reachable(shapes, [r for op in operations.values() for r in _roots(op)])
    except (KeyError, TypeError, AttributeError) as exc:
        return Failure(f"a shape is missing or malformed: {exc}")
    try:
        pages = (document.get(PAGINATORS) or {}).get("pagination", {})
        waits = (document.get(WAITERS) or {}).get("waiters", {})
        named = {*pages.keys(), *(w.get("operation") for w in waits.values())}
    except AttributeError as exc:
        return Failure(f"malformed paginators or waiters: {exc}")
    strays = sorted(str(n) for n in named - operations.keys())
    if strays:
        return Failure(f"paginators or waiters of operations it lacks: {', '.join(strays)}")
    return Success(document)


def unusable_document(service: str, botocore_version: str, why: str) -> dict[str, Any]:
    """What is cached when no cut can be made of a botocore version's model, so processes
    after the first go straight to the full model instead of trying again."""
    return {**_header(service, botocore_version), "unusable": why}


def unusable_reason(document: Any, service: str, botocore_version: str) -> str | None:
    """Why no cut can be made, if `document` is this ohf's record of that; else None."""
    if not isinstance(document, dict) or not isinstance(document.get("unusable"), str):
        return None
    if unusable_document(service, botocore_version, document["unusable"]) != document:
        return None
    return str(document["unusable"])


def endpoint_services() -> tuple[str, ...]:
    """The services whose clients an ohf session makes: ohf's, and its credential providers'.
    A client of any other service is made on a session with botocore's whole endpoints."""
    return (*sorted(OPERATIONS), *CREDENTIAL_SERVICES)


def cut_endpoints(
    botocore_version: str, endpoints: Mapping[str, Any], prefixes: Iterable[str]
) -> Result[dict[str, Any], str]:
    """The document cached for botocore's endpoints.json: every partition whole (regions,
    defaults, DNS suffixes) but its services cut to those with these endpoint prefixes."""
    kept = sorted(set(prefixes))
    partitions = endpoints.get("partitions")
    if not isinstance(partitions, list) or not all(
        isinstance(p, dict) and isinstance(p.get("services"), dict) for p in partitions
    ):
        return Failure(f"botocore {botocore_version}'s endpoints.json has no partitions")
    return Success(
        {
            **_header(ENDPOINTS, botocore_version),
            "prefixes": kept,
            ENDPOINTS: {
                **endpoints,
                "partitions": [
                    {**p, "services": {k: v for k, v in p["services"].items() if k in kept}}
                    for p in partitions
                ],
            },
        }
    )


def check_endpoints(document: Any, botocore_version: str) -> Result[dict[str, Any], str]:
    """`document` if it is the cut endpoints this ohf makes of this botocore's; else why not."""
    problem = _header_problem(document, ENDPOINTS, botocore_version)
    if problem is not None:
        return Failure(problem)
    prefixes = document.get("prefixes")
    partitions = (document.get(ENDPOINTS) or {}).get("partitions")
    if not isinstance(prefixes, list) or not isinstance(partitions, list) or not partitions:
        return Failure("no prefixes or partitions")
    for partition in partitions:
        if not isinstance(partition, dict) or not all(
            isinstance(partition.get(k), dict) for k in ("services", "regions", "defaults")
        ):
            return Failure("a partition without services, regions or defaults")
        if not partition["services"].keys() <= set(prefixes):
            return Failure(f"partition {partition.get('partition')!r} has services not kept")
    return Success(document)
