"""The single config file (`ohf.toml` or `.json`) and its templates, decoded.

IBM's `awsprov_config.json` is mapped onto the same `Config` by `ohf.ibm`.

Pure: functions take the bytes that the shell read and the environment as a mapping, and return
`Result`s. Finding and reading files is `ohf.effects.files`' job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from returns.result import Failure, Result, Success

from ohf.model import OhfError, Template

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class AwsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[aws]`: where and as whom to call AWS."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    credentials_file: str | None = None
    # Assume this role (with the credential script's, else the profile's, else the default
    # chain's credentials) for every AWS call; `external_id` is what the role's trust policy
    # demands, if anything.
    role_arn: Annotated[str, Meta(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = None
    external_id: Annotated[str, Meta(min_length=2, max_length=1224)] | None = None
    role_session_name: Annotated[str, Meta(pattern=r"^[\w+=,.@-]{2,64}$")] = "ohf"
    # A command (run without a shell, split like a shell would) printing temporary credentials
    # as JSON (`AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`), IBM's
    # AWS_CREDENTIAL_SCRIPT. It wins over `profile`/`credentials_file`, is run again before
    # the credentials expire, and is the source of `role_arn`'s AssumeRole when both are set.
    credential_script: Annotated[str, Meta(min_length=1)] | None = None
    credential_script_timeout: Annotated[float, Meta(gt=0, le=300)] = 30.0
    # Terminate a spot machine as soon as getReturnRequests reports its interruption notice
    # (IBM's AWS_SPOT_TERMINATE_ON_RECLAIM), instead of leaving it to AWS two minutes later.
    terminate_spot_on_notice: bool = False
    # Tag each instance and its volumes `InstanceID=<instance id>` once it runs (IBM's
    # AWS_TAG_InstanceID): one CreateTags per machine, as each needs its own value.
    tag_instance_id: bool = False
    connect_timeout: Annotated[float, Meta(gt=0, le=300)] = 5.0
    read_timeout: Annotated[float, Meta(gt=0, le=300)] = 20.0
    # Attempts per AWS call (the first included) on throttling, AWS 5xx and connection errors;
    # ohf retries these itself, with backoff and jitter, botocore does not retry them again.
    max_attempts: Annotated[int, Meta(ge=1, le=20)] = 4
    # Seconds an HF call may spend, from its first AWS call, before it stops retrying: keeps
    # the whole call well inside HF's own timeout for a provider script.
    retry_budget: Annotated[float, Meta(ge=0, le=300)] = 20.0
    # Circuit breaker per endpoint/region: this many calls in a row failing with throttling,
    # 5xx or no connection within `breaker_window` seconds open it for `breaker_cooldown`.
    breaker_threshold: Annotated[int, Meta(ge=1, le=1000)] = 5
    breaker_window: Annotated[int, Meta(ge=1, le=86_400)] = 300
    breaker_cooldown: Annotated[int, Meta(ge=1, le=3600)] = 60


StoreType = Literal["json", "sqlite", "dynamodb"]


class StorageConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[storage]`: where ohf keeps what it asked AWS for, and for how long."""

    type: StoreType = "json"
    # json / sqlite: the file (default: <workdir>/ohf-state.json or ohf-state.sqlite).
    path: str | None = None
    # How long a state-changing call waits for another one to finish before failing.
    lock_timeout: Annotated[float, Meta(gt=0, le=600)] = 30.0
    # Requests and returns that ended longer ago than this are dropped from the state.
    retention_days: Annotated[float, Meta(ge=0, le=36_500)] = 7.0
    # The event log is compacted (events folded into a snapshot of the state) by the next
    # state-changing call once its events pass this many bytes, or once its oldest event is
    # `compact_days` past `retention_days`. A fold keeps `retention_days` of events, but never
    # more than half of `compact_bytes`: the size is a ceiling, so the log stays bounded.
    compact_bytes: Annotated[int, Meta(ge=65_536, le=1 << 34)] = 4 << 20
    compact_days: Annotated[float, Meta(gt=0, le=365)] = 1.0
    # dynamodb: the table (created by `ohf storage init`), and where it is if not [aws]'s.
    table: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None = None
    region: str | None = None
    endpoint_url: str | None = None
    # dynamodb: a call holds the table's lease this long unless it commits (which renews it).
    lease_seconds: Annotated[float, Meta(ge=5, le=3600)] = 120.0

    def __post_init__(self) -> None:
        if self.type == "dynamodb" and not self.table:
            raise ValueError('[storage] type = "dynamodb" needs table = "<table name>"')


class LoggingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[logging]`: log level and file (never stdout, which belongs to HF)."""

    level: LogLevel = "INFO"
    file: str | None = None
    # The log file is rotated (ohf.log -> ohf.log.1 -> ... -> ohf.log.<backups>) once it
    # passes this size; 0 turns ohf's rotation off (for sites that use logrotate).
    max_bytes: Annotated[int, Meta(ge=0, le=1 << 40)] = 10 << 20
    backups: Annotated[int, Meta(ge=0, le=100)] = 5


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[api]`: the optional REST API (`ohf serve`): where it listens and whom it lets in."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65_535)] = 8080
    # "jwt": every request needs a bearer JWT; "none": no auth, allowed only on 127.0.0.1.
    auth: Literal["jwt", "none"] = "jwt"
    # HS256: the shared secret, inline or (better) the name of the environment variable holding it.
    secret: str | None = None
    secret_env: str | None = None
    # RS256: a JWKS URL (e.g. a Cognito user pool's .well-known/jwks.json) or PEM public keys.
    jwks_url: str | None = None
    public_keys: tuple[str, ...] = ()
    # Checked on every token: `aud` (or Cognito's `client_id`), `iss`, and `exp` with this leeway.
    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: Annotated[float, Meta(ge=0, le=300)] = 30.0
    read_scope: str = "ohf:read"
    write_scope: str = "ohf:write"


class McpConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[mcp]`: the optional Model Context Protocol server (`ohf mcp`) for AI assistants."""

    # The tools that launch and terminate machines (request_machines, return_machines) answer
    # only when this is true: by default an assistant reads and explains, and spends nothing.
    allow_writes: bool = False
    # `ohf mcp --http`: the port on 127.0.0.1 (no other address: the MCP server has no auth).
    port: Annotated[int, Meta(ge=1, le=65_535)] = 8765
    # Seconds a tool call may take before the assistant is answered with an error; the AWS calls
    # inside it are bounded by [aws]'s timeouts and retry budget, the store by its lock_timeout.
    call_timeout: Annotated[float, Meta(gt=0, le=3600)] = 120.0


ProviderName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Policy = Literal["first_available", "priority", "round_robin", "weighted", "least_used"]


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[[providers]]` entry: an AWS account and region ohf may place machines in.

    Unset connection keys (region, profile, endpoint, credentials file, role) are taken from
    `[aws]`, which also gives every provider its timeouts, retries and breaker settings.
    """

    name: ProviderName
    region: str | None = None
    profile: str | None = None
    credentials_file: str | None = None
    role_arn: Annotated[str, Meta(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = None
    external_id: Annotated[str, Meta(min_length=2, max_length=1224)] | None = None
    credential_script: Annotated[str, Meta(min_length=1)] | None = None
    endpoint_url: str | None = None
    enabled: bool = True
    # `priority` policy: lower goes first. `weighted` policy: share of new requests.
    priority: Annotated[int, Meta(ge=0, le=1_000_000)] = 100
    weight: Annotated[int, Meta(ge=1, le=10_000)] = 1
    # Template keys (IBM's camelCase names) for templates that leave them unset, so one
    # template can run in accounts with different subnets, security groups and AMIs.
    defaults: dict[str, Any] = {}
    # Per templateId: keys that replace the template's own on this provider (maxNumber too).
    templates: dict[str, dict[str, Any]] = {}


class PlacementConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[placement]`: how a request chooses among several providers, and what HF is shown."""

    policy: Policy = "first_available"
    # Place what one provider could not (capacity, quota, open circuit) on the next one.
    failover: bool = True
    # getAvailableTemplates lists each template once per provider as `<templateId>.<provider>`
    # (so HF chooses), besides the template itself with the capacity of all providers.
    list_per_provider: bool = False


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole config file."""

    aws: AwsConfig = AwsConfig()
    providers: tuple[ProviderConfig, ...] = ()
    placement: PlacementConfig = PlacementConfig()
    storage: StorageConfig = StorageConfig()
    logging: LoggingConfig = LoggingConfig()
    api: ApiConfig = ApiConfig()
    mcp: McpConfig = McpConfig()
    templates_file: str | None = None
    templates: tuple[Template, ...] = ()
    # Keys of IBM's `awsprov_config.json` that ohf read but does not act on, with their values.
    # Set by `ohf.ibm.decode_ibm_config` only (never a key of ohf.toml), so that `ohf validate`
    # names each one instead of ignoring it in silence.
    ibm_unhonoured: dict[str, Any] = {}


class TemplateFile(msgspec.Struct, frozen=True, kw_only=True):
    """IBM's `awsprov_templates.json`: `{"templates": [...]}`."""

    templates: list[dict[str, Any]]


