"""The status page without a browser: the facts (`ohf.overview`), the HTML (escaping, structure,
accessibility), and the HTTP side (auth, scopes, headers, same origin, loopback Host)."""

from __future__ import annotations

import html.parser
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from ohf.api.app import make_app
from ohf.api.auth import host_name, make_verifier
from ohf.api.markup import Safe, el, esc
from ohf.api.metrics import Tally
from ohf.api.page import CSP, document
from ohf.api.panels import ago, panels
from ohf.breaker import Breaker, clock_time
from ohf.config import ApiConfig, ProviderConfig
from ohf.effects import fake
from ohf.events import Event
from ohf.explain import Explanation
from ohf.listings import MachineRow, RequestRow, TemplateRow
from ohf.model import Machine, Request, Template
from ohf.overview import (
    EventRow,
    LastError,
    MachineFilter,
    OpenRequest,
    Overview,
    ProviderRow,
    aws_errors,
    breaker_state,
    event_words,
    last_errors,
)
from ohf.testing import FakeProviders, advance, call_all, door, fake_providers
from tests.test_api import API, bearer, token

AMI = "ami-0fa1ce0000000001"
MULTI = Template(template_id="multi", max_number=10, image_id=AMI, vm_type="t3.micro")
SPOT = Template(
    template_id="spotty",
    max_number=4,
    image_id=AMI,
    vm_type="t3.micro",
    price_type="spot",
    providers=["b"],
)
A, B = ProviderConfig(name="a"), ProviderConfig(name="b")
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"
LOOPBACK = "http://127.0.0.1:8080"


# --- the facts --------------------------------------------------------------------------------

CAPACITY = (
    "launched 3 of 5 units: RunInstances: InsufficientInstanceCapacity: We currently do not "
    "have sufficient t3.micro capacity (us-east-1a).; 2 unit(s) placed on provider b instead"
)


def test_aws_errors_are_found_in_ohfs_messages_and_nothing_else() -> None:
    assert aws_errors(CAPACITY) == [
        "RunInstances: InsufficientInstanceCapacity: We currently do not have sufficient "
        "t3.micro capacity (us-east-1a)."
    ]
    assert aws_errors("RunInstances: InternalError (HTTP 503): slow down") == [
        "RunInstances: InternalError (HTTP 503): slow down"
    ]
    pool = "InsufficientInstanceCapacity: no Spot capacity (c5.large/subnet-1)"
    assert aws_errors(f"fleet short; {pool}") == [pool]
    assert aws_errors(
        "no machine launched: RunInstances: InvalidSubnetID.NotFound: The subnet ID 'x' does "
        "not exist"
    ) == ["RunInstances: InvalidSubnetID.NotFound: The subnet ID 'x' does not exist"]
    # A machine's state reason, ohf's own words: not AWS API errors.
    for text in (
        "1 of 2 units usable; i-1: Client.UserInitiatedShutdown: User initiated shutdown",
        "adopted: found by its ohf:request-id tag",
        "2 unit(s) placed on provider b instead",
    ):
        assert aws_errors(text) == [], text


def header(rid: str, message: str, provider: str = "a", parent: str | None = None) -> Request:
    return Request(
        request_id=rid,
        template_id="multi",
        machine_count=1,
        client_token=rid,
        created_at=0,
        message=message,
        provider=provider,
        parent=parent,
    )


def changed(at: int, request: Request, kind: Any = "request_updated") -> Event:
    return Event(
        at=at, correlation="c", call="x", kind=kind, request_id=request.request_id, request=request
    )


def test_the_last_error_is_when_a_request_first_named_it_per_provider() -> None:
    first = "RunInstances: Throttling: Rate exceeded"
    events = [
        changed(10, header("r1", first), "request_created"),
        # The same message again later is not a new error.
        changed(20, header("r1", f"{first}; ok now")),
        changed(30, header("r1.2", "", provider="b", parent="r1")),
        changed(40, header("r2", "CreateFleet: Unsupported: no such pool", provider="b")),
    ]
    found = last_errors(events)
    assert found == {
        "a": LastError(at=10, request_id="r1", message=first),
        "b": LastError(at=40, request_id="r2", message="CreateFleet: Unsupported: no such pool"),
    }


def test_breaker_states() -> None:
    assert breaker_state(None, 100) == "closed"
    assert breaker_state(Breaker(failures=2, first_failure_at=90), 100) == "closed"
    assert breaker_state(Breaker(failures=5, open_until=160), 100) == "open"
    assert breaker_state(Breaker(failures=5, open_until=160), 160) == "half-open"


