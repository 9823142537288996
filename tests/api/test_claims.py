"""POST /v1/claims and GET /v1/claims/{id}: the worked example, idempotency, duplicates, 422s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.services import claims as claims_service
from tests.claims_support import (
    WORKED_EOB,
    Json,
    accumulators,
    adjustment_codes,
    checked_eob,
    claim_body,
    line,
    submit,
    void,
)
from tests.conftest import ADMIN, READ, WRITE
from tests.factories import load_worked_example, row_counts


@pytest.fixture
def worked(admin: TestClient) -> Json:
    return load_worked_example(admin)


def test_worked_example_gives_exactly_the_documented_eob(client: TestClient, worked: Json) -> None:
    response = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert checked_eob(response, 201) == WORKED_EOB


def test_get_returns_exactly_what_post_returned(client: TestClient, worked: Json) -> None:
    posted = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    got = client.get("/v1/claims/CLM-0001", headers=READ)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.content == posted.content


def test_get_unknown_claim_is_404_problem(client: TestClient, worked: Json) -> None:
    response = client.get("/v1/claims/NOPE", headers=READ)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_claims_need_their_scopes(client: TestClient, worked: Json) -> None:
    assert client.post("/v1/claims", json=claim_body(), headers=READ).status_code == 403
    assert client.post("/v1/claims", content=b"{not json", headers={}).status_code == 401
    submit(client, claim_body())
    assert client.get("/v1/claims/CLM-0001", headers=WRITE).status_code == 403


def test_resubmission_returns_the_stored_eob_and_changes_nothing(
    client: TestClient, worked: Json, engine: Engine
) -> None:
    first = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert first.status_code == 201
    counts, totals = row_counts(engine), accumulators(client)

    # The same claim after parsing: a number for the money, with a trailing zero.
    again = claim_body(lines=[line(billed_amount=200)])
    second = client.post("/v1/claims", json=again, headers=WRITE)
    third = client.post("/v1/claims", json=claim_body(lines=[line(billed_amount="200.0")]), headers=WRITE)

    assert (second.status_code, third.status_code) == (200, 200)
    assert second.content == first.content == third.content
    assert row_counts(engine) == counts
    assert accumulators(client) == totals


def test_retry_without_received_date_on_another_day_is_the_same_claim(
    client: TestClient, worked: Json, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    from datetime import date

    body = claim_body()
    del body["received_date"]
    monkeypatch.setattr(claims_service, "today", lambda: date(2026, 3, 5))
    first = client.post("/v1/claims", json=body, headers=WRITE)
    assert first.status_code == 201
    counts = row_counts(engine)

    monkeypatch.setattr(claims_service, "today", lambda: date(2026, 3, 9))
    retry = client.post("/v1/claims", json=body, headers=WRITE)
    assert retry.status_code == 200
    assert retry.content == first.content
    assert row_counts(engine) == counts


def test_received_date_defaults_to_the_day_first_received(
    client: TestClient, worked: Json, monkeypatch: pytest.MonkeyPatch, admin: TestClient
) -> None:
    """Timely filing is measured from the defaulted date (limit 3 days: 3 is on time, 4 is late)."""
    from datetime import date

    from tests.factories import contract, fee_schedule, make_npi, provider

    npi = make_npi(7)
    provider(admin, npi=npi, name="Late Filer")
    fee_schedule(admin, code="LATE-2026")
    contract(admin, provider_npi=npi, fee_schedule_code="LATE-2026", timely_filing_days=3)
    body = claim_body(billing_provider_npi=npi)
    del body["received_date"]

    monkeypatch.setattr(claims_service, "today", lambda: date(2026, 3, 4))
    on_time = submit(client, {**body, "claim_id": "ON-TIME"})
    monkeypatch.setattr(claims_service, "today", lambda: date(2026, 3, 6))
    late = submit(client, {**body, "claim_id": "LATE", "lines": [line(service_date="2026-03-02")]})

    assert on_time["status"] == "paid"
    assert late["status"] == "denied"
    assert adjustment_codes(late["lines"][0]) == ["CO-29"]


def test_same_claim_id_with_another_claim_is_409(client: TestClient, worked: Json, engine: Engine) -> None:
    submit(client, claim_body())
    counts = row_counts(engine)
    other = claim_body(lines=[line(billed_amount="201.00")])
    response = client.post("/v1/claims", json=other, headers=WRITE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "CLM-0001" in response.json()["detail"]
    assert row_counts(engine) == counts


def test_omitting_received_date_is_another_claim_than_giving_it(client: TestClient, worked: Json) -> None:
    """Compared as submitted: a retry must send what the first submission sent."""
    submit(client, claim_body())
    body = claim_body()
    del body["received_date"]
    assert client.post("/v1/claims", json=body, headers=WRITE).status_code == 409


def test_unknown_member_is_denied_and_posts_nothing(client: TestClient, worked: Json) -> None:
    eob = submit(client, claim_body(member_id="M-NOBODY"))
    assert eob["status"] == "denied"
    assert eob["plan_code"] is None
    assert eob["accumulators"] is None
    assert adjustment_codes(eob["lines"][0]) == ["PR-31"]
    assert accumulators(client)["in_network"]["out_of_pocket_met"] == "0.00"
    assert void(client, "CLM-0001")["status"] == "voided"


def test_lines_come_back_in_line_number_order(client: TestClient, worked: Json) -> None:
    body = claim_body(lines=[line(2, procedure_code="99214"), line(1)])
    eob = submit(client, body)
    assert [ln["line_number"] for ln in eob["lines"]] == [1, 2]
    # Line 1 takes the copay first; order of submission does not matter for idempotency.
    assert (
        client.post(
            "/v1/claims", json=claim_body(lines=[line(1), line(2, procedure_code="99214")]), headers=WRITE
        ).status_code
        == 200
    )


# ---------------------------------------------------------------- duplicates


def test_duplicate_of_a_paid_line_is_denied_until_the_first_claim_is_voided(
    client: TestClient, worked: Json
) -> None:
    lines = [line(1, modifiers=["25", "GT"])]
    assert submit(client, claim_body("CLM-A", lines=lines))["status"] == "paid"

    # Modifiers in another order are the same service.
    dup = submit(client, claim_body("CLM-B", lines=[line(1, modifiers=["GT", "25"])]))
    assert dup["status"] == "denied"
    assert adjustment_codes(dup["lines"][0]) == ["OA-18"]
    assert dup["lines"][0]["patient_responsibility_amount"] == "0.00"

    void(client, "CLM-A")
    again = submit(client, claim_body("CLM-C", lines=lines))
    assert again["status"] == "paid"


def test_other_date_or_provider_is_not_a_duplicate(
    client: TestClient, worked: Json, admin: TestClient
) -> None:
    from tests.factories import contract, make_npi, provider

    npi = make_npi(3)
    provider(admin, npi=npi, name="Other")
    contract(admin, provider_npi=npi)
    submit(client, claim_body("CLM-A"))
    other_day = submit(client, claim_body("CLM-B", lines=[line(service_date="2026-03-02")]))
    other_provider = submit(client, claim_body("CLM-C", billing_provider_npi=npi))
    assert other_day["status"] == other_provider["status"] == "paid"


def test_a_denied_line_does_not_make_a_duplicate(client: TestClient, worked: Json) -> None:
    first = submit(client, claim_body("CLM-A", lines=[line(procedure_code="70551", billed_amount="900.00")]))
    assert adjustment_codes(first["lines"][0]) == ["CO-197"]  # no authorization on file
    second = submit(client, claim_body("CLM-B", lines=[line(procedure_code="70551", billed_amount="900.00")]))
    assert adjustment_codes(second["lines"][0]) == ["CO-197"]


# ---------------------------------------------------------------- 422: the field is named


def _errors(response: Any) -> list[tuple[str, ...]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [tuple(str(p) for p in e["loc"]) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"lines": [line(n) for n in range(1, 52)]}, ("body", "lines")),
        ({"lines": []}, ("body", "lines")),
        ({"billing_provider_npi": "1234567890"}, ("body", "billing_provider_npi")),
        ({"facility_npi": "123456789"}, ("body", "facility_npi")),
        ({"lines": [line(units=0)]}, ("body", "lines", "0", "units")),
        ({"lines": [line(units=10000)]}, ("body", "lines", "0", "units")),
        ({"lines": [line(units=1.5)]}, ("body", "lines", "0", "units")),
        ({"lines": [line(billed_amount="200.001")]}, ("body", "lines", "0", "billed_amount")),
        ({"lines": [line(billed_amount=0)]}, ("body", "lines", "0", "billed_amount")),
        ({"lines": [line(billed_amount="-5.00")]}, ("body", "lines", "0", "billed_amount")),
        ({"lines": [line(1), line(1)]}, ("body", "lines")),
        ({"lines": [line(procedure_code="9921")]}, ("body", "lines", "0", "procedure_code")),
        ({"lines": [line(modifiers=["25", "GT", "59", "XS", "76"])]}, ("body", "lines", "0", "modifiers")),
        ({"lines": [line(modifiers=["2"])]}, ("body", "lines", "0", "modifiers", "0")),
        ({"lines": [line(modifiers=["25", "25"])]}, ("body", "lines", "0", "modifiers")),
        ({"lines": [line(service_date="2026-02-30")]}, ("body", "lines", "0", "service_date")),
        ({"lines": [line(service_date="2026-03-09")]}, ("body", "lines", "0", "service_date")),
        ({"place_of_service": "1"}, ("body", "place_of_service")),
        ({"diagnosis_codes": ["hello"]}, ("body", "diagnosis_codes")),
        ({"diagnosis_codes": []}, ("body", "diagnosis_codes")),
        ({"claim_id": "has space"}, ("body", "claim_id")),
        ({"emergency": "yes"}, ("body", "emergency")),
        ({"surprise": 1}, ("body", "surprise")),
    ],
)
def test_malformed_claims_are_422_naming_the_field(
    client: TestClient, worked: Json, engine: Engine, change: Json, loc: tuple[str, ...]
) -> None:
    counts = row_counts(engine)
    response = client.post("/v1/claims", json=claim_body(**change), headers=WRITE)
    assert loc in _errors(response)
    assert row_counts(engine) == counts


def test_missing_claim_id_is_422(client: TestClient, worked: Json) -> None:
    body = claim_body()
    del body["claim_id"]
    assert ("body", "claim_id") in _errors(client.post("/v1/claims", json=body, headers=WRITE))


def test_diagnosis_codes_are_compared_in_dotted_form(client: TestClient, worked: Json) -> None:
    submit(client, claim_body(diagnosis_codes=["J06.9"]))
    assert (
        client.post("/v1/claims", json=claim_body(diagnosis_codes=["J069"]), headers=WRITE).status_code == 200
    )


def test_fifty_lines_are_accepted(client: TestClient, worked: Json) -> None:
    lines = [line(n, service_date=f"2026-02-{1 + n % 28:02d}") for n in range(1, 51)]
    eob = submit(client, claim_body(lines=lines))
    assert len(eob["lines"]) == 50


def test_admin_reads_claims_only_with_the_read_scope(admin: TestClient, worked: Json) -> None:
    assert admin.get("/v1/claims/CLM-0001", headers=ADMIN).status_code == 403


def test_used_up_authorization_denies_units_short(
    client: TestClient, admin: TestClient, worked: Json
) -> None:
    from tests.factories import authorization

    authorization(admin, authorization_number="PA-1", units=1)
    mri = {"procedure_code": "70551", "billed_amount": "900.00"}
    assert submit(client, claim_body("CLM-A", lines=[line(**mri)]))["status"] == "paid"
    second = submit(client, claim_body("CLM-B", lines=[line(**mri, service_date="2026-03-02")]))
    assert adjustment_codes(second["lines"][0]) == ["CO-198"]
    assert second["lines"][0]["patient_responsibility_amount"] == "0.00"


# ---------------------------------------------------------------- what the context must hold


@pytest.fixture
def network_of_two(admin: TestClient, worked: Json) -> str:
    """A second in-network provider paid 130.00 for 99213 (ACME pays 110.00); returns an OON NPI."""
    from tests.factories import contract, fee_schedule, make_npi, provider

    second = make_npi(20)
    provider(admin, npi=second, name="Second")
    fee_schedule(admin, code="SECOND-2026", rates=[{"procedure_code": "99213", "allowed_amount": "130.00"}])
    contract(admin, provider_npi=second, fee_schedule_code="SECOND-2026")
    out_of_network = make_npi(21)
    provider(admin, npi=out_of_network, name="Out of network")
    return out_of_network


def emergency_at(npi: str, claim_id: str = "CLM-0001", **overrides: Any) -> Json:
    """The worked example's claim as an emergency billed by `npi`."""
    return claim_body(claim_id, billing_provider_npi=npi, emergency=True, place_of_service="23", **overrides)


