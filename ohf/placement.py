"""Several AWS accounts and regions, pure: each provider's view of a template, and which to use.

A provider is a `[[providers]]` entry (or the single `[aws]` one, named "" in the state). A
template runs on a provider as `effective` makes it: the provider's `defaults` fill keys the
template leaves unset, its `templates.<id>` keys replace the template's own. `maxNumber` holds
per provider, so HF sees the sum over the enabled ones. `candidates` orders the providers a
new request may go to by the configured policy; placement takes them in that order, moving
what one could not take (capacity, quota, open circuit) to the next.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.config import Config, Policy, ProviderConfig, decode_template
from ohf.model import OhfError, Request, State, Template
from ohf.room import Room, full
from ohf.templates import (
    check_fragments,
    field_defaults,
    find_template,
    request_units,
    room_left,
)


@functools.cache
def _defaults() -> dict[str, Any]:
    """Each template key's default (factories called): made on first use, not at import."""
    return field_defaults(Template, factories=True)


# Keys a provider may fill or replace: every template key but the id it is keyed by.
_SETTABLE = frozenset(
    encoded
    for name, encoded in zip(
        Template.__struct_fields__, Template.__struct_encode_fields__, strict=True
    )
    if name not in ("extras", "template_id")
)

# Separates a template id from a provider name in per-provider listings ("gpu.east").
PROVIDER_SEPARATOR = "."
# The one provider a config without `[[providers]]` has: `[aws]`, recorded as "".
SHORTHAND = ProviderConfig(name="")


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where new requests may go: the providers, the policy, and whose circuits are open now."""

    providers: tuple[ProviderConfig, ...] = (SHORTHAND,)
    policy: Policy = "first_available"
    failover: bool = True
    open_circuits: frozenset[str] = frozenset()


# The placement of a config without `[[providers]]`: `[aws]` only.
ONE_PROVIDER = Placement()


def providers_of(config: Config) -> tuple[ProviderConfig, ...]:
    """The providers a config names, or the `[aws]` shorthand one."""
    return config.providers or (SHORTHAND,)


def label(name: str) -> str:
    """A provider's name for people: the `[aws]` shorthand is "aws"."""
    return name or "aws"


def find_provider(providers: Iterable[ProviderConfig], name: str) -> ProviderConfig | None:
    """The provider called `name` ("" is the shorthand, or else the first provider)."""
    listed = tuple(providers)
    return next((p for p in listed if p.name == name), listed[0] if not name and listed else None)


def effective(template: Template, provider: ProviderConfig) -> Result[Template, OhfError]:
    """`template` as it runs on `provider`: defaults fill unset keys, overrides replace keys."""
    overrides = provider.templates.get(template.template_id, {})
    if not provider.defaults and not overrides:
        return Success(template)
    # A key at its model default (`priceType` "ondemand", no `attributes`) counts as unset.
    raw: dict[str, Any] = {
        k: v
        for k, v in msgspec.to_builtins(template).items()
        if v is not None and k != "extras" and v != _defaults().get(k, msgspec.NODEFAULT)
    }
    own = {**template.extras, **raw}
    # The template's own keys, extras included, win over defaults; only unset ones are filled.
    unset = {k: v for k, v in provider.defaults.items() if own.get(k) is None}
    merged = {**own, **unset, **overrides, "templateId": template.template_id}
    return decode_template(merged, where=f"provider {label(provider.name)!r}")


def allowed(template: Template, provider: ProviderConfig) -> bool:
    """True if the template may run on the provider (its `providers` list, if any, names it)."""
    return template.providers is None or provider.name in template.providers


def rooms(template: Template, providers: Iterable[ProviderConfig], state: State) -> dict[str, Room]:
    """Room per enabled provider the template may use, each by its own view of the template
    (a provider whose view fails has none)."""
    out: dict[str, Room] = {}
    for provider in providers:
        if not provider.enabled or not allowed(template, provider):
            continue
        view = effective(template, provider)
        out[provider.name] = (
            room_left(view.unwrap(), state, provider.name) if isinstance(view, Success) else 0
        )
    return out


def _roots(state: State) -> list[Request]:
    return [r for r in state.requests.values() if r.parent is None]


def _last_provider(state: State, order: Mapping[str, int]) -> str | None:
    """The provider the latest root request went to, as the rotation placed it.

    `created_at` is whole seconds and request ids are random, so nothing records the order of
    requests made in the same second. The rotation went round from where the previous second
    ended, taking each provider once a round: the last it placed that second is the provider
    with the most requests in it, and of those the one furthest round. Names not in `order`
    (providers no longer configured) do not move the rotation.
    """
    seconds: dict[int, dict[str, int]] = {}
    for request in _roots(state):
        if request.provider in order:
            counts = seconds.setdefault(request.created_at, {})
            counts[request.provider] = counts.get(request.provider, 0) + 1
    last: str | None = None
    for second in sorted(seconds):
        last = _last_of_round(seconds[second], order, last)
    return last


def _last_of_round(counts: Mapping[str, int], order: Mapping[str, int], before: str | None) -> str:
    start = order[before] + 1 if before is not None else 0
    return max(counts, key=lambda name: (counts[name], (order[name] - start) % len(order)))