def _error(context: str, exc: Exception) -> OhfError:
    return OhfError(message=f"{context}: {exc}", code="config")


def decode_config(
    raw: bytes, *, fmt: Literal["toml", "json"], source: str
) -> Result[Config, OhfError]:
    """Decode an ohf config file (TOML or JSON) into `Config`, naming the file in any error."""
    import tomllib  # here, not at the top: IBM's JSON configs never need it

    try:
        if fmt == "toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = msgspec.json.decode(raw)
    except (tomllib.TOMLDecodeError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Failure(_error(f"cannot parse {source}", exc))
    if not isinstance(data, dict):
        return Failure(
            OhfError(message=f"{source}: expected a table/object at the top", code="config")
        )
    if "ibm_unhonoured" in data:
        return Failure(
            OhfError(message=f"{source}: `ibm_unhonoured` is not a config key", code="config")
        )
    templates_raw = data.pop("templates", [])
    if not isinstance(templates_raw, list):
        return Failure(
            OhfError(message=f"{source}: `templates` must be a list of tables", code="config")
        )
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        return Failure(_error(f"invalid config in {source}", exc))
    return decode_template_list(templates_raw, source=source).map(
        lambda ts: msgspec.structs.replace(config, templates=ts)
    )


# From the struct's own name tables: `msgspec.structs.fields` would evaluate every annotation.
_TEMPLATE_KEYS: frozenset[str] = frozenset(
    encoded
    for name, encoded in zip(
        Template.__struct_fields__, Template.__struct_encode_fields__, strict=True
    )
    if name != "extras"
)


# Template keys holding AWS ids, as a list (or one id / comma-separated ids).
ID_LIST_KEYS = ("securityGroupIds", "subnetId", "subnetIds")


def empty_id(raw: Mapping[str, Any]) -> str | None:
    """The first `key[index]` of an id list that is an empty string, if any.

    IBM's sample templates carry `"securityGroupIds": [""]`: EC2 would refuse the launch
    ("Invalid id"), so the file is refused at load, where the fix is obvious.
    """
    for key in ID_LIST_KEYS:
        value = raw.get(key)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str) and not item.strip():
                    return f"{key}[{index}]"
    return None


def decode_template(raw: Mapping[str, Any], *, where: str) -> Result[Template, OhfError]:
    """Decode one IBM/ORB template mapping; unknown keys are kept in `extras` to be echoed."""
    blank = empty_id(raw)
    if blank is not None:
        template_id = raw.get("templateId", "?")
        key = blank.split("[")[0]
        return Failure(
            OhfError(
                message=(
                    f"{where}: template {template_id!r}: {blank} is an empty string; remove it "
                    f"(no {key} at all, or an empty list, means none)"
                ),
                code="config",
            )
        )
    try:
        template = msgspec.convert({k: v for k, v in raw.items() if k in _TEMPLATE_KEYS}, Template)
    except msgspec.ValidationError as exc:
        template_id = raw.get("templateId", "?")
        return Failure(_error(f"{where}: template {template_id!r} is invalid", exc))
    extras = {k: v for k, v in raw.items() if k not in _TEMPLATE_KEYS}
    return Success(msgspec.structs.replace(template, extras=extras) if extras else template)


