"""Group commit (service/services/batching.py): claims submitted together share one transaction,
and each gets what it would have got alone. On both databases (the batch statements of
claims_pg.py on PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.api.problems import Conflict
from service.api.schemas.claims import ClaimIn
from service.services import batching
from service.services import claims as claims_service
from service.services.batching import SubmitBatcher
from service.services.claims import ClaimToSubmit, EobResult
from tests.claims_support import accumulators, adjustment_codes, checked_eob, claim_body, line, submit
from tests.conftest import READ, WRITE
from tests.factories import authorization, load_worked_example, member, member_copies_mismatched, row_counts

Json = dict[str, Any]
PAIRS = 4  # members M-001..M-004 get claims in one batch; M-005..M-008 the same claims one by one


@pytest.fixture
def members(admin: TestClient) -> None:
    load_worked_example(admin)
    for i in range(1, 2 * PAIRS + 1):
        member(admin, member_id=f"M-{i:03d}")  # all on GOLD-PPO, nothing met yet


def _history(client: TestClient, prefix: str, member_ids: Sequence[str]) -> None:
    """A claim already paid for each member, a different amount each: different accumulators,
    and paid lines that a later claim may duplicate."""
    for i, member_id in enumerate(member_ids):
        body = claim_body(f"{prefix}-{i}", member_id=member_id)
        body["lines"] = [
            line(procedure_code="99214", billed_amount=f"{120 + 70 * i}.00", service_date="2026-03-01")
        ]
        submit(client, body)


def _authorizations(admin: TestClient, member_ids: Sequence[str]) -> None:
    """An approved MRI authorization for the second and fourth members (the third has none)."""
    for member_id in member_ids[1:4:2]:
        authorization(admin, authorization_number=f"PA-{member_id}", member_id=member_id, units=2)


def _claims(prefix: str, member_ids: Sequence[str]) -> list[Json]:
    """Different claims for different members: 1 to 4 lines, office visits of several prices,
    enough for some to reach the deductible; every other one repeats its member's paid line; the
    second to fourth add an MRI, which needs prior authorization (the third member has none)."""
    bodies = []
    for i, member_id in enumerate(member_ids):
        lines = [
            line(n, procedure_code=("99213", "99214")[n % 2], billed_amount=f"{150 + 90 * i + 40 * n}.00")
            for n in range(1, i + 2)
        ]
        if i % 2:
            lines.append(line(len(lines) + 1, procedure_code="99214", service_date="2026-03-01"))
        if 1 <= i <= 3:
            mri = line(len(lines) + 1, procedure_code="70551", billed_amount="900.00")
            lines.append({**mri, "authorization_number": f"PA-{member_id}" if i != 2 else None})
        bodies.append(claim_body(f"{prefix}-{i}", member_id=member_id, lines=lines))
    return bodies


def _prepared(bodies: Sequence[Json]) -> list[ClaimToSubmit]:
    return [claims_service.prepare_claim(ClaimIn.model_validate(body)) for body in bodies]


def _run(app: FastAPI, bodies: Sequence[Json]) -> list[EobResult | Exception]:
    """The batch as the app runs it: on PostgreSQL awaited on an event loop, on SQLite in a thread."""
    submissions: SubmitBatcher = app.state.submissions
    return asyncio.run(submissions.run_batch(_prepared(bodies)))


def _without_ids(eob: Json) -> Json:
    return {k: v for k, v in eob.items() if k not in {"claim_id", "member_id"}}


def test_a_batch_answers_as_the_same_claims_submitted_one_by_one(
    app: FastAPI, admin: TestClient, client: TestClient, members: None
) -> None:
    batched_members = [f"M-{i:03d}" for i in range(1, PAIRS + 1)] + ["NO-SUCH-1"]
    alone_members = [f"M-{i:03d}" for i in range(PAIRS + 1, 2 * PAIRS + 1)] + ["NO-SUCH-2"]

    _history(client, "BEFORE-B", batched_members)
    _history(client, "BEFORE-A", alone_members)
    _authorizations(admin, batched_members)
    _authorizations(admin, alone_members)

    outcomes = _run(app, _claims("BATCH", batched_members))
    alone = [submit(client, body) for body in _claims("ALONE", alone_members)]

    assert all(isinstance(o, EobResult) and o.created for o in outcomes), outcomes
    batched = [client.get(f"/v1/claims/BATCH-{i}", headers=READ) for i in range(len(batched_members))]
    assert [_without_ids(checked_eob(r, 200)) for r in batched] == [_without_ids(e) for e in alone]
    assert [r.text for r in batched] == [o.body for o in outcomes if isinstance(o, EobResult)]
    assert alone[-1]["status"] == "denied"  # the unknown member
    assert ["OA-18"] in [adjustment_codes(ln) for ln in alone[1]["lines"]]  # a duplicate line
    mri = [[ln for ln in eob["lines"] if ln["procedure_code"] == "70551"] for eob in alone[1:4]]
    assert [lines[0]["status"] for lines in mri] == ["paid", "denied", "paid"]  # authorized or not
    for mine, theirs in zip(batched_members[:PAIRS], alone_members[:PAIRS], strict=True):
        assert accumulators(client, mine) == accumulators(client, theirs)
    assert member_copies_mismatched(app.state.engine) == 0


def test_a_claim_that_fails_alone_leaves_the_rest_of_its_batch_committed(
    app: FastAPI, client: TestClient, members: None
) -> None:
    first = submit(client, claim_body("SEEN", member_id="M-001"))
    changed = claim_body("SEEN", member_id="M-001", lines=[line(billed_amount="999.00")])
    fresh = claim_body("FRESH", member_id="M-002")

    outcomes = _run(app, [changed, fresh])

    assert isinstance(outcomes[0], Conflict)
    assert isinstance(outcomes[1], EobResult) and outcomes[1].created
    assert client.get("/v1/claims/SEEN", headers=READ).json() == first
    assert client.get("/v1/claims/FRESH", headers=READ).status_code == 200


def test_a_database_error_in_a_batch_is_retried_claim_by_claim(
    app: FastAPI, client: TestClient, engine: Engine, members: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_store = claims_service._store

    def store(session: Any, claims: Sequence[Any]) -> dict[str, int]:
        if any(c.eob.claim_id == "BAD" for c in claims):
            raise IntegrityError("INSERT", {}, Exception("a check constraint"))
        return real_store(session, claims)

    monkeypatch.setattr(claims_service, "_store", store)
    counts = row_counts(engine)
    bodies = [claim_body(claim_id, member_id=m) for claim_id, m in [("OK-1", "M-001"), ("BAD", "M-002")]]
    bodies.append(claim_body("OK-2", member_id="M-003"))

    outcomes = _run(app, bodies)

    assert isinstance(outcomes[0], EobResult) and isinstance(outcomes[2], EobResult)
    assert isinstance(outcomes[1], IntegrityError)
    assert client.get("/v1/claims/BAD", headers=READ).status_code == 404
    assert row_counts(engine)["claims"] == counts["claims"] + 2


def test_an_unavailable_database_fails_the_whole_batch_and_writes_nothing(
    app: FastAPI, engine: Engine, members: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = OperationalError("SELECT", {}, Exception("connection refused"))

    def load(*_: Any) -> Any:
        raise down

    monkeypatch.setattr(claims_service, "load_submissions", load)
    counts = row_counts(engine)
    outcomes = _run(app, _claims("DOWN", ["M-001", "M-002", "M-003"]))
    assert outcomes == [down] * 3
    assert row_counts(engine) == counts


def test_concurrent_requests_share_a_transaction(
    app: FastAPI, client: TestClient, members: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    first_batch_running = threading.Event()
    real_run = SubmitBatcher.run_batch

    async def run(self: SubmitBatcher, batch: Sequence[ClaimToSubmit]) -> list[Any]:
        sizes.append(len(batch))
        if len(sizes) == 1:  # hold the first batch until every other request is waiting
            first_batch_running.set()
            await asyncio.sleep(0.5)
        return await real_run(self, batch)

    monkeypatch.setattr(SubmitBatcher, "run_batch", run)
    bodies = _claims("CONC", [f"M-{i:03d}" for i in range(1, 2 * PAIRS + 1)])

    def post(body: Json) -> int:
        if body["claim_id"] != "CONC-0":
            first_batch_running.wait(10)
        return client.post("/v1/claims", json=body, headers=WRITE).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        statuses = list(pool.map(post, bodies))

    assert statuses == [201] * len(bodies)
    assert sizes == [1, len(bodies) - 1], sizes


def _waiting(claim_id: str, member_id: str) -> Any:
    return (_prepared([claim_body(claim_id, member_id=member_id)])[0], None)


def test_on_postgresql_a_batch_awaits_its_statements_on_the_event_loop(
    app: FastAPI, client: TestClient, members: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the batch runs in the event loop's thread, on an async connection (the loop
    serves other requests while it waits); SQLite: in a worker thread, on a sync connection."""
    seen: list[tuple[bool, type]] = []
    real_submit = batching.submit_claims

    def submit_claims(session: Session, batch: Sequence[ClaimToSubmit]) -> list[Any]:
        in_loop = _running_loop() is not None
        seen.append((in_loop, type(session.connection().connection.driver_connection)))
        return real_submit(session, batch)

    monkeypatch.setattr(batching, "submit_claims", submit_claims)
    submit(client, claim_body("LOOP-1", member_id="M-001"))

    [(in_loop, driver)] = seen
    if app.state.engine.dialect.name == "postgresql":
        assert in_loop and issubclass(driver, psycopg.AsyncConnection)
    else:
        assert not in_loop and issubclass(driver, sqlite3.Connection)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def test_a_batch_takes_claims_of_distinct_members_and_claim_ids_in_arrival_order() -> None:
    waiting = [
        _waiting("A", "M-1"),
        _waiting("B", "M-1"),  # M-1 is taken
        _waiting("C", "M-2"),
        _waiting("A", "M-3"),  # claim id A is taken
        _waiting("D", "M-4"),
        _waiting("E", "M-5"),  # the batch is full
    ]
    batch, rest = SubmitBatcher(None, max_batch=3).take(waiting)  # type: ignore[arg-type]

    def ids(entries: list[Any]) -> list[tuple[str, str]]:
        return [(e[0].claim.claim_id, e[0].claim.member_id) for e in entries]

    assert ids(batch) == [("A", "M-1"), ("C", "M-2"), ("D", "M-4")]
    assert ids(rest) == [("B", "M-1"), ("A", "M-3"), ("E", "M-5")]


