"""The API's OpenAPI 3.1 document, generated from the HF message structs (`ohf.messages`).

Each call's request body and answers are the very structs `ohf.hf.decode_input` decodes and the
core encodes, via `msgspec.json.schema_components`, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ohf.messages import INPUTS, OUTPUTS, ErrorOut

# HTTP status of a call that ran on valid input and failed (HF's exit code 1).
CALL_FAILED = 422
JSON = "application/json"
_REF = "#/components/schemas/{name}"

# (method, path, HF call, needs write scope, has a JSON body)
CALL_ROUTES: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("get", "/templates", "getAvailableTemplates", False, False),
    ("post", "/requests", "requestMachines", True, True),
    ("get", "/requests/{request_id}", "getRequestStatus", False, False),
    ("post", "/returns", "requestReturnMachines", True, True),
    ("get", "/returns", "getReturnRequests", False, False),
)


def _json(description: str, kind: type[Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": _REF.format(name=kind.__name__)}}},
    }


def _operation(call: str, scope: str, with_body: bool, with_id: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": call,
        "summary": f"HF's {call}, with the same JSON documents",
        "security": [{"bearer": [scope]}],
        "responses": {
            "200": _json(f"{call} output", OUTPUTS[call]),
            "400": _json("the input is not valid (HF's message)", ErrorOut),
            "401": _json("no valid bearer token", ErrorOut),
            "403": _json(f"the token lacks the scope {scope}", ErrorOut),
            str(CALL_FAILED): _json(f"{call} failed (HF's exit code 1)", ErrorOut),
        },
    }
    if with_body:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": {"$ref": _REF.format(name=INPUTS[call].__name__)}}},
        }
    if with_id:
        operation["parameters"] = [
            {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return operation


def document(read_scope: str, write_scope: str) -> dict[str, Any]:
    """The whole OpenAPI document of the API."""
    _, schemas = msgspec.json.schema_components(
        [*INPUTS.values(), *OUTPUTS.values(), ErrorOut], ref_template=_REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, call, write, with_body in CALL_ROUTES:
        scope = write_scope if write else read_scope
        paths.setdefault(path, {})[method] = _operation(call, scope, with_body, "{" in path)
    paths["/health"] = {
        "get": {
            "summary": "200 if the store can be read, else 503 (no token needed)",
            "responses": {"200": {"description": "healthy"}, "503": {"description": "failing"}},
        }
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus text: calls, errors, AWS calls, machines by state",
            "security": [{"bearer": [read_scope]}],
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ohf", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
