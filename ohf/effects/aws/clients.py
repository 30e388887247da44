"""Clients and credentials: botocore sessions on cut models, assumed roles, botocore's config.

boto3 is never imported here: a boto3 client is a botocore client made through a boto3
`Session`, which adds nothing ohf uses but the import of s3transfer (most of `import boto3`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ohf.config import AwsConfig

if TYPE_CHECKING:
    from ohf.effects.aws.models import CutModels

CallHook = Callable[[str], None]


ClientGetter = Callable[[str], Any]


def warm(clients: ClientGetter, service: str = "ec2") -> None:
    """Make a client now (importing botocore), ignoring errors: first use reports them."""
    with contextlib.suppress(Exception):
        clients(service)


def client_getter(
    config: AwsConfig, on_call: CallHook | None, *, models: CutModels | None = None
) -> ClientGetter:
    """A function giving one botocore client per service, made on first use, all from one
    session (so credentials are found once), on service models cut to what ohf calls
    (`models`: this process's, cached where `cache_dirs` says; see `ohf.effects.aws.models`).

    With `role_arn` the session's credentials come from STS AssumeRole, so the role is assumed
    once (on the first AWS call) for every client, and again only when the temporary
    credentials near their expiry (a long-lived process such as `ohf serve`). With
    `credential_script` the script runs once for all of them (and again before its
    credentials expire).
    """
    cache: dict[str, Any] = {}
    session: list[Any] = []
    lock = threading.Lock()  # `ohf serve` makes clients from worker threads

    def get(service: str) -> Any:
        with lock:
            if service not in cache:
                if not session:
                    session.append(
                        source_session(config, models)
                        if config.role_arn is None
                        else assumed_session(config, on_call, models=models)
                    )
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


class Session:
    """A botocore session offering what ohf asks of one, as boto3's `Session` offers it (so a
    boto3 session may be passed in wherever ohf takes a session): `client(service, ...)`,
    `get_credentials()` and `region_name`. ohf's own never import boto3."""

    def __init__(self, core: Any, *, cut: bool = False) -> None:
        self.botocore_session = core
        self.cut = cut  # its clients are on cut models (`ohf.effects.aws.models`)

    @property
    def region_name(self) -> str | None:
        """The session's region (config, environment or profile), if any."""
        region = self.botocore_session.get_config_variable("region")
        return str(region) if region else None

    def get_credentials(self) -> Any:
        """The session's credentials (found on first use), or None."""
        return self.botocore_session.get_credentials()

    def client(self, service_name: str, **keys: Any) -> Any:
        """A client of `service_name`; `keys` are botocore's `create_client` arguments. A
        service whose endpoints the cut lacks gets its client from `uncut()`."""
        from ohf.service_models import endpoint_services

        if self.cut and service_name not in endpoint_services():
            return self.uncut().client(service_name, **keys)
        return self.botocore_session.create_client(service_name, **keys)

    def uncut(self) -> Session:
        """The same session (settings and credentials, shared) on botocore's full models."""
        import botocore.session

        core = botocore.session.Session()
        for name, value in self.botocore_session.instance_variables().items():
            core.set_config_variable(name, value)
        core._credentials = self.botocore_session.get_credentials()
        return Session(core)


def _core_session(models: CutModels | None, profile: str | None = None) -> Session:
    import botocore.session

    from ohf.effects.aws.models import cache_dirs, cut_models, install

    core = botocore.session.Session(profile=profile)
    install(core, models or cut_models(cache_dirs(os.environ)))
    return Session(core, cut=True)


def source_session(config: AwsConfig, models: CutModels | None = None) -> Session:
    """A session with the configured credentials: the credential script's (which win), else
    the profile (in `credentials_file`, if set), else the default chain (environment, shared
    files, SSO, web identity, instance or container role)."""
    if config.credential_script:
        from ohf.effects.aws.credential_script import script_credentials

        # The profile is not used, so a profile the files lack is no error.
        session = _core_session(models)
        # The attribute botocore's own `get_credentials` caches them in: every client uses them.
        session.botocore_session._credentials = script_credentials(
            config.credential_script, config.credential_script_timeout
        )
    else:
        session = _core_session(models, config.profile)
        if config.credentials_file:
            session.botocore_session.set_config_variable(
                "credentials_file", config.credentials_file
            )
    if config.region:
        session.botocore_session.set_config_variable("region", config.region)
    return session


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


def assumed_session(
    config: AwsConfig,
    on_call: CallHook | None,
    source: Any = None,
    *,
    models: CutModels | None = None,
) -> Session:
    """A session whose credentials are `config.role_arn`'s (see `assumed_credentials`),
    assumed with those of `source` (a boto3 or ohf session; default: `source_session(config)`)."""
    source = source or source_session(config, models)
    session = _core_session(models)
    # botocore has no public setter for refreshable credentials; this is the attribute its
    # own `get_credentials` caches them in, so every client of the session uses them.
    session.botocore_session._credentials = assumed_credentials(config, source, on_call)
    region = config.region or source.region_name
    if region:
        session.botocore_session.set_config_variable("region", region)
    return session


def _make_client(
    config: AwsConfig, service: str, on_call: CallHook | None, session: Any = None
) -> Any:
    session = session or source_session(config)
    client: Any = session.client(
        service, endpoint_url=config.endpoint_url, config=_botocore_config(config, service)
    )
    if on_call is not None:
        client.meta.events.register("before-call", lambda model, **_: on_call(model.name))
    if service == "ec2":
        from ohf.effects.aws.instance_pages import register

        register(client)  # DescribeInstances pages read as they stream in (status polls)
    if getattr(session, "cut", False):
        from ohf.effects.aws.models import lacking_operations_from

        # An operation the cut model lacks is asked of the same client on the full model.
        lacking_operations_from(
            client, lambda: _make_client(config, service, on_call, session.uncut())
        )
    return client
