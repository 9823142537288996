"""What the claims hot path reads, and the reference cache (service/repositories/refcache.py).

An in-network claim reads its provider's contract joined with the rates of its codes: always
current. Plans are cached by id. The reference schedule's rates an out-of-network line needs are
cached by (schedule, rates_version, code), the version read in each claim's transaction (the QPA
reads the network's rates with its contracts): a rate replacement, made through this process or
another one, prices the very next claim.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.main import create_app, dispose_engines
from service.repositories.refcache import Lru
from service.settings import Settings
from tests.claims_support import Json, claim_body, line, submit
from tests.conftest import ADMIN
from tests.factories import (
    REFERENCE_FEE_SCHEDULE,
    WORKED_FEE_SCHEDULE,
    load_worked_example,
    make_npi,
    provider,
)
from tests.statements import connect_pools, counted

RATES_CSV = "procedure_code,modifier,allowed_amount\n99213,,{amount}\n99214,,160.00\n"


@pytest.fixture
def worked(app: FastAPI, admin: TestClient) -> Json:
    example = load_worked_example(admin)
    connect_pools(app)
    return example


@pytest.fixture
def out_of_network(admin: TestClient, worked: Json) -> str:
    npi = make_npi(21)
    provider(admin, npi=npi, name="Out of network")
    return npi


def replace_rates(client: TestClient, schedule: str, amount: str) -> None:
    response = client.put(
        f"/v1/fee-schedules/{schedule}/rates",
        content=RATES_CSV.format(amount=amount),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text


def allowed(client: TestClient, claim_id: str, service_date: str, **overrides: str) -> str:
    body = claim_body(claim_id, lines=[line(service_date=service_date)], **overrides)
    amount: str = submit(client, body)["lines"][0]["allowed_amount"]
    return amount


def statements(
    app: FastAPI, client: TestClient, claim_id: str, service_date: str, **overrides: str
) -> list[str]:
    with counted(app) as seen:
        allowed(client, claim_id, service_date, **overrides)
    return seen


def reads(batch: list[str], table: str) -> int:
    return sum(f"FROM {table}" in s for s in batch)


def test_an_in_network_claim_reads_its_rates_with_its_contract(
    app: FastAPI, client: TestClient, worked: Json
) -> None:
    cold = statements(app, client, "C-1", "2026-03-01")
    warm = statements(app, client, "C-2", "2026-03-02")

    assert reads(cold, "copay_categories") == 1 and reads(warm, "copay_categories") == 0
    assert reads(cold, "fee_schedule_rates") == reads(warm, "fee_schedule_rates") == 0
    assert sum("JOIN fee_schedule_rates" in s for s in warm) == 1
    assert len(warm) == len(cold) - 2  # the plan and its copay categories, cached


def test_reference_rates_are_read_once(app: FastAPI, client: TestClient, out_of_network: str) -> None:
    """By a statement of their own, then from the cache; on PostgreSQL, never by one of their own:
    the batch reads them with the contracts (claims_pg.py), cache or not."""
    oon = {"billing_provider_npi": out_of_network}
    cold = statements(app, client, "C-1", "2026-03-01", **oon)
    warm = statements(app, client, "C-2", "2026-03-02", **oon)
    in_network = statements(app, client, "C-3", "2026-03-03")
    if app.state.engine.dialect.name == "postgresql":
        assert reads(cold, "fee_schedule_rates") == reads(warm, "fee_schedule_rates") == 0
        assert len(warm) == len(in_network)  # the same statements (the plan cached by then)
    else:
        assert reads(cold, "fee_schedule_rates") == 1 and reads(warm, "fee_schedule_rates") == 0


def test_replaced_rates_price_the_next_claim(client: TestClient, worked: Json) -> None:
    assert allowed(client, "C-1", "2026-03-01") == "110.00"
    replace_rates(client, WORKED_FEE_SCHEDULE, "95.00")
    assert allowed(client, "C-2", "2026-03-02") == "95.00"


def test_replaced_reference_rates_price_the_next_claim(client: TestClient, out_of_network: str) -> None:
    oon = {"billing_provider_npi": out_of_network}
    assert allowed(client, "C-1", "2026-03-01", **oon) == "135.00"  # 150% of 90.00
    replace_rates(client, REFERENCE_FEE_SCHEDULE, "80.00")
    assert allowed(client, "C-2", "2026-03-02", **oon) == "120.00"
    replace_rates(client, REFERENCE_FEE_SCHEDULE, "90.00")  # the first prices again: a new version
    assert allowed(client, "C-3", "2026-03-03", **oon) == "135.00"


def test_a_replica_sees_rates_replaced_through_another(
    client: TestClient, out_of_network: str, settings: Settings
) -> None:
    oon = {"billing_provider_npi": out_of_network}
    assert allowed(client, "C-1", "2026-03-01", **oon) == "135.00"  # cached here
    other = create_app(settings)
    try:
        with TestClient(other, raise_server_exceptions=False) as replica:
            replace_rates(replica, REFERENCE_FEE_SCHEDULE, "100.00")
    finally:
        dispose_engines(other)
    assert allowed(client, "C-2", "2026-03-02", **oon) == "150.00"


def test_the_cache_keeps_the_most_recently_used_entries() -> None:
    lru: Lru[str, int] = Lru(capacity=2)
    lru.put_many({"a": 1, "b": 2})
    assert lru.get_many(["a"]) == {"a": 1}  # "a" is now the most recent
    lru.put_many({"c": 3})
    assert lru.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    assert len(lru) == 2
