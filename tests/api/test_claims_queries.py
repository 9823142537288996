"""The hot path: a claim costs a fixed number of SQL statements, however many lines it has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.claims_support import claim_body, line, submit
from tests.conftest import WRITE
from tests.factories import load_worked_example

# Lock, claim lookup, 6 context queries (and the plan's 2 while it is not cached), the claim
# insert, lines, one posting and one accumulator upsert: a little headroom over that, but nowhere
# near one per line.
MAX_STATEMENTS = 20


@contextmanager
def counted(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = app.state.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _many_lines(n: int) -> list[dict[str, object]]:
    codes = ["99213", "99214", "99215", "99212"]
    return [
        line(i, procedure_code=codes[i % 4], service_date=f"2026-02-{1 + i % 28:02d}", modifiers=["25"])
        for i in range(1, n + 1)
    ]


def test_statements_per_claim_do_not_grow_with_its_lines(
    app: FastAPI, admin: TestClient, client: TestClient
) -> None:
    load_worked_example(admin)
    one_line = claim_body("ONE", lines=[line(procedure_code="99214", billed_amount="300.00")])
    with counted(app) as small:
        submit(client, one_line)
    with counted(app) as large:
        eob = submit(client, claim_body("FIFTY", lines=_many_lines(50)))
    assert eob["status"] == "pended"  # 99212 and 99215 have no rate: pended, nothing posted
    with counted(app) as priced:
        submit(
            client,
            claim_body("FORTY", lines=[line(i, service_date=f"2026-01-{i:02d}") for i in range(1, 29)]),
        )

    assert len(small) <= MAX_STATEMENTS, small
    # The first claim also loads the plan and its rates into the reference cache: later ones
    # may cost less, never more.
    assert len(priced) <= len(small), (small, priced)
    assert len(large) <= len(small), (small, large)


def test_an_emergency_claim_loads_the_network_in_the_same_statements(
    app: FastAPI, admin: TestClient, client: TestClient
) -> None:
    load_worked_example(admin)
    submit(client, claim_body("WARM", lines=[line(service_date="2026-03-03")]))  # caches plan and rates
    with counted(app) as plain:
        submit(client, claim_body("PLAIN"))
    with counted(app) as emergency:
        submit(client, claim_body("ER", emergency=True, lines=[line(service_date="2026-03-02")]))
    assert len(emergency) == len(plain)


def test_replay_costs_two_statements(app: FastAPI, admin: TestClient, client: TestClient) -> None:
    load_worked_example(admin)
    submit(client, claim_body())
    with counted(app) as replay:
        assert client.post("/v1/claims", json=claim_body(), headers=WRITE).status_code == 200
    # BEGIN IMMEDIATE (SQLite) or the advisory lock (PostgreSQL), then the lookup.
    assert len(replay) <= 2, replay