def test_emergency_out_of_network_is_priced_at_the_network_median(
    client: TestClient, network_of_two: str
) -> None:
    eob = submit(client, emergency_at(network_of_two))
    ln = eob["lines"][0]
    assert (ln["network_status"], ln["protected"]) == ("out_of_network", True)
    assert ln["allowed_amount"] == "120.00"  # the median of 110.00 and 130.00
    assert ln["balance_billing_amount"] == "0.00"
    assert "N864" in ln["remark_codes"]


def test_the_network_median_counts_each_contract_though_contracts_share_a_schedule(
    admin: TestClient, client: TestClient, network_of_two: str
) -> None:
    """Two more providers on SECOND-2026 (130.00): 110, 130, 130, 130 has the median 130.00, where
    counting each schedule once (110, 130) would give 120.00."""
    from tests.factories import contract, make_npi, provider

    for n in (22, 23):
        provider(admin, npi=make_npi(n), name=f"Shares SECOND-2026 ({n})")
        contract(admin, provider_npi=make_npi(n), fee_schedule_code="SECOND-2026")
    eob = submit(client, emergency_at(network_of_two))
    assert (eob["lines"][0]["protected"], eob["lines"][0]["allowed_amount"]) == (True, "130.00")


def test_the_network_median_counts_a_schedules_contracts_in_every_period(
    admin: TestClient, client: TestClient, network_of_two: str
) -> None:
    """SECOND-2026 (130.00) in three periods that all cover the service date (from 2026-01-01, from
    2025-07-01, and 2025-01-01 to 2026-12-31), one contract each; the worked schedule (110.00)
    in one period, three contracts. 110 x 3 and 130 x 3: 120.00 only when every period counts;
    leaving out one of SECOND-2026's would give 110.00 (the network is read as one entry per
    schedule and period, each with its schedule's rates)."""
    from tests.factories import WORKED_FEE_SCHEDULE, contract, make_npi, provider

    contracts = [
        (22, "SECOND-2026", "2025-07-01", None),
        (23, "SECOND-2026", "2025-01-01", "2026-12-31"),
        (24, WORKED_FEE_SCHEDULE, "2026-01-01", None),
        (25, WORKED_FEE_SCHEDULE, "2026-01-01", None),
    ]
    for n, schedule, effective_from, effective_to in contracts:
        provider(admin, npi=make_npi(n), name=f"On {schedule} ({n})")
        contract(
            admin,
            provider_npi=make_npi(n),
            fee_schedule_code=schedule,
            effective_from=effective_from,
            effective_to=effective_to,
        )
    eob = submit(client, emergency_at(network_of_two))
    assert (eob["lines"][0]["protected"], eob["lines"][0]["allowed_amount"]) == (True, "120.00")


