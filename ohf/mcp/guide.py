"""The MCP resources (the masked config, the state summary) and prompts (the questions
administrators ask), without the SDK: `ohf.mcp.server` lists and serves them.

A prompt is the question, put so that an assistant answers it from ohf's tools: which tools to
call with which arguments, and what the answer should say.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.mcp.answers import state_summary
from ohf.mcp.masking import masked_config
from ohf.model import OhfError
from ohf.provider import Provider


class Resource(msgspec.Struct, frozen=True, kw_only=True):
    """One readable document: a JSON rendering of something the door holds."""

    uri: str
    name: str
    title: str
    description: str
    read: Callable[[Provider], Result[Any, OhfError]]


def _summary(provider: Provider) -> Result[Any, OhfError]:
    now = provider.shell().now()
    return provider.requests().bind(
        lambda requests: provider.machines().bind(
            lambda machines: provider.template_rows().map(
                lambda templates: state_summary(
                    provider.store_description(),
                    requests,
                    machines,
                    templates,
                    provider.breakers(),
                    now,
                )
            )
        )
    )


RESOURCES: tuple[Resource, ...] = (
    Resource(
        uri="ohf://config",
        name="config",
        title="ohf's config (secrets masked)",
        description="The config ohf runs with, as decoded (defaults filled in), with where it "
        "was read; secrets, credential files, external ids, script arguments, user data and "
        "URL credentials masked as ********.",
        read=lambda p: Success(masked_config(p.settings.config, p.settings.source)),
    ),
    Resource(
        uri="ohf://state/summary",
        name="state-summary",
        title="What ohf holds, counted",
        description="Requests and returns by status, machines by state, provider and price "
        "type, units in use per template, open circuit breakers, running requests. From the "
        "state store: no AWS call.",
        read=_summary,
    ),
)


def read(provider: Provider, uri: str) -> Result[bytes, OhfError]:
    """One resource's JSON, or why not."""
    found = next((r for r in RESOURCES if r.uri == uri), None)
    if found is None:
        known = ", ".join(r.uri for r in RESOURCES)
        return Failure(OhfError(message=f"no resource {uri!r}; there are {known}", code="input"))
    return found.read(provider).map(msgspec.json.encode)


class PromptArgument(msgspec.Struct, frozen=True, kw_only=True):
    """One argument a prompt takes."""

    name: str
    description: str
    required: bool = True


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """One question, and how to answer it with the tools (`text(arguments, now)`)."""

    name: str
    title: str
    description: str
    arguments: tuple[PromptArgument, ...]
    text: Callable[[Mapping[str, str], int], str]


def _stuck(args: Mapping[str, str], now: int) -> str:
    rid = args["request_id"]
    return (
        f"Why is Host Factory request {rid} stuck?\n\n"
        f'Call explain_request with {{"request_id": "{rid}"}} first, then show_request for '
        "its parts (one per provider), machines and events. If a provider is short of "
        "capacity, throttled or behind an open circuit breaker, call health for that provider. "
        "Answer in a few sentences: where the request stands (units held of asked), why, "
        "since when, and what an administrator can do (wait for the fleet, allow more instance "
        "types or subnets, raise maxNumber, fix the account). Quote ohf's own words for "
        "AWS errors; do not guess beyond what the tools say."
    )


def _spot(args: Mapping[str, str], now: int) -> str:
    since = args.get("since") or time.strftime("%Y-%m-%d", time.gmtime(now))
    return (
        f"How many spot machines did we lose since {since} (UTC)?\n\n"
        f'Call lost_machines with {{"since": "{since}", "price_type": "spot"}}. Answer with '
        "the count first, then by provider and instance type, and what ended them (the "
        "machines' messages, e.g. a spot interruption). Machines HF returned are not losses "
        "and are not listed. If none were lost, say so plainly."
    )


def _healthy(args: Mapping[str, str], now: int) -> str:
    name = args["provider"]
    return (
        f"Is the {name} account healthy?\n\n"
        f'Call health with {{"provider": "{name}"}}: every failed check (with its detail) '
        "and the circuit breaker's state matter. Then call list_requests with "
        '{"status": "running"} and lost_machines with {"provider": "'
        f'{name}"}} to see whether requests there are waiting or machines were lost. Answer '
        "yes or no first, then each problem found and what to do about it."
    )


PROMPTS: tuple[Prompt, ...] = (
    Prompt(
        name="why_is_request_stuck",
        title="Why is request X stuck?",
        description="Explain where a request stands and why, from ohf's state and events.",
        arguments=(PromptArgument(name="request_id", description="the HF request id"),),
        text=_stuck,
    ),
    Prompt(
        name="spot_machines_lost",
        title="How many spot machines did we lose today?",
        description="Count the spot machines that ended without HF returning them.",
        arguments=(
            PromptArgument(
                name="since",
                description="from when (default: today, UTC): 6h, 2d, 2026-12-01...",
                required=False,
            ),
        ),
        text=_spot,
    ),
    Prompt(
        name="is_provider_healthy",
        title="Is the east account healthy?",
        description="Check one provider (AWS account/region) against AWS, with its breaker.",
        arguments=(PromptArgument(name="provider", description='the provider ("aws" for [aws])'),),
        text=_healthy,
    ),
)


def prompt(name: str, arguments: Mapping[str, str] | None, now: int) -> Result[str, OhfError]:
    """A prompt's text for these arguments, or why not."""
    found = next((p for p in PROMPTS if p.name == name), None)
    if found is None:
        known = ", ".join(p.name for p in PROMPTS)
        return Failure(OhfError(message=f"no prompt {name!r}; there are {known}", code="input"))
    given = dict(arguments or {})
    missing = [a.name for a in found.arguments if a.required and not given.get(a.name)]
    if missing:
        return Failure(OhfError(message=f"{name} needs {', '.join(missing)}", code="input"))
    return Success(found.text(given, now))
