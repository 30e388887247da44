"""AWS exceptions as `OhfError`s a human can act on, and the timed call that makes them."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from returns.result import Failure, Result, Success

from ohf.codes import (
    CAPACITY_CODES,
    CONNECTION_CODE,
    CREDENTIAL_CODES,
    PERMISSION_CODES,
    TRANSIENT_CODES,
)
from ohf.model import OhfError

log = logging.getLogger("ohf.aws")  # one name for the package: log settings keep working

Answer = Result[Any, OhfError]


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
        CredentialRetrievalError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        return Failure(_client_error(operation, exc))
    if isinstance(exc, CredentialRetrievalError):
        # A credential script (or another source) failed: its message names it. Not transient:
        # running a broken script again within the same call would not mend it.
        return Failure(OhfError(message=f"{operation}: {exc}", code="credentials"))
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
