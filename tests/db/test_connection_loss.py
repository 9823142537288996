"""Pooled connections that died (a database restart, a failover): db/session.py pings only
connections idle for more than PING_AFTER_IDLE_SECONDS, and a claims batch that meets a connection
that died since its last use runs again on a fresh one (services/batching.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.schemas.claims import ClaimIn
from service.db import session as db_session
from service.services import batching
from service.services import claims as claims_service
from service.services.batching import connection_lost
from tests.claims_support import claim_body, submit
from tests.conftest import READ
from tests.factories import load_worked_example, row_counts


def _kill_pooled_connections(app: FastAPI) -> None:
    """Terminate the server processes of the connections the app's pools hand out next (those
    its last requests used): the requests' pool and the claims batches' own, and wait until they
    are gone."""
    engine: Engine = app.state.engine
    with engine.connect() as conn:
        pids = [conn.connection.driver_connection.info.backend_pid]
    pids.append(asyncio.run(_next_pid(app.state.submit_engine)))
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        for _ in range(100):
            alive = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
            if alive.fetchone() is None:
                return
            time.sleep(0.02)
    raise AssertionError(f"server processes {pids} still there")


async def _next_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        return int(raw.driver_connection.info.backend_pid)


@pytest.fixture
def on_postgresql(engine: Engine) -> Iterator[Engine]:
    if engine.dialect.name != "postgresql":
        pytest.skip("terminates PostgreSQL server processes")
    yield engine
    engine.dispose()  # the test's own pool may hold connections to terminated processes too


def _a_claim_then_a_dead_connection(
    app: FastAPI, admin: TestClient, client: TestClient, monkeypatch: pytest.MonkeyPatch, ping_after: float
) -> None:
    """Claim BEFORE stored; then the pooled connection it used killed, with connections idle
    for longer than `ping_after` seconds pinged before use."""
    load_worked_example(admin)
    submit(client, claim_body("BEFORE"))
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", ping_after)
    _kill_pooled_connections(app)


def test_a_claims_batch_on_a_connection_that_just_died_runs_again_on_a_fresh_one(
    app: FastAPI,
    admin: TestClient,
    client: TestClient,
    on_postgresql: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _a_claim_then_a_dead_connection(app, admin, client, monkeypatch, ping_after=60.0)  # no ping
    before = row_counts(on_postgresql)

    eob = submit(client, claim_body("AFTER"))

    assert eob["claim_id"] == "AFTER"
    after = row_counts(on_postgresql)
    assert after["claims"] == before["claims"] + 1


def test_requests_and_claims_batches_on_idle_connections_that_died_get_fresh_ones_by_the_ping(
    app: FastAPI,
    admin: TestClient,
    client: TestClient,
    on_postgresql: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both pools ping their idle connections: the requests' and the claims batches' own."""
    _a_claim_then_a_dead_connection(app, admin, client, monkeypatch, ping_after=0.05)
    monkeypatch.setattr(batching, "RETRY_WITHIN_SECONDS", -1.0)  # no batch retry: only the ping helps
    time.sleep(0.1)  # idle for longer: pinged

    response = client.get("/v1/claims/BEFORE", headers=READ)  # not the batch path: no retry there
    eob = submit(client, claim_body("AFTER"))

    assert response.status_code == 200, response.text
    assert eob["claim_id"] == "AFTER"


def _driver_error(sqlstate: str | None) -> psycopg.OperationalError:
    error = psycopg.OperationalError("server closed the connection unexpectedly")
    if sqlstate is not None:
        error = psycopg.errors.lookup(sqlstate)("...")
    return error


def test_a_batch_that_failed_slowly_is_not_run_again(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect timeout or a silent network drop: running it again would double the wait."""
    calls = []
    lost = OperationalError("SELECT", {}, _driver_error(None))

    def load(*_: object) -> object:
        calls.append(1)
        raise lost

    monkeypatch.setattr(claims_service, "load_submissions", load)
    batch = [claims_service.prepare_claim(ClaimIn.model_validate(claim_body()))]
    monkeypatch.setattr(batching, "RETRY_WITHIN_SECONDS", 0.0)
    assert asyncio.run(app.state.submissions.run_batch(batch)) == [lost]
    assert len(calls) == 1
    monkeypatch.setattr(batching, "RETRY_WITHIN_SECONDS", 60.0)
    assert asyncio.run(app.state.submissions.run_batch(batch)) == [lost]
    assert len(calls) == 3  # quick: run again, once


@pytest.mark.parametrize(
    ("sqlstate", "lost"),
    [
        (None, True),  # the client saw the connection close
        ("08006", True),  # connection_failure
        ("57P01", True),  # admin_shutdown (pg_terminate_backend, a fast shutdown)
        ("57014", False),  # query_canceled (statement_timeout): the connection is fine
        ("40P01", False),  # deadlock_detected
    ],
)
def test_which_errors_mean_the_connection_is_gone(sqlstate: str | None, lost: bool) -> None:
    error = _driver_error(sqlstate)
    assert connection_lost(error) is lost
    assert connection_lost(OperationalError("SELECT 1", {}, error)) is lost
    invalidated = DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert connection_lost(invalidated)
    assert not connection_lost(ValueError("not a database error"))
