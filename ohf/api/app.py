"""The Litestar app: the five HF calls over HTTP, `/health`, `/metrics`, the OpenAPI document
and the read-only status page (`/ui/`, `ohf.api.ui`).

Every call goes through the front door (`ohf.provider.Provider.call`), each with its own
correlation id, so the API and HF's scripts run the same code on the same store, with the
store's locking between them, and log their AWS calls alike. Bodies are
HF's JSON documents; failures keep HF's `{"message": ...}` shape.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.logging.config import LoggingConfig
from returns.result import Failure

from ohf.api.auth import Verifier, allowed, foreign_host
from ohf.api.errors import denied, message
from ohf.api.metrics import Tally, bump, machines_by_state, render, snapshot
from ohf.api.openapi import CALL_FAILED, JSON, document
from ohf.api.ui import ui_handlers
from ohf.config import ApiConfig
from ohf.hf import Reply, decode_input
from ohf.provider import Provider

log = logging.getLogger("ohf.api")
_encoder = msgspec.json.Encoder()


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return message(exc.status_code, str(exc.detail), cast(dict[str, str], exc.headers))


def make_app(api: ApiConfig, verify: Verifier, provider: Provider, tally: Tally) -> Litestar:
    """The ASGI app over `provider` (opened without a fixed correlation id: one per call)."""

    def count(name: str, label: str) -> None:
        bump(tally, name, label)

    def run_call(call: str, payload: bytes) -> Reply:
        return provider.call(call, payload)

    async def serve_call(
        request: Request[Any, Any, Any], call: str, payload: bytes, scope: str
    ) -> Response[bytes]:
        foreign = foreign_host(api, request.headers.get("host", ""))
        if foreign is not None:
            return denied(request, foreign)
        granted = verify(request.headers.get("authorization")).bind(
            lambda claims: allowed(claims, scope)
        )
        if isinstance(granted, Failure):
            return denied(request, granted.failure())
        log.info("%s %s by %s", request.method, request.url.path, granted.unwrap().get("sub"))
        count("ohf_api_calls_total", call)
        decoded = decode_input(call, payload)
        if isinstance(decoded, Failure):
            count("ohf_api_errors_total", call)
            return message(400, decoded.failure().message)
        reply = await anyio.to_thread.run_sync(run_call, call, payload)
        if reply.exit_code != 0:
            count("ohf_api_errors_total", call)
        status = 500 if reply.internal else {0: 200, 1: CALL_FAILED}.get(reply.exit_code, 500)
        return Response(reply.body, status_code=status, media_type=JSON)

    @get("/templates")
    async def templates(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_call(request, "getAvailableTemplates", b"{}", api.read_scope)

    @post("/requests")
    async def request_machines(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_call(request, "requestMachines", await request.body(), api.write_scope)

    @get("/requests/{request_id:str}")
    async def request_status(request: Request[Any, Any, Any]) -> Response[bytes]:
        ask = {"requests": [{"requestId": request.path_params["request_id"]}]}
        return await serve_call(request, "getRequestStatus", _encoder.encode(ask), api.read_scope)

    @post("/returns")
    async def return_machines(request: Request[Any, Any, Any]) -> Response[bytes]:
        payload = await request.body()
        return await serve_call(request, "requestReturnMachines", payload, api.write_scope)

    @get("/returns")
    async def return_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_call(request, "getReturnRequests", b"{}", api.read_scope)

    openapi = _encoder.encode(document(api.read_scope, api.write_scope))

    @get("/openapi.json")
    async def openapi_document() -> Response[bytes]:
        return Response(openapi, media_type=JSON)

    @get("/health", media_type=JSON)
    async def health() -> Response[bytes]:
        """Unauthenticated, for load balancers: 200 if the store can be read, else 503."""
        read = await anyio.to_thread.run_sync(provider.state)
        if isinstance(read, Failure):
            body = {"status": "fail", "message": read.failure().message}
            return Response(_encoder.encode(body), status_code=503, media_type=JSON)
        return Response(_encoder.encode({"status": "ok"}), media_type=JSON)

    @get("/metrics", media_type="text/plain; version=0.0.4")
    async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
        foreign = foreign_host(api, request.headers.get("host", ""))
        if foreign is not None:
            return cast(Response[str], denied(request, foreign))
        granted = verify(request.headers.get("authorization")).bind(
            lambda claims: allowed(claims, api.read_scope)
        )
        if isinstance(granted, Failure):
            return cast(Response[str], denied(request, granted.failure()))
        read = await anyio.to_thread.run_sync(provider.state)
        machines = None if isinstance(read, Failure) else machines_by_state(read.unwrap())
        return Response(render(snapshot(tally), machines), media_type="text/plain; version=0.0.4")

    return Litestar(
        route_handlers=[
            *ui_handlers(api, verify, provider),
            templates,
            request_machines,
            request_status,
            return_machines,
            return_requests,
            health,
            metrics,
            openapi_document,
        ],
        exception_handlers={HTTPException: _http_error},
        # The document comes from ohf.messages (ohf.api.openapi), not from these handlers.
        openapi_config=None,
        # Litestar's own logger only: the root logger is the embedding process's (ohf serve
        # configures `ohf`'s; a caller's, or pytest's, handlers stay where they are).
        logging_config=LoggingConfig(configure_root_logger=False),
    )