def test_event_words_say_what_changed() -> None:
    machine = Machine(
        machine_id="i-1", state="terminated", message="Server.SpotInstanceTermination"
    )
    lost = Event(
        at=1, correlation="c", call="getRequestStatus", kind="machine_changed", request_id="r1",
        machines=(machine,),
    )  # fmt: skip
    assert event_words(lost) == "i-1 terminated (Server.SpotInstanceTermination)"
    update = changed(2, header("r1", "first; second"))
    assert event_words(update, "first") == "running (launching): second"
    created = changed(3, header("r1.2", "", provider="b", parent="r1"), "request_created")
    assert event_words(created) == "asked for 1 unit(s) of multi on provider b (part of r1)"


def two_providers(tmp_path: Path) -> FakeProviders:
    """a holds 3 t3.micro at most; b is unbounded. 5 of multi (3 on a, 2 on b), 2 spot on b,
    one of which AWS then reclaims."""
    fp = fake_providers(
        [MULTI, SPOT],
        tmp_path,
        [A, B],
        clouds={"a": fake.new_cloud(capacity={"t3.micro": 3})},
    )
    _, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "multi", "machineCount": 5}}
    )
    _, spot = call_all(
        fp, "requestMachines", {"template": {"templateId": "spotty", "machineCount": 2}}
    )
    advance(fp.refs, 30)
    for rid in (out["requestId"], spot["requestId"]):
        call_all(fp, "getRequestStatus", {"requests": [{"requestId": rid}]})
    victim = sorted(fake.live_instances(fp.refs["b"].cloud))[-1]
    fp.refs["b"].cloud = fake.interrupt(fp.refs["b"].cloud, victim)
    advance(fp.refs, 30)
    call_all(fp, "getRequestStatus", {"requests": [{"requestId": spot["requestId"]}]})
    return fp


def test_the_overview_of_two_providers(tmp_path: Path) -> None:
    provider = door(two_providers(tmp_path))
    overview = provider.overview().unwrap()
    a, b = overview.providers
    assert (a.name, a.in_use, a.room, a.breaker) == ("a", 3, 7, "closed")
    assert a.last_error is not None and "InsufficientInstanceCapacity" in a.last_error.message
    # b: 2 of multi and the spot machine AWS left; room: multi 8 + spotty 3.
    assert (b.name, b.in_use, b.room, b.last_error) == ("b", 3, 11, None)
    multi = overview.templates[0]
    assert (multi.in_use, multi.available, multi.rooms) == (5, 15, {"a": 7, "b": 8})
    assert [r.request.template_id for r in overview.requests] == ["multi", "spotty"]
    spot = overview.requests[1].explanation
    assert spot is not None and any("lost before HF returned" in x for x in spot.reasons)
    # Explained as the door explains them one by one.
    for item in overview.requests:
        assert item.explanation == provider.explain(item.request.request_id).unwrap()
    assert overview.by_state == {"running": 6, "shutting-down": 1}
    assert overview.events and overview.events[0].at >= overview.events[-1].at
    only_b = door(two_providers(tmp_path / "again")).overview(provider="b").unwrap()
    assert {m.provider for m in only_b.machines} == {"b"} and len(only_b.machines) == 4


def test_requests_that_ended_are_not_open(tmp_path: Path) -> None:
    fp = fake_providers([MULTI], tmp_path, [A])
    _, out = call_all(
        fp, "requestMachines", {"template": {"templateId": "multi", "machineCount": 1}}
    )
    advance(fp.refs, 30)
    done = call_all(fp, "getRequestStatus", {"requests": [{"requestId": out["requestId"]}]})[1]
    machine = done["requests"][0]["machines"][0]
    ref = {"name": machine["name"], "machineId": machine["machineId"]}
    _, ret = call_all(fp, "requestReturnMachines", {"machines": [ref]})
    # The running return first, then the (complete) acquire request.
    listed = door(fp).overview().unwrap().requests
    assert [(r.request.kind, r.request.status) for r in listed] == [
        ("return", "running"),
        ("acquire", "complete"),
    ]
    for _ in range(3):
        advance(fp.refs, 60)
        call_all(fp, "getRequestStatus", {"requests": [{"requestId": ret["requestId"]}]})
        call_all(fp, "getRequestStatus", {"requests": [{"requestId": out["requestId"]}]})
    assert door(fp).overview().unwrap().requests == []


# --- the HTML ---------------------------------------------------------------------------------


