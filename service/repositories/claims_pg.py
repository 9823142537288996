"""The submit path on PostgreSQL: a batch of claims read in four or five statements sent in two
round trips, stored in one statement sent with COMMIT.

Concurrent submissions are grouped (service/services/batching.py) into one transaction, whose
claims all belong to different members and have different claim ids. Everything else (and every
path on SQLite) goes through context.py and claims.py; the rows here come back in the shapes those
modules' queries return and are turned into domain objects by the same functions, so the two
paths differ only in how the rows travel.

1. The stored claims of the batch's claim ids (a resubmission is answered from them).
2. The members' row locks, taken in id order, so that two transactions locking several members
   never wait for each other in a cycle. (1 and 2 go in one round trip, after a SET LOCAL that
   keeps PostgreSQL from planning them again for every batch.)
3. After the locks were granted, in a second round trip, each statement with its own snapshot
   (READ COMMITTED), so seeing what the locks' previous holders committed: every claim's billing
   provider's and facility's contracts joined with their rates of the claim's codes, and the
   rates of those codes in the plan's out-of-network reference schedule; every
   claim's accumulators and the duplicate keys of its member's paid lines; and, when a claim's
   plan requires prior authorization for one of its codes (and it is no emergency), those
   claims' members' authorizations. Each claim's parameters travel as one row of a JSON array,
   joined LATERAL-style, so the statement text never changes with the batch size and each claim
   gets exactly the rows a statement of its own would return.
4. Only when needed, through context.py: what protected out-of-network lines need (the whole
   network's contracts, counted by schedule, and their rates, cached or read, for the QPA).
5. One INSERT ... ON CONFLICT (claim_id) DO NOTHING whose CTEs insert the lines and postings,
   upsert the accumulators and add authorization units, each only for the claims inserted;
   COMMIT goes with it, in the same round trip.

Served, a batch runs on the event loop with psycopg's async connection (services/batching.py):
SQLAlchemy runs this synchronous code in a greenlet, and _driver() hands it the connection as
an object whose calls await, so the loop serves other requests during each round trip. The same
code runs on a sync connection (tests, tools).

The statement texts never change, so psycopg prepares them on each connection after a few uses.
With BEGIN (psycopg waits for it), a batch takes four round trips, where each waits for
PostgreSQL and then for the batch to be scheduled again on a busy machine: measured,
sending the reads in two round trips instead of four or five, and COMMIT with the store,
lowered p99 under load (docs/performance.md, fifth round); tests/api/test_claims_queries.py
counts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any, Protocol, cast

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session
from sqlalchemy.util import concurrency

from ..domain.eob import ClaimStatus, LineStatus
from ..domain.model import Claim
from ..domain.money import fmt
from .claims import (
    Submission,
    Submitted,
    ToStore,
    authorization_units,
    line_values,
    posting_values,
    postings_to_store,
)
from .context import (
    MemberRecord,
    Prefetched,
    accumulators_from_rows,
    authorizations_from_rows,
    load_context,
    load_plan,
    needs_authorizations,
    paid_lines_from_rows,
    reference_schedule,
)
from .refcache import CachedPlan

# Awaits a coroutine from the greenlet AsyncSession.run_sync runs sync code in. SQLAlchemy 2.1
# names it await_; await_only, 2.0's name, is deprecated in 2.2.
await_only: Any = getattr(concurrency, "await_", None) or concurrency.await_only

_AUTHORIZATIONS = """
SELECT q.i, a.id, a.authorization_number, a.procedure_codes, a.units, a.units_used,
       a.valid_from, a.valid_to, a.npi, a.status
