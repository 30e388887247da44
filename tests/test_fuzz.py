"""Fuzzed bad input through the real CLI entry (`ohf.cli.main`), at least 1,000 inputs per call.

Every example runs `main([CALL, "-f", FILE, "--config", ...])` in-process with stdout captured.
The inputs are near-valid documents derived from `schemas/hf/*.input.schema.json` (required keys
dropped, wrong JSON types, bounds broken, huge numbers, unknown template/request/machine ids,
duplicates, very long strings) and plain garbage (arbitrary bytes, empty files, non-UTF-8,
deeply nested JSON). For each: stdout is exactly one JSON document; a refused input exits 1 with
`{"message": <clear text>}` only; an input the protocol answers per item exits 0 with its HF
shape; and the state file is byte-identical afterwards. The cloud is the fake one (the CLI's
boto3 interpreter is swapped for it), and `[aws] endpoint_url` points at a closed local port, so
nothing can reach AWS even if the swap were missed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ohf import cli
from ohf.effects import aws, fake
from ohf.hf import CALLS

EXAMPLES = 1000
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "hf"
TEMPLATE = "OnDemand-c5"
MAX_NUMBER = 10
HUGE = (10**30, -(10**30), 2**63, 2**64, -(2**63) - 1, 10**400)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str]) -> tuple[int, bytes]:
    """`ohf.cli.main(args)` with stdout captured: (exit code, raw stdout)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        code = cli.main(args)
    out.flush()
    return code, out.buffer.getvalue()  # type: ignore[attr-defined]


class Provider:
    """A conf dir with one request holding one running machine, and the fake cloud behind it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "ohf.toml"
        self.state = root / "ohf-state.json"
        self.log = root / "ohf.log"
        self.ref = fake.CloudRef(cloud=fake.new_cloud())
        self.counter = itertools.count()
        self.config.write_text(
            f"""
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{_closed_port()}"
connect_timeout = 0.2
read_timeout = 0.2
max_attempts = 1

[storage]
path = "{self.state}"

[logging]
level = "DEBUG"
file = "{self.log}"

[[templates]]
templateId = "{TEMPLATE}"
maxNumber = {MAX_NUMBER}
imageId = "ami-0123456789abcdef0"
subnetId = "subnet-0123456789abcdef0"
vmType = "c5.large"
"""
        )

    @contextlib.contextmanager
    def cloud(self) -> Iterator[None]:
        """The CLI's AWS interpreter replaced by the fake cloud (and no boto3 client made)."""
        with (
            mock.patch.object(aws, "make_interpreter", lambda *_, **__: fake.interpreter(self.ref)),
            mock.patch.object(aws, "warm", lambda *_, **__: None),
        ):
            yield

    def call(self, call: str, payload: bytes) -> tuple[int, bytes]:
        infile = self.root / f"in-{next(self.counter) % 4}.json"
        infile.write_bytes(payload)
        return run_cli([call, "-f", str(infile), "--config", str(self.config)])

    def digest(self) -> str:
        return hashlib.sha256(self.state.read_bytes()).hexdigest()


def provider_with_one_machine(root: Path) -> tuple[Provider, str, str]:
    """A provider in `root` holding one request of one running machine: (it, their ids)."""
    prov = Provider(root)
    with prov.cloud():
        ask = {"template": {"templateId": TEMPLATE, "machineCount": 1}}
        code, out = prov.call("requestMachines", msgspec.json.encode(ask))
        assert code == 0, out
        request_id = json.loads(out)["requestId"]
        code, out = prov.call(
            "getRequestStatus", msgspec.json.encode({"requests": [{"requestId": request_id}]})
        )
        assert code == 0, out
    (machine,) = json.loads(out)["requests"][0]["machines"]
    return prov, request_id, machine["machineId"]


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> tuple[Provider, str, str]:
    """The provider, its one request id and its one machine id (shared: fuzzing keeps it)."""
    return provider_with_one_machine(tmp_path_factory.mktemp("fuzz"))


# --- strategies -------------------------------------------------------------------------------

