"""Offline checks of a loaded config, pure: every template as each provider would run it.

`ohf validate` and `Provider.validate` print or return these verdicts; nothing here calls AWS
or reads a file (the door hands in the state and the templates listing it computed). Warnings
are things that work but that an administrator should know (`WARNINGS`: each a pure function
of the config); they never fail the validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
from returns.result import Failure, Result, Success

from ohf import imds
from ohf.config import Config
from ohf.ibm import credential_sources, unhonoured_config_keys, unhonoured_template_keys
from ohf.model import OhfError, Template
from ohf.placement import allowed, effective
from ohf.templates import check_template


class TemplateVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One template on one provider (None: the `[aws]` one): fine, or why not."""

    template_id: str
    provider: str | None = None
    ok: bool
    message: str = ""
    disabled: bool = False


class Validation(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of `validate`: where things are, each template's verdict, the listing's."""

    source: str
    state: str
    log: str | None
    templates: list[TemplateVerdict]
    # Why getAvailableTemplates would fail on this config (attributes, state), if it would.
    listing_error: str | None = None
    # What works but deserves a look (insecure settings, keys ohf does not honour...).
    warnings: list[str] = []

    @property
    def ok(self) -> bool:
        """True when every template and the listing are fine."""
        return self.listing_error is None and all(t.ok for t in self.templates)


Check = Callable[[Template], Result[Template, OhfError]]


def _no_more(template: Template) -> Result[Template, OhfError]:
    return Success(template)


def template_verdicts(config: Config, also: Check = _no_more) -> list[TemplateVerdict]:
    """Each template checked alone, or, with `[[providers]]`, as each provider it may use runs it
    (its defaults and overrides applied). `also` checks a template that passed the pure rules
    further (the door hands in the check of native fragments against botocore's models)."""
    out: list[TemplateVerdict] = []
    for template in config.templates:
        if not config.providers:
            checked = check_template(template).bind(also)
            out.append(_verdict(template.template_id, None, checked))
            continue
        for provider in config.providers:
            if not allowed(template, provider):
                continue
            checked = effective(template, provider).bind(check_template).bind(also)
            verdict = _verdict(template.template_id, provider.name, checked)
            out.append(msgspec.structs.replace(verdict, disabled=not provider.enabled))
    return out


def _verdict(
    template_id: str, provider: str | None, checked: Result[Template, OhfError]
) -> TemplateVerdict:
    if isinstance(checked, Failure):
        message = checked.failure().message
        return TemplateVerdict(
            template_id=template_id, provider=provider, ok=False, message=message
        )
    return TemplateVerdict(template_id=template_id, provider=provider, ok=True)


def verdict_line(verdict: TemplateVerdict) -> str:
    """One verdict as `ohf validate` prints it."""
    status = "ok" if verdict.ok else f"FAIL: {verdict.message}"
    if verdict.provider is None:
        return f"template {verdict.template_id}: {status}"
    status += " (disabled)" if verdict.disabled else ""
    return f"template {verdict.template_id} on {verdict.provider}: {status}"


# Each takes the config and says what deserves a warning (one line each, naming the template
# or key); `warnings` runs them all.
WARNINGS: tuple[Callable[[Config], list[str]], ...] = (
    unhonoured_config_keys,
    unhonoured_template_keys,
    credential_sources,
    imds.imdsv1_allowed,
)
# The same, for checks that also read files the config names (`userDataScript`): the door
# reads them and hands in their text by path (an unreadable file is simply absent).
FILE_WARNINGS: tuple[Callable[[Config, Mapping[str, str]], list[str]], ...] = (
    imds.tokenless_metadata_calls,
)


def warnings(config: Config, files: Mapping[str, str] | None = None) -> list[str]:
    """Every warning about `config`, in the order of `WARNINGS`, then `FILE_WARNINGS`."""
    texts = files or {}
    return [line for check in WARNINGS for line in check(config)] + [
        line for check in FILE_WARNINGS for line in check(config, texts)
    ]
