"""Warnings about the instance metadata service (IMDS), pure: IMDSv1 left open, and user data
that would break once tokens are required.

IMDSv1 answers any local HTTP GET, so a server-side request forgery on a host can read its
role's credentials; IMDSv2 (`httpTokens = "required"`) wants a session token first. Requiring
tokens breaks scripts that call the service without one, such as IBM's sample user data
(`curl http://169.254.169.254/latest/meta-data/instance-id`). Neither is an error: `ohf
validate` lists these after its verdicts. The door reads `userDataScript` files and hands in
their text; nothing here opens a file.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Callable, Mapping

from returns.result import Success

from ohf.config import Config
from ohf.model import Template
from ohf.placement import allowed, effective, providers_of
from ohf.templates import provider_api

# A call to IMDS (IPv4, IPv6 or the `instance-data` name) for anything but a token.
_IMDS_CALL = re.compile(
    r"(?:169\.254\.169\.254|\[fd00:ec2::254\]|instance-data)(?::80)?/latest/(?!api/token)"
)
_TOKEN_ASKED = "/latest/api/token"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_GZIP = b"\x1f\x8b"
_SHOWN = 100


def _metadata(template: Template) -> Mapping[str, object]:
    """The MetadataOptions ohf sends for this template: its fields, then its fragment's keys."""
    options = template.metadata_options
    ours: dict[str, object] = {}
    if options is not None:
        ours = {
            "HttpTokens": options.http_tokens,
            "HttpEndpoint": options.http_endpoint,
        }
    fragment = (
        template.run_instances
        if provider_api(template) == "RunInstances"
        else template.launch_template_data
    ) or {}
    native = fragment.get("MetadataOptions")
    if isinstance(native, Mapping):
        ours.update(native)
    return {k: v for k, v in ours.items() if v is not None}


def http_tokens(template: Template) -> str | None:
    """The HttpTokens ohf sends for this template (None: AWS's default, which allows IMDSv1)."""
    value = _metadata(template).get("HttpTokens")
    return None if value is None else str(value)


def _shapes_instances(template: Template) -> bool:
    # A fleet launched from the site's own launch template gets nothing of ohf's: it decides.
    return provider_api(template) == "RunInstances" or not template.launch_template_id


def imdsv1_open(template: Template) -> str | None:
    """Why the template's instances may answer IMDSv1, if they may."""
    if not _shapes_instances(template) or _metadata(template).get("HttpEndpoint") == "disabled":
        return None
    tokens = http_tokens(template)
    if tokens == "required":
        return None
    what = 'httpTokens = "optional"' if tokens else "httpTokens is not set"
    unless = "its launch template, " if template.launch_template_id else ""
    return (
        f"allows IMDSv1 ({what}) unless {unless}its AMI or the account's defaults require "
        'tokens: set metadataOptions.httpTokens = "required" once its user data and software '
        "speak IMDSv2"
    )


def user_data_text(raw: str) -> str:
    """User data as the instance runs it: base64 (and gzip within it) undone where it is so."""
    compact = "".join(raw.split())
    if not compact or len(compact) % 4 or not _BASE64.fullmatch(compact):
        return raw
    try:
        data = base64.b64decode(compact, validate=True)
        if data.startswith(_GZIP):
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (binascii.Error, OSError, EOFError, UnicodeDecodeError):
        # Looked like base64 but is not text once decoded: it was text all along.
        return raw


def tokenless_call(text: str) -> tuple[int, str] | None:
    """The first line (number, text) calling IMDS, when the script never asks for a token."""
    if _TOKEN_ASKED in text:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if _IMDS_CALL.search(line):
            shown = line.strip()
            return number, shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."
    return None


def tokenless_user_data(template: Template, files: Mapping[str, str]) -> str | None:
    """Why the template's user data would fail under the IMDSv2 it requires, if it would."""
    if http_tokens(template) != "required":
        return None
    script = template.user_data_script
    if script:
        # At request time the script replaces userData; unreadable now: nothing to judge.
        text, source = files.get(script), f"userDataScript {script}"
    else:
        text, source = template.user_data, "userData"
    found = tokenless_call(user_data_text(text)) if text else None
    if found is None:
        return None
    number, line = found
    return (
        f"requires IMDSv2 tokens but its {source} calls the metadata service without one "
        f"(line {number}: {line}): ask for a token first (PUT "
        "http://169.254.169.254/latest/api/token) and send it as X-aws-ec2-metadata-token"
    )


def _views(config: Config, template: Template) -> list[tuple[str, Template]]:
    """The template as each provider it may use runs it: (provider name, view)."""
    out = []
    for provider in providers_of(config):
        if not allowed(template, provider):
            continue
        view = effective(template, provider)
        if isinstance(view, Success):
            out.append((provider.name, view.unwrap()))
    return out


def _lines(config: Config, judge: Callable[[Template], str | None]) -> list[str]:
    """One line per template whose views `judge` finds fault with, per provider if they differ."""
    out: list[str] = []
    for template in config.templates:
        views = _views(config, template)
        found = [(name, judge(view)) for name, view in views]
        faults = [(name, why) for name, why in found if why is not None]
        where = f"template {template.template_id!r}"
        if faults and len({why for _, why in faults}) == 1 and len(faults) == len(found):
            out.append(f"{where} {faults[0][1]}")
            continue
        out += [f"{where} on provider {name!r} {why}" for name, why in faults]
    return out


def user_data_scripts(config: Config) -> tuple[str, ...]:
    """The `userDataScript` paths of every template as every provider runs it (for the door to
    read before `tokenless_metadata_calls`)."""
    paths = (
        view.user_data_script
        for template in config.templates
        for _, view in _views(config, template)
        if view.user_data_script
    )
    return tuple(dict.fromkeys(p for p in paths if p))


def imdsv1_allowed(config: Config) -> list[str]:
    """A warning for each template whose instances may answer IMDSv1."""
    return _lines(config, imdsv1_open)


def tokenless_metadata_calls(config: Config, files: Mapping[str, str]) -> list[str]:
    """A warning for each template requiring IMDSv2 whose user data calls IMDS without a token
    (`files`: the text of the `userDataScript` files the door could read, by path)."""
    return _lines(config, lambda template: tokenless_user_data(template, files))