def test_one_claim_per_batch_when_configured(app: FastAPI) -> None:
    batcher = SubmitBatcher(app.state.session_factory, max_batch=1)
    batch, rest = batcher.take([_waiting("A", "M-1"), _waiting("B", "M-2")])
    assert len(batch) == 1 and len(rest) == 1


def test_a_claim_that_waits_longer_than_the_statement_timeout_is_refused_with_503(
    app: FastAPI, client: TestClient, members: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.submissions, "max_wait_seconds", 0.2)
    first_batch_running = threading.Event()
    real_run = SubmitBatcher.run_batch

    async def slow_run(self: SubmitBatcher, batch: Sequence[ClaimToSubmit]) -> list[Any]:
        first_batch_running.set()
        await asyncio.sleep(0.5)  # a stalled database, as far as the queue can tell
        return await real_run(self, batch)

    monkeypatch.setattr(SubmitBatcher, "run_batch", slow_run)

    def post(body: Json) -> Any:
        if body["claim_id"] != "SLOW-0":
            first_batch_running.wait(10)
        return client.post("/v1/claims", json=body, headers=WRITE)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, queued = pool.map(post, _claims("SLOW", ["M-001", "M-002"]))

    assert first.status_code == 201
    assert queued.status_code == 503, queued.text
    assert queued.headers["content-type"] == "application/problem+json"
    assert queued.headers["retry-after"] == "1"
    assert client.get("/v1/claims/SLOW-1", headers=READ).status_code == 404
