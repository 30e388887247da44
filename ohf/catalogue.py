"""The bundled EC2 instance-type catalogue: instance type -> vCPUs, cores, MiB, architecture.

The data file (`ohf/data/instance_types.json`) is read by the shell (`ohf.effects.files`) and
decoded here; regenerate it with `scripts/refresh_catalogue.py` (see the README).
"""

from __future__ import annotations

import msgspec


class InstanceTypeInfo(msgspec.Struct, frozen=True, array_like=True):
    """One catalogue row: `[vcpus, cores, mib, arch]`."""

    vcpus: int
    cores: int
    mib: int
    arch: str


class Catalogue(msgspec.Struct, frozen=True, kw_only=True):
    """The whole catalogue file."""

    source: str = ""
    generated: str = ""
    types: dict[str, InstanceTypeInfo] = {}


EMPTY = Catalogue()


def decode_catalogue(raw: bytes) -> Catalogue:
    """Decode the catalogue data file (it ships with the package, so a failure is a bug)."""
    return msgspec.json.decode(raw, type=Catalogue)
