"""IBM's `awsprov_config.json` as ohf reads it, and every IBM key ohf does not act on, named.

Pure. IBM's two AWS providers (the Java `aws` and the Python `awsv2`, in
IBMSpectrumComputing/cloud-provider-plugins) read these keys. ohf maps the ones it honours onto
`Config` and keeps the others (`Config.ibm_unhonoured`); `unhonoured_config_keys` and
`unhonoured_template_keys` are `ohf validate` warnings, so that no key is ignored in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from returns.result import Failure, Result, Success

from ohf.config import AwsConfig, Config, LoggingConfig, LogLevel, provider_aws
from ohf.model import OhfError, Template
from ohf.placement import providers_of


class IbmProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The keys of IBM's `awsprov_config.json` that ohf honours (the rest: `IBM_UNHONOURED`)."""

    AWS_REGION: str | None = None
    AWS_ENDPOINT_URL: str | None = None
    AWS_CREDENTIAL_FILE: str | None = None
    AWS_CREDENTIAL_SCRIPT: str | None = None
    AWS_PROFILE: str | None = None
    AWS_CONNECTION_TIMEOUT_MS: Annotated[int, Meta(gt=0)] | None = None
    AWS_REQUEST_RETRY_ATTEMPTS: Annotated[int, Meta(ge=0)] | None = None
    # IBM's Java provider reads these with Jackson, which takes "true"/"false" strings too.
    AWS_SPOT_TERMINATE_ON_RECLAIM: bool | str | None = None
    AWS_TAG_InstanceID: bool | str | None = None
    LogLevel: str | None = None


HONOURED = frozenset(IbmProviderConfig.__struct_encode_fields__)  # no annotation evaluated

# Keys IBM's providers read that ohf does not act on, and what to do instead.
IBM_UNHONOURED: Mapping[str, str] = {
    "AWS_KEY_FILE": (
        "not honoured: IBM's providers take it as the directory of <keyName>.pem private keys "
        "and, when EC2 lacks a template's key pair, create it (CreateKeyPair) and write its "
        "private key there, or import it from a .pem found there; ohf never creates key pairs "
        "nor writes private keys to disk: create or import each template's keyName in the "
        "region beforehand (aws ec2 import-key-pair); `ohf health` checks that they exist"
    ),
    "AWS_CREDENTIAL_RENEW_MARGIN": (
        "not honoured: ohf runs AWS_CREDENTIAL_SCRIPT again 5 minutes before the Expiration "
        "the script prints (every 10 minutes when it prints none), not after a fixed margin"
    ),
    "INSTANCE_CREATION_TIMEOUT": (
        "not honoured: ohf fails a machine when EC2 says it ended, not after a timeout; a "
        "machine still pending is reported `executing`"
    ),
}

# Template keys of IBM's providers that ohf does not read, and what to use instead.
IBM_TEMPLATE_UNHONOURED: Mapping[str, str] = {
    "spotPrice": (
        "IBM's providers launch spot instances at this maximum price; ohf does not read it "
        "and launches on-demand: set priceType = spot and maxSpotPrice"
    ),
    "durationInHours": "spot blocks (defined-duration spot), which AWS no longer sells",
    "requestValidity": (
        "ohf's spot requests are one-time; for a Spot Fleet use spotFleetRequestExpiry"
    ),
    "ec2FleetConfig": (
        "ohf builds the EC2 Fleet request itself: set providerApi = EC2Fleet with fleetType, "
        "allocationStrategy, percentOnDemand"
    ),
    "onDemandTargetCapacityRatio": "use percentOnDemand (0-100) instead of this ratio",
}

# Template keys that HF (or LSF) reads from getAvailableTemplates itself: ohf echoes them,
# which is all they need.
HOST_FACTORY_KEYS: frozenset[str] = frozenset({"priority", "gpuextend", "computeUnit"})

_LEVELS: Mapping[str, LogLevel] = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "FATAL": "CRITICAL",
}


def _error(source: str, message: str) -> Failure[OhfError]:
    return Failure(OhfError(message=f"cannot read {source}: {message}", code="config"))


def _flag(value: bool | str | None, key: str, source: str) -> Result[bool, OhfError]:
    if value is None or isinstance(value, bool):
        return Success(bool(value))
    # Jackson reads "" as unset, hence false.
    if value.strip().lower() in ("true", "false", ""):
        return Success(value.strip().lower() == "true")
    return _error(source, f"{key} must be true or false, not {value!r}")


