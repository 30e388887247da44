"""The boto3 interpreter: performs cloud intents against AWS (or an AWS-compatible endpoint).

boto3 is imported lazily, on the first intent that needs AWS, so calls that do not talk to AWS
(getAvailableTemplates, bad input) never pay for it. Every AWS exception becomes a `Failure`.
Instances are launched with RunInstances, EC2 Fleet (CreateFleet), Spot Fleet
(RequestSpotFleet) or an Auto Scaling group; fleets and groups are described in batches, one
call per API for any number of them.

Transient errors (throttling, AWS 5xx, no connection, timeouts) are retried here, per AWS call,
with exponential backoff and full jitter, within `[aws] max_attempts` and a time budget per HF
call (`[aws] retry_budget`); botocore itself does not retry them, so the two never multiply.
Every call ohf retries is idempotent: launches and creations carry a ClientToken or a name of
ohf's own, describes read, terminations and capacity changes set absolute values. Capacity,
quota and permission errors are never retried: the core reports them.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.codes import (
    CAPACITY_CODES,
    CONNECTION_CODE,
    CREDENTIAL_CODES,
    PERMISSION_CODES,
    TRANSIENT_CODES,
)
from ohf.config import AwsConfig
from ohf.intents import (
    CreateFleet,
    CreateLaunchTemplate,
    DeleteFleet,
    DeleteLaunchTemplate,
    DescribeFleets,
    DescribeInstances,
    DescribeSpotSignals,
    FleetSpec,
    Intent,
    LaunchSpec,
    ModifyFleetTarget,
    Override,
    ResolveImage,
    RunInstances,
    TerminateInGroup,
    TerminateInstances,
)
from ohf.model import (
    REQUEST_TAG,
    TEMPLATE_TAG,
    FleetInfo,
    FleetLaunch,
    Instance,
    InstanceState,
    OhfError,
    SpotSignal,
)

log = logging.getLogger("ohf.aws")

FILTER_VALUES_MAX = 200  # EC2's limit on values in one filter
PAGE_SIZE = 1000  # DescribeInstances' largest page
TERMINATE_BATCH = 1000
_INSTANCE_ID = re.compile(r"i-[0-9a-f]+")
_STATES = frozenset({"pending", "running", "stopping", "stopped", "shutting-down", "terminated"})

Answer = Result[Any, OhfError]
CallHook = Callable[[str], None]


def chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def instance_of(raw: dict[str, Any]) -> Instance:
    """An `Instance` observation from one DescribeInstances/RunInstances item."""
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", []) or []}
    state = raw.get("State", {}).get("Name", "pending")
    launched = raw.get("LaunchTime")
    return Instance(
        instance_id=raw["InstanceId"],
        state=state if state in _STATES else "pending",
        instance_type=raw.get("InstanceType", ""),
        private_ip=raw.get("PrivateIpAddress") or None,
        public_ip=raw.get("PublicIpAddress") or None,
        private_dns=raw.get("PrivateDnsName", "") or "",
        launch_time=int(launched.timestamp()) if launched is not None else 0,
        request_id=tags.get(REQUEST_TAG),
        template_id=tags.get(TEMPLATE_TAG),
        lifecycle="spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand",
        state_reason=(raw.get("StateReason") or {}).get("Message", ""),
    )


def network_interfaces(spec: LaunchSpec) -> list[dict[str, Any]]:
    """EFA interfaces, one per network card; an `efa-only` one is never the primary interface."""
    placement: dict[str, Any] = {}
    if spec.subnet_id:
        placement["SubnetId"] = spec.subnet_id
    if spec.security_group_ids:
        placement["Groups"] = list(spec.security_group_ids)
    kind = spec.interface_type if spec.interface_type not in (None, "interface") else "efa"
    cards = max(spec.efa_count or 1, 1)
    if kind == "efa-only":
        primary = {"DeviceIndex": 0, "NetworkCardIndex": 0, "InterfaceType": "interface"}
        extra = [
            {"DeviceIndex": 1, "NetworkCardIndex": card, "InterfaceType": "efa-only"}
            for card in range(cards)
        ]
        return [{**i, **placement} for i in (primary, *extra)]
    return [
        {"DeviceIndex": 0 if card == 0 else 1, "NetworkCardIndex": card, "InterfaceType": kind}
        | placement
        for card in range(cards)
    ]


def run_instances_params(spec: LaunchSpec, root_device: str | None) -> dict[str, Any]:
    """RunInstances keyword arguments for a `LaunchSpec` (pure; the device name is looked up)."""
    tags = [{"Key": k, "Value": v} for k, v in spec.tags]
    params: dict[str, Any] = {
        "MinCount": spec.min_count,
        "MaxCount": spec.max_count,
        "ClientToken": spec.client_token,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    optional = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,
        "KeyName": spec.key_name,
        "UserData": spec.user_data,
        "EbsOptimized": spec.ebs_optimized,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if spec.instance_profile:
        key = "Arn" if spec.instance_profile.startswith("arn:") else "Name"
        params["IamInstanceProfile"] = {key: spec.instance_profile}
    if spec.spot is not None:
        options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if spec.spot.max_price:
            options["MaxPrice"] = spec.spot.max_price
        params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
    if spec.root_volume is not None and root_device:
        ebs = {
            "VolumeSize": spec.root_volume.size_gib,
            "VolumeType": spec.root_volume.volume_type,
            "Iops": spec.root_volume.iops,
            "DeleteOnTermination": True,
        }
        params["BlockDeviceMappings"] = [
            {"DeviceName": root_device, "Ebs": {k: v for k, v in ebs.items() if v is not None}}
        ]
    placement = {"GroupName": spec.placement_group, "Tenancy": spec.tenancy}
    if any(placement.values()):
        params["Placement"] = {k: v for k, v in placement.items() if v}
    if spec.launch_template_id:
        params["LaunchTemplate"] = {
            "LaunchTemplateId": spec.launch_template_id,
            "Version": spec.launch_template_version or "$Default",
        }
    if (spec.interface_type and spec.interface_type != "interface") or spec.efa_count:
        params["NetworkInterfaces"] = network_interfaces(spec)
    else:
        if spec.subnet_id:
            params["SubnetId"] = spec.subnet_id
        if spec.security_group_ids:
            params["SecurityGroupIds"] = list(spec.security_group_ids)
    return params


ClientGetter = Callable[[str], Any]


def warm(clients: ClientGetter, service: str = "ec2") -> None:
    """Make a client now (importing boto3), ignoring errors: first use reports them."""
    with contextlib.suppress(Exception):
        clients(service)


def client_getter(config: AwsConfig, on_call: CallHook | None) -> ClientGetter:
    """A function giving one boto3 client per service, made on first use.

    With `role_arn` the clients share one session whose credentials come from STS AssumeRole,
    so the role is assumed once (on the first AWS call) for all of them, and again only when
    the temporary credentials near their expiry (a long-lived process such as `ohf serve`).
    """
    cache: dict[str, Any] = {}
    session: list[Any] = []
    lock = threading.Lock()  # `ohf serve` makes clients from worker threads

    def get(service: str) -> Any:
        with lock:
            if service not in cache:
                if config.role_arn is None:
                    cache[service] = _make_client(config, service, on_call)
                else:
                    if not session:
                        session.append(assumed_session(config, on_call))
                    cache[service] = _make_client(config, service, on_call, session[0])
            return cache[service]

    return get


# Services whose calls go through ohf's retry layer; the DynamoDB store keeps botocore's.
RETRIED_SERVICES = frozenset({"ec2", "ssm", "autoscaling"})


def _botocore_config(config: AwsConfig, service: str) -> Any:
    import botocore.config

    # One attempt per botocore call where ohf retries (its backoff, budget and breaker see
    # every failure); botocore's standard retries elsewhere (the DynamoDB store, STS).
    retries: dict[str, Any] = (
        {"total_max_attempts": 1, "mode": "standard"}
        if service in RETRIED_SERVICES
        else {"max_attempts": config.max_attempts, "mode": "standard"}
    )
    return botocore.config.Config(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries=retries,
    )


def source_session(config: AwsConfig) -> Any:
    """A boto3 session with the configured credentials: the profile (in `credentials_file`, if
    set), else the default chain (environment, shared files, instance or container role)."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    if config.credentials_file:
        core.set_config_variable("credentials_file", config.credentials_file)
    return boto3.session.Session(
        botocore_session=core, profile_name=config.profile, region_name=config.region
    )


