"""The status page's data panels as HTML, pure: providers, templates, requests, machines, events.

Each panel is a `<section>` with a captioned table (row headers, column headers, and each cell
labelled for the narrow-screen layout); the parts that change carry `data-swap` and an id, so
the page's script replaces only what changed. Every value passes through `ohf.api.markup`.
Nothing here is colour alone: a lost machine, an open circuit and each bar of the chart say
what they are in words.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlencode

from ohf.api.markup import Child, Safe, el, join
from ohf.breaker import clock_time
from ohf.listings import MachineRow, TemplateRow
from ohf.overview import (
    MACHINE_STATES,
    EventRow,
    MachineFilter,
    OpenRequest,
    Overview,
    ProviderRow,
    is_lost,
)


def ago(seconds: int) -> str:
    """A duration for people: 45s, 3m 20s, 2h 05m, 3d 4h."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m\u00a0{seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3600}h\u00a0{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d\u00a0{seconds % 86_400 // 3600}h"


def when(epoch: int) -> Safe:
    """A UTC date and time in a `<time>` element."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    return el("time", stamp.replace("T", " ").replace("Z", " UTC"), datetime=stamp)


def _units(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def row(headers: Sequence[str], cells: Sequence[Child], *, class_: str | None = None) -> Safe:
    """A table row: the first cell heads the row; each cell is labelled with its column."""
    first, *rest = cells
    return el(
        "tr",
        el("th", first, scope="row", data_label=headers[0]),
        [el("td", c, data_label=h) for h, c in zip(headers[1:], rest, strict=True)],
        class_=class_,
    )


def table(caption: Child, headers: Sequence[str], rows: Sequence[Safe], empty: str) -> Safe:
    """A captioned table with column headers; one row saying `empty` when there is none."""
    body = rows or [el("tr", el("td", empty, colspan=len(headers)), class_="empty")]
    return el(
        "table",
        el("caption", caption),
        el("thead", el("tr", [el("th", h, scope="col") for h in headers])),
        el("tbody", body),
    )


def section(name: str, title: str, *content: Child) -> Safe:
    """A panel: a heading and its content."""
    return el(
        "section", el("h2", title, id=f"h-{name}"), content, id=name, aria_labelledby=f"h-{name}"
    )


def table_panel(
    name: str, title: str, caption: Child, headers: Sequence[str], rows: Sequence[Safe], empty: str
) -> Safe:
    """A panel holding one table, in the part the script swaps (`<name>-data`)."""
    content = table(caption, headers, rows, empty)
    return section(
        name, title, el("div", content, id=f"{name}-data", data_swap=True, class_="scroll")
    )


PROVIDER_HEADERS = (
    "Provider",
    "Placing",
    "Region",
    "Circuit",
    "Units in use",
    "Room (units)",
    "Last AWS error on a request",
)


def _circuit(p: ProviderRow) -> Child:
    if p.breaker == "open":
        return [
            el("strong", "OPEN", class_="flag"),
            f" until {clock_time(p.open_until or 0)} UTC, after {p.failures} failure(s) in a row:"
            " no AWS call goes there",
        ]
    if p.breaker == "half-open":
        return "half-open: the cool-down is over, the next call is a probe"
    return "closed" + (f", {p.failures} transient failure(s) in a row" if p.failures else "")


def _last_error(p: ProviderRow) -> Child:
    error = p.last_error
    if error is None:
        return "none recorded"
    return [when(error.at), " on ", el("code", error.request_id), ": ", el("q", error.message)]


def providers_panel(overview: Overview) -> Safe:
    """Each provider: placing or disabled, breaker, units in use, room, last AWS error."""
    rows = [
        row(
            PROVIDER_HEADERS,
            [
                p.name,
                "yes" if p.enabled else "no: disabled",
                p.region or "default",
                _circuit(p),
                p.in_use,
                _units(p.room) if p.enabled else "none: disabled",
                _last_error(p),
            ],
            class_="alert" if p.breaker == "open" else None,
        )
        for p in overview.providers
    ]
    caption = "Providers (AWS accounts and regions), their circuit breakers and room"
    return table_panel(
        "providers", "Providers", caption, PROVIDER_HEADERS, rows, "No provider configured."
    )


TEMPLATE_HEADERS = (
    "Template",
    "API",
    "Price",
    "Instance types (weight)",
    "ncpus",
    "nram (MiB)",
    "maxNumber",
    "In use",
    "Room",
    "Room per provider",
)


def _template_cells(t: TemplateRow) -> list[Child]:
    per = ", ".join(f"{name}: {_units(room)}" for name, room in t.rooms.items())
    return [
        t.template_id,
        t.api,
        t.price_type,
        ", ".join(f"{kind} ({weight})" for kind, weight in t.types.items()),
        "?" if t.ncpus is None else t.ncpus,
        "?" if t.nram is None else t.nram,
        "unlimited" if t.max_number < 0 else t.max_number,
        t.in_use,
        _units(t.available),
        per or "no provider may run it",
    ]


def templates_panel(overview: Overview) -> Safe:
    """Each template: how it launches, ncpus/nram derived, its cap, use and room per provider."""
    rows = [row(TEMPLATE_HEADERS, _template_cells(t)) for t in overview.templates]
    caption = "Templates HF can ask for: capacity units in use and room left"
    return table_panel(
        "templates", "Templates", caption, TEMPLATE_HEADERS, rows, "No template configured."
    )


REQUEST_HEADERS = (
    "Request",
    "Kind",
    "Template",
    "Provider(s)",
    "Asked",
    "Held",
    "Status",
    "Age",
    "Where it stands",
)


def _request_cells(item: OpenRequest) -> list[Child]:
    r, why = item.request, item.explanation
    link = el(
        "a",
        "its machines",
        href=f"/ui/?{urlencode({'request': r.request_id})}#machines",
        class_="filter",
        data_request=r.request_id,
    )
    standing: Child = r.message or "-"
    if why is not None:
        standing = [
            el("p", why.summary),
            el("ul", [el("li", x) for x in why.reasons]) if why.reasons else None,
        ]
    return [
        [el("code", r.request_id, class_="whole"), " ", link if r.kind == "acquire" else None],
        r.kind,
        r.template_id or "-",
        ", ".join(r.providers) or "-",
        r.asked,
        r.held,
        r.status,
        ago(r.age),
        standing,
    ]


def requests_panel(overview: Overview) -> Safe:
    """The requests that have not ended, each with the plain-words account of where it stands."""
    rows = [row(REQUEST_HEADERS, _request_cells(r)) for r in overview.requests]
    more = overview.requests_hidden
    caption = f"Open requests: {len(rows) + more} (acquire and return; asked and held in units)"
    if more:
        caption += f"; the first {len(rows)} shown, the running ones first"
    return table_panel(
        "requests", "Open requests", caption, REQUEST_HEADERS, rows, "No open request."
    )


MACHINE_HEADERS = (
    "Machine",
    "Name",
    "Type",
    "Price",
    "State",
    "Result",
    "Request",
    "Provider",
    "Units",
    "Age",
    "Note",
)


def _note(m: MachineRow) -> Child:
    if is_lost(m):
        what = "Reclaimed by AWS (spot)" if m.price_type == "spot" else "Lost before HF returned it"
        why = el("span", f": {m.message}", class_="reason") if m.message else None
        return [el("strong", "⚠ ", what, class_="flag"), why]
    if m.returned_by:
        return f"returned by {m.returned_by}"
    return el("span", m.message, class_="reason") if m.message else None


def _machine_cells(m: MachineRow) -> list[Child]:
    return [
        el("code", m.machine_id, class_="whole"),
        m.name or "-",
        m.instance_type or "-",
        m.price_type,
        m.state,
        m.result,
        el("code", m.request_id, class_="whole"),
        m.provider,
        m.units,
        ago(m.age),
        _note(m),
    ]


def chart(by_state: dict[str, int]) -> Safe:
    """Machines by state as a bar chart (inline SVG), each bar labelled with its state and count."""
    if not by_state:
        return el("p", "No machine to chart.", class_="chart-empty")
    summary = ", ".join(f"{state} {count}" for state, count in by_state.items())
    top = max(by_state.values())
    bars = []
    for index, (state, count) in enumerate(by_state.items()):
        y = index * 26
        width = max(2, round(count / top * 170))
        bars += [
            el("text", state, x=0, y=y + 14, class_="chart-label"),
            el("rect", x=110, y=y + 1, width=width, height=18, class_=f"bar bar-{state}"),
            el("text", count, x=116 + width, y=y + 14, class_="chart-count"),
        ]
    height = len(by_state) * 26
    svg = el(
        "svg",
        el("title", f"Machines by state: {summary}", id="chart-title"),
        bars,
        viewBox=f"0 0 340 {height}",
        width=340,
        height=height,
        role="img",
        aria_labelledby="chart-title",
        class_="chart",
    )
    return el("figure", svg, el("figcaption", f"Machines listed, by state: {summary}."))


def _option(value: str, text: str, chosen: str | None) -> Safe:
    return el("option", text, value=value, selected=value == (chosen or ""))


def filter_form(filters: MachineFilter, providers: Sequence[str]) -> Safe:
    """The machines' filter: a GET form (it works without JavaScript under `auth = "none"`)."""
    states = [_option("", "any state", filters.state)] + [
        _option(s, s, filters.state) for s in MACHINE_STATES
    ]
    names = [_option("", "any provider", filters.provider)] + [
        _option(p, p, filters.provider) for p in providers
    ]
    return el(
        "form",
        el("label", "State ", el("select", states, name="state")),
        el("label", "Provider ", el("select", names, name="provider")),
        el(
            "label",
            "Request ",
            el(
                "input",
                type="search",
                name="request",
                value=filters.request or "",
                placeholder="req-…",
                spellcheck="false",
            ),
        ),
        el("button", "Filter", type="submit"),
        el("a", "Clear", href="/ui/#machines", class_="filter", data_request=""),
        method="get",
        action="/ui/#machines",
        id="filters",
        role="search",
        aria_label="Filter the machines",
    )