def candidates(
    template: Template,
    providers: tuple[ProviderConfig, ...],
    state: State,
    open_circuits: frozenset[str],
    policy: Policy,
) -> tuple[str, ...]:
    """The providers a new request for `template` may go to, best first, by `policy`.

    Never a disabled provider, one whose circuit is open, one the template does not allow, or
    one without room. Ties go to the provider listed first. Deterministic in its arguments:
    - first_available: config order.
    - priority: lowest `priority` first.
    - round_robin: the provider after the one the latest request went to, then on round.
    - weighted: the provider whose share of the requests in the state is furthest below its
      `weight` share (D'Hondt: after k x (sum of weights) requests each has k x weight).
    - least_used: fewest units in use (all templates) first.
    """
    room = rooms(template, providers, state)
    index = {p.name: i for i, p in enumerate(providers)}
    usable = [
        p
        for p in providers
        if p.name in room and not full(room[p.name]) and p.name not in open_circuits
    ]
    if policy == "priority":
        usable.sort(key=lambda p: (p.priority, index[p.name]))
    elif policy == "round_robin":
        last = _last_provider(state, index)
        start = index[last] + 1 if last in index else 0
        usable.sort(key=lambda p: ((index[p.name] - start) % len(providers), index[p.name]))
    elif policy == "weighted":
        from fractions import Fraction  # exact shares; imported here, off the common path

        counts = Counter(r.provider for r in _roots(state))
        usable.sort(key=lambda p: (Fraction(counts.get(p.name, 0) + 1, p.weight), index[p.name]))
    elif policy == "least_used":
        used = _used(state)
        usable.sort(key=lambda p: (used.get(p.name, 0), index[p.name]))
    return tuple(p.name for p in usable)


def _used(state: State) -> Mapping[str, int]:
    out: Counter[str] = Counter()
    for request in state.requests.values():
        out[request.provider] += request_units(request)
    return out


def split_template_id(
    template_id: str, templates: Iterable[Template], providers: Iterable[ProviderConfig]
) -> tuple[str, str | None]:
    """`gpu.east` -> ("gpu", "east") when listed per provider; else (template_id, None)."""
    base, sep, name = template_id.rpartition(PROVIDER_SEPARATOR)
    if not sep or any(t.template_id == template_id for t in templates):
        return template_id, None
    if any(p.name == name and p.name for p in providers):
        return base, name
    return template_id, None


def pinned(template: Template, provider: str) -> Template:
    """The template restricted to one provider (HF chose it from a per-provider listing)."""
    return msgspec.structs.replace(template, providers=[provider])


def _key_problem(provider: ProviderConfig) -> str | None:
    """A `defaults` / `templates.<id>` key that is no template key: a typo, most likely."""
    tables = [("defaults", provider.defaults)] + [
        (f"templates.{tid}", keys) for tid, keys in sorted(provider.templates.items())
    ]
    for where, keys in tables:
        for key in sorted(keys):
            if key in _SETTABLE:
                continue
            import difflib  # only for this message: off every call's path

            close = difflib.get_close_matches(key, sorted(_SETTABLE), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (
                f"provider {provider.name!r}: {where}.{key} is not a template key{hint}; "
                "use IBM's camelCase template keys"
            )
    return None


def check_providers(config: Config) -> Result[Config, OhfError]:
    """Config-time checks: unique names, known names in templates, every provider view valid."""
    names = [p.name for p in config.providers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return Failure(OhfError(message=f"provider {dupes[0]!r} is defined twice", code="config"))
    for provider in config.providers:
        problem = _key_problem(provider)
        if problem is not None:
            return Failure(OhfError(message=problem, code="config"))
    providers = providers_of(config)
    for template in config.templates:
        if template.providers is not None and not template.providers:
            return Failure(
                OhfError(
                    message=(
                        f"template {template.template_id!r}: providers = [] allows no provider "
                        "(leave it out for all of them)"
                    ),
                    code="config",
                )
            )
        unknown = [n for n in template.providers or () if n not in names]
        if unknown:
            known = ", ".join(names) or "none: add [[providers]] entries"
            return Failure(
                OhfError(
                    message=(
                        f"template {template.template_id!r}: unknown provider {unknown[0]!r} "
                        f"(known: {known})"
                    ),
                    code="config",
                )
            )
        for provider in providers:
            view = effective(template, provider)
            if isinstance(view, Failure):
                return view
            # Fragments are checked at load: a key ohf owns fails every call, not a request.
            checked = check_fragments(view.unwrap())
            if isinstance(checked, Failure):
                error = checked.failure()
                where = f" on provider {provider.name!r}" if provider.name else ""
                return Failure(msgspec.structs.replace(error, message=f"{error.message}{where}"))
    for provider in config.providers:
        stray = sorted(set(provider.templates) - {t.template_id for t in config.templates})
        if stray:
            return Failure(
                OhfError(
                    message=(f"provider {provider.name!r}: templates.{stray[0]} names no template"),
                    code="config",
                )
            )
    return Success(config)


def resolve_template(
    templates: tuple[Template, ...], placement: Placement, template_id: str
) -> Result[Template, OhfError]:
    """The template HF names: an id, or `<id>.<provider>` from a per-provider listing."""
    base, provider = split_template_id(template_id, templates, placement.providers)
    template = find_template(templates, base)
    if template is None:
        known = ", ".join(t.template_id for t in templates) or "none configured"
        return Failure(
            OhfError(message=f"unknown templateId {template_id!r} (known: {known})", code="input")
        )
    if provider is None:
        return Success(template)
    if not allowed(template, find_provider(placement.providers, provider) or SHORTHAND):
        return Failure(
            OhfError(
                message=f"template {base!r} may not run on provider {provider!r}", code="input"
            )
        )
    return Success(pinned(template, provider))
