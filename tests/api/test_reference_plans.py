"""POST /v1/plans and GET /v1/plans/{code}: stored exactly, read back in the shape posted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    GOLD_PPO_PLAN,
    network,
    plan,
    plan_body,
    problem,
    reference_fee_schedule,
    row_counts,
)


@pytest.fixture
def network_and_reference(admin: TestClient) -> None:
    network(admin)
    reference_fee_schedule(admin)


@pytest.mark.usefixtures("network_and_reference")
def test_gold_ppo_of_api_md_round_trips(admin: TestClient) -> None:
    assert plan(admin) == GOLD_PPO_PLAN
    response = admin.get("/v1/plans/GOLD-PPO")
    assert response.status_code == 200
    assert response.json() == GOLD_PPO_PLAN


@pytest.mark.usefixtures("network_and_reference")
def test_numbers_come_back_as_canonical_strings(admin: TestClient) -> None:
    body = plan_body(in_network={"deductible": 500, "out_of_pocket_max": "3000.5", "coinsurance_rate": 0.2})
    body["copay_categories"][0]["in_network_copay"] = 25
    body["copay_categories"][0]["coinsurance_rate"] = 0.125
    created = admin.post("/v1/plans", json=body).json()
    expected_in_network = {"deductible": "500.00", "out_of_pocket_max": "3000.50", "coinsurance_rate": "0.20"}
    for shown in (created, admin.get("/v1/plans/GOLD-PPO").json()):
        assert shown["in_network"] == expected_in_network
        assert shown["copay_categories"][0]["in_network_copay"] == "25.00"
        assert shown["copay_categories"][0]["coinsurance_rate"] == "0.125"


def test_hmo_without_out_of_network_benefit(admin: TestClient) -> None:
    network(admin)
    body = plan_body(code="HMO-1", name="Silver HMO", out_of_network=None, prior_authorization_codes=[])
    assert plan(admin, **body) == body
    assert admin.get("/v1/plans/HMO-1").json()["out_of_network"] is None


def test_percent_of_billed_basis_needs_no_fee_schedule(admin: TestClient) -> None:
    network(admin)
    out_of_network = {
        "deductible": "2000.00",
        "out_of_pocket_max": "8000.00",
        "coinsurance_rate": "0.50",
        "allowed_basis": {"method": "percent_of_billed", "percent": "0.70"},
    }
    body = plan_body(out_of_network=out_of_network)
    assert plan(admin, **body) == body
    assert admin.get("/v1/plans/GOLD-PPO").json() == body


@pytest.mark.usefixtures("network_and_reference")
def test_copay_categories_keep_their_order_and_defaults(admin: TestClient) -> None:
    categories = [
        {"name": "specialist", "procedure_codes": ["99242-99245", "99213"], "in_network_copay": "50.00"},
        {"name": "urgent_care", "procedure_codes": ["S9088"], "out_of_network_copay": "100.00"},
        {"name": "no_copay", "procedure_codes": ["0001F-0015F"], "coinsurance_rate": "0.10"},
    ]
    plan(admin, copay_categories=categories)
    shown = admin.get("/v1/plans/GOLD-PPO").json()["copay_categories"]
    assert [c["name"] for c in shown] == ["specialist", "urgent_care", "no_copay"]
    assert shown[0] == {
        "name": "specialist",
        "procedure_codes": ["99242-99245", "99213"],
        "in_network_copay": "50.00",
        "out_of_network_copay": None,
        "deductible_applies": True,
        "coinsurance_rate": None,
    }
    assert shown[1]["out_of_network_copay"] == "100.00"
    assert shown[2]["coinsurance_rate"] == "0.10"


@pytest.mark.usefixtures("network_and_reference")
def test_existing_plan_is_409(admin: TestClient, engine: Engine) -> None:
    plan(admin)
    before = row_counts(engine)
    problem(admin.post("/v1/plans", json=plan_body(name="Other")), 409)
    assert row_counts(engine) == before
    assert admin.get("/v1/plans/GOLD-PPO").json()["name"] == "Gold PPO"


def test_unknown_plan_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/plans/NOPE"), 404)


def test_unknown_network_is_422(admin: TestClient, engine: Engine) -> None:
    reference_fee_schedule(admin)
    before = row_counts(engine)
    problem(admin.post("/v1/plans", json=plan_body()), 422, ["body", "network_code"])
    assert row_counts(engine) == before
    problem(admin.get("/v1/plans/GOLD-PPO"), 404)


def test_unknown_reference_fee_schedule_is_422(admin: TestClient, engine: Engine) -> None:
    network(admin)
    before = row_counts(engine)
    response = admin.post("/v1/plans", json=plan_body())
    problem(response, 422, ["body", "out_of_network", "allowed_basis", "fee_schedule_code"])
    assert row_counts(engine) == before
    problem(admin.get("/v1/plans/GOLD-PPO"), 404)


def _oon(**basis: Any) -> dict[str, Any]:
    return {
        "deductible": "1000.00",
        "out_of_pocket_max": "6000.00",
        "coinsurance_rate": "0.40",
        "allowed_basis": basis,
    }


ALLOWED_BASIS = ["body", "out_of_network", "allowed_basis"]
CATEGORY = ["body", "copay_categories", 0]


@pytest.mark.usefixtures("network_and_reference")
@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"code": "GOLD PPO"}, ["body", "code"]),
        ({"network_code": None}, ["body", "network_code"]),
        (
            {"in_network": {"deductible": "500.001", "out_of_pocket_max": "3000", "coinsurance_rate": "0.2"}},
            ["body", "in_network", "deductible"],
        ),
        (
            {"in_network": {"deductible": "-1", "out_of_pocket_max": "3000", "coinsurance_rate": "0.2"}},
            ["body", "in_network", "deductible"],
        ),
        (
            {"in_network": {"deductible": "500", "out_of_pocket_max": "3000", "coinsurance_rate": "1.01"}},
            ["body", "in_network", "coinsurance_rate"],
        ),
        (
            {"in_network": {"deductible": "500", "out_of_pocket_max": "400", "coinsurance_rate": "0.2"}},
            ["body", "in_network", "out_of_pocket_max"],
        ),
        (
            {"in_network": {"deductible": "500", "out_of_pocket_max": "3000"}},
            ["body", "in_network", "coinsurance_rate"],
        ),
        (
            {
                "out_of_network": _oon(
                    method="percent_of_billed", percent="0.70", fee_schedule_code="MEDICARE-2026"
                )
            },
            [*ALLOWED_BASIS, "percent_of_billed", "fee_schedule_code"],
        ),
        (
            {"out_of_network": _oon(method="percent_of_billed", percent="1.50")},
            [*ALLOWED_BASIS, "percent_of_billed", "percent"],
        ),
        (
            {"out_of_network": _oon(method="percent_of_billed", percent="0")},
            [*ALLOWED_BASIS, "percent_of_billed", "percent"],
        ),
        (
            {"out_of_network": _oon(method="percent_of_fee_schedule", percent="1.50")},
            [*ALLOWED_BASIS, "percent_of_fee_schedule", "fee_schedule_code"],
        ),
        ({"out_of_network": _oon(method="usual_and_customary", percent="0.80")}, ALLOWED_BASIS),
        (
            {"copay_categories": [{"name": "x", "procedure_codes": ["99215-99202"]}]},
            [*CATEGORY, "procedure_codes", 0],
        ),
        (
            {"copay_categories": [{"name": "x", "procedure_codes": ["99202-J1100"]}]},
            [*CATEGORY, "procedure_codes", 0],
        ),
        ({"copay_categories": [{"name": "x", "procedure_codes": []}]}, [*CATEGORY, "procedure_codes"]),
        (
            {"copay_categories": [{"name": "x", "procedure_codes": ["99213"], "in_network_copay": "25.001"}]},
            [*CATEGORY, "in_network_copay"],
        ),
        (
            {"copay_categories": [{"name": "x", "procedure_codes": ["99213"], "coinsurance_rate": "2"}]},
            [*CATEGORY, "coinsurance_rate"],
        ),
        (
            {"copay_categories": [{"name": "x", "procedure_codes": ["99213"], "copay": "25.00"}]},
            [*CATEGORY, "copay"],
        ),
        ({"prior_authorization_codes": ["70551", "7055"]}, ["body", "prior_authorization_codes", 1]),
        ({"prior_authorization_codes": ["70551-70553-70555"]}, ["body", "prior_authorization_codes", 0]),
        ({"tier": "gold"}, ["body", "tier"]),
    ],
)
def test_invalid_plan_is_422_naming_the_field(
    admin: TestClient, engine: Engine, overrides: dict[str, Any], loc: list[str | int]
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/plans", json=plan_body(**overrides)), 422, loc)
    assert row_counts(engine) == before


@pytest.mark.usefixtures("network_and_reference")
def test_out_of_network_must_be_given_even_when_null(admin: TestClient) -> None:
    body = plan_body()
    del body["out_of_network"]
    problem(admin.post("/v1/plans", json=body), 422, ["body", "out_of_network"])
