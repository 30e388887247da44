"""Bearer JWT checks for the REST API: signature, audience, issuer, expiry and scopes.

`make_verifier(api, env)` turns the `[api]` section into a function from an `Authorization`
header to the token's claims or a `Denied` (401 or 403 with a reason that never quotes the token).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from returns.result import Failure, Result, Success

from ohf.config import ApiConfig
from ohf.model import OhfError


class Denied(msgspec.Struct, frozen=True, kw_only=True):
    """Why a request was refused: 401 (who are you?) or 403 (not allowed to)."""

    status: int
    reason: str


Claims = dict[str, Any]
Verifier = Callable[[str | None], Result[Claims, Denied]]


def config_problem(api: ApiConfig, host: str, env: Mapping[str, str]) -> OhfError | None:
    """Why `ohf serve` must not start with this `[api]` section on `host`, or None."""
    if api.auth == "none":
        if host != "127.0.0.1":
            return OhfError(
                message=f'[api] auth = "none" is allowed only on 127.0.0.1, not on {host!r}: '
                "configure JWT auth to listen on other addresses",
                code="config",
            )
        return None
    sources = [
        bool(api.secret or api.secret_env),
        bool(api.jwks_url),
        bool(api.public_keys),
    ]
    if sum(sources) != 1:
        return OhfError(
            message='[api] auth = "jwt" needs exactly one key source: secret/secret_env '
            '(HS256), jwks_url or public_keys (RS256); or auth = "none" on 127.0.0.1',
            code="config",
        )
    if api.jwks_url and not api.jwks_url.startswith(("https://", "http://")):
        return OhfError(message=f"[api] jwks_url must be an http(s) URL, not {api.jwks_url!r}")
    for index, pem in enumerate(api.public_keys):
        try:
            load_pem_public_key(pem.encode())
        except ValueError as exc:
            return OhfError(message=f"[api] public_keys[{index}] is not a PEM public key: {exc}")
    if api.secret_env and not env.get(api.secret_env):
        return OhfError(
            message=f"[api] secret_env: the environment variable {api.secret_env} is not set",
            code="config",
        )
    if not api.audience or not api.issuer:
        return OhfError(message='[api] auth = "jwt" needs audience and issuer', code="config")
    return None


def scopes(claims: Claims) -> frozenset[str]:
    """The token's scopes: `scope` (space-separated, OAuth) or `scp` (list or string)."""
    found: set[str] = set()
    for key in ("scope", "scp"):
        value = claims.get(key)
        if isinstance(value, str):
            found |= set(value.split())
        elif isinstance(value, list):
            found |= {v for v in value if isinstance(v, str)}
    return frozenset(found)


def _audience_ok(claims: Claims, audience: str) -> bool:
    aud = claims.get("aud")
    if aud is None:
        # Cognito access tokens carry the app client in `client_id` and have no `aud`.
        return claims.get("client_id") == audience
    return audience in ([aud] if isinstance(aud, str) else aud)


def _key_finder(api: ApiConfig, env: Mapping[str, str]) -> Callable[[str], list[Any]]:
    if api.secret or api.secret_env:
        secret = (api.secret or env.get(api.secret_env or "", "")).encode()
        return lambda token: [secret]
    if api.jwks_url:
        client = jwt.PyJWKClient(api.jwks_url, cache_keys=True, lifespan=300)
        return lambda token: [client.get_signing_key_from_jwt(token).key]
    keys: list[Any] = [load_pem_public_key(pem.encode()) for pem in api.public_keys]
    return lambda token: keys


def _decode(token: str, keys: list[Any], api: ApiConfig, algorithm: str) -> Claims:
    error: jwt.PyJWTError = jwt.InvalidSignatureError("no key")
    for key in keys:
        try:
            claims: Claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=api.issuer,
                leeway=api.leeway_seconds,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.InvalidSignatureError as exc:
            error = exc
            continue
        return claims
    raise error


def make_verifier(api: ApiConfig, env: Mapping[str, str]) -> Verifier:
    """Check an `Authorization` header value; `auth = "none"` lets everything through."""
    if api.auth == "none":
        everything = {"sub": "anonymous", "scope": f"{api.read_scope} {api.write_scope}"}
        return lambda header: Success(everything)
    find_keys = _key_finder(api, env)
    algorithm = "HS256" if api.secret or api.secret_env else "RS256"

    def verify(header: str | None) -> Result[Claims, Denied]:
        if not header:
            return Failure(Denied(status=401, reason="no Authorization header"))
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return Failure(Denied(status=401, reason="Authorization is not a bearer token"))
        try:
            claims = _decode(token.strip(), find_keys(token.strip()), api, algorithm)
        except jwt.PyJWKClientConnectionError as exc:
            return Failure(Denied(status=401, reason=f"cannot fetch the signing keys: {exc}"))
        except jwt.PyJWTError as exc:
            return Failure(Denied(status=401, reason=f"invalid token: {type(exc).__name__}: {exc}"))
        if not _audience_ok(claims, api.audience or ""):
            return Failure(Denied(status=401, reason="invalid token: wrong audience"))
        return Success(claims)

    return verify


def allowed(claims: Claims, scope: str) -> Result[Claims, Denied]:
    """The claims if they grant `scope`, else a 403."""
    if scope in scopes(claims):
        return Success(claims)
    return Failure(Denied(status=403, reason=f"the token lacks the scope {scope}"))


# A browser page of any site can reach 127.0.0.1 by rebinding its own name to it (DNS
# rebinding); it cannot make its requests carry a loopback `Host`. So with `auth = "none"`
# every endpoint answers only to a loopback Host.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_name(host: str) -> str:
    """The name part of a `Host` header (its port dropped), lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def foreign_host(api: ApiConfig, host: str) -> Denied | None:
    """Why a request is refused under `auth = "none"` (its Host is not loopback), if it is."""
    if api.auth != "none" or host_name(host) in LOOPBACK_NAMES:
        return None
    return Denied(
        status=403,
        reason=(
            f'auth = "none": ohf answers only to a loopback Host (127.0.0.1 or localhost), '
            f"not {host!r}"
        ),
    )
