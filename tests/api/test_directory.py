"""GET /v1/networks/{code}/providers/{npi}?date=: network status of a provider on a date."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN, READ, WRITE
from tests.factories import WORKED_NPI, contract, fee_schedule, make_npi, network, problem, provider

PATH = f"/v1/networks/ACME-PPO/providers/{WORKED_NPI}"


@pytest.fixture
def half_year(admin: TestClient) -> int:
    """1234567893 is in ACME-PPO from 2026-01-01 to 2026-06-30; returns the contract id."""
    network(admin)
    provider(admin)
    fee_schedule(admin)
    return int(contract(admin, effective_from="2026-01-01", effective_to="2026-06-30")["id"])


@pytest.mark.parametrize("day", ["2026-01-01", "2026-03-15", "2026-06-30"])
def test_in_network_within_the_contract(client: TestClient, half_year: int, day: str) -> None:
    response = client.get(PATH, params={"date": day}, headers=READ)
    assert response.status_code == 200
    assert response.json() == {
        "network_code": "ACME-PPO",
        "npi": WORKED_NPI,
        "as_of": day,
        "in_network": True,
        "contract": {
            "id": half_year,
            "network_code": "ACME-PPO",
            "provider_npi": WORKED_NPI,
            "fee_schedule_code": "ACME-2026",
            "effective_from": "2026-01-01",
            "effective_to": "2026-06-30",
            "timely_filing_days": None,
            "unlisted_percent_of_billed": None,
        },
    }


@pytest.mark.usefixtures("half_year")
@pytest.mark.parametrize("day", ["2025-12-31", "2026-07-01", "2030-01-01"])
def test_not_in_network_outside_the_contract(client: TestClient, day: str) -> None:
    body = client.get(PATH, params={"date": day}, headers=READ).json()
    assert body["in_network"] is False
    assert body["contract"] is None
    assert body["as_of"] == day


@pytest.mark.usefixtures("half_year")
def test_the_contract_in_effect_is_the_one_shown(admin: TestClient, client: TestClient) -> None:
    later = contract(admin, effective_from="2026-07-01", effective_to=None)
    body = client.get(PATH, params={"date": "2099-12-31"}, headers=READ).json()
    assert body["in_network"] is True
    assert body["contract"]["id"] == later["id"]


@pytest.mark.usefixtures("half_year")
def test_unknown_provider_is_not_in_network(client: TestClient) -> None:
    response = client.get(
        f"/v1/networks/ACME-PPO/providers/{make_npi(5)}", params={"date": "2026-03-01"}, headers=READ
    )
    assert response.status_code == 200
    assert response.json() == {
        "network_code": "ACME-PPO",
        "npi": make_npi(5),
        "as_of": "2026-03-01",
        "in_network": False,
        "contract": None,
    }


@pytest.mark.usefixtures("half_year")
def test_contract_in_another_network_does_not_count(admin: TestClient, client: TestClient) -> None:
    network(admin, code="OTHER-NET")
    body = client.get(
        "/v1/networks/OTHER-NET/providers/" + WORKED_NPI, params={"date": "2026-03-01"}, headers=READ
    )
    assert body.json()["in_network"] is False


def test_unknown_network_is_404(client: TestClient) -> None:
    problem(client.get(f"/v1/networks/NOPE/providers/{WORKED_NPI}", headers=READ), 404)


def test_date_defaults_to_today(admin: TestClient, client: TestClient) -> None:
    network(admin)
    provider(admin)
    fee_schedule(admin)
    contract(admin, effective_from="2000-01-01", effective_to=None)
    before = date.today()
    body = client.get(PATH, headers=READ).json()
    assert body["in_network"] is True
    assert before <= date.fromisoformat(body["as_of"]) <= date.today()


@pytest.mark.usefixtures("half_year")
@pytest.mark.parametrize("headers", [READ, WRITE, ADMIN])
def test_any_valid_key_may_ask(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get(PATH, params={"date": "2026-03-01"}, headers=headers).json()["in_network"] is True


def test_no_key_is_401(client: TestClient) -> None:
    problem(client.get(PATH), 401)


@pytest.mark.usefixtures("half_year")
@pytest.mark.parametrize("day", ["2026-02-30", "03/01/2026", "1767225600", "2026-03-01T00:00:00"])
def test_bad_date_is_422(client: TestClient, day: str) -> None:
    problem(client.get(PATH, params={"date": day}, headers=READ), 422, ["query", "date"])


@pytest.mark.usefixtures("half_year")
@pytest.mark.parametrize("npi", ["1234567890", "123456789", "abcdefghij"])
def test_malformed_npi_is_422(client: TestClient, npi: str) -> None:
    problem(client.get(f"/v1/networks/ACME-PPO/providers/{npi}", headers=READ), 422, ["path", "npi"])
