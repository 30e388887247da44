"""The API's refusals and errors, in HF's `{"message": ...}` shape; refusals are logged."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response

from ohf.api.auth import Denied
from ohf.api.openapi import JSON
from ohf.messages import ErrorOut

log = logging.getLogger("ohf.api")
_encoder = msgspec.json.Encoder()


def message(status: int, text: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    """`{"message": text}` with `status`."""
    return Response(
        _encoder.encode(ErrorOut(message=text)),
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


def denied(request: Request[Any, Any, Any], refusal: Denied) -> Response[bytes]:
    """A 401 (with `WWW-Authenticate`) or 403, logged with its reason, never the token."""
    client = request.client.host if request.client else "?"
    log.warning(
        "denied %s %s from %s: %d %s",
        request.method,
        request.url.path,
        client,
        refusal.status,
        refusal.reason,
    )
    headers = {"WWW-Authenticate": 'Bearer realm="ohf"'} if refusal.status == 401 else None
    return message(refusal.status, refusal.reason, headers)
