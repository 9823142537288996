"""POST/GET /v1/networks and /v1/providers, and who may call the reference-data API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.domain.codes import npi_is_valid
from service.repositories import reference as repo
from tests.conftest import ADMIN, READ, WRITE
from tests.factories import (
    make_npi,
    network,
    network_body,
    problem,
    provider,
    provider_body,
    row_counts,
)


def test_network_is_created_and_read_back(admin: TestClient) -> None:
    created = network(admin, code="ACME-PPO", name="Acme PPO")
    assert created == {"code": "ACME-PPO", "name": "Acme PPO"}
    response = admin.get("/v1/networks/ACME-PPO")
    assert response.status_code == 200
    assert response.json() == created


def test_existing_network_is_409_and_keeps_the_first(admin: TestClient) -> None:
    network(admin, name="First")
    problem(admin.post("/v1/networks", json=network_body(name="Second")), 409)
    assert admin.get("/v1/networks/ACME-PPO").json()["name"] == "First"


def test_unknown_network_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/networks/NOPE"), 404)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"code": "", "name": "x"}, ["body", "code"]),
        ({"code": "has space", "name": "x"}, ["body", "code"]),
        ({"code": "X" * 65, "name": "x"}, ["body", "code"]),
        ({"code": "N1"}, ["body", "name"]),
        ({"code": "N1", "name": ""}, ["body", "name"]),
        ({"code": "N1", "name": "x", "colour": "red"}, ["body", "colour"]),
    ],
)
def test_invalid_network_is_422_naming_the_field(
    admin: TestClient, engine: Engine, body: dict[str, Any], loc: list[str]
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/networks", json=body), 422, loc)
    assert row_counts(engine) == before


def test_concurrent_duplicate_network_is_409_not_500(
    admin: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    network(admin)
    before = row_counts(engine)
    # As if another request inserted the network between our check and our insert.
    monkeypatch.setattr(repo, "network_by_code", lambda *_: None)
    problem(admin.post("/v1/networks", json=network_body()), 409)
    assert row_counts(engine) == before


def test_provider_is_created_and_read_back(admin: TestClient) -> None:
    created = provider(admin, npi="1234567893", name="Dr. Ada Example", tin="123456789")
    assert created == {"npi": "1234567893", "name": "Dr. Ada Example", "tin": "123456789"}
    assert admin.get("/v1/providers/1234567893").json() == created


def test_provider_tin_is_optional(admin: TestClient) -> None:
    body = provider_body()
    del body["tin"]
    assert admin.post("/v1/providers", json=body).json()["tin"] is None


def test_existing_provider_is_409(admin: TestClient, engine: Engine) -> None:
    provider(admin)
    before = row_counts(engine)
    problem(admin.post("/v1/providers", json=provider_body(name="Someone else")), 409)
    assert row_counts(engine) == before


def test_unknown_provider_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/providers/1234567893"), 404)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("npi", "1234567890"),  # ten digits, wrong check digit
        ("npi", "123456789"),
        ("npi", "12345678930"),
        ("npi", "123456789A"),
        ("npi", 1234567893),
        ("tin", "12-3456789"),
        ("tin", "12345678"),
        ("name", ""),
    ],
)
def test_invalid_provider_is_422_naming_the_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/providers", json=provider_body(**{field: value})), 422, ["body", field])
    assert row_counts(engine) == before


def test_make_npi_yields_distinct_valid_npis_the_api_accepts(admin: TestClient) -> None:
    npis = [make_npi(n) for n in range(30)]
    assert len(set(npis)) == 30
    assert all(npi_is_valid(npi) for npi in npis)
    assert make_npi(7) == npis[7]
    for npi in npis[:3]:
        provider(admin, npi=npi)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/networks"),
        ("POST", "/v1/providers"),
        ("POST", "/v1/fee-schedules"),
        ("POST", "/v1/contracts"),
        ("POST", "/v1/plans"),
        ("POST", "/v1/members"),
        ("POST", "/v1/authorizations"),
        ("GET", "/v1/networks/ACME-PPO"),
        ("GET", "/v1/providers/1234567893"),
        ("GET", "/v1/fee-schedules/ACME-2026"),
        ("GET", "/v1/contracts/1"),
        ("GET", "/v1/plans/GOLD-PPO"),
        ("GET", "/v1/members/M-100"),
        ("GET", "/v1/authorizations/PA-0001"),
    ],
)
def test_reference_data_needs_the_admin_scope(client: TestClient, method: str, path: str) -> None:
    body = {} if method == "POST" else None
    problem(client.request(method, path, json=body), 401)
    problem(client.request(method, path, json=body, headers=READ), 403)
    problem(client.request(method, path, json=body, headers=WRITE), 403)
    admitted = client.request(method, path, json=body, headers=ADMIN)
    assert admitted.status_code in (404, 422)  # past auth: an empty body or unknown key