def decode_ibm_config(raw: bytes, *, source: str) -> Result[Config, OhfError]:
    """Map IBM's `awsprov_config.json` onto `Config`, so an IBM conf dir works unchanged.

    Keys ohf does not honour are kept, with their values, in `Config.ibm_unhonoured`.
    """
    try:
        data: Any = msgspec.json.decode(raw)
        if not isinstance(data, dict):
            return _error(source, "expected a JSON object at the top")
        ibm = msgspec.convert({k: v for k, v in data.items() if k in HONOURED}, IbmProviderConfig)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _error(source, str(exc))
    terminate = _flag(ibm.AWS_SPOT_TERMINATE_ON_RECLAIM, "AWS_SPOT_TERMINATE_ON_RECLAIM", source)
    tag = _flag(ibm.AWS_TAG_InstanceID, "AWS_TAG_InstanceID", source)
    for flag in (terminate, tag):
        if isinstance(flag, Failure):
            return flag
    timeout = (ibm.AWS_CONNECTION_TIMEOUT_MS or 5_000) / 1000
    return Success(
        Config(
            aws=AwsConfig(
                # IBM's providers take an empty value as unset.
                region=ibm.AWS_REGION or None,
                endpoint_url=ibm.AWS_ENDPOINT_URL or None,
                profile=ibm.AWS_PROFILE or None,
                credentials_file=ibm.AWS_CREDENTIAL_FILE or None,
                credential_script=(ibm.AWS_CREDENTIAL_SCRIPT or "").strip() or None,
                terminate_spot_on_notice=terminate.unwrap(),
                tag_instance_id=tag.unwrap(),
                connect_timeout=min(max(timeout, 0.1), 300.0),
                max_attempts=min(max((ibm.AWS_REQUEST_RETRY_ATTEMPTS or 3) + 1, 1), 20),
            ),
            logging=LoggingConfig(level=_LEVELS.get((ibm.LogLevel or "INFO").upper(), "INFO")),
            ibm_unhonoured={k: v for k, v in data.items() if k not in HONOURED},
        )
    )


def unhonoured_config_keys(config: Config) -> list[str]:
    """A warning for each key of `awsprov_config.json` ohf read but does not act on.

    The value is shown for IBM's own keys only: an unknown key may hold anything, a secret too.
    """
    return [
        f"awsprov_config.json: {key} = {value!r} is {IBM_UNHONOURED[key]}"
        if key in IBM_UNHONOURED
        else f"awsprov_config.json: {key} is not a key of IBM's aws or awsv2 provider (a typo?): "
        "ignored"
        for key, value in config.ibm_unhonoured.items()
    ]


# IBM's `userData` is `key=value;...`, exported into the provider's user_data.sh script.
_EXPORTS = re.compile(r"^\s*[A-Za-z_]\w*=[^;\n]*(;\s*[A-Za-z_]\w*=[^;\n]*)*;?\s*$")


def _template_key_warnings(template: Template) -> list[str]:
    out: list[str] = []
    for key in sorted(set(template.extras) - HOST_FACTORY_KEYS):
        reason = IBM_TEMPLATE_UNHONOURED.get(
            key, "not a template key ohf or IBM's providers know: echoed to HF, otherwise unused"
        )
        out.append(f"template {template.template_id}: {key} is not honoured: {reason}")
    if template.user_data and not template.user_data_script and _EXPORTS.match(template.user_data):
        out.append(
            f"template {template.template_id}: userData {template.user_data!r} looks like IBM's "
            "key=value exports for its user_data.sh; ohf gives userData to the instance as its "
            "user data, verbatim (put the whole script in userData or userDataScript)"
        )
    return out


def unhonoured_template_keys(config: Config) -> list[str]:
    """A warning for each template key ohf does not act on (kept and echoed to HF only), and
    for IBM-style `userData` exports, which ohf would hand to the instance as they are."""
    return [line for template in config.templates for line in _template_key_warnings(template)]


def credential_sources(config: Config) -> list[str]:
    """A warning where a credential script hides a profile or credentials file also set."""
    out: list[str] = []
    for provider in providers_of(config):
        aws = provider_aws(config.aws, provider)
        hidden = [k for k in ("profile", "credentials_file") if getattr(aws, k)]
        if aws.credential_script and hidden:
            where = f"provider {provider.name}" if provider.name else "[aws]"
            out.append(
                f"{where}: credential_script {aws.credential_script!r} wins over "
                f"{' and '.join(hidden)}, which ohf does not use"
            )
    return out
