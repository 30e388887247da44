"""Clients and credentials: boto3 sessions, assumed roles and botocore's config, per service."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ohf.config import AwsConfig

CallHook = Callable[[str], None]


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
    With `credential_script` they share one session too, so the script runs once for all of
    them (and again before its credentials expire).
    """
    cache: dict[str, Any] = {}
    session: list[Any] = []
    lock = threading.Lock()  # `ohf serve` makes clients from worker threads

    def get(service: str) -> Any:
        with lock:
            if service not in cache:
                if config.role_arn is None and config.credential_script is None:
                    cache[service] = _make_client(config, service, on_call)
                else:
                    if not session:
                        shared = (
                            source_session(config)
                            if config.role_arn is None
                            else assumed_session(config, on_call)
                        )
                        session.append(shared)
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
    """A boto3 session with the configured credentials: the credential script's (which win),
    else the profile (in `credentials_file`, if set), else the default chain (environment,
    shared files, instance or container role)."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    if config.credential_script:
        from ohf.effects.aws.credential_script import script_credentials

        # The same attribute `assumed_session` sets: the session's clients all use these.
        core._credentials = script_credentials(
            config.credential_script, config.credential_script_timeout
        )
        # The profile is not used, so a profile the files lack is no error.
        return boto3.session.Session(botocore_session=core, region_name=config.region)
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
