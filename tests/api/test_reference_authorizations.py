"""POST /v1/authorizations and GET /v1/authorizations/{number}."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    WORKED_NPI,
    authorization,
    authorization_body,
    load_worked_example,
    make_npi,
    problem,
    row_counts,
)


@pytest.fixture
def worked(admin: TestClient) -> None:
    load_worked_example(admin)


@pytest.mark.usefixtures("worked")
def test_authorization_is_created_and_read_back_with_units_used(admin: TestClient) -> None:
    created = authorization(
        admin,
        authorization_number="PA-0001",
        procedure_codes=["70551-70553", "27447"],
        units=3,
        valid_from="2026-02-01",
        valid_to="2026-04-30",
        provider_npi=WORKED_NPI,
    )
    assert created == {
        "authorization_number": "PA-0001",
        "member_id": "M-100",
        "procedure_codes": ["70551-70553", "27447"],
        "units": 3,
        "units_used": 0,
        "valid_from": "2026-02-01",
        "valid_to": "2026-04-30",
        "provider_npi": WORKED_NPI,
        "status": "approved",
    }
    response = admin.get("/v1/authorizations/PA-0001")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.usefixtures("worked")
def test_denied_authorization_without_provider(admin: TestClient) -> None:
    body = authorization_body(status="denied")
    del body["provider_npi"]
    response = admin.post("/v1/authorizations", json=body)
    assert response.status_code == 201
    assert response.json()["status"] == "denied"
    assert response.json()["provider_npi"] is None
    assert admin.get("/v1/authorizations/PA-0001").json() == response.json()


def test_unknown_authorization_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/authorizations/PA-404"), 404)


@pytest.mark.usefixtures("worked")
def test_existing_authorization_number_is_409(admin: TestClient, engine: Engine) -> None:
    authorization(admin)
    before = row_counts(engine)
    problem(admin.post("/v1/authorizations", json=authorization_body(units=5)), 409)
    assert row_counts(engine) == before
    assert admin.get("/v1/authorizations/PA-0001").json()["units"] == 1


@pytest.mark.usefixtures("worked")
@pytest.mark.parametrize(("field", "value"), [("member_id", "M-404"), ("provider_npi", make_npi(3))])
def test_unknown_reference_is_422_naming_it(
    admin: TestClient, engine: Engine, field: str, value: str
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/authorizations", json=authorization_body(**{field: value})), 422, ["body", field])
    assert row_counts(engine) == before
    problem(admin.get("/v1/authorizations/PA-0001"), 404)


@pytest.mark.usefixtures("worked")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authorization_number", ""),
        ("units", 0),
        ("units", -1),
        ("units", "many"),
        ("valid_to", "2025-12-31"),  # before valid_from
        ("valid_from", "2026-13-01"),
        ("valid_to", None),
        ("status", "pending"),
        ("status", None),
        ("provider_npi", "1234567890"),
        ("procedure_codes", []),
        ("procedure_codes", "70551"),
        ("units_used", 1),
    ],
)
def test_invalid_authorization_is_422_naming_the_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/authorizations", json=authorization_body(**{field: value})), 422, ["body", field])
    assert row_counts(engine) == before


@pytest.mark.usefixtures("worked")
@pytest.mark.parametrize(
    ("codes", "index"), [(["7055"], 0), (["70551", "70553-70551"], 1), (["99213-J1100"], 0)]
)
def test_invalid_procedure_code_is_422_naming_its_index(
    admin: TestClient, codes: list[str], index: int
) -> None:
    response = admin.post("/v1/authorizations", json=authorization_body(procedure_codes=codes))
    problem(response, 422, ["body", "procedure_codes", index])
