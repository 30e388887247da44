"""`/ui/`: the read-only status page over the front door (`Provider.overview`), and its assets.

`GET /ui/` is public: under JWT auth a shell that holds no data, under `auth = "none"` the whole
page, rendered on the server (it works with JavaScript off). `GET /ui/panels` is the data, an
HTML fragment that needs the read scope: the page's script fetches it with the bearer token
every few seconds (`ohf.api.page` tells the whole story). Only GETs: nothing here changes
anything. Every answer carries `ohf.api.page.SECURITY_HEADERS`, and no CORS header: other
origins cannot read it. Under `auth = "none"` the page answers only to a loopback `Host`, so a
web site that rebinds its DNS name to 127.0.0.1 cannot read it through a visitor's browser.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from returns.result import Failure, Result

from ohf.api.auth import Verifier, allowed
from ohf.api.auth import foreign_host as auth_foreign_host
from ohf.api.errors import denied, message
from ohf.api.page import SECURITY_HEADERS, document
from ohf.api.panels import panels
from ohf.config import ApiConfig
from ohf.model import OhfError
from ohf.overview import Overview
from ohf.provider import Provider

log = logging.getLogger("ohf.api")

HTML = "text/html"
ASSETS = {
    "status.js": "text/javascript",
    "status.css": "text/css",
    "icon.svg": "image/svg+xml",
}
FILTERS = ("state", "provider", "request")


def _headers(cache: str = "no-store") -> dict[str, str]:
    return {**SECURITY_HEADERS, "Cache-Control": cache}


def _secured(response: Response[bytes]) -> Response[bytes]:
    response.headers.update(_headers())
    return response


def _html(body: str, status: int = 200) -> Response[bytes]:
    return Response(body.encode(), status_code=status, media_type=HTML, headers=_headers())


def ui_handlers(api: ApiConfig, verify: Verifier, provider: Provider) -> list[HTTPRouteHandler]:
    """The page, its data fragment and its assets (read once, from the package)."""
    folder = resources.files("ohf.api") / "static"
    assets = {name: (folder / name).read_bytes() for name in ASSETS}

    open_auth = api.auth == "none"

    def foreign_host(request: Request[Any, Any, Any]) -> Response[bytes] | None:
        refused = auth_foreign_host(api, request.headers.get("host", ""))
        return None if refused is None else _secured(denied(request, refused))

    def overview(request: Request[Any, Any, Any]) -> Result[Overview, OhfError]:
        wanted = {name: request.query_params.get(name) or None for name in FILTERS}
        return provider.overview(**wanted)

    @get("/ui/", include_in_schema=False)
    async def page(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = foreign_host(request)
        if refused is not None:
            return refused
        if not open_auth:
            return _html(document(None, auth=api.auth, scope=api.read_scope))
        read = await anyio.to_thread.run_sync(overview, request)
        if isinstance(read, Failure):
            problem = f"Cannot read ohf's store: {read.failure().message}"
            return _html(document(None, auth=api.auth, scope=api.read_scope, problem=problem), 503)
        return _html(document(read.unwrap(), auth=api.auth, scope=api.read_scope))

    @get("/ui/panels", include_in_schema=False)
    async def fragment(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = foreign_host(request)
        if refused is not None:
            return refused
        granted = verify(request.headers.get("authorization")).bind(
            lambda claims: allowed(claims, api.read_scope)
        )
        if isinstance(granted, Failure):
            return _secured(denied(request, granted.failure()))
        read = await anyio.to_thread.run_sync(overview, request)
        if isinstance(read, Failure):
            problem = f"cannot read ohf's store: {read.failure().message}"
            return _secured(message(503, problem))
        log.debug("GET /ui/panels by %s", granted.unwrap().get("sub"))
        return _html(panels(read.unwrap()))

    def asset(name: str) -> HTTPRouteHandler:
        @get(f"/ui/{name}", include_in_schema=False, name=f"ui-{name}")
        async def served() -> Response[bytes]:
            return Response(assets[name], media_type=ASSETS[name], headers=_headers("no-cache"))

        return served

    return [page, fragment, *(asset(name) for name in ASSETS)]