FROM jsonb_to_recordset(%(claims)s::jsonb) AS q(i int, member_pk int, first date, last date)
CROSS JOIN LATERAL (
  SELECT a.*, pr.npi
  FROM authorizations a
  LEFT JOIN providers pr ON pr.id = a.provider_id
  WHERE a.member_id = q.member_pk
    AND a.valid_from <= q.last AND (a.valid_to IS NULL OR a.valid_to >= q.first)
  OFFSET 0
) AS a
ORDER BY q.i, a.id
"""

# For this transaction only: run the prepared statements with their generic plans. PostgreSQL
# otherwise keeps planning _SUBMITTED and _LOCK_MEMBERS afresh for every batch, because a plan for
# the array it is given always looks cheaper than one for any array; that planning (0.3 ms a
# batch, a sixth of PostgreSQL's CPU for a one-claim batch) bought the same index scans
# (docs/performance.md, eighth round). The other statements pass JSON, and already settle on
# their generic plans after five executions.
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

_SUBMITTED = "SELECT claim_id, request_hash, eob FROM claims WHERE claim_id = ANY(%(claim_ids)s::text[])"

_LOCK_MEMBERS = """
SELECT m.id, m.member_id, m.plan_id, p.network_id, m.coverage_from, m.coverage_to, s.rates_version
FROM members m
JOIN plans p ON p.id = m.plan_id
LEFT JOIN fee_schedules s ON s.id = p.oon_fee_schedule_id
WHERE m.member_id = ANY(%(member_ids)s::text[])
ORDER BY m.id
FOR UPDATE OF m
"""

# Each claim's rows come from a LATERAL subquery run for that claim alone: "OFFSET 0" keeps the
# planner from merging it into one join over all claims, which it would plan for the 100 rows it
# assumes a JSON array holds (hash joins over whole tables) instead of the few index lookups of
# each claim.
#
# Rows without a contract (id NULL, last) carry the rates of the claim's codes in its plan's
# out-of-network reference schedule, as one row with no rate when it has none of them. A claim
# needs them only when a line is out of network (6% of the claims in the benchmark), which only
# these rows tell; read here, they cost a few index lookups a claim, instead of a statement and a
# round trip of its own in the middle of the batch for each out-of-network claim whose codes the
# rate cache misses (most, as long as a worker's cache is young): 0.7-0.9 ms of the worker's CPU
# each (docs/performance.md, thirteenth round).
_CONTRACTS_AND_RATES = """
SELECT q.i, x.*
FROM jsonb_to_recordset(%(claims)s::jsonb) AS q(
  i int, network_id int, npi text, facility_npi text, first date, last date, codes text[],
  reference_id int)
CROSS JOIN LATERAL (
  (SELECT c.id, pr.npi, c.effective_from, c.effective_to, c.timely_filing_days,
          c.unlisted_percent_of_billed, c.fee_schedule_id, fs.code, fs.rates_version,
          r.procedure_code, r.modifier, r.allowed_amount, r.percent_of_billed
   FROM contracts c
   JOIN providers pr ON pr.id = c.provider_id
   JOIN fee_schedules fs ON fs.id = c.fee_schedule_id
   LEFT JOIN fee_schedule_rates r
     ON r.fee_schedule_id = c.fee_schedule_id AND r.procedure_code = ANY(q.codes)
   WHERE c.network_id = q.network_id
     AND pr.npi IN (q.npi, q.facility_npi)
     AND c.effective_from <= q.last AND (c.effective_to IS NULL OR c.effective_to >= q.first)
   OFFSET 0)
  UNION ALL
  (SELECT NULL, NULL, NULL, NULL, NULL, NULL, q.reference_id, NULL, NULL,
          r.procedure_code, r.modifier, r.allowed_amount, r.percent_of_billed
   FROM (SELECT) AS one
   LEFT JOIN fee_schedule_rates r
     ON r.fee_schedule_id = q.reference_id AND r.procedure_code = ANY(q.codes)
   WHERE q.reference_id IS NOT NULL)
) AS x
ORDER BY q.i, x.id
"""

# Two small reads in one statement (one round trip less): the accumulators of each claim's plan
# years (kind 'a') and the duplicate keys of its member's paid lines (kind 'p'). A paid line's
# claim is read by its primary key in a scalar subquery, which PostgreSQL does not turn into a join:
# as a join, with statistics taken when the provider had few claims, the planner reached the
# claims through the billing NPI's index instead, reading every claim the provider ever had for
# each claim submitted, and that cost grew with the table (docs/performance.md, tenth round).
#
# The paid lines are looked up by (member, code, service date), one lookup per distinct pair of
# the claim's lines (key_codes and key_dates, side by side), in a subquery of its own: every
# column of ix_claim_lines_duplicate is then an equality, and the plan is the same whatever the
# statistics say. With "code = ANY(codes) AND date = ANY(dates)" and statistics taken when members
# had few lines (autovacuum off, or not yet run after a load), the planner scanned all of the
# member's lines and filtered them, a cost that grew with the member's history: 0.06-0.14 ms of
# PostgreSQL's CPU a claim at some 45 lines a member (docs/performance.md, fifteenth round).
_ACCUMULATORS_AND_PAID_LINES = f"""
SELECT 'a', q.i, a.plan_year, a.tier, a.deductible_met, a.out_of_pocket_met, NULL, NULL, NULL::date
FROM jsonb_to_recordset(%(claims)s::jsonb) AS q(i int, member_pk int, years int[])
CROSS JOIN LATERAL (
  SELECT * FROM accumulators WHERE member_id = q.member_pk AND plan_year = ANY(q.years) OFFSET 0
) AS a
UNION ALL
SELECT 'p', q.i, NULL, NULL, NULL, NULL, p.procedure_code, p.modifiers, p.service_date
FROM jsonb_to_recordset(%(claims)s::jsonb)
  AS q(i int, member_pk int, key_codes text[], key_dates date[], npi text, claim_id text)