def test_replaced_network_rates_set_the_next_claims_median(
    admin: TestClient, client: TestClient, network_of_two: str
) -> None:
    """The QPA reads every network schedule's rates in the claim's own transaction: a replacement
    of SECOND-2026's rates (130.00 -> 150.00) moves the very next claim's median (110, 150)."""
    body = emergency_at(network_of_two, "QPA-BEFORE")
    assert submit(client, body)["lines"][0]["allowed_amount"] == "120.00"
    response = admin.put(
        "/v1/fee-schedules/SECOND-2026/rates",
        content="procedure_code,modifier,allowed_amount\n99213,,150.00\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    # another day: not a duplicate of the first
    body = emergency_at(network_of_two, "QPA-AFTER", lines=[line(service_date="2026-03-02")])
    assert submit(client, body)["lines"][0]["allowed_amount"] == "130.00"


def test_out_of_network_provider_at_an_in_network_facility_is_protected(
    client: TestClient, network_of_two: str
) -> None:
    body = claim_body(billing_provider_npi=network_of_two, facility_npi="1234567893", place_of_service="22")
    ln = submit(client, body)["lines"][0]
    assert (ln["protected"], ln["allowed_amount"]) == (True, "120.00")
    assert "N865" in ln["remark_codes"]


def test_unprotected_out_of_network_uses_the_reference_schedule(
    client: TestClient, network_of_two: str
) -> None:
    ln = submit(client, claim_body(billing_provider_npi=network_of_two))["lines"][0]
    assert (ln["network_status"], ln["protected"]) == ("out_of_network", False)
    assert ln["allowed_amount"] == "135.00"  # 150% of MEDICARE-2026's 90.00
    assert ln["balance_billing_amount"] == "65.00"


@pytest.mark.parametrize(
    ("modifiers", "allowed"),
    [(["26"], "90.00"), (["59", "TC"], "310.00"), (["59"], "400.00"), ([], "400.00")],
)
def test_modifier_rates_are_loaded_for_the_claim_codes(
    client: TestClient, admin: TestClient, worked: Json, modifiers: list[str], allowed: str
) -> None:
    from tests.factories import authorization

    authorization(admin, authorization_number="PA-1", units=1)
    body = claim_body(lines=[line(procedure_code="70551", modifiers=modifiers, billed_amount="900.00")])
    assert submit(client, body)["lines"][0]["allowed_amount"] == allowed


def test_the_documented_schema_round_trips_the_eob(client: TestClient, worked: Json) -> None:
    """openapi.json's EobOut describes exactly the JSON returned: no field missing or extra."""
    from service.api.schemas.claims import EobOut

    response = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert EobOut.model_validate_json(response.content).model_dump(mode="json") == response.json()


def test_each_plan_year_accumulates_separately(client: TestClient, admin: TestClient, worked: Json) -> None:
    """Lines in December and January post to two plan years; the EOB shows the last line's."""
    from tests.claims_support import accumulators
    from tests.factories import member

    member(admin, member_id="M-300", coverage_from="2025-01-01")
    december = line(1, procedure_code="99214", billed_amount="300.00", service_date="2025-12-15")
    january = line(2, procedure_code="99214", billed_amount="300.00", service_date="2026-01-05")
    eob = submit(client, claim_body("SPAN", member_id="M-300", lines=[december, january]))
    # December: the ACME contract starts in 2026, so out of network at 150% of 130.00.
    assert [ln["network_status"] for ln in eob["lines"]] == ["out_of_network", "in_network"]
    assert eob["accumulators"]["plan_year"] == 2026
    assert eob["accumulators"]["in_network"]["out_of_pocket_met"] == "25.00"

    later = submit(
        client, claim_body("DEC-2", member_id="M-300", lines=[{**december, "service_date": "2025-12-16"}])
    )
    assert later["accumulators"]["plan_year"] == 2025
    assert later["accumulators"]["out_of_network"]["deductible_met"] == "390.00"
    assert accumulators(client, "M-300", 2025)["out_of_network"]["deductible_met"] == "390.00"
    assert accumulators(client, "M-300", 2026)["out_of_network"]["deductible_met"] == "0.00"


def test_a_denied_authorization_denies_with_carc_39(
    client: TestClient, admin: TestClient, worked: Json
) -> None:
    from tests.factories import authorization

    authorization(admin, authorization_number="PA-NO", units=1, status="denied")
    eob = submit(client, claim_body(lines=[line(procedure_code="70551", billed_amount="900.00")]))
    assert adjustment_codes(eob["lines"][0]) == ["CO-39"]