JSON_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=20),
    "integer": st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(HUGE),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(st.integers(), max_size=3),
    "object": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
}


def wrong_type(expected: str) -> st.SearchStrategy[Any]:
    """A JSON value whose type is not `expected` (an integer is a number, a float is not an int)."""
    allowed = {"integer", "number"} if expected == "number" else {expected}
    return st.one_of(*(s for name, s in JSON_TYPES.items() if name not in allowed)) | (
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
        if expected == "integer"
        else st.nothing()
    )


def schema(call: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call's input schema: (the top object, the `$defs`)."""
    doc = json.loads((SCHEMAS / f"{call}.input.schema.json").read_text())
    return doc["$defs"][doc["$ref"].rsplit("/", 1)[1]], doc["$defs"]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    return defs[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node


def broken_value(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value that breaks `node` (a leaf or array schema): wrong type or out of its bounds."""
    options = [wrong_type(node["type"])]
    if "minimum" in node:
        options.append(st.integers(max_value=node["minimum"] - 1) | st.just(-(10**30)))
    if "minLength" in node:
        options.append(st.just(""))
    if "minItems" in node:
        options.append(st.just([]))
    return st.one_of(*options)


@st.composite
def schema_mutants(draw: st.DrawFn, call: str, valid: dict[str, Any]) -> dict[str, Any]:
    """`valid` with one thing broken, chosen from what the call's schema requires."""
    top, defs = schema(call)
    doc = json.loads(json.dumps(valid))
    # Walk down the document along the schema, then break the node reached.
    obj, node = doc, top
    while True:
        props = node.get("properties", {})
        key = draw(st.sampled_from(sorted(props)))
        child = _resolve(props[key], defs)
        how = draw(st.sampled_from(["drop", "break", "descend"]))
        if how == "drop" and key in node.get("required", []):
            obj.pop(key, None)
            return doc
        if how == "descend" and key in obj:
            if child.get("type") == "object":
                obj, node = obj[key], child
                continue
            if child.get("type") == "array" and obj[key]:
                item = _resolve(child["items"], defs)
                obj, node = draw(st.sampled_from(obj[key])), item
                continue
        obj[key] = draw(broken_value(child))
        return doc


def garbage(call: str) -> st.SearchStrategy[bytes]:
    """Inputs that are not a document of any call: bytes, empty, non-UTF-8, deep, truncated."""
    valid = msgspec.json.encode(VALID[call])
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"", b" ", b"\n\t \r\n", b"\x00", b"null", b"[]", b'""', b"0"]),
        st.integers(1, len(valid) - 1).map(lambda n: valid[:n]),
        st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=4)).map(
            lambda t: valid[: t[0]] + b"\xff" + t[1] + valid[t[0] :]
        ),
        st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),
        st.integers(1, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
        st.integers(1, 3000).map(lambda d: b"[" * d),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=10,
        ).map(msgspec.json.encode),
    )


def long_text() -> st.SearchStrategy[str]:
    return st.integers(1000, 100_000).map(lambda n: "x" * n)


def unknown_id(known: set[str]) -> st.SearchStrategy[str]:
    return (
        st.text(min_size=1, max_size=40)
        | st.sampled_from(["req-never-issued", "ret-never-issued", "i-0123456789abcdef0"])
        | long_text()
    ).filter(lambda s: s not in known)


VALID: dict[str, dict[str, Any]] = {
    "getAvailableTemplates": {},
    "requestMachines": {"template": {"templateId": TEMPLATE, "machineCount": 1}},
    "getRequestStatus": {"requests": [{"requestId": "req-x"}]},
    "requestReturnMachines": {"machines": [{"name": "ip-10-0-0-1", "machineId": "i-0abc"}]},
    "getReturnRequests": {"machines": [{"name": "ip-10-0-0-1", "machineId": "i-0abc"}]},
}


