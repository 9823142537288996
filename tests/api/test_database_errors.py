"""Database errors as the client sees them: unavailable is 503 problem+json (retry), whichever
layer raised it (SQLAlchemy, or psycopg itself on the PostgreSQL submit path), and nothing is
written."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service.services import claims as claims_service
from tests.claims_support import claim_body
from tests.conftest import WRITE
from tests.factories import load_worked_example, row_counts


def _failing(exc: Exception) -> Any:
    def load(*_: Any) -> Any:
        raise exc

    return load


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        OperationalError("SELECT 1", {}, Exception("connection refused")),
    ],
    ids=["psycopg-statement-timeout", "psycopg-connection-lost", "sqlalchemy-operational"],
)
def test_an_unavailable_database_is_503_and_writes_nothing(
    admin: TestClient, client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    load_worked_example(admin)
    counts = row_counts(engine)
    monkeypatch.setattr(claims_service, "load_submissions", _failing(exc))

    response = client.post("/v1/claims", json=claim_body(), headers=WRITE)

    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503
    assert row_counts(engine) == counts


def test_any_other_database_error_is_500(
    admin: TestClient, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_worked_example(admin)
    monkeypatch.setattr(claims_service, "load_submissions", _failing(psycopg.errors.CheckViolation("units")))
    response = client.post("/v1/claims", json=claim_body(), headers=WRITE)
    assert response.status_code == 500
    assert response.json()["detail"] == "an unexpected error occurred"  # no SQL or data leaked
