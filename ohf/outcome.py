"""What every HF call's program ends with: the reply, the new state and the exit code.

A program returns `Result[Done, OhfError]`: `Failure` means the call was rejected and nothing
changed (exit 1, state untouched); `Success(Done)` means the call ran, possibly into an AWS error
that its reply reports.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ohf.model import State


class Done(msgspec.Struct, frozen=True, kw_only=True):
    """A finished call: reply for stdout, state to keep, exit code for HF."""

    reply: Any
    state: State
    exit_code: int = 0
