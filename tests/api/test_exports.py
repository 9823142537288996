"""GET /v1/claims/{id}/fhir, GET /v1/claims/{id}/835 and GET /v1/remittances/835 through HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.claims_support import Json, claim_body, line, submit, void
from tests.conftest import ADMIN, READ
from tests.export.support import (
    assert_835_matches_eob,
    assert_balanced,
    assert_fhir_matches_eob,
    claim_loops,
    pyx12_errors,
    segments,
    validated_fhir,
)
from tests.factories import WORKED_NPI, load_worked_example, make_npi, problem, provider

X12 = "application/edi-x12"


@pytest.fixture
def worked(admin: TestClient) -> Json:
    return load_worked_example(admin)


def _day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def _stored_eob(client: TestClient, claim_id: str) -> Json:
    response = client.get(f"/v1/claims/{claim_id}", headers=READ)
    assert response.status_code == 200, response.text
    eob: Json = response.json()
    return eob


def _remittance(
    client: TestClient, npi: str = WORKED_NPI, start: str | None = None, end: str | None = None
) -> str:
    response = client.get(
        "/v1/remittances/835",
        # Around today: the claims were adjudicated just now (a day either side: midnight UTC).
        params={"provider_npi": npi, "from": start or _day(-1), "to": end or _day(1)},
        headers=READ,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(X12)
    assert pyx12_errors(response.text) == []
    assert_balanced(response.text)
    return response.text


def test_worked_example_as_fhir_matches_the_stored_eob(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    response = client.get("/v1/claims/CLM-0001/fhir", headers=READ)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    _, resource = validated_fhir(response.text)
    assert_fhir_matches_eob(resource, _stored_eob(client, "CLM-0001"))
    assert resource["supportingInfo"][0]["timingDate"] == "2026-03-05"


def test_worked_example_as_835_matches_the_stored_eob(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    response = client.get("/v1/claims/CLM-0001/835", headers=READ)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(X12)
    assert pyx12_errors(response.text) == []
    assert_balanced(response.text)
    (loop,) = claim_loops(response.text)
    assert_835_matches_eob(loop, _stored_eob(client, "CLM-0001"))
    payee = [seg for seg in segments(response.text) if seg[:2] == ["N1", "PE"]]
    assert payee == [["N1", "PE", "Dr. Ada Example", "XX", WORKED_NPI]]


def test_each_download_is_a_new_interchange(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    first, second = (client.get("/v1/claims/CLM-0001/835", headers=READ).text for _ in range(2))
    control = [next(seg[13] for seg in segments(text) if seg[0] == "ISA") for text in (first, second)]
    assert control[0] != control[1]


def test_voided_claim_is_cancelled_in_fhir_and_reversed_in_835(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    voided = void(client, "CLM-0001")
    _, resource = validated_fhir(client.get("/v1/claims/CLM-0001/fhir", headers=READ).text)
    assert resource["status"] == "cancelled"
    assert_fhir_matches_eob(resource, voided)

    text = client.get("/v1/claims/CLM-0001/835", headers=READ).text
    assert pyx12_errors(text) == []
    assert_balanced(text)
    original, reversal = claim_loops(text)
    assert (original["clp"][2], reversal["clp"][2]) == ("1", "22")
    assert_835_matches_eob(original, voided)
    assert_835_matches_eob(reversal, voided, sign=-1)


def test_pended_claim_is_queued_in_fhir_and_has_no_835(client: TestClient, worked: Json) -> None:
    # 99215 has no rate in ACME-2026 and the contract sets no unlisted percentage: it pends.
    eob = submit(client, claim_body(lines=[line(procedure_code="99215")]))
    assert eob["status"] == "pended"
    _, resource = validated_fhir(client.get("/v1/claims/CLM-0001/fhir", headers=READ).text)
    assert resource["outcome"] == "queued"
    assert_fhir_matches_eob(resource, eob)
    problem(client.get("/v1/claims/CLM-0001/835", headers=READ), 409)
    assert not claim_loops(_remittance(client))


def test_unknown_claim_is_404(client: TestClient, worked: Json) -> None:
    problem(client.get("/v1/claims/NOPE/fhir", headers=READ), 404)
    problem(client.get("/v1/claims/NOPE/835", headers=READ), 404)


def test_exports_need_the_read_scope(client: TestClient, worked: Json) -> None:
    submit(client, claim_body())
    params = {"provider_npi": WORKED_NPI, "from": _day(), "to": _day()}
    for path in ("/v1/claims/CLM-0001/fhir", "/v1/claims/CLM-0001/835", "/v1/remittances/835"):
        problem(client.get(path, params=params), 401)
        problem(client.get(path, params=params, headers=ADMIN), 403)


def test_provider_remittance_holds_that_providers_claims_of_the_range(
    client: TestClient, admin: TestClient, worked: Json
) -> None:
    other_npi = make_npi(7)
    provider(admin, npi=other_npi, name="Outside Clinic")
    submit(client, claim_body("CLM-A"))
    submit(client, claim_body("CLM-B", lines=[line(procedure_code="99214", billed_amount="300.00")]))
    void(client, "CLM-B")
    submit(client, claim_body("CLM-OTHER", billing_provider_npi=other_npi))

    text = _remittance(client)
    clps = [(loop["clp"][1], loop["clp"][2]) for loop in claim_loops(text)]
    assert clps == [("CLM-A", "1"), ("CLM-B", "1"), ("CLM-B", "22")]
    for loop in claim_loops(text):
        sign = -1 if loop["clp"][2] == "22" else 1
        assert_835_matches_eob(loop, _stored_eob(client, loop["clp"][1]), sign=sign)

    other = _remittance(client, other_npi)
    assert [loop["clp"][1] for loop in claim_loops(other)] == ["CLM-OTHER"]
    assert ["N1", "PE", "Outside Clinic", "XX", other_npi] in segments(other)

    assert not claim_loops(_remittance(client, start=_day(-30), end=_day(-2)))


def test_remittance_query_is_validated(client: TestClient, worked: Json) -> None:
    def get(**params: str) -> httpx.Response:
        return client.get("/v1/remittances/835", params=params, headers=READ)

    good = {"provider_npi": WORKED_NPI, "from": "2026-03-01", "to": "2026-03-31"}
    problem(get(**{**good, "provider_npi": "1234567890"}), 422, ["query", "provider_npi"])
    problem(get(**{**good, "from": "2026-04-01"}), 422, ["query", "to"])
    problem(get(**{**good, "to": "2027-03-02"}), 422, ["query", "to"])
    problem(get(**{**good, "from": "03/01/2026"}), 422, ["query", "from"])
    missing = {k: v for k, v in good.items() if k != "to"}
    problem(get(**missing), 422, ["query", "to"])
