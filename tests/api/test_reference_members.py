"""POST /v1/members and GET /v1/members/{member_id}."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import member, member_body, network, plan, problem, row_counts


@pytest.fixture
def hmo(admin: TestClient) -> None:
    network(admin)
    plan(admin, code="HMO-1", out_of_network=None)


@pytest.mark.usefixtures("hmo")
def test_member_is_created_and_read_back(admin: TestClient) -> None:
    created = member(admin, member_id="M-100", plan_code="HMO-1", coverage_to="2026-12-31")
    assert created == {
        "member_id": "M-100",
        "plan_code": "HMO-1",
        "coverage_from": "2026-01-01",
        "coverage_to": "2026-12-31",
    }
    response = admin.get("/v1/members/M-100")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.usefixtures("hmo")
def test_coverage_may_be_open_ended_or_one_day(admin: TestClient) -> None:
    body = member_body(plan_code="HMO-1")
    del body["coverage_to"]
    assert admin.post("/v1/members", json=body).json()["coverage_to"] is None
    one_day = member(admin, member_id="M-101", plan_code="HMO-1", coverage_to="2026-01-01")
    assert one_day["coverage_to"] == "2026-01-01"


def test_unknown_member_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/members/M-404"), 404)


@pytest.mark.usefixtures("hmo")
def test_existing_member_is_409(admin: TestClient, engine: Engine) -> None:
    member(admin, plan_code="HMO-1")
    before = row_counts(engine)
    problem(admin.post("/v1/members", json=member_body(plan_code="HMO-1", coverage_from="2027-01-01")), 409)
    assert row_counts(engine) == before
    assert admin.get("/v1/members/M-100").json()["coverage_from"] == "2026-01-01"


@pytest.mark.usefixtures("hmo")
def test_unknown_plan_is_422(admin: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/members", json=member_body(plan_code="GOLD-PPO")), 422, ["body", "plan_code"])
    assert row_counts(engine) == before
    problem(admin.get("/v1/members/M-100"), 404)


@pytest.mark.usefixtures("hmo")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("member_id", ""),
        ("member_id", "M 100"),
        ("member_id", "M" * 65),
        ("coverage_from", "2026-1-1"),
        ("coverage_from", None),
        ("coverage_to", "2025-12-31"),  # before coverage_from
        ("coverage_to", "2026-04-31"),
        ("plan", "HMO-1"),
    ],
)
def test_invalid_member_is_422_naming_the_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    before = row_counts(engine)
    response = admin.post("/v1/members", json=member_body(plan_code="HMO-1", **{field: value}))
    problem(response, 422, ["body", field])
    assert row_counts(engine) == before
