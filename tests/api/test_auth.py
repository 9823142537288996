"""Every operation in the app has an access rule, and the rule holds over HTTP (api.md,
Authentication). Table-driven over the app's own OpenAPI document, so a new route without a rule
fails here."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from service.api.auth import OPEN_PATHS, SCOPE_EXTENSION, Access, KeyRing
from service.cli import check_auth_config
from service.settings import Settings
from tests.conftest import ADMIN, READ, WRITE

HEADERS_WITH = {Access.ADMIN: ADMIN, Access.CLAIMS_WRITE: WRITE, Access.CLAIMS_READ: READ}
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(app: FastAPI) -> list[tuple[str, str, Access | None]]:
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                rule = op.get(SCOPE_EXTENSION)
                out.append((method.upper(), path, Access(rule) if rule else None))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X-1", path)


def test_every_operation_has_an_access_rule(app: FastAPI) -> None:
    ops = operations(app)
    assert len(ops) >= 2
    missing = [(m, p) for m, p, a in ops if a is None]
    assert not missing, f"operations without an access rule: {missing}"


def test_no_route_escapes_the_table(app: FastAPI) -> None:
    """Routes hidden from the OpenAPI document would escape the walk below: there must be none
    besides FastAPI's own documentation pages, and every other route declares its access rule."""
    hidden, unruled = [], []
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if context.path in OPEN_PATHS and not isinstance(route, APIRoute):
            continue  # /openapi.json, /docs, /redoc: FastAPI's, open by design
        if not getattr(route, "include_in_schema", False):
            hidden.append(context.path)
        if not isinstance(getattr(route, "required_access", None), Access):
            unruled.append(context.path)
    assert not hidden, f"routes missing from the OpenAPI document (and from this test): {hidden}"
    assert not unruled, f"routes not made by scoped_router: {unruled}"


def test_only_operational_routes_are_open(app: FastAPI) -> None:
    open_paths = {p for _, p, a in operations(app) if a is Access.OPEN}
    assert open_paths <= OPEN_PATHS
    assert {"/healthz", "/readyz"} <= open_paths


def test_each_operation_enforces_its_rule(app: FastAPI, client: TestClient) -> None:
    checked = 0
    for method, path, access in operations(app):
        url = _concrete(path)
        if access is Access.OPEN:
            assert client.request(method, url).status_code not in (401, 403), (method, path)
            continue
        # No key with a malformed body: 401 before the body is read.
        r = client.request(method, url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.request(method, url, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.request(method, url, headers={"Authorization": "Basic abc"}).status_code == 401
        for scope, headers in HEADERS_WITH.items():
            r = client.request(method, url, headers=headers)
            if access is Access.ANY_KEY or scope is access:
                assert r.status_code not in (401, 403), (method, path, scope, r.status_code)
            else:
                assert r.status_code == 403, (method, path, scope, r.status_code)
                assert r.headers["content-type"] == "application/problem+json"
                assert access.value in r.json()["detail"]
        checked += 1
    # Fails until routes needing a key exist; they are the product.
    assert checked >= 1, "no authenticated operations found"


def test_unknown_paths_need_a_key_too(client: TestClient) -> None:
    assert client.get("/v1/nothing-here").status_code == 401
    assert client.get("/v1/nothing-here", headers=READ).status_code == 404


def test_keyring_matches_only_exact_keys() -> None:
    ring = KeyRing({"abc": ["admin"], "xyz": ["claims:read"]})
    assert ring.scopes_for("abc") == {"admin"}
    assert ring.scopes_for("xyz") == {"claims:read"}
    assert ring.scopes_for("ab") is None
    assert ring.scopes_for("abcd") is None
    assert ring.scopes_for("") is None


def test_refuses_public_listen_without_keys() -> None:
    assert check_auth_config(Settings(host="0.0.0.0", api_keys={})) is not None
    assert check_auth_config(Settings(host="127.0.0.1", api_keys={})) is None
    assert check_auth_config(Settings(host="::1", api_keys={})) is None
    assert check_auth_config(Settings(host="0.0.0.0", api_keys={"k": ["admin"]})) is None


def test_unknown_scope_in_settings_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scopes"):
        Settings(api_keys={"k": ["root"]})
