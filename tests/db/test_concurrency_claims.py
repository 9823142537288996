"""Concurrency: simultaneous claims never spend a deductible dollar or an authorization unit twice,
and simultaneous identical submissions store one claim.

The races run against a real uvicorn server (loopback, free port, background thread) on
PostgreSQL, where requests really run in parallel. SQLite serialises every writer with BEGIN
IMMEDIATE, so there the races are skipped; the last line of defence (the unique claim_id) is
tested on both databases by losing the race on purpose.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from service.db.models import ClaimRow
from service.repositories.claims import Submission
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
)
from tests.conftest import WRITE
from tests.factories import authorization, load_worked_example, member, plan, row_counts

RACERS = 20


@pytest.fixture
def worked(admin: TestClient) -> Json:
    data = load_worked_example(admin)
    # A plan where every dollar of 99214 (allowed 160.00) goes to the 500.00 deductible first.
    plan(admin, code="BRONZE", copay_categories=[], prior_authorization_codes=[])
    member(admin, member_id="M-200", plan_code="BRONZE")
    return data


@pytest.fixture
def postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("parallel writers need PostgreSQL; SQLite serialises them with BEGIN IMMEDIATE")


@pytest.fixture
def server(app: FastAPI, postgres_only: None) -> Iterator[str]:
    """The app in a real uvicorn server on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def race(base_url: str, bodies: list[Json]) -> list[httpx.Response]:
    """POST every body to /v1/claims at the same moment, one connection each."""
    barrier = threading.Barrier(len(bodies))

    def post(body: Json) -> httpx.Response:
        with httpx.Client(base_url=base_url, headers=WRITE, timeout=30) as http:
            barrier.wait(timeout=10)
            return http.post("/v1/claims", json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _dated(claim_id: str, day: int, **line_fields: Any) -> Json:
    """Distinct service dates, so no claim is a duplicate of another."""
    return claim_body(
        claim_id,
        received_date="2026-03-31",
        lines=[line(service_date=f"2026-03-{day:02d}", **line_fields)],
    )


@pytest.mark.postgres
def test_simultaneous_claims_spend_the_deductible_once(server: str, client: TestClient, worked: Json) -> None:
    bodies = [
        _dated(f"CLM-{i}", i, procedure_code="99214", billed_amount="300.00") | {"member_id": "M-200"}
        for i in range(1, RACERS + 1)
    ]
    responses = race(server, bodies)

    eobs = [checked_eob(r, 201) for r in responses]
    spent = sum(Decimal(e["lines"][0]["deductible_amount"]) for e in eobs)
    owed = sum(Decimal(e["totals"]["patient_responsibility_amount"]) for e in eobs)
    demand = Decimal("160.00") * RACERS
    assert spent == min(Decimal("500.00"), demand)
    after = accumulators(client, "M-200")["in_network"]
    assert Decimal(after["deductible_met"]) == spent
    assert Decimal(after["out_of_pocket_met"]) == owed


@pytest.mark.postgres
def test_simultaneous_claims_spend_each_authorization_unit_once(
    server: str, client: TestClient, admin: TestClient, worked: Json
) -> None:
    authorization(admin, authorization_number="PA-5", units=5)
    bodies = [
        _dated(f"MRI-{i}", i, procedure_code="70551", billed_amount="900.00") for i in range(1, RACERS + 1)
    ]
    responses = race(server, bodies)

    lines = [checked_eob(r, 201)["lines"][0] for r in responses]
    assert sum(ln["status"] == "paid" for ln in lines) == 5
    assert sorted(adjustment_codes(ln) for ln in lines if ln["status"] == "denied") == [["CO-198"]] * 15
    assert units_used(admin, "PA-5") == 5
    assert accumulators(client)["in_network"]["deductible_met"] == "500.00"


@pytest.mark.postgres
def test_simultaneous_identical_submissions_store_one_claim(
    server: str, client: TestClient, worked: Json, engine: Engine
) -> None:
    responses = race(server, [claim_body()] * RACERS)

    assert sorted(r.status_code for r in responses) == [200] * (RACERS - 1) + [201]
    assert len({r.content for r in responses}) == 1
    checked_eob(responses[0], responses[0].status_code)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ClaimRow)).scalar_one() == 1
    assert accumulators(client)["in_network"]["out_of_pocket_met"] == "25.00"  # one copay


# ---------------------------------------------------------------- the last line of defence


def _miss_once(real: Callable[..., list[Submission]]) -> Callable[..., list[Submission]]:
    """load_submissions that misses the stored claim the first time: as if a racer committed
    right after our read. The insert then conflicts, and the service must answer from the winner."""
    calls = 0

    def load(*args: Any) -> list[Submission]:
        nonlocal calls
        calls += 1
        found = real(*args)
        return [replace(s, submitted=None) for s in found] if calls == 1 else found

    return load


def test_losing_the_insert_race_answers_idempotently(
    client: TestClient, worked: Json, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert first.status_code == 201
    counts, totals = row_counts(engine), accumulators(client)

    monkeypatch.setattr(claims_service, "load_submissions", _miss_once(claims_service.load_submissions))
    retry = client.post("/v1/claims", json=claim_body(), headers=WRITE)

    assert retry.status_code == 200
    assert retry.content == first.content
    assert row_counts(engine) == counts
    assert accumulators(client) == totals


def test_losing_the_insert_race_with_another_claim_is_409(
    client: TestClient, worked: Json, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(client, claim_body())
    counts = row_counts(engine)

    monkeypatch.setattr(claims_service, "load_submissions", _miss_once(claims_service.load_submissions))
    other = client.post("/v1/claims", json=claim_body(lines=[line(billed_amount="250.00")]), headers=WRITE)

    assert other.status_code == 409
    assert row_counts(engine) == counts
