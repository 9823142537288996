"""POST /v1/fee-schedules with inline rates, GET /v1/fee-schedules/{code}."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db.models import FeeScheduleRateRow
from tests.factories import fee_schedule, fee_schedule_body, problem, row_counts


def _stored_rates(engine: Engine) -> set[tuple[str, str, Decimal | None]]:
    with Session(engine) as session:
        rows = session.scalars(select(FeeScheduleRateRow)).all()
        return {(r.procedure_code, r.modifier, r.allowed_amount) for r in rows}


def test_fee_schedule_is_created_with_its_rates(admin: TestClient, engine: Engine) -> None:
    rates = [
        {"procedure_code": "99213", "allowed_amount": "110.00"},
        {"procedure_code": "70551", "modifier": "26", "allowed_amount": 90},
        {"procedure_code": "70551", "modifier": None, "allowed_amount": 400.5},
        {"procedure_code": "J1100", "modifier": "", "allowed_amount": "0.35"},
        {"procedure_code": "0001F", "allowed_amount": "0.01"},
    ]
    created = fee_schedule(admin, code="ACME-2026", name="Acme 2026", rates=rates)
    assert created == {"code": "ACME-2026", "name": "Acme 2026", "rate_count": 5}
    assert _stored_rates(engine) == {
        ("99213", "", Decimal("110.00")),
        ("70551", "26", Decimal("90.00")),
        ("70551", "", Decimal("400.50")),
        ("J1100", "", Decimal("0.35")),
        ("0001F", "", Decimal("0.01")),
    }


def test_fee_schedule_reads_back_its_summary(admin: TestClient) -> None:
    fee_schedule(admin)
    response = admin.get("/v1/fee-schedules/ACME-2026")
    assert response.status_code == 200
    assert response.json() == {"code": "ACME-2026", "name": "Acme PPO 2026", "rate_count": 6}


def test_fee_schedule_without_rates_has_none(admin: TestClient) -> None:
    assert fee_schedule(admin, rates=[])["rate_count"] == 0
    assert admin.get("/v1/fee-schedules/ACME-2026").json()["rate_count"] == 0


def test_unknown_fee_schedule_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/fee-schedules/NOPE"), 404)


def test_existing_fee_schedule_is_409_and_its_rates_stay(admin: TestClient, engine: Engine) -> None:
    fee_schedule(admin)
    before = row_counts(engine)
    other_rates = [{"procedure_code": "99999", "allowed_amount": "1.00"}]
    problem(admin.post("/v1/fee-schedules", json=fee_schedule_body(rates=other_rates)), 409)
    assert row_counts(engine) == before
    assert admin.get("/v1/fee-schedules/ACME-2026").json()["rate_count"] == 6


@pytest.mark.parametrize(
    "rates",
    [
        [{"procedure_code": "99213", "allowed_amount": "1"}] * 3,
        [
            {"procedure_code": "99213", "allowed_amount": "1"},
            {"procedure_code": "99214", "allowed_amount": "1"},
            {"procedure_code": "99213", "modifier": "", "allowed_amount": "2"},
        ],
        [
            {"procedure_code": "70551", "modifier": "26", "allowed_amount": "1"},
            {"procedure_code": "70551", "allowed_amount": "1"},
            {"procedure_code": "70551", "modifier": "26", "allowed_amount": "2"},
        ],
    ],
)
def test_duplicate_rate_row_is_422_naming_its_index(
    admin: TestClient, engine: Engine, rates: list[dict[str, Any]]
) -> None:
    before = row_counts(engine)
    body = problem(
        admin.post("/v1/fee-schedules", json=fee_schedule_body(rates=rates)), 422, ["body", "rates", 2]
    )
    assert "rates[0]" in body["errors"][-1]["msg"]
    assert row_counts(engine) == before
    problem(admin.get("/v1/fee-schedules/ACME-2026"), 404)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("procedure_code", "9921"),
        ("procedure_code", "992134"),
        ("procedure_code", "abcde"),
        ("procedure_code", "9921X"),
        ("procedure_code", None),
        ("modifier", "2"),
        ("modifier", "259"),
        ("modifier", "tc"),
        ("allowed_amount", "110.005"),
        ("allowed_amount", 110.005),
        ("allowed_amount", "-1.00"),
        ("allowed_amount", "0"),
        ("allowed_amount", "abc"),
        ("allowed_amount", "NaN"),
        ("allowed_amount", None),
    ],
)
def test_invalid_rate_is_422_naming_row_and_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    rates = [
        {"procedure_code": "99213", "allowed_amount": "110.00"},
        {"procedure_code": "99214", "allowed_amount": "160.00", field: value},
    ]
    before = row_counts(engine)
    response = admin.post("/v1/fee-schedules", json=fee_schedule_body(rates=rates))
    problem(response, 422, ["body", "rates", 1, field])
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("code", "bad code"), ("code", ""), ("name", ""), ("rates", "99213,,110.00"), ("version", 2)],
)
def test_invalid_fee_schedule_is_422_naming_the_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/fee-schedules", json=fee_schedule_body(**{field: value})), 422, ["body", field])
    assert row_counts(engine) == before
