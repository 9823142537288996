"""POST /v1/contracts and GET /v1/contracts/{id}: references, duplicates, overlapping dates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.repositories import reference as repo
from tests.factories import (
    WORKED_NPI,
    contract,
    contract_body,
    fee_schedule,
    make_npi,
    network,
    problem,
    provider,
    row_counts,
)


@pytest.fixture
def parties(admin: TestClient) -> None:
    """Network ACME-PPO, provider 1234567893 and fee schedule ACME-2026, with no contract."""
    network(admin)
    provider(admin)
    fee_schedule(admin)


@pytest.mark.usefixtures("parties")
def test_contract_is_created_and_read_back(admin: TestClient) -> None:
    created = contract(
        admin,
        effective_from="2026-01-01",
        effective_to="2026-12-31",
        timely_filing_days=90,
        unlisted_percent_of_billed="0.655",
    )
    assert isinstance(created.pop("id"), int)
    assert created == {
        "network_code": "ACME-PPO",
        "provider_npi": WORKED_NPI,
        "fee_schedule_code": "ACME-2026",
        "effective_from": "2026-01-01",
        "effective_to": "2026-12-31",
        "timely_filing_days": 90,
        "unlisted_percent_of_billed": "0.655",
    }
    first = contract(admin, effective_from="2027-01-01", unlisted_percent_of_billed="0.5")
    response = admin.get(f"/v1/contracts/{first['id']}")
    assert response.status_code == 200
    assert response.json() == {**first, "unlisted_percent_of_billed": "0.50"}


@pytest.mark.usefixtures("parties")
def test_open_ended_contract_defaults(admin: TestClient) -> None:
    body = contract_body()
    del body["effective_to"]
    response = admin.post("/v1/contracts", json=body)
    assert response.status_code == 201
    created = response.json()
    assert created["effective_to"] is None
    assert created["timely_filing_days"] is None
    assert created["unlisted_percent_of_billed"] is None


def test_unknown_contract_is_404(admin: TestClient) -> None:
    problem(admin.get("/v1/contracts/999"), 404)


@pytest.mark.usefixtures("parties")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("network_code", "NO-SUCH-NETWORK"),
        ("provider_npi", make_npi(1)),
        ("fee_schedule_code", "NO-SUCH-SCHEDULE"),
    ],
)
def test_unknown_reference_is_422_naming_it(
    admin: TestClient, engine: Engine, field: str, value: str
) -> None:
    before = row_counts(engine)
    body = problem(admin.post("/v1/contracts", json=contract_body(**{field: value})), 422, ["body", field])
    assert "does not exist" in body["detail"]
    assert row_counts(engine) == before


@pytest.mark.usefixtures("parties")
def test_same_network_provider_and_start_is_409(admin: TestClient, engine: Engine) -> None:
    contract(admin, effective_to="2026-06-30")
    before = row_counts(engine)
    problem(admin.post("/v1/contracts", json=contract_body(effective_to="2026-12-31")), 409)
    assert row_counts(engine) == before


@pytest.mark.usefixtures("parties")
@pytest.mark.parametrize(
    ("existing", "new", "loc"),
    [
        # Inclusive ends: sharing one day is an overlap.
        (("2026-01-01", "2026-06-30"), ("2026-06-30", None), "effective_from"),
        (("2026-01-01", "2026-06-30"), ("2025-07-01", "2026-01-01"), "effective_to"),
        (("2026-01-01", "2026-06-30"), ("2026-03-01", "2026-03-31"), "effective_from"),
        (("2026-01-01", "2026-06-30"), ("2025-01-01", None), "effective_to"),
        (("2026-01-01", "2026-06-30"), ("2025-01-01", "2027-01-01"), "effective_to"),
        # An open end runs forever.
        (("2026-01-01", None), ("2030-01-01", "2030-12-31"), "effective_from"),
        (("2026-01-01", None), ("2025-01-01", "2026-01-01"), "effective_to"),
    ],
)
def test_overlapping_contract_is_422(
    admin: TestClient,
    engine: Engine,
    existing: tuple[str, str | None],
    new: tuple[str, str | None],
    loc: str,
) -> None:
    first = contract(admin, effective_from=existing[0], effective_to=existing[1])
    before = row_counts(engine)
    response = admin.post("/v1/contracts", json=contract_body(effective_from=new[0], effective_to=new[1]))
    body = problem(response, 422, ["body", loc])
    assert f"contract {first['id']}" in body["detail"]
    assert row_counts(engine) == before


@pytest.mark.usefixtures("parties")
@pytest.mark.parametrize(
    ("existing", "new"),
    [
        (("2026-01-01", "2026-06-30"), ("2026-07-01", None)),
        (("2026-01-01", "2026-06-30"), ("2025-01-01", "2025-12-31")),
        (("2026-01-01", None), ("2025-01-01", "2025-12-31")),
        (("2026-03-01", "2026-03-01"), ("2026-03-02", "2026-03-02")),
    ],
)
def test_adjacent_contracts_are_allowed(
    admin: TestClient, existing: tuple[str, str | None], new: tuple[str, str | None]
) -> None:
    contract(admin, effective_from=existing[0], effective_to=existing[1])
    contract(admin, effective_from=new[0], effective_to=new[1])


@pytest.mark.usefixtures("parties")
def test_overlap_is_per_provider_and_network(admin: TestClient) -> None:
    contract(admin)
    network(admin, code="OTHER-NET")
    provider(admin, npi=make_npi(2))
    contract(admin, network_code="OTHER-NET")
    contract(admin, provider_npi=make_npi(2))


@pytest.mark.usefixtures("parties")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("effective_from", "2026-02-30"),
        ("effective_from", "01/01/2026"),
        ("effective_from", "2026-01-01T00:00:00"),
        ("effective_from", 20260101),
        ("effective_from", None),
        ("effective_to", "2025-12-31"),  # before effective_from
        ("effective_to", "tomorrow"),
        ("provider_npi", "1234567890"),
        ("network_code", ""),
        ("timely_filing_days", 0),
        ("timely_filing_days", 1.5),
        ("unlisted_percent_of_billed", "1.01"),
        ("unlisted_percent_of_billed", "-0.10"),
        ("unlisted_percent_of_billed", "0"),
        ("id", 7),
    ],
)
def test_invalid_contract_is_422_naming_the_field(
    admin: TestClient, engine: Engine, field: str, value: Any
) -> None:
    before = row_counts(engine)
    problem(admin.post("/v1/contracts", json=contract_body(**{field: value})), 422, ["body", field])
    assert row_counts(engine) == before


@pytest.mark.usefixtures("parties")
def test_one_day_contract_is_valid(admin: TestClient) -> None:
    created = contract(admin, effective_from="2026-03-01", effective_to="2026-03-01")
    assert created["effective_to"] == "2026-03-01"


@pytest.mark.usefixtures("parties")
def test_concurrent_duplicate_contract_is_409_not_500(
    admin: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract(admin)
    before = row_counts(engine)
    # As if another request inserted the same contract between our checks and our insert.
    monkeypatch.setattr(repo, "contract_starting", lambda *_: None)
    monkeypatch.setattr(repo, "overlapping_contract", lambda *_: None)
    problem(admin.post("/v1/contracts", json=contract_body()), 409)
    assert row_counts(engine) == before


@pytest.mark.usefixtures("parties")
def test_concurrent_overlapping_contracts_store_only_one(admin: TestClient) -> None:
    """Overlap is checked before the insert, so two requests must not both pass the check."""
    npis = [make_npi(100 + n) for n in range(8)]
    for npi in npis:
        provider(admin, npi=npi)
    bodies = [
        contract_body(provider_npi=npi, effective_from=start)
        for npi in npis
        for start in ("2026-01-01", "2026-02-01")
    ]
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> int:
        barrier.wait()
        return admin.post("/v1/contracts", json=body).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        statuses = list(pool.map(post, bodies))
    for index, npi in enumerate(npis):
        assert sorted(statuses[2 * index : 2 * index + 2]) == [201, 422], npi
