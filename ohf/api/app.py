"""The Litestar app: the five HF calls over HTTP, `/health`, `/metrics` and the OpenAPI document.

Every call goes through `ohf.hf.handle` with a `Shell` built per request, so the API and HF's
scripts run the same code on the same store, with the store's locking between them. Bodies are
HF's JSON documents; failures keep HF's `{"message": ...}` shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from returns.result import Failure

from ohf.api.auth import Denied, Verifier, allowed
from ohf.api.metrics import Tally, bump, machines_by_state, render, snapshot
from ohf.api.openapi import CALL_FAILED, JSON, document
from ohf.config import ApiConfig
from ohf.effects import store
from ohf.hf import Reply, Shell, decode_input, handle
from ohf.messages import ErrorOut

log = logging.getLogger("ohf.api")
_encoder = msgspec.json.Encoder()

ShellFactory = Callable[[str], Shell]


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        _encoder.encode(ErrorOut(message=message)),
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


def _denied(request: Request[Any, Any, Any], denied: Denied) -> Response[bytes]:
    # The reason names what was wrong, never the token itself.
    client = request.client.host if request.client else "?"
    log.warning(
        "denied %s %s from %s: %d %s",
        request.method,
        request.url.path,
        client,
        denied.status,
        denied.reason,
    )
    headers = {"WWW-Authenticate": 'Bearer realm="ohf"'} if denied.status == 401 else None
    return _message(denied.status, denied.reason, headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return _message(exc.status_code, str(exc.detail), cast(dict[str, str], exc.headers))


def make_app(api: ApiConfig, verify: Verifier, new_shell: ShellFactory, tally: Tally) -> Litestar:
    """The ASGI app; `new_shell(call)` gives the shell for one call (fresh correlation id)."""

    def count(name: str, label: str) -> None:
        bump(tally, name, label)

    def run_call(call: str, payload: bytes) -> Reply:
        try:
            return handle(new_shell(call), call, payload)
        except Exception as exc:
            log.exception("internal error in %s", call)
            message = f"internal error in {call}: {type(exc).__name__}: {exc}"
            return Reply(body=_encoder.encode(ErrorOut(message=message)), exit_code=2)

    async def serve_call(
        request: Request[Any, Any, Any], call: str, payload: bytes, scope: str
    ) -> Response[bytes]:
        granted = verify(request.headers.get("authorization")).bind(
            lambda claims: allowed(claims, scope)
        )
        if isinstance(granted, Failure):
            return _denied(request, granted.failure())
        log.info("%s %s by %s", request.method, request.url.path, granted.unwrap().get("sub"))
        count("ohf_api_calls_total", call)
        decoded = decode_input(call, payload)
        if isinstance(decoded, Failure):
            count("ohf_api_errors_total", call)
            return _message(400, decoded.failure().message)
        reply = await anyio.to_thread.run_sync(run_call, call, payload)
        if reply.exit_code != 0:
            count("ohf_api_errors_total", call)
        status = {0: 200, 1: CALL_FAILED}.get(reply.exit_code, 500)
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
        read = await anyio.to_thread.run_sync(store.read, new_shell("health").settings)
        if isinstance(read, Failure):
            body = {"status": "fail", "message": read.failure().message}
            return Response(_encoder.encode(body), status_code=503, media_type=JSON)
        return Response(_encoder.encode({"status": "ok"}), media_type=JSON)

    @get("/metrics", media_type="text/plain; version=0.0.4")
    async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
        granted = verify(request.headers.get("authorization")).bind(
            lambda claims: allowed(claims, api.read_scope)
        )
        if isinstance(granted, Failure):
            return cast(Response[str], _denied(request, granted.failure()))
        read = await anyio.to_thread.run_sync(store.read, new_shell("metrics").settings)
        machines = None if isinstance(read, Failure) else machines_by_state(read.unwrap())
        return Response(render(snapshot(tally), machines), media_type="text/plain; version=0.0.4")

    return Litestar(
        route_handlers=[
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
    )
