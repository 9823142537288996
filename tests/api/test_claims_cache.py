"""The reference cache of the claims hot path (service/repositories/refcache.py).

Plans and rates are cached per process; rates by (schedule, rates_version, code), the version
read in each claim's transaction. So a cached claim skips those queries, and a rate replacement,
made through this process or another one, prices the very next claim.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.main import create_app
from service.repositories.refcache import Lru
from service.settings import Settings
from tests.claims_support import Json, claim_body, line, submit
from tests.conftest import ADMIN
from tests.factories import WORKED_FEE_SCHEDULE, load_worked_example

RATES_CSV = "procedure_code,modifier,allowed_amount\n99213,,{amount}\n99214,,160.00\n"


@pytest.fixture
def worked(admin: TestClient) -> Json:
    return load_worked_example(admin)


def replace_rates(client: TestClient, amount: str) -> None:
    response = client.put(
        f"/v1/fee-schedules/{WORKED_FEE_SCHEDULE}/rates",
        content=RATES_CSV.format(amount=amount),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text


def allowed(client: TestClient, claim_id: str, service_date: str) -> str:
    body = claim_body(claim_id, lines=[line(service_date=service_date)])
    amount: str = submit(client, body)["lines"][0]["allowed_amount"]
    return amount


def statements(app: FastAPI, client: TestClient, claim_id: str, service_date: str) -> list[str]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", record)
    try:
        allowed(client, claim_id, service_date)
    finally:
        event.remove(app.state.engine, "before_cursor_execute", record)
    return seen


def test_a_cached_claim_reads_neither_the_plan_nor_the_rates(
    app: FastAPI, client: TestClient, worked: Json
) -> None:
    cold = statements(app, client, "C-1", "2026-03-01")
    warm = statements(app, client, "C-2", "2026-03-02")

    def reads(batch: list[str], table: str) -> int:
        return sum(f"FROM {table}" in s for s in batch)

    assert reads(cold, "fee_schedule_rates") == 1 and reads(cold, "copay_categories") == 1
    assert reads(warm, "fee_schedule_rates") == 0 and reads(warm, "copay_categories") == 0
    assert len(warm) == len(cold) - 3  # plan, copay categories, rates


def test_replaced_rates_price_the_next_claim(client: TestClient, worked: Json) -> None:
    assert allowed(client, "C-1", "2026-03-01") == "110.00"
    replace_rates(client, "95.00")
    assert allowed(client, "C-2", "2026-03-02") == "95.00"
    replace_rates(client, "110.00")  # the same prices as the first version: still a new version
    assert allowed(client, "C-3", "2026-03-03") == "110.00"


def test_a_replica_sees_rates_replaced_through_another(
    client: TestClient, worked: Json, settings: Settings
) -> None:
    assert allowed(client, "C-1", "2026-03-01") == "110.00"  # cached here
    other = create_app(settings)
    try:
        with TestClient(other, raise_server_exceptions=False) as replica:
            replace_rates(replica, "99.00")
    finally:
        other.state.engine.dispose()
    assert allowed(client, "C-2", "2026-03-02") == "99.00"


def test_the_cache_keeps_the_most_recently_used_entries() -> None:
    lru: Lru[str, int] = Lru(capacity=2)
    lru.put_many({"a": 1, "b": 2})
    assert lru.get_many(["a"]) == {"a": 1}  # "a" is now the most recent
    lru.put_many({"c": 3})
    assert lru.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    assert len(lru) == 2
