"""Several providers: `[[providers]]` entries, and states whose requests are spread over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import strategies as st

from ohf.config import ProviderConfig
from ohf.model import Request, State
from ohf.strategies.records import states
from ohf.strategies.values import _EPOCH, _ID_CHARS

REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1")
# Valid per-provider template defaults (IBM keys), for templates that leave them unset.
PROVIDER_DEFAULTS: tuple[dict[str, Any], ...] = (
    {},
    {"subnetId": ["subnet-0east", "subnet-1east"], "securityGroupIds": ["sg-0east"]},
    {"keyName": "site-key", "imageId": "ami-0123456789abcdef0"},
)


def provider_names() -> st.SearchStrategy[str]:
    """Valid provider names (`[A-Za-z0-9_-]{1,32}`), kept short."""
    return st.text(alphabet=_ID_CHARS, min_size=1, max_size=8)


@st.composite
def provider_configs(
    draw: st.DrawFn,
    *,
    min_size: int = 1,
    max_size: int = 4,
    template_ids: Sequence[str] = (),
) -> tuple[ProviderConfig, ...]:
    """`[[providers]]` entries with unique names; enabled, priority and weight vary.

    Priorities come from a small range so that ties (broken by config order) are common; about
    one provider in four is disabled. For each of `template_ids` a provider may override
    `maxNumber` (`[providers.templates.<id>]`) with -1..20.
    """
    names = draw(st.lists(provider_names(), min_size=min_size, max_size=max_size, unique=True))
    out: list[ProviderConfig] = []
    for name in names:
        overrides = {
            tid: {"maxNumber": draw(st.integers(min_value=-1, max_value=20))}
            for tid in template_ids
            if draw(st.booleans())
        }
        out.append(
            ProviderConfig(
                name=name,
                region=draw(st.sampled_from(REGIONS)),
                enabled=draw(st.sampled_from((True, True, True, False))),
                priority=draw(st.integers(min_value=0, max_value=3)),
                weight=draw(st.integers(min_value=1, max_value=5)),
                defaults=dict(draw(st.sampled_from(PROVIDER_DEFAULTS))),
                templates=overrides,
            )
        )
    return tuple(out)


@st.composite
def placement_states(
    draw: st.DrawFn,
    names: Sequence[str],
    *,
    template_ids: Sequence[str] = (),
    max_requests: int = 6,
) -> State:
    """A `State` (as `states` draws it) whose requests went to providers among `names`.

    Requests are for one of `template_ids` when given, created within a few seconds of each
    other (so equal `created_at`s are common, as they are in whole seconds). Some are failover
    parts: `<hf id>.<n>` with `parent` = an earlier request's id, on any of `names`.
    """
    if not names:
        raise ValueError("placement_states needs at least one provider name")
    base = draw(states(max_requests=max_requests))
    held: dict[str, Request] = {}
    roots: list[Request] = []
    for request in base.requests.values():
        provider = draw(st.sampled_from(list(names)))
        if roots and draw(st.integers(min_value=0, max_value=3)) == 0:
            parent = draw(st.sampled_from(roots))
            number = 2 + sum(1 for r in held.values() if r.parent == parent.request_id)
            part_id = f"{parent.request_id}.{number}"
            held[part_id] = msgspec.structs.replace(
                request,
                request_id=part_id,
                client_token=part_id,
                template_id=parent.template_id,
                created_at=parent.created_at,
                provider=provider,
                parent=parent.request_id,
            )
            continue
        root = msgspec.structs.replace(
            request,
            template_id=draw(st.sampled_from(list(template_ids)))
            if template_ids
            else request.template_id,
            created_at=draw(st.integers(min_value=_EPOCH - 3, max_value=_EPOCH)),
            provider=provider,
        )
        roots.append(root)
        held[root.request_id] = root
    return msgspec.structs.replace(base, requests=held)
