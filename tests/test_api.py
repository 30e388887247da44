"""The REST API (`ohf serve`): the HF calls over HTTP, JWT auth and scopes, errors, metrics."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from ohf.api.app import make_app
from ohf.api.auth import config_problem, make_verifier
from ohf.api.metrics import Tally
from ohf.config import ApiConfig
from ohf.model import Template
from ohf.testing import FakeProvider, door, fake_provider
from tests.conftest import (
    AL2023,
    _free_port,
    default_subnet,
    hf_env,
    write_ibm_conf,
)

SECRET = "test-secret-of-at-least-32-bytes!!"
AUDIENCE = "ohf-api"
ISSUER = "https://issuer.example"
API = ApiConfig(auth="jwt", secret=SECRET, audience=AUDIENCE, issuer=ISSUER, leeway_seconds=0)
TEMPLATE = Template(template_id="OnDemand-c5", max_number=4, image_id=AL2023, vm_type="c5.large")
ASK = {"template": {"templateId": "OnDemand-c5", "machineCount": 2}}


def token(
    scope: str = "ohf:read ohf:write",
    *,
    key: Any = SECRET,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """A signed JWT valid for an hour unless `claims` override its defaults."""
    body = {"sub": "portal", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 3600}
    body.update(claims)
    if scope:
        body["scope"] = scope
    return jwt.encode(body, key, algorithm=algorithm)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def provider(tmp_path: Path) -> FakeProvider:
    return fake_provider([TEMPLATE], tmp_path)


def client_for(provider: FakeProvider, api: ApiConfig = API) -> tuple[TestClient[Any], Tally]:
    tally = Tally()
    app = make_app(api, make_verifier(api, {}), door(provider), tally)
    return TestClient(app), tally


@pytest.fixture
def client(provider: FakeProvider) -> Iterator[TestClient[Any]]:
    test_client, _ = client_for(provider)
    with test_client as c:
        yield c


ENDPOINTS = [
    ("GET", "/templates", None),
    ("POST", "/requests", ASK),
    ("GET", "/requests/req-1", None),
    ("POST", "/returns", {"machines": [{"name": "h", "machineId": "i-1"}]}),
    ("GET", "/returns", None),
    ("GET", "/metrics", None),
]


def expected_status(method: str, path: str) -> int:
    """With a good token: 200, but returning machines ohf never launched fails the call (422)."""
    return 422 if (method, path) == ("POST", "/returns") else 200


def assert_hf_reply(method: str, path: str, response: Any) -> None:
    """The document HF's protocol gives each endpoint (on a provider with no request yet)."""
    if path == "/metrics":
        assert "ohf_store_up 1" in response.text.splitlines(), response.text
        return
    body = response.json()
    if (method, path) == ("GET", "/templates"):
        assert set(body) == {"templates", "message"}, body
        (template,) = body["templates"]
        assert (template["templateId"], template["maxNumber"], template["availableNumber"]) == (
            "OnDemand-c5",
            4,
            4,
        )
        assert {"type", "ncpus", "nram"} <= set(template["attributes"]), template
    elif (method, path) == ("POST", "/requests"):
        assert set(body) == {"requestId", "message"}, body
        assert body["requestId"].startswith("req-"), body
        assert "2 unit(s)" in body["message"], body
    elif (method, path) == ("GET", "/requests/req-1"):
        # An id ohf never issued is answered per request, not as a failed call.
        (request,) = body["requests"]
        assert (request["requestId"], request["status"], request["machines"]) == (
            "req-1",
            "complete_with_error",
            [],
        )
        assert "req-1" in request["message"], request
    elif (method, path) == ("POST", "/returns"):
        assert set(body) == {"message"}, body
        assert "i-1" in body["message"] and "not ohf's" in body["message"], body
    else:
        assert (method, path) == ("GET", "/returns")
        assert set(body) == {"requests", "status", "message"}, body
        assert (body["requests"], body["status"]) == ([], "complete")