def assume_role_params(config: AwsConfig) -> dict[str, str]:
    """AssumeRole's arguments besides the role: the session name and the external id, if any."""
    params = {"RoleSessionName": config.role_session_name}
    if config.external_id:
        params["ExternalId"] = config.external_id
    return params


def assumed_credentials(config: AwsConfig, source: Any, on_call: CallHook | None) -> Any:
    """Credentials of `config.role_arn`, assumed with `source`'s credentials on first use and
    refreshed before they expire; STS is asked in the config's region, at its endpoint."""
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
    from botocore.exceptions import ClientError, NoCredentialsError

    credentials = source.get_credentials()
    if credentials is None:
        raise NoCredentialsError()
    region = config.region or source.region_name

    def sts(service: str, **keys: Any) -> Any:
        client = source.client(
            service,
            region_name=region,
            endpoint_url=config.endpoint_url,
            config=_botocore_config(config, service),
            **keys,
        )
        if on_call is not None:
            client.meta.events.register("before-call", lambda model, **_: on_call(model.name))
        return client

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts,
        source_credentials=credentials,
        role_arn=config.role_arn,
        extra_args=assume_role_params(config),
    )

    def fetch() -> Any:
        try:
            return fetcher.fetch_credentials()
        except ClientError as exc:
            # The refusal surfaces from whichever call needed credentials: say which role.
            exc.ohf_role_arn = config.role_arn
            raise

    return DeferredRefreshableCredentials(refresh_using=fetch, method="assume-role")


def assumed_session(config: AwsConfig, on_call: CallHook | None, source: Any = None) -> Any:
    """A boto3 session whose credentials are `config.role_arn`'s (see `assumed_credentials`),
    assumed with those of `source` (default: `source_session(config)`)."""
    import boto3
    import botocore.session

    source = source or source_session(config)
    core = botocore.session.Session()
    # botocore has no public setter for refreshable credentials; this is the attribute its
    # own `get_credentials` caches them in, so every client of the session uses them.
    core._credentials = assumed_credentials(config, source, on_call)
    return boto3.session.Session(
        botocore_session=core, region_name=config.region or source.region_name
    )


def _make_client(
    config: AwsConfig, service: str, on_call: CallHook | None, session: Any = None
) -> Any:
    client: Any = (session or source_session(config)).client(
        service, endpoint_url=config.endpoint_url, config=_botocore_config(config, service)
    )
    if on_call is not None:
        client.meta.events.register("before-call", lambda model, **_: on_call(model.name))
    return client


# --- Errors -----------------------------------------------------------------------------------

_AUTOSCALING_OPERATIONS = frozenset(
    {
        "CreateAutoScalingGroup",
        "DescribeAutoScalingGroups",
        "UpdateAutoScalingGroup",
        "TerminateInstanceInAutoScalingGroup",
        "DeleteAutoScalingGroup",
        "DescribeScalingActivities",
    }
)
_SSM_OPERATIONS = frozenset({"GetParameter", "GetParameters"})
_STS_OPERATIONS = frozenset({"AssumeRole", "GetCallerIdentity"})
# AWS names the denied action in the message: "... is not authorized to perform: ec2:RunInstances".
_DENIED_ACTION = re.compile(r"perform:?\s+([a-z0-9-]+:[A-Za-z0-9*]+)")
_MESSAGE_KEPT = 300


def iam_action(operation: str, message: str = "") -> str:
    """The IAM action a refused call needed: the one AWS names, else `service:Operation`."""
    named = _DENIED_ACTION.search(message)
    if named:
        return named.group(1)
    if operation in _AUTOSCALING_OPERATIONS:
        return f"autoscaling:{operation}"
    if operation in _SSM_OPERATIONS:
        return f"ssm:{operation}"
    if operation in _STS_OPERATIONS:
        return f"sts:{operation}"
    return f"ec2:{operation}"


def _assume_role_error(operation: str, code: str, text: str, role: str) -> OhfError:
    """A refused AssumeRole, whichever call needed the role's credentials."""
    if code in PERMISSION_CODES:
        hint = (
            "the role's trust policy must allow the identity ohf runs as (with the configured "
            "external_id, if the policy asks for one), and that identity needs sts:AssumeRole "
            "on the role"
        )
    elif code in CREDENTIAL_CODES:
        hint = (
            "AWS rejected the credentials used to assume it: check the profile/credentials_file, "
            "the environment's keys or the instance role, and that they have not expired"
        )
    else:
        hint = "AWS refused the role"
    return OhfError(
        message=(
            f"{operation}: cannot assume role {role} (sts:AssumeRole, {code}): {hint}. "
            f"AWS: {text[:_MESSAGE_KEPT]}"
        ),
        code=code,
    )


