"""The hot path: a claim costs a fixed number of SQL statements, however many lines it has."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.api.schemas.claims import ClaimIn
from service.repositories import claims_pg, context
from service.services.claims import EobResult, prepare_claim, submit_claims
from tests.claims_support import claim_body, line, submit
from tests.conftest import WRITE
from tests.factories import load_worked_example
from tests.statements import connect_pools, counted, round_trips

# SQLite: claim lookup, 5 context queries (and the plan's 2 while it is not cached), the claim
# insert, lines, one posting and one accumulator upsert. PostgreSQL: 4 reads and one statement for
# the posting (service/repositories/claims_pg.py). A little headroom over that, but nowhere near
# one per line.
MAX_STATEMENTS = 20


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
    connect_pools(app)  # the batches' engine's first connection runs setup queries: not counted
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


def test_a_replay_writes_nothing(app: FastAPI, admin: TestClient, client: TestClient) -> None:
    load_worked_example(admin)
    submit(client, claim_body())
    with counted(app) as replay:
        assert client.post("/v1/claims", json=claim_body(), headers=WRITE).status_code == 200
    writes = [s for s in replay if s.split()[0].upper() in {"INSERT", "UPDATE", "DELETE", "WITH"}]
    assert replay and not writes, replay


def test_postgresql_submits_in_six_statements_and_commit(
    app: FastAPI, admin: TestClient, client: TestClient
) -> None:
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the submit path of claims_pg.py is PostgreSQL's")
    load_worked_example(admin)
    submit(client, claim_body("WARM", lines=[line(service_date="2026-03-03")]))  # caches the plan
    with counted(app) as seen:
        submit(client, claim_body())
    statements = [s for s in seen if s.strip() != ";"]  # a liveness ping, had the connection idled
    # The plan mode, the stored claims, the member locks, contracts and rates, accumulators and
    # paid lines, then one statement that stores the claim and posts it, and COMMIT. The worked
    # example's 99213 needs no authorization, so none are read.
    assert len(statements) == 7, statements
    assert statements[0] == "SET LOCAL plan_cache_mode = force_generic_plan"
    assert "FROM claims WHERE claim_id = ANY" in statements[1]
    assert "FOR UPDATE OF m" in statements[2]
    assert "FROM authorizations" not in " ".join(statements)
    assert statements[-2].split()[0] == "WITH"
    assert statements[-1] == "COMMIT"  # sent with the store (the session's commit then has none to do)


def test_postgresql_submits_a_claim_in_four_round_trips(
    app: FastAPI, admin: TestClient, client: TestClient
) -> None:
    """BEGIN (psycopg waits for it, even in pipeline mode); the plan mode, the stored claims and
    the member locks; the three reads that need the locked members (an MRI needs an authorization, so that
    read is one of them); the store with COMMIT. No ping: the connection was in use a moment
    ago. Counted as the server's ReadyForQuery messages in libpq's protocol trace."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the submit path of claims_pg.py is PostgreSQL's")
    load_worked_example(admin)
    submit(client, claim_body("WARM", lines=[line(service_date="2026-03-03")]))  # caches the plan
    mri = line(2, procedure_code="70551", billed_amount="900.00")
    with round_trips(app) as seen:
        submit(client, claim_body(lines=[line(), mri]))
    assert [len(trip) for trip in seen] == [1, 3, 3, 2], seen
    assert seen[0] == ["BEGIN"]
    assert seen[3][1] == "COMMIT"


def test_postgresql_runs_the_batch_reads_on_generic_plans(app: FastAPI, admin: TestClient) -> None:
    """PostgreSQL would plan the stored-claims and member-lock reads afresh for every batch (a plan
    for the given array always looks cheaper than the generic one); the batch's transaction asks
    for the generic plans, and only the batch's."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the submit path of claims_pg.py is PostgreSQL's")
    load_worked_example(admin)
    with app.state.engine.connect() as connection:  # one connection: prepared statements are its own
        session = Session(bind=connection)
        for n in range(8):  # psycopg prepares a statement at its sixth execution
            with session.begin():
                body = ClaimIn.model_validate(
                    claim_body(f"GENERIC-{n}", lines=[line(service_date="2026-03-03")])
                )
                outcome = submit_claims(session, [prepare_claim(body)])
            assert isinstance(outcome[0], EobResult) and outcome[0].created, outcome
        plans = {
            ("lock" if "FOR UPDATE" in statement else "submitted"): (generic, custom)
            for statement, generic, custom in session.execute(
                text(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE '%FOR UPDATE OF m%'"
                    " OR statement LIKE '%FROM claims WHERE claim_id%'"
                )
            )
        }
        assert set(plans) == {"lock", "submitted"}, plans
        assert all(generic > 0 and custom == 0 for generic, custom in plans.values()), plans
        # SET LOCAL: the session's other transactions keep the server's default.
        assert session.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
        session.rollback()


def _scans_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan that reads `relation`."""
    found = [plan] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += _scans_of(child, relation)
    return found


def _paid_claims(admin: TestClient, client: TestClient) -> None:
    """The worked example and three paid claims of its member, 99213 on March 1, 2 and 3."""
    load_worked_example(admin)
    for n in range(3):
        submit(client, claim_body(f"PAID-{n}", lines=[line(service_date=f"2026-03-0{n + 1}")]))