def send(client: TestClient[Any], method: str, path: str, body: Any, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def test_lifecycle_over_http_with_a_valid_token(client: TestClient[Any]) -> None:
    auth = bearer(token())
    listed = client.get("/templates", headers=auth)
    assert listed.status_code == 200
    assert [t["templateId"] for t in listed.json()["templates"]] == ["OnDemand-c5"]
    assert listed.json()["templates"][0]["availableNumber"] == 4

    accepted = client.post("/requests", json=ASK, headers=auth)
    assert accepted.status_code == 200
    request_id = accepted.json()["requestId"]
    status = client.get(f"/requests/{request_id}", headers=auth).json()["requests"][0]
    assert status["requestId"] == request_id
    assert len(status["machines"]) == 2
    # The API and the CLI share one store: the request uses template capacity.
    again = client.get("/templates", headers=auth).json()["templates"][0]
    assert again["availableNumber"] == 2

    machines = [{"name": m["name"], "machineId": m["machineId"]} for m in status["machines"]]
    returned = client.post("/returns", json={"machines": machines}, headers=auth)
    assert returned.status_code == 200
    assert set(returned.json()) == {"requestId", "message"}, returned.json()
    return_id = returned.json()["requestId"]
    assert return_id.startswith("ret-")
    ret = client.get(f"/requests/{return_id}", headers=auth).json()["requests"][0]
    assert ret["requestId"] == return_id
    assert sorted(m["machineId"] for m in ret["machines"]) == sorted(
        m["machineId"] for m in machines
    )
    assert all(m["result"] in ("executing", "succeed") for m in ret["machines"]), ret
    reclaims = client.get("/returns", headers=auth)
    assert reclaims.status_code == 200
    # HF gave them back itself: the cloud is taking nothing from it.
    assert reclaims.json()["requests"] == [], reclaims.json()
    assert reclaims.json()["status"] == "complete"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_answers_a_valid_token(
    client: TestClient[Any], method: str, path: str, body: Any
) -> None:
    response = send(client, method, path, body, bearer(token()))
    assert response.status_code == expected_status(method, path), response.text
    assert_hf_reply(method, path, response)


BAD_TOKENS = {
    "expired": lambda: token(exp=int(time.time()) - 60),
    "forged": lambda: token(key="another-secret-of-at-least-32-bytes"),
    "wrong_audience": lambda: token(aud="someone-else"),
    "wrong_issuer": lambda: token(iss="https://evil.example"),
    "garbage": lambda: "not.a.jwt",
    "alg_none": lambda: jwt.encode(
        {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60, "scope": "ohf:read"},
        None,
        algorithm="none",
    ),
}
# What the refusal's message says is wrong with each bad token.
BAD_TOKEN_REASONS = {
    "expired": "expired",
    "forged": "signature",
    "wrong_audience": "audience",
    "wrong_issuer": "issuer",
    "garbage": "invalid token",
    "alg_none": "alg",
}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_every_endpoint_refuses_a_bad_token_with_401(
    client: TestClient[Any], method: str, path: str, body: Any, kind: str
) -> None:
    response = send(client, method, path, body, bearer(BAD_TOKENS[kind]()))
    assert response.status_code == 401
    assert set(response.json()) == {"message"}
    assert BAD_TOKEN_REASONS[kind] in response.json()["message"].lower(), response.json()
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_refuses_a_request_without_a_token(
    client: TestClient[Any], method: str, path: str, body: Any
) -> None:
    response = send(client, method, path, body, {})
    assert response.status_code == 401
    assert response.json() == {"message": "no Authorization header"}
    basic = send(client, method, path, body, {"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    assert basic.json() == {"message": "Authorization is not a bearer token"}


def test_a_refusal_is_logged_without_the_token(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    expired = token(exp=int(time.time()) - 60)
    caplog.set_level("WARNING", logger="ohf.api")
    assert client.get("/templates", headers=bearer(expired)).status_code == 401
    denied = [r.getMessage() for r in caplog.records if r.name == "ohf.api"]
    assert len(denied) == 1
    assert "GET /templates" in denied[0]
    assert "Expired" in denied[0]
    assert expired not in caplog.text
    assert expired.split(".")[1] not in caplog.text


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_scopes_are_enforced_per_endpoint(
    client: TestClient[Any], method: str, path: str, body: Any
) -> None:
    needed = "ohf:read" if method == "GET" else "ohf:write"
    other = "ohf:write" if needed == "ohf:read" else "ohf:read"
    refused = send(client, method, path, body, bearer(token(other)))
    assert refused.status_code == 403
    assert refused.json() == {"message": f"the token lacks the scope {needed}"}
    none = send(client, method, path, body, bearer(token("")))
    assert none.status_code == 403
    assert none.json() == {"message": f"the token lacks the scope {needed}"}
    # Cognito-style `scp` list grants the same as a `scope` string.
    granted = send(client, method, path, body, bearer(token("", scp=[needed])))
    assert granted.status_code == expected_status(method, path)
    assert_hf_reply(method, path, granted)


@pytest.mark.parametrize(
    ("path", "body", "fragments"),
    [
        ("/requests", b"{not json", ["requestMachines: input is not valid JSON"]),
        ("/requests", b"", ["requestMachines: the input is empty"]),
        (
            "/requests",
            b'{"template": {"templateId": "OnDemand-c5", "machineCount": 0}}',
            # The bound and the path, not msgspec's wording around them (a release may change it).
            ["requestMachines: invalid input: ", ">= 1", "`$.template.machineCount`"],
        ),
        ("/returns", b'{"machines": []}', ["requestReturnMachines: invalid input"]),
        ("/returns", b"[1]", ["requestReturnMachines: invalid input"]),
    ],
)
def test_body_validation_errors_are_400_in_hf_error_shape(
    client: TestClient[Any], path: str, body: bytes, fragments: list[str]
) -> None:
    response = client.post(
        path, content=body, headers={**bearer(token()), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert set(response.json()) == {"message"}
    message = response.json()["message"]
    assert [f for f in fragments if f not in message] == [], message


def test_a_failed_call_is_422_with_hfs_message(client: TestClient[Any]) -> None:
    ask = {"template": {"templateId": "NoSuchTemplate", "machineCount": 1}}
    response = client.post("/requests", json=ask, headers=bearer(token()))
    assert response.status_code == 422
    assert set(response.json()) == {"message"}, response.json()
    # It says what is wrong and what would be right.
    assert "NoSuchTemplate" in response.json()["message"]
    assert "OnDemand-c5" in response.json()["message"]


def test_unknown_route_keeps_the_error_shape(client: TestClient[Any]) -> None:
    response = client.get("/nowhere", headers=bearer(token()))
    assert response.status_code == 404
    assert set(response.json()) == {"message"}
    assert "not found" in response.json()["message"].lower(), response.json()


def test_health_needs_no_token_and_reads_the_store(client: TestClient[Any]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_count_calls_errors_and_machines_by_state(provider: FakeProvider) -> None:
    test_client, _ = client_for(provider)
    auth = bearer(token())
    with test_client as client:
        client.get("/templates", headers=auth)
        client.post("/requests", json=ASK, headers=auth)
        client.post("/requests", content=b"{", headers=auth)
        text = client.get("/metrics", headers=auth).text
    lines = set(text.splitlines())
    assert 'ohf_api_calls_total{call="getAvailableTemplates"} 1' in lines
    assert 'ohf_api_calls_total{call="requestMachines"} 2' in lines
    assert 'ohf_api_errors_total{call="requestMachines"} 1' in lines
    machines = [line for line in lines if line.startswith("ohf_machines{")]
    assert sum(int(line.rsplit(" ", 1)[1]) for line in machines) == 2
    assert "ohf_store_up 1" in lines


def test_openapi_document_uses_the_hf_structs(client: TestClient[Any]) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    post = doc["paths"]["/requests"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RequestMachinesIn"}
    template_ask = doc["components"]["schemas"]["TemplateAsk"]
    assert template_ask["properties"]["machineCount"]["minimum"] == 1
    ok = doc["paths"]["/requests/{request_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/RequestsStatusOut")
    assert set(doc["paths"]) == {
        "/templates",
        "/requests",
        "/requests/{request_id}",
        "/returns",
        "/health",
        "/metrics",
    }
    assert doc["paths"]["/returns"]["post"]["security"] == [{"bearer": ["ohf:write"]}]
    # Every reference resolves to a component.
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


def _rsa_pair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


def test_rs256_public_keys_and_cognito_client_id(provider: FakeProvider) -> None:
    key, pem = _rsa_pair()
    forger, _ = _rsa_pair()
    api = ApiConfig(public_keys=(pem,), audience=AUDIENCE, issuer=ISSUER)
    test_client, _ = client_for(provider, api)
    with test_client as client:
        good = token(key=key, algorithm="RS256")
        assert_templates(client.get("/templates", headers=bearer(good)))
        # A Cognito access token has no `aud`: its `client_id` names the app client.
        cognito = token(key=key, algorithm="RS256", aud=None, client_id=AUDIENCE)
        assert_templates(client.get("/templates", headers=bearer(cognito)))
        forged = token(key=forger, algorithm="RS256")
        assert_refused(client.get("/templates", headers=bearer(forged)), "signature")
        # An HS256 token signed with the public key as its secret (alg confusion) is refused.
        assert_refused(client.get("/templates", headers=bearer(_hs256_signed_with(pem))), "alg")


def assert_templates(response: Any) -> None:
    """200 with getAvailableTemplates' document."""
    assert response.status_code == 200, response.text
    assert_hf_reply("GET", "/templates", response)


def assert_refused(response: Any, reason: str) -> None:
    """401 with HF's error shape, saying why the token is refused."""
    assert response.status_code == 401, response.text
    assert set(response.json()) == {"message"}, response.json()
    assert reason in response.json()["message"].lower(), response.json()


def _hs256_signed_with(secret: str) -> str:
    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    claims = {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60, "scope": "ohf:read"}
    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return (signed + b"." + b64(signature)).decode()


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, list[bytes]]]:
    """An HTTP server answering every GET with the JWKS document put in the list."""
    served: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(served[0])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", served
    server.shutdown()
    server.server_close()


def test_rs256_keys_from_a_jwks_url(
    provider: FakeProvider, jwks_server: tuple[str, list[bytes]]
) -> None:
    url, served = jwks_server
    key, _ = _rsa_pair()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    served.append(
        json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    )
    api = ApiConfig(jwks_url=url, audience=AUDIENCE, issuer=ISSUER)
    test_client, _ = client_for(provider, api)
    signed = jwt.encode(
        {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60, "scope": "ohf:read"},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with test_client as client:
        assert_templates(client.get("/templates", headers=bearer(signed)))
        forged = jwt.encode(
            {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60, "scope": "ohf:read"},
            _rsa_pair()[0],
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        assert_refused(client.get("/templates", headers=bearer(forged)), "signature")


def test_auth_none_serves_without_a_token(provider: FakeProvider) -> None:
    api = ApiConfig(auth="none")
    app = make_app(api, make_verifier(api, {}), door(provider), Tally())
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert_templates(client.get("/templates"))
        accepted = client.post("/requests", json=ASK)
        assert accepted.status_code == 200
        assert_hf_reply("POST", "/requests", accepted)


@pytest.mark.parametrize("path", ["/templates", "/requests/req-1", "/returns", "/metrics"])
def test_auth_none_refuses_a_foreign_host_a_rebound_name_cannot_reach_it(
    provider: FakeProvider, path: str
) -> None:
    api = ApiConfig(auth="none")
    app = make_app(api, make_verifier(api, {}), door(provider), Tally())
    with TestClient(app, base_url="http://evil.example:8080") as client:
        refused = client.get(path)
        posted = client.post("/requests", json=ASK)
    for answer in (refused, posted):
        assert answer.status_code == 403
        assert "answers only to a loopback Host" in answer.json()["message"]
    assert not door(provider).state().unwrap().requests  # nothing was launched


@pytest.mark.parametrize(
    ("api", "host", "fragment"),
    [
        (ApiConfig(auth="none"), "0.0.0.0", "only on 127.0.0.1"),
        (ApiConfig(), "127.0.0.1", "exactly one key source"),
        (ApiConfig(secret=SECRET, jwks_url="https://x/jwks.json"), "127.0.0.1", "exactly one"),
        (ApiConfig(secret=SECRET), "127.0.0.1", "audience and issuer"),
        (ApiConfig(secret_env="NOPE", audience="a", issuer="i"), "127.0.0.1", "NOPE is not set"),
        (ApiConfig(jwks_url="file:///etc/jwks", audience="a", issuer="i"), "::", "http(s)"),
        (ApiConfig(public_keys=("junk",), audience="a", issuer="i"), "::", "not a PEM"),
    ],
)
def test_serve_refuses_an_unsafe_or_incomplete_auth_config(
    api: ApiConfig, host: str, fragment: str
) -> None:
    problem = config_problem(api, host, {})
    assert problem is not None
    assert fragment in problem.message


def test_a_complete_config_passes(tmp_path: Path) -> None:
    assert config_problem(ApiConfig(auth="none"), "127.0.0.1", {}) is None
    assert config_problem(API, "0.0.0.0", {}) is None
    env_secret = ApiConfig(secret_env="S", audience="a", issuer="i")
    assert config_problem(env_secret, "0.0.0.0", {"S": SECRET}) is None


def test_serve_refuses_to_start_without_auth_on_a_public_address(tmp_path: Path) -> None:
    conf = tmp_path / "ohf.toml"
    conf.write_text('[api]\nauth = "none"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "ohf", "serve", "--config", str(conf), "--host", "0.0.0.0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert b'auth = "none" is allowed only on 127.0.0.1' in proc.stderr


def _http(
    url: str, method: str = "GET", body: Any = None, auth: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", f"Bearer {auth}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    text = raw.decode()
    return status, json.loads(text) if text.startswith("{") else text


@contextlib.contextmanager
def serving(env: dict[str, str], errors: Path, *extra: str) -> Iterator[str]:
    """`python -m ohf serve [extra...]` on a free port, until the block ends: its base URL."""
    port = _free_port()
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ohf", "serve", "--port", str(port), *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _up(f"{base}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ohf serve did not start: {errors.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _up(url: str) -> bool:
    try:
        return _http(url)[0] == 200
    except OSError:
        return False


def settled(base: str, request_id: str, auth: str) -> Any:
    """Poll GET /requests/{id} until the request is no longer running (at most 50 polls)."""
    for _ in range(50):
        request = _http(f"{base}/requests/{request_id}", auth=auth)[1]["requests"][0]
        if request["status"] != "running":
            return request
        time.sleep(0.2)
    return request


def cli_available(env: dict[str, str]) -> int:
    """availableNumber of the first template, as HF's `getAvailableTemplates` script sees it."""
    cli = subprocess.run(
        [sys.executable, "-m", "ohf", "getAvailableTemplates"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return int(json.loads(cli.stdout)["templates"][0]["availableNumber"])


@pytest.mark.e2e
def test_serve_subprocess_lifecycle_against_moto_server(aws: str, tmp_path: Path) -> None:
    conf = write_ibm_conf(
        tmp_path / "conf",
        aws,
        [
            {
                "templateId": "OnDemand-c5",
                "maxNumber": 4,
                "imageId": AL2023,
                "subnetId": default_subnet(aws),
                "vmType": "c5.large",
            }
        ],
    )
    (conf / "ohf.toml").write_text(
        f'templates_file = "awsprov_templates.json"\n'
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{aws}"\n'
        f'[api]\nsecret_env = "OHF_API_SECRET"\naudience = "{AUDIENCE}"\nissuer = "{ISSUER}"\n'
    )
    env = {**hf_env(conf), "OHF_API_SECRET": SECRET}
    with serving(env, tmp_path / "serve.err") as base:
        auth = token()
        assert _http(f"{base}/templates") == (401, {"message": "no Authorization header"})
        expired = token(exp=int(time.time()) - 60)
        status, refused = _http(f"{base}/templates", auth=expired)
        assert status == 401 and "expired" in refused["message"].lower(), refused
        status, listed = _http(f"{base}/templates", auth=auth)
        assert status == 200
        assert listed["templates"][0]["availableNumber"] == 4
        status, accepted = _http(f"{base}/requests", "POST", ASK, auth)
        assert status == 200, accepted
        request_id = accepted["requestId"]
        request = settled(base, request_id, auth)
        assert request["status"] == "complete", request
        assert [m["result"] for m in request["machines"]] == ["succeed", "succeed"]
        assert cli_available(env) == 2
        machines = [{"name": m["name"], "machineId": m["machineId"]} for m in request["machines"]]
        status, returned = _http(f"{base}/returns", "POST", {"machines": machines}, auth)
        assert status == 200, returned
        assert set(returned) == {"requestId", "message"}, returned
        ret = settled(base, returned["requestId"], auth)
        assert ret["status"] == "complete", ret
        status, reclaims = _http(f"{base}/returns", auth=auth)
        assert status == 200, reclaims
        assert (reclaims["status"], reclaims["requests"]) == ("complete", []), reclaims
        # The CLI sees the same store: the returned machines no longer use capacity.
        assert cli_available(env) == 4
        metrics = _http(f"{base}/metrics", auth=auth)[1]
        assert 'ohf_api_calls_total{call="requestMachines"} 1' in metrics
        assert 'ohf_aws_calls_total{operation="RunInstances"} 1' in metrics
    logged = (conf / "log" / "ohf.log").read_text()
    assert "denied GET /templates" in logged
    assert expired not in logged
    assert auth not in logged
    assert SECRET not in logged