def _client_error(operation: str, exc: Any) -> OhfError:
    err = exc.response.get("Error", {}) or {}
    code = str(err.get("Code", "Unknown"))
    text = str(err.get("Message", ""))
    status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    api = str(getattr(exc, "operation_name", "") or operation)
    role = getattr(exc, "ohf_role_arn", None)
    if api == "AssumeRole" and role and code not in TRANSIENT_CODES and status < 500:
        return _assume_role_error(operation, code, text, str(role))
    if code in PERMISSION_CODES:
        action = iam_action(api, text)
        return OhfError(
            message=(
                f"{operation}: permission denied: the AWS identity ohf runs as lacks {action} "
                f"({code}); grant it in the IAM policy. AWS: {text[:_MESSAGE_KEPT]}"
            ),
            code=code,
        )
    if code in CREDENTIAL_CODES:
        return OhfError(
            message=(
                f"{operation}: AWS rejected the credentials ({code}): {text[:_MESSAGE_KEPT]}; "
                "check [aws] profile/credentials_file, the environment's keys or the instance "
                "role, and that they have not expired"
            ),
            code=code,
        )
    if status >= 500 and code not in TRANSIENT_CODES and code not in CAPACITY_CODES:
        # An AWS-side failure under a code of its own: treat it as the 5xx it is. EC2 sends
        # InsufficientInstanceCapacity and its kin as 5xx too: those keep their code, so the
        # core tries the next pool or provider instead of waiting for a launch that never was.
        return OhfError(
            message=f"{operation}: {code} (HTTP {status}): {text}", code="InternalError"
        )
    return OhfError(message=f"{operation}: {code}: {text}", code=code)


def _failure(operation: str, exc: Exception) -> Failure[OhfError]:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        return Failure(_client_error(operation, exc))
    if isinstance(exc, NoRegionError):
        return Failure(
            OhfError(
                message=f"{operation}: no AWS region configured (set [aws] region or AWS_REGION)",
                code="config",
            )
        )
    if isinstance(exc, NoCredentialsError):
        return Failure(
            OhfError(
                message=(
                    f"{operation}: no AWS credentials found: set [aws] profile or "
                    "credentials_file, AWS_* environment variables, or give the host an "
                    "instance role"
                ),
                code="credentials",
            )
        )
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return Failure(
            OhfError(
                message=f"{operation}: AWS did not answer in time: {exc}", code=CONNECTION_CODE
            )
        )
    return Failure(
        OhfError(message=f"{operation}: {type(exc).__name__}: {exc}", code=CONNECTION_CODE)
    )


def _aws_errors() -> tuple[type[Exception], ...]:
    """Every exception a botocore call raises for AWS's answer (or its absence)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (ClientError, BotoCoreError, ResponseParserError)


def _timed(operation: str, call: Callable[[], Any]) -> Answer:
    start = time.perf_counter()
    try:
        value = call()
    except _aws_errors() as exc:
        result = _failure(operation, exc)
        log.debug("aws %s failed in %.3fs: %s", operation, time.perf_counter() - start, exc)
        return result
    log.debug("aws %s ok in %.3fs", operation, time.perf_counter() - start)
    return Success(value)


# --- Retries ----------------------------------------------------------------------------------

BACKOFF_BASE = 0.5  # seconds: the first retry waits up to this, each next one up to twice more
BACKOFF_CAP = 8.0  # seconds: no single wait is longer


class Retries(msgspec.Struct, kw_only=True):
    """One HF call's retry budget and its clock (mutable: it counts what the call has spent).

    `sleep`, `monotonic` and `random` are injectable so tests never sleep and can count delays.
    """

    max_attempts: int
    budget: float
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random
    started: float | None = None
    slept: float = 0.0
    retried: int = 0


def is_transient_exception(exc: Exception) -> bool:
    """Throttling, an AWS-side (5xx) failure, or no (timely) connection to the endpoint."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        return _client_error("", exc).code in TRANSIENT_CODES
    return isinstance(exc, ConnectionError | HTTPClientError)


def backoff(retries: Retries, attempt: int) -> float | None:
    """The wait before retry number `attempt` (0-based), or None once attempts or time are out.

    Full jitter (a uniform draw up to the exponential ceiling) spreads the retries of many
    processes throttled at once; the wait is cut to what the budget has left.
    """
    if attempt + 1 >= retries.max_attempts:
        return None
    started = retries.started if retries.started is not None else retries.monotonic()
    spent = max(retries.monotonic() - started, retries.slept)
    left = retries.budget - spent
    if left <= 0:
        return None
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * float(1 << min(attempt, 30)))
    return min(retries.random() * ceiling, left)


def retried(retries: Retries, operation: str, call: Callable[[], Any]) -> Any:
    """`call()`, again after a backoff while it fails transiently; the last error is raised."""
    if retries.started is None:
        retries.started = retries.monotonic()
    attempt = 0
    while True:
        try:
            return call()
        except _aws_errors() as exc:
            delay = backoff(retries, attempt) if is_transient_exception(exc) else None
            if delay is None:
                raise
            log.info("aws %s: %s; retry %d in %.2fs", operation, exc, attempt + 1, delay)
            retries.sleep(delay)
            retries.slept += delay
            retries.retried += 1
            attempt += 1


class _RetryingPaginator:
    """A paginator whose whole pagination is retried (pages are read to the end at once)."""

    def __init__(self, paginator: Any, retries: Retries, operation: str) -> None:
        self._paginator = paginator
        self._retries = retries
        self._operation = operation

    def paginate(self, **params: Any) -> list[Any]:
        return retried(  # type: ignore[no-any-return]
            self._retries, self._operation, lambda: list(self._paginator.paginate(**params))
        )


class _RetryingClient:
    """A boto3 client whose API calls and paginations retry transient errors."""

    def __init__(self, client: Any, retries: Retries) -> None:
        self._client = client
        self._retries = retries

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_paginator":
            return lambda op: _RetryingPaginator(attr(op), self._retries, op)
        api = self._client.meta.method_to_api_mapping.get(name)
        if api is None:
            return attr
        return lambda *args, **kwargs: retried(self._retries, api, partial(attr, *args, **kwargs))


def retrying(clients: ClientGetter, retries: Retries) -> ClientGetter:
    """`clients` whose clients retry transient errors within `retries`' budget."""
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = _RetryingClient(clients(service), retries)
        return cache[service]

    return get


def _root_device(clients: ClientGetter, image_id: str | None) -> str | None:
    if not image_id:
        return None
    answer = _timed("DescribeImages", lambda: clients("ec2").describe_images(ImageIds=[image_id]))
    images: list[dict[str, Any]] = answer.map(lambda r: r.get("Images", [])).value_or([])
    return images[0].get("RootDeviceName", "/dev/xvda") if images else "/dev/xvda"


def _run(clients: ClientGetter, intent: RunInstances) -> Answer:
    spec = intent.spec
    root = _root_device(clients, spec.image_id) if spec.root_volume else None
    params = run_instances_params(spec, root)
    return _timed("RunInstances", lambda: clients("ec2").run_instances(**params)).map(
        lambda r: tuple(instance_of(i) for i in r.get("Instances", []))
    )


def _describe_pages(clients: ClientGetter, filters: list[dict[str, Any]]) -> list[Instance]:
    paginator = clients("ec2").get_paginator("describe_instances")
    pages = paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE})
    return [instance_of(i) for page in pages for r in page["Reservations"] for i in r["Instances"]]