def _planned_with_young_statistics(
    app: FastAPI, column: str, types: str, sql: str, args: str
) -> tuple[dict[str, Any], list[Any]]:
    """The generic plan (EXPLAIN) and the rows of `sql`, prepared with parameter `types` and run
    with `args` (formatted with the member pk and billing NPI of claim PAID-0), after `column`
    ("table.column") was made to look nearly unique, as statistics taken when the table was young
    (as in the benchmark's run) do. ALTER TABLE and ANALYZE are undone by the rollback, the SET
    LOCALs end with it."""
    table, name = column.split(".")
    with app.state.engine.connect() as connection:
        member_pk, npi = connection.execute(
            text("SELECT member_id, billing_provider_npi FROM claims WHERE claim_id = 'PAID-0'")
        ).one()
        connection.execute(text(f"ALTER TABLE {table} ALTER COLUMN {name} SET (n_distinct = -0.5)"))
        connection.execute(text(f"ANALYZE {table}"))
        connection.execute(text("SET LOCAL enable_seqscan = off"))  # the tables are tiny here
        connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        connection.exec_driver_sql(f"PREPARE planned ({types}) AS {sql}")
        try:
            values = args % (member_pk, npi)
            explained = connection.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) EXECUTE planned ({values})"
            ).scalar_one()
            rows = list(connection.exec_driver_sql(f"EXECUTE planned ({values})").all())
        finally:
            connection.rollback()
            connection.exec_driver_sql("DEALLOCATE planned")  # PREPARE outlives the rollback
    return explained[0]["Plan"], rows


@pytest.mark.parametrize("statement", ["batch", "one claim"])
def test_postgresql_reads_a_paid_lines_claim_by_its_primary_key(
    app: FastAPI, admin: TestClient, client: TestClient, statement: str
) -> None:
    """The duplicate check reads each paid line's claim by its primary key, in a subplan of its
    own, whatever the planner's statistics say. As a join, with statistics taken when each
    provider had few claims, PostgreSQL reached the claims through the billing NPI's index
    instead: every claim the provider ever had, for each claim submitted (docs/performance.md,
    tenth round). The test gives the planner such statistics (the NPI nearly unique)."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL plan")
    _paid_claims(admin, client)
    if statement == "batch":
        sql = claims_pg._ACCUMULATORS_AND_PAID_LINES.replace("%(claims)s", "$1")
        types = "jsonb"
        args = (
            '\'[{"i": 0, "member_pk": %d, "years": [2026], "key_codes": ["99213"],'
            ' "key_dates": ["2026-03-01"], "npi": "%s", "claim_id": "NEW"}]\''
        )
    else:
        sql = str(context._PAID_LINES.compile(dialect=app.state.engine.dialect))
        sql = sql.replace("(__[POSTCOMPILE_codes])", "($2)").replace("(__[POSTCOMPILE_dates])", "($3)")
        for name, number in (("member_pk", 1), ("status_1", 4), ("npi", 5), ("status_2", 6), ("claim_id", 7)):
            sql = sql.replace(f"%({name})s", f"${number}")
        types = "int, text, date, text, text, text, text"
        args = "%d, '99213', '2026-03-01', 'paid', '%s', 'voided', 'NEW'"
    plan, _ = _planned_with_young_statistics(app, "claims.billing_provider_npi", types, sql, args)
    scans = _scans_of(plan, "claims")
    assert scans, plan
    for scan in scans:  # the line's claim, looked up for that line alone, by its primary key
        assert scan.get("Parent Relationship") == "SubPlan", scan
        assert scan.get("Index Name") == "pk_claims", scan
        assert "claim_id" in scan.get("Index Cond", ""), scan


def test_postgresql_looks_up_paid_lines_by_member_code_and_date(
    app: FastAPI, admin: TestClient, client: TestClient
) -> None:
    """The batch's duplicate check finds a member's paid lines through every column of
    ix_claim_lines_duplicate, whatever the statistics say. With "code = ANY(codes) AND date =
    ANY(dates)" and statistics that made a member's lines look few (taken when the table was
    young, as in the benchmark's run, where autovacuum is off), PostgreSQL read all of the
    member's lines and filtered them, a cost that grew with the member's history
    (docs/performance.md, fifteenth round)."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL plan")
    _paid_claims(admin, client)
    sql = claims_pg._ACCUMULATORS_AND_PAID_LINES.replace("%(claims)s", "$1")
    args = (
        '\'[{"i": 0, "member_pk": %d, "years": [2026], "key_codes": ["99213", "99213", "99214"],'
        ' "key_dates": ["2026-03-01", "2026-03-02", "2026-03-03"], "npi": "%s", "claim_id": "NEW"}]\''
    )
    # A member id that looks nearly unique: each member seems to have one or two lines.
    plan, found = _planned_with_young_statistics(app, "claim_lines.member_id", "jsonb", sql, args)
    with app.state.engine.connect() as connection:
        expected = connection.execute(
            text(
                "SELECT procedure_code, service_date FROM claim_lines WHERE status = 'paid'"
                " AND (procedure_code, service_date)"
                " IN (('99213', '2026-03-01'), ('99213', '2026-03-02'), ('99214', '2026-03-03'))"
            )
        ).all()
    scans = _scans_of(plan, "claim_lines")
    assert scans, plan
    for scan in scans:
        assert scan.get("Index Name") == "ix_claim_lines_duplicate", scan
        condition = scan.get("Index Cond", "")
        for column in ("member_id", "procedure_code", "service_date"):
            assert column in condition, scan
    # Every paid line of the (code, date) pairs asked for, and only those: 99213 on March 1 and 2,
    # not on March 3 (another pair's date).
    paid = sorted((row[6], row[8]) for row in found if row[0] == "p")
    assert len(paid) == 2 and paid == sorted(tuple(row) for row in expected), found
