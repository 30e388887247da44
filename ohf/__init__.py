"""ohf: an IBM Spectrum Symphony / LSF Host Factory provider for AWS, on a functional core.

`python -m ohf <call> -f FILE` answers Host Factory; `ohf.hf.handle` does the same from Python.
Kept import-light on purpose: HF starts a fresh process for every call.
"""

__version__ = "0.1.0"