def _describe(clients: ClientGetter, intent: DescribeInstances) -> Answer:
    queries = [
        [{"Name": f"tag:{REQUEST_TAG}", "Values": list(c)}]
        for c in chunks(intent.request_ids, FILTER_VALUES_MAX)
    ] + [
        [{"Name": "instance-id", "Values": list(c)}]
        for c in chunks(intent.instance_ids, FILTER_VALUES_MAX)
    ]
    found: dict[str, Instance] = {}
    for filters in queries:
        answer = _timed("DescribeInstances", partial(_describe_pages, clients, filters))
        if isinstance(answer, Failure):
            return answer
        found.update((i.instance_id, i) for i in answer.unwrap())
    return Success(tuple(found.values()))


def _terminate_batch(ec2: Any, ids: tuple[str, ...]) -> Answer:
    """Terminate `ids`; ids EC2 does not know are dropped and retried once, reported gone."""
    gone: set[str] = set()
    pending = ids
    for _ in range(3):
        if not pending:
            break
        answer = _timed(
            "TerminateInstances", partial(ec2.terminate_instances, InstanceIds=list(pending))
        )
        if isinstance(answer, Success):
            states: dict[str, InstanceState] = {
                i["InstanceId"]: i["CurrentState"]["Name"]
                for i in answer.unwrap().get("TerminatingInstances", [])
            }
            return Success({**states, **dict.fromkeys(gone, "gone")})
        error = answer.failure()
        if not error.code.startswith("InvalidInstanceID"):
            return answer
        missing = set(_INSTANCE_ID.findall(error.message)) & set(pending)
        if not missing:
            return answer
        gone |= missing
        pending = tuple(i for i in pending if i not in missing)
    return Success(dict.fromkeys(gone, "gone"))


def _terminate(clients: ClientGetter, intent: TerminateInstances) -> Answer:
    states: dict[str, InstanceState] = {}
    for batch in chunks(intent.instance_ids, TERMINATE_BATCH):
        answer = _terminate_batch(clients("ec2"), batch)
        if isinstance(answer, Failure):
            return answer
        states.update(answer.unwrap())
    return Success(states)


def _resolve(clients: ClientGetter, intent: ResolveImage) -> Answer:
    return _timed("GetParameter", lambda: clients("ssm").get_parameter(Name=intent.parameter)).map(
        lambda r: str(r["Parameter"]["Value"])
    )


# --- Launch templates -------------------------------------------------------------------------

LT_NOT_FOUND = frozenset(
    {
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateId.Malformed",
        "InvalidLaunchTemplateName.NotFoundException",
    }
)
LT_EXISTS = "InvalidLaunchTemplateName.AlreadyExistsException"


def aws_tags(tags: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """EC2's `[{"Key": k, "Value": v}]` form of (key, value) pairs."""
    return [{"Key": k, "Value": v} for k, v in tags]


def launch_template_data(spec: LaunchSpec, root_device: str | None) -> dict[str, Any]:
    """LaunchTemplateData for `spec`: its RunInstances parameters less counts, type and subnet.

    The fleet or group picks type, subnet and market per override, so those stay out of the
    template (an Auto Scaling group with a mixed instances policy refuses a template that asks
    for spot). User data goes in base64: boto3 encodes it for RunInstances only.
    """
    bare = msgspec.structs.replace(
        spec, instance_type=None, subnet_id=None, spot=None, launch_template_id=None
    )
    params = run_instances_params(bare, root_device)
    for key in ("MinCount", "MaxCount", "ClientToken"):
        params.pop(key, None)
    if spec.user_data is not None:
        params["UserData"] = base64.b64encode(spec.user_data.encode()).decode("ascii")
    return params


def _create_launch_template(clients: ClientGetter, intent: CreateLaunchTemplate) -> Answer:
    spec = intent.spec
    root = _root_device(clients, spec.image_id) if spec.root_volume else None
    params: dict[str, Any] = {
        "LaunchTemplateName": intent.name,
        "LaunchTemplateData": launch_template_data(spec, root),
        "ClientToken": spec.client_token,
    }
    if spec.tags:
        params["TagSpecifications"] = [
            {"ResourceType": "launch-template", "Tags": aws_tags(spec.tags)}
        ]
    ec2 = clients("ec2")
    answer = _timed("CreateLaunchTemplate", partial(ec2.create_launch_template, **params))
    if isinstance(answer, Failure) and answer.failure().code == LT_EXISTS:
        # A retry after a lost answer: the name is ohf's (derived from the request id).
        return _timed(
            "DescribeLaunchTemplates",
            partial(ec2.describe_launch_templates, LaunchTemplateNames=[intent.name]),
        ).map(lambda r: str(r["LaunchTemplates"][0]["LaunchTemplateId"]))
    return answer.map(lambda r: str(r["LaunchTemplate"]["LaunchTemplateId"]))


def _delete_launch_template(clients: ClientGetter, intent: DeleteLaunchTemplate) -> Answer:
    answer = _timed(
        "DeleteLaunchTemplate",
        partial(clients("ec2").delete_launch_template, LaunchTemplateId=intent.launch_template_id),
    )
    if isinstance(answer, Failure) and answer.failure().code in LT_NOT_FOUND:
        return Success(None)
    return answer.map(lambda _: None)


# --- Creating fleets and groups ---------------------------------------------------------------

# IBM's camelCase allocation strategies in EC2 Fleet's and Auto Scaling's spelling. Spot Fleet
# speaks camelCase itself. Auto Scaling has no "diversified": the group's default is used.
EC2_FLEET_STRATEGY = {
    "capacityOptimized": "capacity-optimized",
    "capacityOptimizedPrioritized": "capacity-optimized-prioritized",
    "diversified": "diversified",
    "lowestPrice": "lowest-price",
    "priceCapacityOptimized": "price-capacity-optimized",
}
ON_DEMAND_STRATEGY = {"lowestPrice": "lowest-price", "prioritized": "prioritized"}


def _kebab(strategy: str | None, table: dict[str, str]) -> str | None:
    """`strategy` in AWS's dashed spelling (values already dashed pass through)."""
    return None if strategy is None else table.get(strategy, strategy)


def _launch_template_spec(spec: FleetSpec) -> dict[str, str]:
    return {"LaunchTemplateId": spec.launch_template_id, "Version": spec.launch_template_version}


def _split(spec: FleetSpec) -> tuple[int, int]:
    """(on-demand units, spot units) of the target."""
    on_demand = min(max(spec.on_demand_units, 0), spec.target_units)
    return on_demand, spec.target_units - on_demand


def _fleet_override(override: Override, price_key: str, price: str | None) -> dict[str, Any]:
    """One LaunchTemplateOverrides item of an EC2 Fleet (`MaxPrice`) or Spot Fleet (`SpotPrice`)."""
    item: dict[str, Any] = {
        "InstanceType": override.instance_type,
        "WeightedCapacity": float(override.weight),
    }
    optional = {
        "SubnetId": override.subnet_id,
        "Priority": None if override.priority is None else float(override.priority),
        price_key: price,
    }
    if price_key == "MaxPrice":  # only EC2 Fleet overrides take an AMI
        optional["ImageId"] = override.image_id
    return item | {k: v for k, v in optional.items() if v is not None}


def ec2_fleet_params(spec: FleetSpec) -> dict[str, Any]:
    """CreateFleet keyword arguments for `spec` (pure)."""
    on_demand, spot = _split(spec)
    params: dict[str, Any] = {
        "Type": spec.fleet_type,
        "ClientToken": spec.client_token,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": [
                    _fleet_override(o, "MaxPrice", spec.max_spot_price) for o in spec.overrides
                ],
            }
        ],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": spec.target_units,
            "OnDemandTargetCapacity": on_demand,
            "SpotTargetCapacity": spot,
            "DefaultTargetCapacityType": "spot" if spot else "on-demand",
        },
    }
    strategy = _kebab(spec.allocation_strategy, EC2_FLEET_STRATEGY)
    spot_options: dict[str, Any] = {"AllocationStrategy": strategy} if strategy else {}
    if strategy == "lowest-price" and spec.pools_count:
        spot_options["InstancePoolsToUseCount"] = spec.pools_count
    if spot_options:
        params["SpotOptions"] = spot_options
    on_demand_strategy = _kebab(spec.allocation_strategy_on_demand, ON_DEMAND_STRATEGY)
    if on_demand_strategy:
        params["OnDemandOptions"] = {"AllocationStrategy": on_demand_strategy}
    if spec.fleet_type == "maintain":
        # Lowering the target (before a return) must never make AWS pick machines to kill.
        # (AWS takes the policy for maintain fleets only; only those can be lowered.)
        params["ExcessCapacityTerminationPolicy"] = "no-termination"
    if spec.tags:
        params["TagSpecifications"] = [{"ResourceType": "fleet", "Tags": aws_tags(spec.tags)}]
    return params