def test_esc_and_el_escape_text_and_attributes() -> None:
    assert esc("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
    assert el("td", "<b>", title='"x"', hidden=True, class_=None) == (
        '<td title="&quot;x&quot;" hidden>&lt;b&gt;</td>'
    )
    assert el("p", el("b", "ok"), ["a", 1, None]) == "<p><b>ok</b>a1</p>"
    assert el("input", value="<") == '<input value="&lt;">'
    assert esc(Safe("<br>")) == "<br>"
    assert ago(59) == "59s" and ago(200) == "3m\u00a020s" and ago(7500) == "2h\u00a005m"


def hostile_overview() -> Overview:
    """Every string the page shows set to markup."""
    machine = MachineRow(
        machine_id=HOSTILE, name=HOSTILE, private_ip=HOSTILE, public_ip=None,
        instance_type=HOSTILE, price_type="spot", state="terminated", result="succeed",
        request_id=HOSTILE, provider=HOSTILE, units=1, launch_time=0, age=5, message=HOSTILE,
    )  # fmt: skip
    request = RequestRow(
        request_id=HOSTILE, kind="acquire", template_id=HOSTILE, providers=[HOSTILE], asked=1,
        held=0, machines=1, status="running", created_at=0, age=1, message=HOSTILE,
    )  # fmt: skip
    template = TemplateRow(
        template_id=HOSTILE, api=HOSTILE, price_type=HOSTILE, types={HOSTILE: 1}, max_number=1,
        in_use=0, available=None, rooms={HOSTILE: None}, ncpus=None, nram=None,
        providers=[HOSTILE],
    )  # fmt: skip
    return Overview(
        now=1_700_000_000,
        providers=[
            ProviderRow(
                name=HOSTILE,
                enabled=True,
                region=HOSTILE,
                breaker="open",
                open_until=1_700_000_060,
                failures=5,
                in_use=0,
                room=None,
                last_error=LastError(at=1_699_999_000, request_id=HOSTILE, message=HOSTILE),
            )
        ],
        templates=[template],
        requests=[
            OpenRequest(
                request=request,
                explanation=Explanation(
                    request_id=HOSTILE, status="running", summary=HOSTILE, reasons=[HOSTILE]
                ),
            )
        ],
        requests_hidden=0,
        machines=[machine],
        by_state={"terminated": 1},
        machines_hidden=0,
        events=[
            EventRow(
                at=1_699_999_990,
                request_id=HOSTILE,
                call=HOSTILE,
                kind="request_updated",
                words=HOSTILE,
            )
        ],
        events_hidden=0,
        filters=MachineFilter(state=HOSTILE, provider=HOSTILE, request=HOSTILE),
    )


class Parsed(html.parser.HTMLParser):
    """Elements, attributes and text of a document, as a browser's parser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_every_value_is_shown_as_text_never_as_markup() -> None:
    page = document(hostile_overview(), auth="none", scope="ohf:read")
    parsed = Parsed(page)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts == [{"src": "/ui/status.js", "defer": None}]
    assert not [tag for tag, _ in parsed.tags if tag in ("img", "iframe", "object", "style")]
    handlers = [name for _, attrs in parsed.tags for name in attrs if name.startswith("on")]
    assert handlers == []
    # The markup comes back as the same characters, in cells, captions and attributes.
    assert sum(HOSTILE in t for t in parsed.text) >= 15
    assert ("option", {"value": HOSTILE, "selected": None}) in parsed.tags  # the provider
    inputs = [attrs for tag, attrs in parsed.tags if tag == "input"]
    shown = {k: v for k, v in inputs[0].items() if k in ("type", "name", "value")}
    assert shown == {"type": "search", "name": "request", "value": HOSTILE}


def test_the_page_obeys_its_own_csp_and_has_no_write_action() -> None:
    page = document(hostile_overview(), auth="none", scope="ohf:read")
    parsed = Parsed(page)
    assert not [a for _, a in parsed.tags if "style" in a], "inline style attributes need CSP"
    assert not re.search(r"<script>|<style", page)
    forms = [a for tag, a in parsed.tags if tag == "form"]
    assert [f.get("method") for f in forms] == ["get"]
    script = (Path(__file__).parent.parent / "ohf/api/static/status.js").read_text()
    assert "method" not in script and "POST" not in script  # its one fetch is a GET
    assert "innerHTML" not in script and "eval(" not in script


def test_an_open_circuit_and_a_reclaim_are_said_in_words() -> None:
    page = panels(hostile_overview())
    until = clock_time(1_700_000_060)
    assert f"OPEN</strong> until {until} UTC, after 5 failure(s) in a row" in page
    assert '<tr class="lost">' in page and "Reclaimed by AWS (spot)" in page
    assert 'role="img" aria-labelledby="chart-title"' in page
    assert "Machines listed, by state: terminated 1." in page


def test_the_jwt_shell_holds_no_data_and_tables_have_headers() -> None:
    shell = document(None, auth="jwt", scope="ohf:read")
    assert 'id="token-form" hidden' in shell and '<main id="panels"></main>' in shell
    assert "JavaScript is off. This server uses JWT auth" in shell
    # The token input has no name: a form submitted without the script puts nothing in a URL.
    token_input = next(a for t, a in Parsed(shell).tags if t == "input")
    assert "name" not in token_input
    tables = panels(hostile_overview())
    assert tables.count("<caption>") == tables.count("<table>") == 5
    assert tables.count('scope="col"') == 7 + 10 + 9 + 11 + 5


# --- over HTTP --------------------------------------------------------------------------------


def client(tmp_path: Path, api: ApiConfig = API) -> TestClient[Any]:
    fp = two_providers(tmp_path)
    return TestClient(make_app(api, make_verifier(api, {}), door(fp), Tally()), base_url=LOOPBACK)


def test_panels_need_the_read_scope(tmp_path: Path) -> None:
    with client(tmp_path) as c:
        assert c.get("/ui/panels").status_code == 401
        assert c.get("/ui/panels").headers["www-authenticate"].startswith("Bearer")
        refused = c.get("/ui/panels", headers=bearer(token("ohf:write")))
        assert refused.status_code == 403
        assert refused.json() == {"message": "the token lacks the scope ohf:read"}
        shown = c.get("/ui/panels?provider=b", headers=bearer(token("ohf:read")))
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
        assert 'id="providers-data"' in shown.text and "multi" in shown.text
        rows = re.findall(r'<td data-label="Provider">([^<]*)</td>', shown.text)
        assert rows and set(rows) == {"b"}


def test_the_page_under_jwt_is_a_shell_without_data(tmp_path: Path) -> None:
    with client(tmp_path) as c:
        page = c.get("/ui/")
        assert page.status_code == 200
        assert "multi" not in page.text and "req-" not in page.text
        assert 'data-auth="jwt"' in page.text


def test_every_ui_answer_carries_the_security_headers_and_no_cors(tmp_path: Path) -> None:
    origin = {"Origin": "https://evil.example"}
    with client(tmp_path) as c:
        for path, headers in (
            ("/ui/", origin),
            ("/ui/panels", {**origin, **bearer(token("ohf:read"))}),
            ("/ui/panels", origin),
            ("/ui/status.js", origin),
            ("/ui/status.css", origin),
        ):
            answer = c.get(path, headers=headers)
            assert answer.headers["content-security-policy"] == CSP, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert not [h for h in answer.headers if h.startswith("access-control-")], path
        preflight = c.options(
            "/ui/panels", headers={**origin, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert c.get("/ui/panels", headers=bearer(token())).headers["cache-control"] == "no-store"
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "require-trusted-types-for 'script'",
    ):
        assert directive in CSP.split("; ")
    assert "unsafe" not in CSP


def test_auth_none_renders_the_data_and_answers_only_a_loopback_host(tmp_path: Path) -> None:
    with client(tmp_path, ApiConfig(auth="none")) as c:
        page = c.get("/ui/?state=shutting-down")
        assert page.status_code == 200
        assert 'id="providers-data"' in page.text and "Reclaimed by AWS (spot)" in page.text
        assert '<option value="shutting-down" selected>' in page.text
        assert c.get("/ui/panels").status_code == 200
        for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
            assert c.get("/ui/", headers={"Host": host}).status_code == 200, host
        rebound = c.get("/ui/panels", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403
        assert "loopback Host" in rebound.json()["message"]


def test_an_unreadable_store_is_said_not_hidden(tmp_path: Path) -> None:
    with client(tmp_path, ApiConfig(auth="none")) as c:
        (tmp_path / "ohf-state.json").write_text("{not json")
        page = c.get("/ui/")
        assert page.status_code == 503 and "Cannot read ohf&#x27;s store" in page.text
        fragment = c.get("/ui/panels")
        assert fragment.status_code == 503 and "store" in fragment.json()["message"]


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8080", "127.0.0.1"), ("LOCALHOST", "localhost"), ("[::1]:80", "[::1]"),
     ("evil.example", "evil.example"), ("::1", "::1")],
)  # fmt: skip
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_the_overview_is_json_encodable() -> None:
    # The same structs could feed a JSON endpoint or the MCP face.
    assert msgspec.json.decode(msgspec.json.encode(hostile_overview()), type=Overview) == (
        hostile_overview()
    )