def machines_panel(overview: Overview) -> Safe:
    """The machines (filtered), a chart of them by state, lost machines flagged in words."""
    rows = [
        row(MACHINE_HEADERS, _machine_cells(m), class_="lost" if is_lost(m) else None)
        for m in overview.machines
    ]
    shown = len(rows) + overview.machines_hidden
    caption = f"Machines: {shown}" + (
        f" (the first {len(rows)} shown: filter to see the others)"
        if overview.machines_hidden
        else ""
    )
    data = el(
        "div",
        chart(overview.by_state),
        el("div", table(caption, MACHINE_HEADERS, rows, "No machine matches."), class_="scroll"),
        id="machines-data",
        data_swap=True,
    )
    providers = [p.name for p in overview.providers]
    return section("machines", "Machines", filter_form(overview.filters, providers), data)


EVENT_HEADERS = ("Time (UTC)", "Age", "Request", "Call", "What happened")


def _event_cells(e: EventRow, now: int) -> list[Child]:
    return [
        el(
            "time",
            clock_time(e.at),
            datetime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.at)),
        ),
        ago(max(now - e.at, 0)),
        el("code", e.request_id, class_="whole"),
        e.call,
        [el("span", e.kind.replace("_", " "), class_="kind"), ": ", e.words],
    ]


def events_panel(overview: Overview) -> Safe:
    """The last hour's events, newest first."""
    rows = [row(EVENT_HEADERS, _event_cells(e, overview.now)) for e in overview.events]
    more = f"; {overview.events_hidden} older ones not shown" if overview.events_hidden else ""
    caption = f"Events of the last hour, newest first: {len(rows)}{more}"
    return table_panel(
        "events", "Recent events", caption, EVENT_HEADERS, rows, "No event in the last hour."
    )


def stamp(now: int) -> Safe:
    """When the data was read."""
    return el("p", "Data as of ", when(now), ".", id="stamp", data_swap=True)


def panels(overview: Overview) -> Safe:
    """Every panel, in the page's order (the fragment `GET /ui/panels` answers)."""
    return join(
        [
            stamp(overview.now),
            providers_panel(overview),
            templates_panel(overview),
            requests_panel(overview),
            machines_panel(overview),
            events_panel(overview),
        ]
    )