def spot_fleet_config(spec: FleetSpec) -> dict[str, Any]:
    """RequestSpotFleet's SpotFleetRequestConfig for `spec` (pure)."""
    on_demand, _ = _split(spec)
    strategy = spec.allocation_strategy or "lowestPrice"
    config: dict[str, Any] = {
        "IamFleetRole": spec.fleet_role,
        "AllocationStrategy": strategy,
        "TargetCapacity": spec.target_units,
        "OnDemandTargetCapacity": on_demand,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": [
                    _fleet_override(o, "SpotPrice", spec.max_spot_price) for o in spec.overrides
                ],
            }
        ],
        # Spot Fleet has no `instant` type: a one-time `request` is the nearest.
        "Type": "maintain" if spec.fleet_type == "maintain" else "request",
        "ClientToken": spec.client_token,
    }
    if spec.fleet_type == "maintain":
        config["ExcessCapacityTerminationPolicy"] = "noTermination"
    optional: dict[str, Any] = {
        "SpotPrice": spec.max_spot_price,
        "ValidUntil": None
        if spec.valid_until is None
        else datetime.fromtimestamp(spec.valid_until, tz=UTC),
        "InstancePoolsToUseCount": spec.pools_count if strategy == "lowestPrice" else None,
        "OnDemandAllocationStrategy": spec.allocation_strategy_on_demand,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    if spec.tags:
        config["TagSpecifications"] = [
            {"ResourceType": "spot-fleet-request", "Tags": aws_tags(spec.tags)}
        ]
    return config


def _group_overrides(spec: FleetSpec) -> list[dict[str, str]]:
    """One override per instance type (groups take subnets separately), preferred first."""
    ranked = sorted(spec.overrides, key=lambda o: (o.priority is None, o.priority or 0))
    first: dict[str, Override] = {}
    for override in ranked:
        first.setdefault(override.instance_type, override)
    return [
        {"InstanceType": o.instance_type, "WeightedCapacity": str(o.weight)} for o in first.values()
    ]


def group_params(spec: FleetSpec) -> dict[str, Any]:
    """CreateAutoScalingGroup keyword arguments for `spec` (pure).

    Sizes are in capacity units when types have weights. MaxSize is the target: to reach it
    with weighted types AWS may go over MaxSize by up to the largest weight. Instances are
    protected from scale-in, so lowering the desired capacity never makes AWS pick machines
    to end (TerminateInstanceInAutoScalingGroup still ends the ones ohf names).
    """
    on_demand, spot = _split(spec)
    distribution: dict[str, Any] = {
        "OnDemandBaseCapacity": on_demand,
        "OnDemandPercentageAboveBaseCapacity": 0 if spot else 100,
    }
    strategy = _kebab(spec.allocation_strategy, EC2_FLEET_STRATEGY)
    optional = {
        "SpotAllocationStrategy": None if strategy == "diversified" else strategy,
        "SpotInstancePools": spec.pools_count if strategy == "lowest-price" else None,
        "OnDemandAllocationStrategy": _kebab(
            spec.allocation_strategy_on_demand, ON_DEMAND_STRATEGY
        ),
        "SpotMaxPrice": spec.max_spot_price,
    }
    distribution.update({k: v for k, v in optional.items() if v is not None})
    subnets = spec.subnets or tuple(
        dict.fromkeys(o.subnet_id for o in spec.overrides if o.subnet_id)
    )
    params: dict[str, Any] = {
        "AutoScalingGroupName": spec.name,
        "MinSize": 0,
        "MaxSize": max(spec.target_units, 1),
        "DesiredCapacity": spec.target_units,
        "NewInstancesProtectedFromScaleIn": True,
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": _launch_template_spec(spec),
                "Overrides": _group_overrides(spec),
            },
            "InstancesDistribution": distribution,
        },
        "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in spec.tags],
    }
    if subnets:
        params["VPCZoneIdentifier"] = ",".join(subnets)
    return params


