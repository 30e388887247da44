"""The status page in a real browser: Chromium (the OS's) driven by Playwright, against `ohf serve`
(a subprocess) over two moto_servers holding a state built by real HF calls.

The state: 5 units of `multi` (3 fit on the capped provider a, 2 fail over to b); 2 spot units
of `spotty` on b, one of which AWS then takes back; and a request for `probe`, whose subnet id
carries `<script>`, which AWS refuses and echoes ("The subnet ID '...' does not exist"): that
message is stored on the request and shown as provider b's last AWS error and in the events.

Skipped where Chromium or Playwright is missing, unless OHF_UI_BROWSER=required (CI sets it):
then a missing browser fails. OHF_UI_SCREENSHOTS=DIR saves the screenshots there too (the
committed ones, `docs/status-page-*.png`, come from `OHF_UI_SCREENSHOTS=docs`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hf_env, run_ohf
from tests.test_api import AUDIENCE, ISSUER, SECRET, serving, token
from tests.test_e2e_providers import (  # noqa: F401
    TEMPLATE,
    Clouds,
    ask,
    clouds,
    ec2,
    hf,
    poll,
    write_config,
)

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("OHF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INJECTED = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
# Within moto's echo of the subnet id; the page must show it as these characters.
PROBE_SUBNET = f"subnet-{INJECTED}"
REFRESH_WAIT_MS = 15_000


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, headless, for this module (one per xdist worker)."""
    missing = _unavailable()
    if missing:
        if os.environ.get("OHF_UI_BROWSER") == "required":
            pytest.fail(f"OHF_UI_BROWSER=required but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


EXTRA_TEMPLATES = f"""
[[templates]]
templateId = "spotty"
maxNumber = 4
vmType = "t3.micro"
priceType = "spot"
providers = ["b"]

[[templates]]
templateId = "probe"
maxNumber = 2
vmType = "t3.micro"
subnetId = "{PROBE_SUBNET}"
providers = ["b"]
"""


def jwt_api() -> str:
    return f'\n[api]\nsecret_env = "OHF_API_SECRET"\naudience = "{AUDIENCE}"\nissuer = "{ISSUER}"\n'


@dataclass(frozen=True)
class Site:
    """The clouds, ohf's conf dir and what the HF calls made."""

    clouds: Clouds
    multi: str
    spotty: str
    reclaimed: str
    probe_message: str


@pytest.fixture
def site(clouds: Clouds) -> Site:  # noqa: F811
    """The state of the module docstring, built by `python -m ohf` calls as HF makes them."""
    write_config(clouds)
    config = clouds.conf / "ohf.toml"
    config.write_text(config.read_text() + EXTRA_TEMPLATES + jwt_api())
    multi = ask(clouds.conf, 5)["requestId"]
    assert poll(clouds.conf, multi)["status"] == "complete"
    body = {"template": {"templateId": "spotty", "machineCount": 2}}
    spotty = hf("requestMachines", body, clouds.conf)["requestId"]
    machines = poll(clouds.conf, spotty)["machines"]
    reclaimed = machines[0]["machineId"]
    ec2(clouds.url_b).terminate_instances(InstanceIds=[reclaimed])  # AWS takes it back
    hf("getRequestStatus", {"requests": [{"requestId": spotty}]}, clouds.conf)
    code, refused, _ = run_ohf(
        "requestMachines", {"template": {"templateId": "probe", "machineCount": 1}}, clouds.conf
    )
    assert code == 1 and INJECTED in refused["message"], refused  # type: ignore[index]
    return Site(
        clouds=clouds,
        multi=multi,
        spotty=spotty,
        reclaimed=reclaimed,
        probe_message=refused["message"],  # type: ignore[index]
    )


def env_of(site: Site) -> dict[str, str]:
    return {**hf_env(site.clouds.conf), "OHF_API_SECRET": SECRET}


def cells(page: Any, table: str, name: str) -> dict[str, str]:
    """The row headed `name` in the panel `table`, as {column: text}."""
    heading = page.locator("th", has_text=re.compile(rf"^{re.escape(name)}\b"))
    row = page.locator(f"#{table}-data tbody tr").filter(has=heading)
    headers = page.locator(f"#{table}-data thead th").all_inner_texts()
    values = row.locator("th, td").all_inner_texts()
    return dict(zip(headers, values, strict=True))


def watch(page: Any) -> list[str]:
    """Script errors and CSP or Trusted Types violations reported by the page, as they come."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if re.search(r"Content Security Policy|Trusted Type|Refused to", m.text)
            else None
        ),
    )
    return problems


def sign_in(page: Any, value: str) -> None:
    page.fill("#token", value)
    page.click("#token-form button[type=submit]")


def shoot(page: Any, tmp: Path, name: str, width: int, *, height: int | None = None) -> None:
    """A screenshot at `width` px: the whole page, or its first `height` px; into tmp (and
    OHF_UI_SCREENSHOTS if set)."""
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(200)
    shot = tmp / f"{name}.png"
    clip = None if height is None else {"x": 0, "y": 0, "width": width, "height": height}
    # caret="initial": Playwright would hide the caret with an inline style the CSP refuses.
    page.screenshot(path=str(shot), full_page=True, clip=clip, caret="initial")
    keep(shot)


def keep(shot: Path) -> None:
    """Check a screenshot was taken; copy it to OHF_UI_SCREENSHOTS if set."""
    assert shot.stat().st_size > 10_000
    wanted = os.environ.get("OHF_UI_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(wanted) / shot.name)


def signs_in_after_a_refusal(page: Any, context: Any) -> None:
    """The shell asks for a token; one without the read scope is refused and forgotten."""
    page.wait_for_selector("#token-form:not([hidden])")
    assert page.locator("#panels").inner_html() == ""
    assert TEMPLATE not in page.content()
    sign_in(page, token("ohf:write"))
    page.wait_for_selector("#notice:has-text('Refused (403)')")
    assert "the token lacks the scope ohf:read" in page.inner_text("#notice")
    assert page.evaluate("sessionStorage.getItem('ohf.token')") is None
    assert page.locator("#token-form").is_visible()
    assert page.locator("#panels").inner_html() == ""
    good = token("ohf:read")
    sign_in(page, good)
    page.wait_for_selector("#providers-data table")
    # The token stays in this tab's sessionStorage: not in the URL, not in a cookie.
    assert page.evaluate("sessionStorage.getItem('ohf.token')") == good
    assert good not in page.url and context.cookies() == []


def shows_the_providers_with_the_injection_as_text(page: Any) -> None:
    a, b = cells(page, "providers", "a"), cells(page, "providers", "b")
    assert (a["Placing"], a["Units in use"], a["Room (units)"]) == ("yes", "3", "7")
    assert a["Circuit"] == "closed"
    assert "RunInstances: InsufficientInstanceCapacity" in a["Last AWS error on a request"]
    # b: 2 units of multi, 1 spot unit still alive; room multi 8 + spotty 3 + probe 2.
    assert (b["Units in use"], b["Room (units)"]) == ("3", "13")
    # The injected markup is text, as AWS echoed it.
    assert f"The subnet ID '{PROBE_SUBNET}' does not exist" in b["Last AWS error on a request"]
    assert page.evaluate("window.pwned") is None
    assert page.locator("#panels script, #panels img").count() == 0
    assert INJECTED in page.inner_text("#events-data")


def shows_templates_requests_machines_and_events(page: Any, site: Site) -> None:
    multi = cells(page, "templates", TEMPLATE)
    assert (multi["In use"], multi["Room"], multi["Room per provider"]) == ("5", "15", "a: 7, b: 8")
    # ncpus and nram as getAvailableTemplates derives them for HF.
    listed = hf("getAvailableTemplates", {}, site.clouds.conf)["templates"]
    attributes = next(t for t in listed if t["templateId"] == TEMPLATE)["attributes"]
    assert (multi["ncpus"], multi["nram (MiB)"]) == (attributes["ncpus"][1], attributes["nram"][1])

    assert page.locator("#requests-data tbody tr").count() == 2
    first = cells(page, "requests", site.multi)
    assert (first["Provider(s)"], first["Asked"], first["Held"]) == ("a, b", "5", "5")
    assert first["Status"] == "complete"
    assert "2 unit(s) failed over from a to b" in first["Where it stands"]
    spot = cells(page, "requests", site.spotty)
    assert "lost before HF returned them" in spot["Where it stands"]

    assert page.locator("#machines-data tbody tr").count() == 7
    lost = page.locator("#machines-data tbody tr.lost")
    assert lost.count() == 1
    assert site.reclaimed in lost.inner_text()
    assert "Reclaimed by AWS (spot)" in lost.inner_text()  # in words, not colour alone
    assert page.inner_text("#machines-data figcaption") == (
        "Machines listed, by state: running 6, terminated 1."
    )
    assert page.locator("#machines-data svg title").text_content().endswith("terminated 1")
    events = page.inner_text("#events-data")
    assert "request created" in events and site.multi in events


def refreshes_in_place(page: Any, site: Site) -> None:
    """A new request shows up without a reload (a mark on the document survives)."""
    page.evaluate("document.body.dataset.marker = 'kept'")
    newer = ask(site.clouds.conf, 1)["requestId"]
    page.wait_for_selector(f"#requests-data th:has-text('{newer}')", timeout=REFRESH_WAIT_MS)
    assert page.evaluate("document.body.dataset.marker") == "kept"
    assert page.locator("#requests-data tbody tr").count() == 3


def filters_the_machines(page: Any) -> None:
    """By provider: the URL holds the filter, never the token."""
    page.select_option("#filters select[name=provider]", "b")
    page.click("#filters button[type=submit]")
    providers = page.locator("#machines-data tbody td[data-label=Provider]")
    # Polled from here: the page's CSP forbids the eval that wait_for_function would need.
    for _ in range(50):
        if set(providers.all_inner_texts()) == {"b"}:
            break
        page.wait_for_timeout(100)
    assert set(providers.all_inner_texts()) == {"b"}
    assert page.url.endswith("/ui/?provider=b#machines")


def test_the_page_under_jwt_shows_the_state_refreshes_and_escapes(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    with serving(env_of(site), tmp_path / "serve.err") as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems = watch(page)
        page.goto(f"{base}/ui/")
        signs_in_after_a_refusal(page, context)
        shows_the_providers_with_the_injection_as_text(page)
        shows_templates_requests_machines_and_events(page, site)
        shoot(page, tmp_path, "status-page-desktop", 1280)
        refreshes_in_place(page, site)
        filters_the_machines(page)
        shoot(page, tmp_path, "status-page-phone", 390, height=1800)
        machines_shot = tmp_path / "status-page-phone-machines.png"
        page.locator("#machines").screenshot(path=str(machines_shot), caret="initial")
        keep(machines_shot)
        assert problems == []
        context.close()


def test_the_page_under_auth_none_renders_with_javascript_off(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    config = site.clouds.conf / "ohf.toml"
    open_config = site.clouds.conf / "open" / "ohf.toml"
    open_config.parent.mkdir()
    open_config.write_text(config.read_text().replace(jwt_api(), '\n[api]\nauth = "none"\n'))
    with serving(env_of(site), tmp_path / "serve.err", "--config", str(open_config)) as base:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(f"{base}/ui/")
        assert cells(page, "providers", "a")["Units in use"] == "3"
        assert page.locator("#machines-data tbody tr").count() == 7
        assert page.locator("#machines-data tbody tr.lost").count() == 1
        assert "JavaScript is off" in page.inner_text("noscript")
        # The filter is a plain GET form.
        page.select_option("#filters select[name=state]", "terminated")
        page.click("#filters button[type=submit]")
        page.wait_for_url(re.compile(r"state=terminated"))
        rows = page.locator("#machines-data tbody tr")
        assert rows.count() == 1 and site.reclaimed in rows.inner_text()
        context.close()