CROSS JOIN LATERAL unnest(q.key_codes, q.key_dates) AS k(code, service_date)
CROSS JOIN LATERAL (
  SELECT l.procedure_code, l.modifiers, l.service_date
  FROM claim_lines l
  WHERE l.member_id = q.member_pk
    AND l.procedure_code = k.code
    AND l.service_date = k.service_date
    AND l.status = '{LineStatus.PAID.value}'
    AND (
      SELECT c.billing_provider_npi = q.npi
             AND c.status <> '{ClaimStatus.VOIDED.value}'
             AND c.claim_id <> q.claim_id
      FROM claims c WHERE c.id = l.claim_id
    )
  OFFSET 0
) AS p
"""

# Every row travels in a JSON array keyed by its claim's claim_id; money as strings, so numeric
# receives the exact decimal. The EOB and the request are JSON text inside the JSON, stored as
# sent (a jsonb round trip would reorder their keys).
_STORE = """
WITH claim AS (
  INSERT INTO claims (claim_id, member_ref, member_id, billing_provider_npi, received_date,
                      request_hash, request, status, plan_code, eob, adjudicated_at)
  SELECT x.claim_id, x.member_ref, x.member_pk, x.npi, x.received_date,
         x.request_hash, x.request::json, x.status, x.plan_code, x.eob, now()
  FROM jsonb_to_recordset(%(claims)s::jsonb) AS x(
    claim_id text, member_ref text, member_pk int, npi text, received_date date,
    request_hash text, request text, status text, plan_code text, eob text)
  ON CONFLICT (claim_id) DO NOTHING
  RETURNING id, claim_id, member_id
), claim_lines AS (
  INSERT INTO claim_lines (claim_id, member_id, line_number, procedure_code, modifiers, units,
                           service_date, status, network_status, accumulator_tier, protected,
                           billed_amount, allowed_amount, deductible_amount, copay_amount,
                           coinsurance_amount, plan_paid_amount, patient_responsibility_amount,
                           balance_billing_amount, authorization_id, authorization_units)
  SELECT claim.id, claim.member_id, x.line_number, x.procedure_code, x.modifiers, x.units,
         x.service_date, x.status, x.network_status, x.accumulator_tier, x.protected,
         x.billed_amount, x.allowed_amount, x.deductible_amount, x.copay_amount,
         x.coinsurance_amount, x.plan_paid_amount, x.patient_responsibility_amount,
         x.balance_billing_amount, x.authorization_id, x.authorization_units
  FROM claim JOIN jsonb_to_recordset(%(lines)s::jsonb) AS x(
    claim_id text, line_number int, procedure_code text, modifiers text, units int,
    service_date date, status text, network_status text, accumulator_tier text, protected boolean,
    billed_amount numeric, allowed_amount numeric, deductible_amount numeric,
    copay_amount numeric, coinsurance_amount numeric, plan_paid_amount numeric,
    patient_responsibility_amount numeric, balance_billing_amount numeric,
    authorization_id int, authorization_units int) ON x.claim_id = claim.claim_id
), postings AS (
  INSERT INTO accumulator_postings (claim_id, member_id, plan_year, tier, deductible, out_of_pocket)
  SELECT claim.id, claim.member_id, x.plan_year, x.tier, x.deductible, x.out_of_pocket
  FROM claim JOIN jsonb_to_recordset(%(postings)s::jsonb) AS x(
    claim_id text, plan_year int, tier text, deductible numeric, out_of_pocket numeric)
    ON x.claim_id = claim.claim_id
), accumulators AS (
  INSERT INTO accumulators AS a (member_id, plan_year, tier, deductible_met, out_of_pocket_met)
  SELECT claim.member_id, x.plan_year, x.tier, x.deductible, x.out_of_pocket
  FROM claim JOIN jsonb_to_recordset(%(deltas)s::jsonb) AS x(
    claim_id text, plan_year int, tier text, deductible numeric, out_of_pocket numeric)
    ON x.claim_id = claim.claim_id
  ON CONFLICT (member_id, plan_year, tier) DO UPDATE
    SET deductible_met = a.deductible_met + excluded.deductible_met,
        out_of_pocket_met = a.out_of_pocket_met + excluded.out_of_pocket_met
), units AS (
  UPDATE authorizations a SET units_used = a.units_used + x.delta
  FROM claim JOIN jsonb_to_recordset(%(units)s::jsonb) AS x(
    claim_id text, authorization_pk int, delta int) ON x.claim_id = claim.claim_id
  WHERE a.id = x.authorization_pk AND a.id = ANY(%(authorization_pks)s::int[])  -- by index
)
SELECT claim_id, id FROM claim
"""


class _Cursor(Protocol):
    def execute(self, query: str, params: Any = None) -> _Cursor: ...
    def fetchall(self) -> list[Any]: ...


class _Driver(Protocol):
    """What this module uses of a psycopg connection."""

    def pipeline(self) -> AbstractContextManager[Any]: ...
    def execute(self, query: str, params: Any = None) -> _Cursor: ...
    def cursor(self, *, row_factory: Any) -> _Cursor: ...


def _driver(session: Session) -> _Driver:
    """The psycopg connection under the session's transaction: a sync one, or an async one
    (claims batches on the event loop, services/batching.py) driven as if it were sync."""
    raw = session.connection().connection.driver_connection
    if isinstance(raw, psycopg.AsyncConnection):
        return _AwaitingDriver(raw)
    return cast(_Driver, raw)


class _AwaitingCursor:
    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, query: str, params: Any = None) -> _AwaitingCursor:
        await_only(self._cursor.execute(query, params))
        return self

    def fetchall(self) -> list[Any]:
        return cast(list[Any], await_only(self._cursor.fetchall()))


class _AwaitingDriver:
    """An async psycopg connection used from synchronous code that SQLAlchemy runs in a
    greenlet (AsyncSession.run_sync): each call awaits, and the event loop runs meanwhile."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        pipeline = self._conn.pipeline()
        await_only(pipeline.__aenter__())
        try:
            yield
        except BaseException as exc:
            if not await_only(pipeline.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            await_only(pipeline.__aexit__(None, None, None))

    def execute(self, query: str, params: Any = None) -> _AwaitingCursor:
        return _AwaitingCursor(await_only(self._conn.execute(query, params)))

    def cursor(self, *, row_factory: Any) -> _AwaitingCursor:
        return _AwaitingCursor(self._conn.cursor(row_factory=row_factory))


def load_submissions(session: Session, claims: Sequence[Claim]) -> list[Submission]:
    """Lock the claims' members and read everything the claims need: four or five statements in
    two round trips."""
    conn = _driver(session)
    # Pipeline mode: the statements of a block go to the server together and their rows come
    # back in one round trip when the block ends (the server still runs them in order).
    with conn.pipeline():
        conn.execute(_GENERIC_PLANS)
        submitted_rows = conn.execute(_SUBMITTED, {"claim_ids": [claim.claim_id for claim in claims]})
        member_rows = conn.execute(_LOCK_MEMBERS, {"member_ids": [claim.member_id for claim in claims]})
    submitted = {
        claim_id: Submitted(request_hash, eob) for claim_id, request_hash, eob in submitted_rows.fetchall()
    }
    records = {row[1]: MemberRecord(*row) for row in member_rows.fetchall()}
    known = [
        (i, claim, records[claim.member_id]) for i, claim in enumerate(claims) if claim.member_id in records
    ]
    contract_rows: list[list[Any]] = [[] for _ in claims]
    accumulators: list[list[Any]] = [[] for _ in claims]
    paid_lines: list[list[Any]] = [[] for _ in claims]
    authorizations: dict[int, list[Any]] = {}  # rows by claim position, for those that need them
    if known:
        plans = [load_plan(session, record.plan_id) for _, _, record in known]  # from the cache
        claim_params = [
            _claim_params(i, claim, record, plan)
            for (i, claim, record), plan in zip(known, plans, strict=True)
        ]
        params = {"claims": _json(claim_params)}
        # Authorizations only for the claims whose plan requires one for a line's code (and that
        # are no emergency): a fifth of the claims in the benchmark.
        needing = [
            claim_param
            for claim_param, (_, claim, _), plan in zip(claim_params, known, plans, strict=True)
            if needs_authorizations(claim, plan.plan)
        ]
        with conn.pipeline():
            contract_cursor = conn.cursor(row_factory=namedtuple_row).execute(_CONTRACTS_AND_RATES, params)
            accumulator_rows = conn.execute(_ACCUMULATORS_AND_PAID_LINES, params)
            authorization_rows = (
                conn.execute(_AUTHORIZATIONS, {"claims": _json(needing)}) if needing else None
            )
        for row in contract_cursor.fetchall():
            contract_rows[row[0]].append(row)  # the claim's position, then a contract's columns
        for kind, i, *values in accumulator_rows.fetchall():
            if kind == "a":
                accumulators[i].append(values[:4])
            else:
                paid_lines[i].append(values[4:])
        if authorization_rows is not None:
            authorizations = {row["i"]: [] for row in needing}
            for i, *values in authorization_rows.fetchall():
                authorizations[i].append(values)

    submissions = []
    for i, claim in enumerate(claims):
        record = records.get(claim.member_id)
        auth_rows = authorizations.get(i, [])  # none read: no line needs one
        prefetched = (
            Prefetched(
                record=record,
                provider_contract_rows=contract_rows[i],
                accumulators=accumulators_from_rows(accumulators[i]),
                paid_lines=paid_lines_from_rows(claim.billing_provider_npi, paid_lines[i]),
                authorizations=authorizations_from_rows(auth_rows),
            )
            if record is not None
            else _UNKNOWN_MEMBER
        )
        loaded = load_context(session, claim, lock=True, prefetched=prefetched)
        submissions.append(Submission(submitted.get(claim.claim_id), loaded))
    return submissions


def _claim_params(i: int, claim: Claim, record: MemberRecord, plan: CachedPlan) -> dict[str, Any]:
    dates = sorted({line.service_date for line in claim.lines})
    keys = sorted({(line.procedure_code, line.service_date) for line in claim.lines})
    return {
        "i": i,
        "claim_id": claim.claim_id,
        "member_pk": record.pk,
        "network_id": record.network_id,
        "npi": claim.billing_provider_npi,
        "facility_npi": claim.facility_npi or claim.billing_provider_npi,
        "codes": sorted({line.procedure_code for line in claim.lines}),
        "key_codes": [code for code, _ in keys],
        "key_dates": [service_date for _, service_date in keys],
        "years": sorted({d.year for d in dates}),
        "first": dates[0],
        "last": dates[-1],
        "reference_id": reference[0] if (reference := reference_schedule(plan, record)) else None,
    }


_UNKNOWN_MEMBER = Prefetched(record=None, provider_contract_rows=(), accumulators={}, paid_lines=frozenset())


def store_claims(session: Session, claims: Sequence[ToStore]) -> dict[str, int]:
    """Insert the claims and post their effects in one statement, and COMMIT the transaction
    with it, in one round trip: the store is the batch's last write (what follows only reads the
    claims another transaction stored first). Returns the ids of the claims inserted, by
    claim_id; a claim whose claim_id another transaction stored first is left out, and nothing of
    it is written. The rows are claims.py's, as JSON. Should the statement fail, COMMIT is not
    run (the pipeline stops at the error) and the session rolls back as for any error."""
    members = [c.member_pk for c in claims if c.member_pk is not None]
    if len(set(members)) < len(members) or len({c.eob.claim_id for c in claims}) < len(claims):
        # The accumulator upsert may touch a row once per statement, so must the batch.
        raise ValueError("a batch of claims must have distinct members and claim ids")
    rows: dict[str, list[dict[str, Any]]] = {"lines": [], "postings": [], "deltas": [], "units": []}
    for c in claims:
        claim_id = c.eob.claim_id
        rows["lines"] += [{"claim_id": claim_id, **line_values(line)} for line in c.eob.lines]
        if c.member_pk is None:
            continue  # an unknown member's claim is all denied: nothing to post
        postings = postings_to_store(c.eob)
        rows["postings"] += [{"claim_id": claim_id, **posting_values(p)} for p in postings]
        deltas: dict[tuple[int, str], list[Decimal]] = {}
        for p in postings:  # one upsert row per bucket: ON CONFLICT cannot touch a row twice
            bucket = deltas.setdefault((p.plan_year, p.tier.value), [Decimal(0), Decimal(0)])
            bucket[0] += p.deductible
            bucket[1] += p.out_of_pocket
        rows["deltas"] += [
            {"claim_id": claim_id, "plan_year": year, "tier": tier, "deductible": d, "out_of_pocket": o}
            for (year, tier), (d, o) in sorted(deltas.items())
        ]
        rows["units"] += [
            {"claim_id": claim_id, "authorization_pk": pk, "delta": n}
            for pk, n in sorted(authorization_units(c.eob).items())
        ]
    params: dict[str, Any] = {name: _json(values) for name, values in rows.items()}
    params["authorization_pks"] = [row["authorization_pk"] for row in rows["units"]]
    params["claims"] = _json(
        [
            {
                "claim_id": c.eob.claim_id,
                "member_ref": c.eob.member_id,
                "member_pk": c.member_pk,
                "npi": c.eob.billing_provider_npi,
                "received_date": c.request.received_date,
                "request_hash": c.request.request_hash,
                "request": _json(c.request.canonical),
                "status": c.eob.status.value,
                "plan_code": c.eob.plan_code,
                "eob": c.eob_json,
            }
            for c in claims
        ]
    )
    conn = _driver(session)
    with conn.pipeline():  # the store and COMMIT in one round trip
        stored = conn.execute(_STORE, params)
        # A statement, not conn.commit(), which would wait for the server before the pipeline's
        # own sync (two round trips). psycopg reads the ended transaction from the server's
        # answer, so the session's own commit afterwards finds nothing to do.
        conn.execute("COMMIT")
    return {claim_id: int(pk) for claim_id, pk in stored.fetchall()}


def _json(value: Any) -> str:
    """JSON for the statement's parameters: money as two-place strings (numeric takes them
    exactly), dates as ISO strings (orjson's own)."""
    return orjson.dumps(value, default=_money).decode()


def _money(value: Any) -> str:
    if isinstance(value, Decimal):
        return fmt(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