def semantic(call: str, request_id: str, machine_id: str) -> st.SearchStrategy[Any]:
    """Well-typed documents whose content is wrong: unknown ids, counts over the limit, ..."""
    if call == "requestMachines":
        count = st.integers(min_value=MAX_NUMBER, max_value=10**6) | st.sampled_from(HUGE)
        tid = unknown_id({TEMPLATE}) | st.just(TEMPLATE.lower())
        return st.one_of(
            st.builds(lambda n: {"template": {"templateId": TEMPLATE, "machineCount": n}}, count),
            st.builds(lambda t: {"template": {"templateId": t, "machineCount": 1}}, tid),
        )
    if call == "getRequestStatus":
        refs = st.lists(unknown_id({request_id}).map(lambda r: {"requestId": r}), max_size=5)
        return refs.flatmap(
            lambda rs: st.just({"requests": rs + rs[:1]})  # a duplicate too
        )
    machine = st.builds(
        lambda n, m: {"name": n, "machineId": m},
        st.text(max_size=20) | long_text(),
        unknown_id({machine_id}) | st.just(""),
    )
    machines = st.lists(machine, min_size=1, max_size=5).map(lambda ms: ms + ms[:1])
    if call == "requestReturnMachines":
        # Unknown machines, alone or beside the known one: refused, nothing terminated.
        known = {"name": "", "machineId": machine_id}
        return st.builds(
            lambda ms, with_known: {"machines": [known, *ms] if with_known else ms},
            machines,
            st.booleans(),
        )
    if call == "getReturnRequests":
        return machines.map(lambda ms: {"machines": ms})
    return st.dictionaries(st.text(max_size=10), JSON_TYPES["integer"], max_size=4)


def bad_inputs(call: str, request_id: str, machine_id: str) -> st.SearchStrategy[bytes]:
    near = schema_mutants(call, VALID[call]) if schema(call)[0]["properties"] else st.nothing()
    return st.one_of(
        garbage(call),
        near.map(msgspec.json.encode),
        semantic(call, request_id, machine_id).map(msgspec.json.encode),
    )


# --- the oracle: what the protocol says each input must give ----------------------------------


def _is_ref(item: Any, key: str) -> bool:
    return isinstance(item, dict) and isinstance(item.get(key), str) and item[key] != ""


# msgspec spends one level of the interpreter's recursion limit per level of nesting, and the
# CLI decodes in this process, some frames deeper than the oracle does (and hypothesis raises the
# limit while a test runs). A document nested to within CLI_FRAMES levels of what this frame has
# left may therefore be answered or refused as nested too deeply: the stack decides, not ohf.
CLI_FRAMES = 200


def _levels_left() -> int:
    """Nesting levels a decode started here could still use: the recursion limit less the stack."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return sys.getrecursionlimit() - depth


def _nesting(doc: Any) -> int:
    """Arrays and objects on the deepest path of a decoded document (0 for a scalar)."""
    deepest, todo = 0, [(doc, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            todo.extend((child, level + 1) for child in _children(item))
    return deepest


def _children(item: dict[str, Any] | list[Any]) -> list[Any]:
    return list(item.values()) if isinstance(item, dict) else item


def answered_per_item(call: str, payload: bytes) -> bool | None:
    """Whether the protocol answers this input (exit 0) rather than refusing it (exit 1).

    None: answered, unless refused as nested too deeply (within CLI_FRAMES of the limit).
    requestMachines and requestReturnMachines inputs here are all bad by construction.
    """
    if not payload.strip():
        return call in ("getAvailableTemplates", "getReturnRequests")
    try:
        doc = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return False  # a RecursionError here is one in the CLI too: it decodes deeper down
    answered = _answered_document(call, doc)
    if answered and _nesting(doc) > _levels_left() - CLI_FRAMES:
        return None
    return answered


def _answered_document(call: str, doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if call == "getAvailableTemplates":
        return True
    if call == "getRequestStatus":
        requests = doc.get("requests")
        return isinstance(requests, list) and all(_is_ref(r, "requestId") for r in requests)
    if call == "getReturnRequests":
        machines = doc.get("machines", [])
        return isinstance(machines, list) and all(
            isinstance(m, dict)
            and all(isinstance(m.get(k, ""), str) for k in ("name", "machineId"))
            for m in machines
        )
    return False


def check_answer(call: str, payload: bytes, code: int, stdout: bytes) -> None:
    """One JSON document of the call's HF shape, the right exit code, a clear message."""
    assert stdout.endswith(b"\n") and stdout.count(b"\n") == 1, stdout[:300]
    out = json.loads(stdout)  # exactly one JSON document, or this raises
    assert isinstance(out, dict), out
    message = out.get("message")
    assert isinstance(message, str), out
    assert "Traceback" not in message and "internal error" not in message, message
    answered = answered_per_item(call, payload)
    if answered is None:  # near the recursion limit: either answer is the protocol's
        answered = code == 0
        assert answered or "nested too deeply" in message, (payload[:200], out)
    if not answered:
        assert code == 1, (payload[:200], out)
        assert set(out) == {"message"}, out
        assert message.strip(), out
        return
    assert code == 0, (payload[:200], message[:500])
    if call == "getAvailableTemplates":
        assert [t["templateId"] for t in out["templates"]] == [TEMPLATE]
    elif call == "getRequestStatus":
        asked = json.loads(payload)["requests"]
        # Each asked id answered once, in the order asked (a repeated id is answered once).
        ids = [r["requestId"] for r in asked]
        assert [r["requestId"] for r in out["requests"]] == list(dict.fromkeys(ids))
        for req in out["requests"]:
            assert req["status"] == "complete_with_error" and req["message"], req
            assert req["machines"] == []
    else:
        assert out["status"] == "complete" and isinstance(out["requests"], list), out


