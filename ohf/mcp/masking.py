"""The config as an assistant may read it, pure: every secret, and where secrets live, masked.

What is masked, and why (`tests/test_mcp_masking.py` holds one case of each):
- `api.secret` and `external_id` (of `[aws]` and of each provider): secrets in themselves;
- `credentials_file` (`[aws]`, providers): where the credentials are is for the host, not a chat;
- `credential_script`: the program stays (it says how credentials are got), its arguments are
  masked (accounts, tokens, passwords are often passed there);
- a template's `userData` and every `UserData` in native fragments (bootstrap tokens, keys);
- any key, at any depth (template extras, provider defaults and overrides, IBM's unhonoured
  keys), whose name says secret: *secret, *password, *passwd, *token, *accesskey(id),
  *privatekey, *externalid, *userdata, *credential(s)file, *apikey;
- the user name, password and query string of any URL (endpoints, JWKS), kept to scheme, host,
  port and path.
Names (profiles, roles, key pairs, the environment variable holding the API secret) are not
secrets and stay, so an assistant can still say which account a provider reaches.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ohf.config import Config

MASK = "********"
# Whole keys masked wherever they are (compared without case, `_` or `-`).
_SECRET_SUFFIXES = (
    "secret",
    "password",
    "passwd",
    "token",
    "accesskey",
    "accesskeyid",
    "privatekey",
    "externalid",
    "userdata",
    "credentialsfile",
    "credentialfile",
    "apikey",
)
_SCRIPT_SUFFIX = "credentialscript"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _bare(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def masked_script(command: str) -> str:
    """A command line with its program kept and every argument masked."""
    try:
        words = shlex.split(command)
    except ValueError:
        return MASK
    if not words:
        return MASK
    return " ".join([words[0], *([MASK] if len(words) > 1 else [])])


def masked_url(url: str) -> str:
    """`url` without user name, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + host + port
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _value(key: str, value: Any) -> Any:
    bare = _bare(key)
    if value is None or value == "" or isinstance(value, bool):
        return value
    if bare.endswith(_SECRET_SUFFIXES):
        return MASK
    if bare.endswith(_SCRIPT_SUFFIX) and isinstance(value, str):
        return masked_script(value)
    return masked(value)


def masked(node: Any) -> Any:
    """A JSON-like value with every secret in it masked (see the module's list); unset (null)
    keys are left out, as they would be in the file."""
    if isinstance(node, dict):
        return {key: _value(str(key), value) for key, value in node.items() if value is not None}
    if isinstance(node, list | tuple):
        return [masked(item) for item in node]
    if isinstance(node, str) and _URL.match(node):
        return masked_url(node)
    return node


def masked_config(config: Config, source: str) -> dict[str, Any]:
    """The whole config as JSON-ready builtins, its secrets masked, with where it was read."""
    body = msgspec.to_builtins(config)
    # Template extras are echoed keys of the template itself, so they are shown as such.
    body["templates"] = [
        {**{k: v for k, v in t.items() if k != "extras"}, **t.get("extras", {})}
        for t in body.get("templates", [])
    ]
    return {"source": source, "config": masked(body)}