def _pool_error(error: dict[str, Any]) -> str:
    """An instant fleet's launch error as "CODE: message (type/subnet)"."""
    text = f"{error.get('ErrorCode', 'Unknown')}: {error.get('ErrorMessage', '')}"
    override = (error.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
    place = "/".join(
        str(override[k]) for k in ("InstanceType", "SubnetId") if override.get(k) is not None
    )
    return f"{text} ({place})" if place else text


def fleet_launch(response: dict[str, Any], spec: FleetSpec) -> FleetLaunch:
    """The `FleetLaunch` of a CreateFleet answer: instances (instant fleets) and pool errors."""
    tags = dict(spec.tags)
    instances = tuple(
        Instance(
            instance_id=instance_id,
            state="pending",
            instance_type=item.get("InstanceType", ""),
            lifecycle="spot" if item.get("Lifecycle") == "spot" else "on-demand",
            request_id=tags.get(REQUEST_TAG),
            template_id=tags.get(TEMPLATE_TAG),
        )
        for item in response.get("Instances", []) or []
        for instance_id in item.get("InstanceIds", []) or []
    )
    errors = tuple(_pool_error(e) for e in response.get("Errors", []) or [])
    return FleetLaunch(fleet_id=str(response["FleetId"]), instances=instances, errors=errors)


def _create_ec2_fleet(clients: ClientGetter, spec: FleetSpec) -> Answer:
    params = ec2_fleet_params(spec)
    return _timed("CreateFleet", partial(clients("ec2").create_fleet, **params)).map(
        lambda r: fleet_launch(r, spec)
    )


def _request_spot_fleet(clients: ClientGetter, spec: FleetSpec) -> Answer:
    if not spec.fleet_role:
        return Failure(
            OhfError(
                message="RequestSpotFleet: a SpotFleet template needs fleetRole (an IAM role ARN)",
                code="config",
            )
        )
    config = spot_fleet_config(spec)
    return _timed(
        "RequestSpotFleet",
        partial(clients("ec2").request_spot_fleet, SpotFleetRequestConfig=config),
    ).map(lambda r: FleetLaunch(fleet_id=str(r["SpotFleetRequestId"])))


def _create_group(clients: ClientGetter, spec: FleetSpec) -> Answer:
    params = group_params(spec)
    answer = _timed(
        "CreateAutoScalingGroup",
        partial(clients("autoscaling").create_auto_scaling_group, **params),
    )
    if isinstance(answer, Failure) and answer.failure().code == "AlreadyExists":
        # Groups take no ClientToken: the name, unique per request, makes the retry safe.
        return Success(FleetLaunch(fleet_id=spec.name))
    return answer.map(lambda _: FleetLaunch(fleet_id=spec.name))


def _create_fleet(clients: ClientGetter, intent: CreateFleet) -> Answer:
    create = {"EC2Fleet": _create_ec2_fleet, "SpotFleet": _request_spot_fleet, "ASG": _create_group}
    return create[intent.spec.api](clients, intent.spec)


# --- Describing fleets and groups -------------------------------------------------------------

FLEET_IDS_PER_CALL = 100
GROUP_NAMES_PER_CALL = 100  # DescribeAutoScalingGroups' MaxRecords
ERRORS_KEPT = 5
# Codes for an id AWS does not know (any more), per API.
FLEET_NOT_FOUND = frozenset({"InvalidFleetId.NotFound", "InvalidFleetId.Malformed"})
SPOT_FLEET_NOT_FOUND = frozenset(
    {"InvalidSpotFleetRequestId.NotFound", "InvalidSpotFleetRequestId.Malformed"}
)
Items = list[dict[str, Any]]


def _paged(client: Any, operation: str, key: str, **params: Any) -> Items:
    """Every item under `key` of every page of a paginated describe call."""
    pages = client.get_paginator(operation).paginate(**params)
    return [item for page in pages for item in page.get(key, []) or []]


def _batched(
    name: str,
    describe: Callable[[tuple[str, ...]], Items],
    ids: tuple[str, ...],
    size: int,
    missing: frozenset[str],
) -> Answer:
    """Items for `ids`, `size` ids per call; ids AWS does not know are simply absent.

    Should AWS refuse a whole batch for one unknown id, that batch is asked again id by id
    (the only case with one call per fleet).
    """
    found: Items = []
    for batch in chunks(ids, size):
        answer = _timed(name, partial(describe, batch))
        if isinstance(answer, Failure) and answer.failure().code in missing:
            for one in batch:
                single = _timed(name, partial(describe, (one,)))
                if isinstance(single, Success):
                    found += single.unwrap()
                elif single.failure().code not in missing:
                    return single
            continue
        if isinstance(answer, Failure):
            return answer
        found += answer.unwrap()
    return Success(found)


def ec2_fleet_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeFleets item."""
    target = raw.get("TargetCapacitySpecification") or {}
    return FleetInfo(
        fleet_id=raw["FleetId"],
        api="EC2Fleet",
        state=raw.get("FleetState", ""),
        activity=raw.get("ActivityStatus", "") or "",
        target_units=int(target.get("TotalTargetCapacity", 0)),
        fulfilled_units=float(raw.get("FulfilledCapacity", 0.0) or 0.0),
        errors=tuple(_pool_error(e) for e in raw.get("Errors", []) or []),
    )


def spot_fleet_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeSpotFleetRequests item."""
    config = raw.get("SpotFleetRequestConfig") or {}
    return FleetInfo(
        fleet_id=raw["SpotFleetRequestId"],
        api="SpotFleet",
        state=raw.get("SpotFleetRequestState", ""),
        activity=raw.get("ActivityStatus", "") or "",
        target_units=int(config.get("TargetCapacity", 0)),
        fulfilled_units=float(config.get("FulfilledCapacity", 0.0) or 0.0),
    )


_GONE_FROM_GROUP = ("Terminat", "Detach", "Warmed")


def group_info(raw: dict[str, Any]) -> FleetInfo:
    """A `FleetInfo` from one DescribeAutoScalingGroups item: units held by live instances.

    An instance's units are its `WeightedCapacity`, else its type's weight in the group's
    overrides (AWS omits the field when no weights are set), else 1.
    """
    policy = (raw.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    weights = {
        o["InstanceType"]: o["WeightedCapacity"]
        for o in policy.get("Overrides", []) or []
        if o.get("InstanceType") and o.get("WeightedCapacity")
    }
    held = sum(
        float(i.get("WeightedCapacity") or weights.get(i.get("InstanceType", "")) or 1)
        for i in raw.get("Instances", []) or []
        if not str(i.get("LifecycleState", "")).startswith(_GONE_FROM_GROUP)
    )
    return FleetInfo(
        fleet_id=raw["AutoScalingGroupName"],
        api="ASG",
        # Status is only present while the group is being deleted.
        state="deleting" if raw.get("Status") else "active",
        target_units=int(raw.get("DesiredCapacity", 0)),
        fulfilled_units=held,
    )


def _history_errors(clients: ClientGetter, info: FleetInfo, created: datetime | None) -> FleetInfo:
    """`info` with the reasons in the fleet's error history (asked only for activity "error")."""
    ec2 = clients("ec2")
    since = created or datetime.now(UTC) - timedelta(hours=48)
    if info.api == "EC2Fleet":
        call = partial(
            ec2.describe_fleet_history,
            FleetId=info.fleet_id,
            StartTime=since,
            EventType="service-error",
        )
    else:
        call = partial(
            ec2.describe_spot_fleet_request_history,
            SpotFleetRequestId=info.fleet_id,
            StartTime=since,
            EventType="error",
        )
    answer = _timed("DescribeFleetHistory", call)
    if isinstance(answer, Failure):
        log.warning("no error history for %s: %s", info.fleet_id, answer.failure().message)
        return info
    records = sorted(
        answer.unwrap().get("HistoryRecords", []) or [],
        key=lambda r: r.get("Timestamp") or since,
        reverse=True,
    )
    reasons = [
        f"{e.get('EventSubType', 'error')}: {e.get('EventDescription', '')}"
        for e in (r.get("EventInformation") or {} for r in records)
    ]
    errors = tuple(dict.fromkeys((*info.errors, *reasons)))[:ERRORS_KEPT]
    return msgspec.structs.replace(info, errors=errors)


def _with_history(
    clients: ClientGetter, infos: Iterator[FleetInfo], raws: Items
) -> dict[str, FleetInfo]:
    """`{id: info}`, reading the error history only of fleets whose activity is "error"."""
    return {
        info.fleet_id: _history_errors(clients, info, raw.get("CreateTime"))
        if info.activity == "error"
        else info
        for info, raw in zip(infos, raws, strict=True)
    }


def _ec2_fleet_infos(clients: ClientGetter, ids: tuple[str, ...]) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeFleets",
        lambda batch: _paged(ec2, "describe_fleets", "Fleets", FleetIds=list(batch)),
        ids,
        FLEET_IDS_PER_CALL,
        FLEET_NOT_FOUND,
    )
    return found.map(lambda raws: _with_history(clients, map(ec2_fleet_info, raws), raws))


def _spot_fleet_infos(clients: ClientGetter, ids: tuple[str, ...]) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeSpotFleetRequests",
        lambda batch: _paged(
            ec2,
            "describe_spot_fleet_requests",
            "SpotFleetRequestConfigs",
            SpotFleetRequestIds=list(batch),
        ),
        ids,
        FLEET_IDS_PER_CALL,
        SPOT_FLEET_NOT_FOUND,
    )
    return found.map(lambda raws: _with_history(clients, map(spot_fleet_info, raws), raws))


