"""Error responses in the OpenAPI document: every error a keyed operation can answer, as
problem+json with one `Problem` schema, so clients (and the schemathesis fuzz test) can rely on it.

Route modules declare what is specific to them (`404: {"description": "No such claim"}`, with or
without content). Here, once for all of them:
- the errors any keyed operation can give are added: 401 (no valid key), 403 (scope), 422
  (invalid request), 503 (database unavailable), and 400 (undecodable) and 413 (too large)
  where there is a request body;
- every error response of a keyed operation gets the `Problem` schema under
  application/problem+json, which also replaces FastAPI's default 422 (`HTTPValidationError`
  as application/json, a body this API never sends).
Open operations (health, readiness, metrics) keep their own documentation.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from .auth import SCOPE_EXTENSION, Access, document_bearer_scheme
from .problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. Validation errors list each field in `errors`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def document_problems(app: FastAPI) -> None:
    """Make app.openapi() document error responses as described in the module docstring."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            document_bearer_scheme(schema)
            _add_problems(schema)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_problems(schema: dict[str, Any]) -> None:
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS and operation.get(SCOPE_EXTENSION, Access.OPEN) != Access.OPEN:
                _document_operation(operation)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in _FASTAPI_VALIDATION_SCHEMAS:  # HTTPValidationError first: it refers to the other
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            components.pop(name, None)


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    generic = {
        "401": "No valid API key (`Authorization: Bearer <key>`)",
        "422": "Invalid request: `errors` names each invalid field",
        "503": "The database is unavailable; retry after `Retry-After` seconds",
    }
    if operation[SCOPE_EXTENSION] != Access.ANY_KEY:
        generic["403"] = "The API key lacks the scope this operation needs"
    if "requestBody" in operation:
        generic["400"] = "The request body cannot be decoded (it is not UTF-8 text)"
        generic["413"] = "The request body is larger than the limit"
    for status, description in generic.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45":
            _problem_content(response)


def _problem_content(response: dict[str, Any]) -> None:
    content: dict[str, Any] = response.get("content") or {}
    fastapi_default = set(content) == {"application/json"} and "ValidationError" in json.dumps(content)
    if not content or fastapi_default:
        response["content"] = dict(_PROBLEM_CONTENT)
    elif PROBLEM_JSON in content and not content[PROBLEM_JSON].get("schema"):
        content[PROBLEM_JSON] = dict(_PROBLEM_CONTENT[PROBLEM_JSON])