# --- the suite --------------------------------------------------------------------------------


def fuzz(
    provider: tuple[Provider, str, str],
    call: str,
    strategy: st.SearchStrategy[bytes],
    examples: int = EXAMPLES,
) -> Callable[[], int]:
    """A hypothesis run of `strategy` through the CLI; returns how many inputs it ran."""
    prov, _, _ = provider
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=strategy)
    def one(payload: bytes) -> None:
        nonlocal ran
        ran += 1
        before = prov.digest()
        code, stdout = prov.call(call, payload)
        check_answer(call, payload, code, stdout)
        assert prov.digest() == before, f"state changed by {payload[:200]!r}"

    def go() -> int:
        with prov.cloud():
            one()
        return ran

    return go


@pytest.mark.parametrize("call", CALLS)
def test_a_thousand_bad_inputs_per_call_are_refused_cleanly(
    provider: tuple[Provider, str, str], call: str
) -> None:
    prov, request_id, machine_id = provider
    ran = fuzz(provider, call, bad_inputs(call, request_id, machine_id))()
    assert ran >= EXAMPLES
    entries = [json.loads(line) for line in prov.log.read_text().split("\n") if line.strip()]
    assert not [e for e in entries if "exc" in e], "bad input was logged as an internal error"


def test_inline_data_goes_through_the_same_checks(provider: tuple[Provider, str, str]) -> None:
    """`-d TEXT` (any text, lone surrogates included) answers like the same bytes in a file."""
    prov, _, _ = provider

    @settings(max_examples=200, deadline=None)
    @given(call=st.sampled_from(CALLS), text=st.text(max_size=100))
    def one(call: str, text: str) -> None:
        before = prov.digest()
        code, stdout = run_cli([call, "-d", text, "--config", str(prov.config)])
        check_answer(call, text.encode("utf-8", "surrogateescape"), code, stdout)
        assert prov.digest() == before

    with prov.cloud():
        one()


def test_the_fuzzed_provider_still_serves_its_machine(tmp_path: Path) -> None:
    """After bad inputs of every kind to every call, its own provider's one request is intact."""
    fuzzed = provider_with_one_machine(tmp_path)
    prov, request_id, machine_id = fuzzed
    for call in CALLS:
        assert fuzz(fuzzed, call, bad_inputs(call, request_id, machine_id), examples=50)() >= 50
    with prov.cloud():
        code, out = prov.call(
            "getRequestStatus", msgspec.json.encode({"requests": [{"requestId": request_id}]})
        )
    assert code == 0
    (req,) = json.loads(out)["requests"]
    assert [m["machineId"] for m in req["machines"]] == [machine_id]
