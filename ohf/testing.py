"""Run the real HF calls against the fake cloud: a public helper for property and unit tests.

`fake_provider(templates, state_dir)` gives a `FakeProvider`; `call(provider, name, body)` runs
one HF call through the front door (`ohf.provider.Provider`) exactly as the CLI does, with the
JSON file store in `state_dir` and the in-memory cloud of `provider.ref` instead of AWS.
`door(provider)` is that front door, for the typed calls and the listings.

`fake_providers(templates, state_dir, providers)` does the same for a config with several
`[[providers]]`: one fake cloud each (`refs[name]`), with instance ids and addresses that do
not collide between them, as real accounts' do not.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from ohf.config import Config, PlacementConfig, ProviderConfig
from ohf.effects import fake
from ohf.effects.files import Settings
from ohf.hf import Reply, Shell
from ohf.model import Template
from ohf.provider import Provider


class FakeProvider(msgspec.Struct, frozen=True, kw_only=True):
    """A provider wired to a fake cloud: the shell to call with and the cloud's cell."""

    shell: Shell
    ref: fake.CloudRef


def fake_provider(
    templates: Iterable[Template],
    state_dir: str | Path,
    *,
    cloud: fake.FakeCloud | None = None,
    now: int = 1_700_000_000,
) -> FakeProvider:
    """A provider over `templates` whose state lives in `state_dir` and whose AWS is the fake."""
    ref = fake.CloudRef(cloud=cloud or fake.new_cloud(now=now))
    counter = itertools.count(1)
    settings = Settings(
        config=Config(templates=tuple(templates)),
        source="<test>",
        conf_dir=str(state_dir),
        state_path=str(Path(state_dir) / "ohf-state.json"),
        log_path=None,
    )
    shell = Shell(
        settings=settings,
        cloud=fake.interpreter(ref),
        now=lambda: ref.cloud.now,
        new_id=lambda prefix: f"{prefix}-{next(counter):08d}",
    )
    return FakeProvider(shell=shell, ref=ref)


def door(provider: FakeProvider | FakeProviders) -> Provider:
    """The front door over the provider's fake cloud(s)."""
    return Provider.over(provider.shell)


def call(provider: FakeProvider, name: str, body: Any) -> tuple[int, Any]:
    """Run HF call `name` with `body` (bytes, or any JSON-able value): (exit code, decoded JSON).

    An internal error (a bug in ohf, which the CLI would answer in HF's shape) raises here, so
    a test never mistakes one for a refusal.
    """
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    reply: Reply = door(provider).call(name, payload)
    if reply.internal:
        raise AssertionError(reply.body.decode("utf-8", "replace"))
    return reply.exit_code, msgspec.json.decode(reply.body)


class FakeProviders(msgspec.Struct, frozen=True, kw_only=True):
    """Several providers, each with its own fake cloud, behind one shell."""

    shell: Shell
    refs: dict[str, fake.CloudRef]


# The fake's 10.0.x.y addresses repeat every this many instance serials: each fake cloud
# starts its serials a share of it apart, so ids, addresses and host names never collide.
_ADDRESS_CYCLE = 62_500


def fake_providers(
    templates: Iterable[Template],
    state_dir: str | Path,
    providers: Iterable[ProviderConfig],
    *,
    placement: PlacementConfig | None = None,
    clouds: dict[str, fake.FakeCloud] | None = None,
    now: int = 1_700_000_000,
) -> FakeProviders:
    """A multi-provider shell over `templates`; `clouds` may give some providers' fake clouds."""
    listed = tuple(providers)
    refs = {
        p.name: fake.CloudRef(
            cloud=(clouds or {}).get(p.name)
            or msgspec.structs.replace(
                fake.new_cloud(now=now), counter=_ADDRESS_CYCLE // len(listed) * i
            )
        )
        for i, p in enumerate(listed)
    }
    first = refs[listed[0].name]
    counter = itertools.count(1)
    settings = Settings(
        config=Config(
            templates=tuple(templates),
            providers=listed,
            placement=placement or PlacementConfig(),
        ),
        source="<test>",
        conf_dir=str(state_dir),
        state_path=str(Path(state_dir) / "ohf-state.json"),
        log_path=None,
    )
    clouds_by_name = {name: fake.interpreter(ref) for name, ref in refs.items()}
    shell = Shell(
        settings=settings,
        cloud=clouds_by_name[listed[0].name],
        clouds=clouds_by_name,
        # Every cloud shares the first one's clock: tests move them together.
        now=lambda: first.cloud.now,
        new_id=lambda prefix: f"{prefix}-{next(counter):08d}",
    )
    return FakeProviders(shell=shell, refs=refs)


def advance(refs: dict[str, fake.CloudRef], seconds: int) -> None:
    """Move every fake cloud's clock on by `seconds` (their instances progress on describe)."""
    for ref in refs.values():
        ref.cloud = msgspec.structs.replace(ref.cloud, now=ref.cloud.now + seconds)


def call_all(providers: FakeProviders, name: str, body: Any) -> tuple[int, Any]:
    """`call` for a `FakeProviders`."""
    return call(
        FakeProvider(shell=providers.shell, ref=next(iter(providers.refs.values()))), name, body
    )
