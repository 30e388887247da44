"""Run the real HF calls against the fake cloud: a public helper for property and unit tests.

`fake_provider(templates, state_dir)` gives a `FakeProvider`; `call(provider, name, body)` runs
one HF call through `ohf.hf.handle` exactly as the CLI does, with the JSON file store in
`state_dir` and the in-memory cloud of `provider.ref` instead of AWS.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from ohf.config import Config
from ohf.effects import fake
from ohf.effects.files import Settings
from ohf.hf import Reply, Shell, handle
from ohf.model import Template


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


def call(provider: FakeProvider, name: str, body: Any) -> tuple[int, Any]:
    """Run HF call `name` with `body` (bytes, or any JSON-able value): (exit code, decoded JSON)."""
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    reply: Reply = handle(provider.shell, name, payload)
    return reply.exit_code, msgspec.json.decode(reply.body)
