"""Void, re-adjudication of pended claims, estimates and the accumulators endpoint."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.services import claims as claims_service
from tests.claims_support import (
    Json,
    accumulators,
    adjustment_codes,
    checked_eob,
    claim_body,
    line,
    submit,
    units_used,
    void,
)
from tests.conftest import READ, WRITE
from tests.factories import (
    authorization,
    contract,
    fee_schedule,
    load_worked_example,
    make_npi,
    member,
    member_copies_mismatched,
    plan,
    provider,
    row_counts,
)

MRI = {"procedure_code": "70551", "billed_amount": "1000.00"}  # ACME-2026: 400.00, needs authorization


@pytest.fixture
def worked(admin: TestClient) -> Json:
    return load_worked_example(admin)


# ---------------------------------------------------------------- void


def test_void_restores_accumulators_and_authorization_units(
    client: TestClient, admin: TestClient, worked: Json
) -> None:
    authorization(admin, authorization_number="PA-1", units=1)
    before = accumulators(client)
    eob = submit(client, claim_body(lines=[line(**MRI, authorization_number="PA-1")]))
    assert eob["status"] == "paid"
    assert eob["lines"][0]["deductible_amount"] == "400.00"
    assert accumulators(client)["in_network"]["deductible_met"] == "400.00"
    assert units_used(admin, "PA-1") == 1

    voided = void(client, "CLM-0001")

    assert voided["status"] == "voided"
    assert voided["lines"] == eob["lines"]
    assert voided["totals"] == eob["totals"]
    assert voided["accumulators"] == accumulators(client) == before
    assert units_used(admin, "PA-1") == 0
    # The unit given back can be used again.
    again = submit(client, claim_body("CLM-0002", lines=[line(**MRI, service_date="2026-03-02")]))
    assert again["status"] == "paid"
    assert units_used(admin, "PA-1") == 1


def test_void_is_idempotent_and_get_shows_the_voided_eob(
    client: TestClient, worked: Json, engine: Engine
) -> None:
    submit(client, claim_body(lines=[line(procedure_code="99214", billed_amount="300.00")]))
    submit(client, claim_body("CLM-OTHER", lines=[line(service_date="2026-03-02")]))
    first = client.post("/v1/claims/CLM-0001/void", headers=WRITE)
    checked_eob(first, 200)
    counts, totals = row_counts(engine), accumulators(client)

    second = client.post("/v1/claims/CLM-0001/void", headers=WRITE)

    assert second.content == first.content
    assert client.get("/v1/claims/CLM-0001", headers=READ).content == first.content
    assert row_counts(engine) == counts
    assert accumulators(client) == totals
    assert totals["in_network"]["out_of_pocket_met"] == "25.00"  # CLM-OTHER's copay remains


def test_resubmitting_a_voided_claim_returns_it_voided(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    voided = void(client, "CLM-0001")
    again = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert checked_eob(again, 200) == voided
    assert accumulators(client)["in_network"]["out_of_pocket_met"] == "0.00"


def test_void_unknown_claim_is_404(client: TestClient, worked: Json) -> None:
    assert client.post("/v1/claims/NOPE/void", headers=WRITE).status_code == 404


def test_void_needs_the_write_scope(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    assert client.post("/v1/claims/CLM-0001/void", headers=READ).status_code == 403


# ---------------------------------------------------------------- pended, then priced


@pytest.fixture
def unpriced(client: TestClient, admin: TestClient, worked: Json) -> str:
    """A claim for 99215 from a provider with no contract: MEDICARE-2026 has no 99215 rate."""
    npi = make_npi(11)
    provider(admin, npi=npi, name="New Provider")
    body = claim_body(billing_provider_npi=npi, lines=[line(procedure_code="99215", billed_amount="300.00")])
    eob = submit(client, body)
    assert eob["status"] == "pended"
    assert eob["lines"][0]["status"] == "pended"
    assert eob["lines"][0]["remark_codes"]  # the price is missing
    return npi


def test_pended_claim_is_priced_once_a_rate_exists(
    client: TestClient, admin: TestClient, unpriced: str, engine: Engine
) -> None:
    before = accumulators(client)
    assert client.get("/v1/claims/CLM-0001", headers=READ).json()["status"] == "pended"
    # Still no rate: pends again, and nothing is posted.
    still = checked_eob(client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE), 200)
    assert still["status"] == "pended"
    assert accumulators(client) == before

    fee_schedule(admin, code="NEW-2026", rates=[{"procedure_code": "99215", "allowed_amount": "180.00"}])
    contract(admin, provider_npi=unpriced, fee_schedule_code="NEW-2026")
    response = client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE)

    eob = checked_eob(response, 200)
    assert eob["claim_id"] == "CLM-0001"
    assert eob["status"] == "paid"
    assert eob["network_status"] == "in_network"
    assert eob["lines"][0]["allowed_amount"] == "180.00"
    assert eob["lines"][0]["copay_amount"] == "25.00"
    assert client.get("/v1/claims/CLM-0001", headers=READ).content == response.content
    assert accumulators(client)["in_network"]["out_of_pocket_met"] == "25.00"
    # Once adjudicated it is an ordinary claim: a second adjudication is refused.
    assert client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE).status_code == 409
    assert member_copies_mismatched(engine) == 0  # the new lines and postings carry its member


def test_pended_claim_can_be_voided(client: TestClient, unpriced: str) -> None:
    assert void(client, "CLM-0001")["status"] == "voided"
    assert client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE).status_code == 409


def test_adjudicating_a_paid_claim_is_409(client: TestClient, worked: Json) -> None:
    paid = submit(client, claim_body())
    response = client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/claims/CLM-0001", headers=READ).json() == paid


def test_adjudicating_an_unknown_claim_is_404(client: TestClient, worked: Json) -> None:
    assert client.post("/v1/claims/NOPE/adjudicate", headers=WRITE).status_code == 404


# ---------------------------------------------------------------- estimates


def test_estimate_posts_and_stores_nothing(
    client: TestClient, admin: TestClient, worked: Json, engine: Engine
) -> None:
    authorization(admin, authorization_number="PA-1", units=1)
    counts, totals = row_counts(engine), accumulators(client)
    body = claim_body(lines=[line(**MRI, authorization_number="PA-1")])

    estimate = checked_eob(client.post("/v1/estimates", json=body, headers=WRITE), 200)

    assert estimate["status"] == "paid"
    assert estimate["accumulators"]["in_network"]["deductible_met"] == "400.00"  # as it would be
    assert row_counts(engine) == counts
    assert accumulators(client) == totals
    assert units_used(admin, "PA-1") == 0
    assert client.get("/v1/claims/CLM-0001", headers=READ).status_code == 404
    # The claim itself then gets what the estimate said.
    assert submit(client, body) == estimate


def test_estimate_needs_no_claim_id_and_may_be_for_the_future(client: TestClient, worked: Json) -> None:
    body = claim_body(lines=[line(service_date="2026-12-15")])
    del body["claim_id"], body["received_date"]
    estimate = checked_eob(client.post("/v1/estimates", json=body, headers=WRITE), 200)
    assert estimate["claim_id"] is None
    assert estimate["lines"][0]["plan_paid_amount"] == "85.00"


def test_estimate_ignores_duplicates(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    estimate = checked_eob(client.post("/v1/estimates", json=claim_body("EST-1"), headers=WRITE), 200)
    assert estimate["status"] == "paid"
    assert adjustment_codes(estimate["lines"][0]) == ["CO-45", "PR-3"]


def test_estimate_validates_like_a_claim(client: TestClient, worked: Json) -> None:
    response = client.post("/v1/estimates", json=claim_body(lines=[line(units=0)]), headers=WRITE)
    assert response.status_code == 422
    assert ["body", "lines", 0, "units"] in [e["loc"] for e in response.json()["errors"]]


def test_estimate_needs_the_write_scope(client: TestClient, worked: Json) -> None:
    assert client.post("/v1/estimates", json=claim_body(), headers=READ).status_code == 403


# ---------------------------------------------------------------- accumulators endpoint


def test_accumulators_default_to_the_current_plan_year(
    client: TestClient, worked: Json, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(client, claim_body())
    monkeypatch.setattr(claims_service, "today", lambda: date(2026, 7, 1))
    current = client.get("/v1/members/M-100/accumulators", headers=READ)
    assert current.status_code == 200
    assert current.json() == submit(client, claim_body(), status=200)["accumulators"]
    monkeypatch.setattr(claims_service, "today", lambda: date(2027, 1, 2))
    next_year = client.get("/v1/members/M-100/accumulators", headers=READ).json()
    assert next_year == {
        "plan_year": 2027,
        "in_network": {
            "deductible": "500.00",
            "deductible_met": "0.00",
            "out_of_pocket_max": "3000.00",
            "out_of_pocket_met": "0.00",
        },
        "out_of_network": {
            "deductible": "1000.00",
            "deductible_met": "0.00",
            "out_of_pocket_max": "6000.00",
            "out_of_pocket_met": "0.00",
        },
    }


def test_accumulators_of_an_hmo_member_have_no_out_of_network_tier(
    client: TestClient, admin: TestClient, worked: Json
) -> None:
    plan(admin, code="HMO", out_of_network=None)
    member(admin, member_id="M-HMO", plan_code="HMO")
    assert accumulators(client, "M-HMO")["out_of_network"] is None


def test_accumulators_of_an_unknown_member_is_404(client: TestClient, worked: Json) -> None:
    response = client.get("/v1/members/M-NOBODY/accumulators", headers=READ)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_accumulators_need_the_read_scope_and_a_sane_year(client: TestClient, worked: Json) -> None:
    assert client.get("/v1/members/M-100/accumulators", headers=WRITE).status_code == 403
    response = client.get("/v1/members/M-100/accumulators?plan_year=twenty", headers=READ)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "plan_year"]


# ---------------------------------------------------------------- metrics


def _adjudicated(status: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("claims_adjudicated_total", {"status": status}) or 0.0


def test_adjudications_are_counted_once(client: TestClient, worked: Json, unpriced: str) -> None:
    from prometheus_client import REGISTRY

    paid, pended = _adjudicated("paid"), _adjudicated("pended")
    timings = REGISTRY.get_sample_value("claims_adjudication_duration_seconds_count") or 0.0
    submit(client, claim_body("CLM-PAID", lines=[line(service_date="2026-03-02")]))
    submit(client, claim_body("CLM-PAID", lines=[line(service_date="2026-03-02")]), status=200)  # replay
    client.post("/v1/estimates", json=claim_body("EST"), headers=WRITE)
    client.post("/v1/claims/CLM-0001/adjudicate", headers=WRITE)  # pends again

    assert _adjudicated("paid") == paid + 1
    assert _adjudicated("pended") == pended + 1
    assert REGISTRY.get_sample_value("claims_adjudication_duration_seconds_count") == timings + 2


def test_an_eob_breaking_an_invariant_is_never_posted(
    client: TestClient, worked: Json, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = row_counts(engine)
    monkeypatch.setattr(claims_service, "check_invariants", lambda eob: ["1: billed != plan paid"])
    response = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert row_counts(engine) == counts
