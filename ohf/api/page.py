"""The status page's document and its security headers, pure.

How a server-rendered page meets bearer auth: a browser sends no `Authorization` header when it
loads a page, so under JWT auth `GET /ui/` is a public shell that holds no data (no provider,
template, request or machine name) and the data come from `GET /ui/panels`, an HTML fragment
the page's script fetches with the token the user typed (kept in the tab's sessionStorage,
sent as a bearer header, never in a URL or a cookie) and which needs the read scope. Under
`auth = "none"` (127.0.0.1 only) the first render already holds the panels: the page works with
JavaScript off, the script then only refreshes it. Under JWT with JavaScript off the page says
why it cannot show anything and where else to look.
"""

from __future__ import annotations

from ohf import __version__
from ohf.api.markup import Safe, el, join
from ohf.api.panels import panels
from ohf.overview import Overview

REFRESH_SECONDS = 5
# The one name the script's Trusted Types policy may have.
TRUSTED_TYPES_POLICY = "ohf-status"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        f"trusted-types {TRUSTED_TYPES_POLICY}",
    ]
)

# On every /ui response. No Access-Control-* header anywhere: other origins cannot read it.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

_NO_SCRIPT_JWT = (
    "JavaScript is off. This server uses JWT auth, and a browser sends no bearer token when "
    "it loads a page, so this page gets its data only through its script, which sends the "
    "token you give it. Without JavaScript nothing can be shown here: use ohf templates, "
    "ohf requests and ohf machines on the HF host, or the REST API with a token."
)
_NO_SCRIPT_OPEN = (
    "JavaScript is off: the data below are as of loading the page. Reload the page to "
    "refresh them; the machines' filter works as a plain form."
)


def _token_form(scope: str) -> Safe:
    # The input has no name: even if the form were submitted without the script, the token
    # could not end up in a URL.
    return el(
        "form",
        el("h2", "Token"),
        el(
            "p",
            f"This server needs a bearer token (JWT) with the scope {scope}. It is kept in this "
            "tab only (session storage) and sent as an Authorization header.",
        ),
        el("label", "Bearer token", for_="token"),
        el(
            "input",
            id="token",
            type="password",
            autocomplete="off",
            spellcheck="false",
            required=True,
        ),
        el("button", "Show the status", type="submit"),
        id="token-form",
        hidden=True,
    )


def _header(auth: str) -> Safe:
    controls = el(
        "div",
        el("button", "Pause refresh", type="button", id="pause", aria_pressed="false"),
        el("button", "Forget the token", type="button", id="forget") if auth == "jwt" else None,
        el("span", f"Refreshes every {REFRESH_SECONDS} s.", id="refresh-note"),
        class_="controls",
        data_js=True,
        hidden=True,
    )
    return el(
        "header",
        el("h1", "ohf status"),
        el(
            "p",
            "Read-only: what ohf's store, event log and circuit breakers hold. "
            "This page makes no AWS call and changes nothing.",
            class_="lede",
        ),
        controls,
    )


def document(overview: Overview | None, *, auth: str, scope: str, problem: str = "") -> Safe:
    """The whole page: under JWT (`overview` None) the shell alone, else with every panel.

    `problem` is shown in the notice line (e.g. the store could not be read).
    """
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("title", "ohf status"),
        el("link", rel="icon", href="/ui/icon.svg", type="image/svg+xml"),
        el("link", rel="stylesheet", href="/ui/status.css"),
        el("script", src="/ui/status.js", defer=True),
    )
    body = el(
        "body",
        _header(auth),
        el(
            "noscript",
            el("p", _NO_SCRIPT_JWT if auth == "jwt" else _NO_SCRIPT_OPEN, class_="notice"),
        ),
        _token_form(scope) if auth == "jwt" else None,
        el("p", problem, id="notice", role="status", class_="notice"),
        el("main", panels(overview) if overview is not None else None, id="panels"),
        el(
            "footer",
            f"ohf {__version__} · ",
            el("a", "REST API (OpenAPI)", href="/openapi.json"),
        ),
        data_auth=auth,
        data_refresh=REFRESH_SECONDS,
        data_policy=TRUSTED_TYPES_POLICY,
    )
    return join([Safe("<!doctype html>\n"), el("html", head, body, lang="en")])