def _scaling_failures(clients: ClientGetter, names: set[str]) -> dict[str, tuple[str, ...]]:
    """Recent failed scaling activities of the groups `names`, in one call (newest first).

    One group is asked by name; several at once account-wide (the latest 100 activities).
    """
    by_name = {"AutoScalingGroupName": next(iter(names))} if len(names) == 1 else {}
    answer = _timed(
        "DescribeScalingActivities",
        partial(clients("autoscaling").describe_scaling_activities, MaxRecords=100, **by_name),
    )
    if isinstance(answer, Failure):
        log.warning("no scaling activities: %s", answer.failure().message)
        return {}
    failures: dict[str, list[str]] = {}
    for activity in answer.unwrap().get("Activities", []) or []:
        name = activity.get("AutoScalingGroupName")
        if name in names and activity.get("StatusCode") in ("Failed", "Cancelled"):
            reason = activity.get("StatusMessage") or activity.get("Description") or "failed"
            failures.setdefault(name, []).append(str(reason))
    return {name: tuple(dict.fromkeys(r))[:ERRORS_KEPT] for name, r in failures.items()}


def _group_infos(clients: ClientGetter, names: tuple[str, ...]) -> Answer:
    autoscaling = clients("autoscaling")
    found = _batched(
        "DescribeAutoScalingGroups",
        lambda batch: _paged(
            autoscaling,
            "describe_auto_scaling_groups",
            "AutoScalingGroups",
            AutoScalingGroupNames=list(batch),
            PaginationConfig={"PageSize": GROUP_NAMES_PER_CALL},
        ),
        names,
        GROUP_NAMES_PER_CALL,
        frozenset(),
    )
    if isinstance(found, Failure):
        return found
    infos = {info.fleet_id: info for info in map(group_info, found.unwrap())}
    short = {n for n, i in infos.items() if i.fulfilled_units < i.target_units}
    failures = _scaling_failures(clients, short) if short else {}
    return Success(
        {
            name: msgspec.structs.replace(info, errors=failures[name]) if name in failures else info
            for name, info in infos.items()
        }
    )


def _describe_fleets(clients: ClientGetter, intent: DescribeFleets) -> Answer:
    describe = {"EC2Fleet": _ec2_fleet_infos, "SpotFleet": _spot_fleet_infos, "ASG": _group_infos}
    infos: dict[str, FleetInfo] = {}
    for api in ("EC2Fleet", "SpotFleet", "ASG"):
        ids = tuple(dict.fromkeys(i for a, i in intent.fleets if a == api))
        if not ids:
            continue
        answer = describe[api](clients, ids)
        if isinstance(answer, Failure):
            return answer
        infos.update(answer.unwrap())
    return Success(
        {
            fleet_id: infos.get(fleet_id) or FleetInfo(fleet_id=fleet_id, api=api, state="gone")
            for api, fleet_id in intent.fleets
        }
    )


# --- Changing and deleting fleets and groups --------------------------------------------------


def _modify_fleet_target(clients: ClientGetter, intent: ModifyFleetTarget) -> Answer:
    total = max(intent.target_units, 0)
    on_demand = min(max(intent.on_demand_units, 0), total)
    if intent.api == "EC2Fleet":
        call = partial(
            clients("ec2").modify_fleet,
            FleetId=intent.fleet_id,
            TargetCapacitySpecification={
                "TotalTargetCapacity": total,
                "OnDemandTargetCapacity": on_demand,
                "SpotTargetCapacity": total - on_demand,
            },
            ExcessCapacityTerminationPolicy="no-termination",
        )
        name = "ModifyFleet"
    elif intent.api == "SpotFleet":
        call = partial(
            clients("ec2").modify_spot_fleet_request,
            SpotFleetRequestId=intent.fleet_id,
            TargetCapacity=total,
            OnDemandTargetCapacity=on_demand,
            ExcessCapacityTerminationPolicy="noTermination",
        )
        name = "ModifySpotFleetRequest"
    else:
        call = partial(
            clients("autoscaling").update_auto_scaling_group,
            AutoScalingGroupName=intent.fleet_id,
            DesiredCapacity=total,
            MinSize=0,
        )
        name = "UpdateAutoScalingGroup"
    answer = _timed(name, call)
    if isinstance(answer, Success) and answer.unwrap().get("Return") is False:
        return Failure(OhfError(message=f"{name}: AWS did not accept the change", code=name))
    return answer.map(lambda _: None)


def _terminate_in_group(clients: ClientGetter, intent: TerminateInGroup) -> Answer:
    autoscaling = clients("autoscaling")
    states: dict[str, InstanceState] = {}
    outside: list[str] = []
    for instance_id in dict.fromkeys(intent.instance_ids):
        answer = _timed(
            "TerminateInstanceInAutoScalingGroup",
            partial(
                autoscaling.terminate_instance_in_auto_scaling_group,
                InstanceId=instance_id,
                ShouldDecrementDesiredCapacity=True,
            ),
        )
        if isinstance(answer, Success):
            states[instance_id] = "shutting-down"
        elif answer.failure().code == "ValidationError":
            # Not (or no longer) in service in a group: already leaving, detached or gone.
            outside.append(instance_id)
        else:
            return answer
    if outside:
        log.info(
            "%s: %d instance(s) not in the group, terminated directly", intent.group, len(outside)
        )
        answer = _terminate_batch(clients("ec2"), tuple(outside))
        if isinstance(answer, Failure):
            return answer
        states.update(answer.unwrap())
    return Success(states)


def _unsuccessful(
    name: str, response: dict[str, Any], key: str, fine: frozenset[str]
) -> OhfError | None:
    """The first refusal in a DeleteFleets/CancelSpotFleetRequests answer not in `fine`."""
    for item in response.get(key, []) or []:
        error = item.get("Error") or {}
        code = str(error.get("Code", "unexpectedError"))
        if code not in fine:
            return OhfError(message=f"{name}: {code}: {error.get('Message', '')}", code=code)
    return None