def decode_template_list(raws: list[Any], *, source: str) -> Result[tuple[Template, ...], OhfError]:
    """Decode a list of template mappings, failing on the first bad one or a duplicate id."""
    out: list[Template] = []
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            return Failure(
                OhfError(message=f"{source}: templates[{index}] must be an object", code="config")
            )
        result = decode_template(raw, where=f"{source} templates[{index}]")
        if isinstance(result, Failure):
            return result
        template = result.unwrap()
        if any(t.template_id == template.template_id for t in out):
            return Failure(
                OhfError(
                    message=f"{source}: templateId {template.template_id!r} is defined twice",
                    code="config",
                )
            )
        out.append(template)
    return Success(tuple(out))


def decode_template_file(raw: bytes, *, source: str) -> Result[tuple[Template, ...], OhfError]:
    """Decode IBM's `awsprov_templates.json` bytes."""
    try:
        doc = msgspec.json.decode(raw, type=TemplateFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Failure(_error(f"cannot read templates from {source}", exc))
    return decode_template_list(doc.templates, source=source)


def merge_templates(
    config: Config, from_file: tuple[Template, ...], *, source: str
) -> Result[Config, OhfError]:
    """Add the templates of `templates_file` to the inline ones; an id may appear only once."""
    inline = {t.template_id for t in config.templates}
    clash = sorted(inline & {t.template_id for t in from_file})
    if clash:
        return Failure(
            OhfError(
                message=f"templateId {clash[0]!r} is defined both inline and in {source}",
                code="config",
            )
        )
    return Success(msgspec.structs.replace(config, templates=config.templates + from_file))


def config_candidates(explicit: str | None, env: Mapping[str, str], cwd: str) -> list[str]:
    """Where to look for `ohf.toml`, in order: --config, $OHF_CONFIG, HF's conf dirs, cwd."""
    if explicit:
        return [explicit]
    if env.get("OHF_CONFIG"):
        return [env["OHF_CONFIG"]]
    dirs = [env.get("HF_PROVIDER_CONFDIR"), env.get("PRO_CONF_DIR"), cwd]
    return [f"{d.rstrip('/')}/ohf.toml" for d in dirs if d]


def conf_dirs(env: Mapping[str, str], cwd: str) -> list[str]:
    """The directories that may hold an IBM-style conf dir, in order of preference."""
    return [d for d in (env.get("HF_PROVIDER_CONFDIR"), env.get("PRO_CONF_DIR"), cwd) if d]


def ibm_file_names(kind: Literal["config", "templates"], env: Mapping[str, str]) -> list[str]:
    """IBM's file names: `awsprov_<kind>.json`, or `<provider>prov_<kind>.json` once copied."""
    names = [f"awsprov_{kind}.json"]
    provider = env.get("HF_PROVIDER_NAME") or env.get("PROVIDER_NAME")
    if provider and provider != "aws":
        names.insert(0, f"{provider}prov_{kind}.json")
    return names


def provider_aws(aws: AwsConfig, provider: ProviderConfig) -> AwsConfig:
    """The `[aws]` settings as one provider uses them: its own connection keys win.

    A provider with its own `role_arn` uses only its own `external_id`: `[aws]`'s belongs to
    another role, and must not be sent to a third party's account.
    """
    if not provider.name:
        return aws
    # A provider that names its own credentials (profile, file or script) does not inherit
    # `[aws]`'s script, which would win over them.
    own = provider.profile or provider.credentials_file or provider.credential_script
    return msgspec.structs.replace(
        aws,
        region=provider.region or aws.region,
        credential_script=provider.credential_script if own else aws.credential_script,
        profile=provider.profile or aws.profile,
        credentials_file=provider.credentials_file or aws.credentials_file,
        role_arn=provider.role_arn or aws.role_arn,
        external_id=(
            provider.external_id if provider.role_arn else provider.external_id or aws.external_id
        ),
        endpoint_url=provider.endpoint_url or aws.endpoint_url,
    )
