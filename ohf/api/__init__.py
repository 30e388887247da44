"""The optional REST API (`pip install ohf-aws[api]`, `ohf serve`) over the same HF calls.

Never imported by the HF call path: `python -m ohf <call>` loads none of Litestar, uvicorn or
PyJWT.
"""
