"""Credentials from an administrator's script (IBM's AWS_CREDENTIAL_SCRIPT), refreshed in time.

The script is run without a shell (its argv from `shlex.split`), with a timeout, and must print
one JSON object with `AccessKeyId`, `SecretAccessKey`, `SessionToken` and `Expiration` (ISO
8601), at the top or under `Credentials` (what `aws sts ... --output json` prints). botocore's
refreshable credentials run it on first use and again 5 minutes before `Expiration`, so a long
`ohf serve` never signs with expired keys. A failure, a timeout or other output is a
`CredentialScriptError` naming the script; the interpreter reports it (code "credentials") and
never retries it. The script's output is never quoted back: it may hold secrets.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from botocore.exceptions import CredentialRetrievalError
from returns.result import Failure, Result, Success

# Refresh 5 minutes before expiry (IBM's awsv2 margin); block for new ones in the last minute.
# botocore's own margins (15 and 10 minutes) would run a script printing 15-minute credentials,
# the shortest STS gives, before every single call.
ADVISORY_REFRESH = 5 * 60
MANDATORY_REFRESH = 60
# A script that prints no Expiration is run again after this long.
UNDATED_LIFETIME = timedelta(minutes=15)
_STDERR_KEPT = 300


class CredentialScriptError(CredentialRetrievalError):  # type: ignore[misc]
    """The credential script failed, timed out or printed something other than credentials."""

    def __init__(self, script: str, problem: str) -> None:
        super().__init__(provider=f"credential script {script!r}", error_msg=problem)
        self.script = script


class _Printed(msgspec.Struct, frozen=True):
    """What the script must print (AWS's own spelling, as STS and IBM's awsv2 use it)."""

    AccessKeyId: str
    SecretAccessKey: str
    SessionToken: str | None = None
    Expiration: str | None = None


def _looks_like_ini(text: bytes) -> bool:
    return b"aws_access_key_id" in text or text.lstrip().startswith(b"[")


def parse_output(stdout: bytes, now: datetime) -> Result[dict[str, Any], str]:
    """botocore's credential metadata from the script's output, or what is wrong with it."""
    try:
        data: Any = msgspec.json.decode(stdout)
    except msgspec.DecodeError:
        if _looks_like_ini(stdout):
            return Failure(
                "printed an INI credentials file (what IBM's Java `aws` provider reads); ohf "
                "needs JSON: {AccessKeyId, SecretAccessKey, SessionToken, Expiration}"
            )
        return Failure(
            f"printed {len(stdout)} byte(s) that are not JSON; it must print "
            "{AccessKeyId, SecretAccessKey, SessionToken, Expiration}"
        )
    if isinstance(data, dict) and isinstance(data.get("Credentials"), dict):
        data = data["Credentials"]
    if not isinstance(data, dict):
        return Failure("printed JSON that is not an object of credentials")
    missing = [k for k in ("AccessKeyId", "SecretAccessKey") if not data.get(k)]
    if missing:
        return Failure(f"printed JSON without {' and '.join(missing)}")
    try:
        printed = msgspec.convert(data, _Printed)
    except msgspec.ValidationError as exc:
        return Failure(f"printed credentials of the wrong type: {exc}")
    expiry = now + UNDATED_LIFETIME
    if printed.Expiration:
        try:
            expiry = datetime.fromisoformat(printed.Expiration.replace("Z", "+00:00"))
        except ValueError:
            return Failure(f"printed an Expiration that is not ISO 8601: {printed.Expiration!r}")
        expiry = expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
        if expiry <= now:
            return Failure(f"printed credentials that expired at {expiry.isoformat()}")
    return Success(
        {
            "access_key": printed.AccessKeyId,
            "secret_key": printed.SecretAccessKey,
            "token": printed.SessionToken,
            "expiry_time": expiry.isoformat(),
        }
    )


Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def run_script(script: str, timeout: float, runner: Runner = subprocess.run) -> dict[str, Any]:
    """Run the script once and return botocore's credential metadata; raise a
    `CredentialScriptError` naming it on any failure."""
    try:
        argv = shlex.split(script)
    except ValueError as exc:
        raise CredentialScriptError(script, f"cannot be split into arguments: {exc}") from None
    if not argv:
        raise CredentialScriptError(script, "is empty")
    try:
        done = runner(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CredentialScriptError(script, f"did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise CredentialScriptError(script, f"cannot be run: {exc}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()[-_STDERR_KEPT:]
        detail = f": {stderr}" if stderr else " (nothing on stderr)"
        raise CredentialScriptError(script, f"exited with code {done.returncode}{detail}")
    parsed = parse_output(done.stdout, datetime.now(UTC))
    if isinstance(parsed, Failure):
        raise CredentialScriptError(script, parsed.failure())
    return parsed.unwrap()


def script_credentials(script: str, timeout: float, runner: Runner = subprocess.run) -> Any:
    """botocore credentials that run `script` on first use and again before they expire."""
    from botocore.credentials import DeferredRefreshableCredentials

    credentials = DeferredRefreshableCredentials(
        refresh_using=lambda: run_script(script, timeout, runner), method="credential-script"
    )
    # The margins RefreshableCredentials' own constructor sets from its `advisory_timeout` and
    # `mandatory_timeout` arguments, which the deferred variant does not take.
    credentials._advisory_refresh_timeout = ADVISORY_REFRESH
    credentials._mandatory_refresh_timeout = MANDATORY_REFRESH
    return credentials