def _delete_ec2_fleet(clients: ClientGetter, fleet_id: str) -> Answer:
    ec2 = clients("ec2")
    found = _batched(
        "DescribeFleets",
        lambda batch: _paged(ec2, "describe_fleets", "Fleets", FleetIds=list(batch)),
        (fleet_id,),
        1,
        FLEET_NOT_FOUND,
    )
    if isinstance(found, Failure):
        return found
    fleets = found.unwrap()
    if not fleets or str(fleets[0].get("FleetState", "")).startswith("deleted"):
        return Success(None)
    # AWS deletes an instant fleet only together with its instances. ohf deletes a fleet only
    # once none of its machines is left, so this terminates nothing HF still holds.
    terminate = fleets[0].get("Type") == "instant"
    answer = _timed(
        "DeleteFleets",
        partial(ec2.delete_fleets, FleetIds=[fleet_id], TerminateInstances=terminate),
    )
    if isinstance(answer, Failure):
        return answer
    refused = _unsuccessful(
        "DeleteFleets",
        answer.unwrap(),
        "UnsuccessfulFleetDeletions",
        frozenset({"fleetIdDoesNotExist"}),
    )
    return Success(None) if refused is None else Failure(refused)


def _cancel_spot_fleet(clients: ClientGetter, fleet_id: str) -> Answer:
    ec2 = clients("ec2")
    answer = _timed(
        "CancelSpotFleetRequests",
        partial(
            ec2.cancel_spot_fleet_requests, SpotFleetRequestIds=[fleet_id], TerminateInstances=False
        ),
    )
    if isinstance(answer, Failure):
        return Success(None) if answer.failure().code in SPOT_FLEET_NOT_FOUND else answer
    refused = _unsuccessful(
        "CancelSpotFleetRequests",
        answer.unwrap(),
        "UnsuccessfulFleetRequests",
        frozenset({"fleetRequestIdDoesNotExist"}),
    )
    if refused is None:
        return Success(None)
    if refused.code != "fleetRequestNotInCancellableState":
        return Failure(refused)
    # Already cancelled (a retry after a lost answer) is done; anything else is not.
    info = _spot_fleet_infos(clients, (fleet_id,)).map(lambda infos: infos.get(fleet_id))
    state = info.map(lambda i: "gone" if i is None else i.state).value_or("")
    if state == "gone" or state.startswith("cancelled"):
        return Success(None)
    return Failure(refused)


def _delete_group(clients: ClientGetter, name: str) -> Answer:
    # ForceDelete: a group still holding an instance (one ohf has not seen yet) goes with it;
    # without it AWS refuses until the group is empty.
    answer = _timed(
        "DeleteAutoScalingGroup",
        partial(
            clients("autoscaling").delete_auto_scaling_group,
            AutoScalingGroupName=name,
            ForceDelete=True,
        ),
    )
    if isinstance(answer, Failure):
        error = answer.failure()
        gone = error.code == "ValidationError" and "not found" in error.message
        return Success(None) if gone else answer
    return Success(None)


def _delete_fleet(clients: ClientGetter, intent: DeleteFleet) -> Answer:
    delete = {"EC2Fleet": _delete_ec2_fleet, "SpotFleet": _cancel_spot_fleet, "ASG": _delete_group}
    return delete[intent.api](clients, intent.fleet_id)


# --- Spot signals -----------------------------------------------------------------------------

# Status codes of a spot request AWS has marked for interruption (the instance goes 2 min later).
INTERRUPTION_CODES = frozenset(
    {"marked-for-termination", "marked-for-stop", "marked-for-hibernation"}
)


def spot_signal(raw: dict[str, Any]) -> SpotSignal | None:
    """The interruption notice in one DescribeSpotInstanceRequests item, if it carries one."""
    status = raw.get("Status") or {}
    code = status.get("Code", "")
    if code not in INTERRUPTION_CODES or not raw.get("InstanceId"):
        return None
    updated = status.get("UpdateTime")
    return SpotSignal(
        instance_id=raw["InstanceId"],
        kind="interruption",
        at=int(updated.timestamp()) if updated is not None else 0,
        reason=status.get("Message") or code,
    )


def _spot_signals(clients: ClientGetter, intent: DescribeSpotSignals) -> Answer:
    """Interruption notices, from the instances' spot requests.

    Rebalance recommendations are not in any describe API: AWS publishes them only in the
    instance metadata (IMDS `events/recommendations/rebalance`) and as EventBridge events. Fleet
    history's `termination_notified` is a scale-down notice, not a rebalance signal. So this
    reports interruptions only.
    """
    ec2 = clients("ec2")
    signals: list[SpotSignal] = []
    for batch in chunks(tuple(dict.fromkeys(intent.instance_ids)), FILTER_VALUES_MAX):
        answer = _timed(
            "DescribeSpotInstanceRequests",
            partial(
                _paged,
                ec2,
                "describe_spot_instance_requests",
                "SpotInstanceRequests",
                Filters=[{"Name": "instance-id", "Values": list(batch)}],
            ),
        )
        if isinstance(answer, Failure):
            return answer
        signals += [s for s in map(spot_signal, answer.unwrap()) if s is not None]
    return Success(tuple(signals))


def make_interpreter(
    config: AwsConfig,
    on_call: CallHook | None = None,
    *,
    clients: ClientGetter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> Callable[[Intent], Answer]:
    """An interpreter for the cloud intents, talking to AWS with boto3 (clients made lazily).

    One interpreter serves one HF call: its retries share `[aws] retry_budget`, counted from
    its first AWS call. `sleep`, `monotonic` and `jitter` are time's and random's by default.
    """
    budget = Retries(
        max_attempts=config.max_attempts,
        budget=config.retry_budget,
        sleep=sleep,
        monotonic=monotonic,
        random=jitter,
    )
    clients = retrying(clients or client_getter(config, on_call), budget)
    table: dict[type[Any], Callable[[ClientGetter, Any], Answer]] = {
        RunInstances: _run,
        DescribeInstances: _describe,
        TerminateInstances: _terminate,
        ResolveImage: _resolve,
        CreateLaunchTemplate: _create_launch_template,
        DeleteLaunchTemplate: _delete_launch_template,
        CreateFleet: _create_fleet,
        DescribeFleets: _describe_fleets,
        ModifyFleetTarget: _modify_fleet_target,
        TerminateInGroup: _terminate_in_group,
        DeleteFleet: _delete_fleet,
        DescribeSpotSignals: _spot_signals,
    }

    def interpret(intent: Intent) -> Answer:
        handler = table.get(type(intent))
        if handler is None:
            return Failure(OhfError(message=f"the AWS interpreter cannot perform {intent!r}"))
        try:
            return handler(clients, intent)
        except _aws_errors() as exc:
            # Client creation (region, profile, credentials file) fails outside any one call.
            return _failure(type(intent).__name__, exc)

    return interpret
