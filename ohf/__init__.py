"""ohf: an IBM Spectrum Symphony / LSF Host Factory provider for AWS, on a functional core.

`python -m ohf <call> -f FILE` answers Host Factory; `ohf.Provider` does the same from Python
(the front door every face uses: `Provider.open()`, then the five calls as typed methods).
Kept import-light on purpose: HF starts a fresh process for every call, so `Provider` is
imported only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ohf.provider import Provider

__version__ = "0.1.0"
__all__ = ["Provider", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Provider":
        from ohf.provider import Provider

        return Provider
    raise AttributeError(f"module 'ohf' has no attribute {name!r}")
