"""The submit path on PostgreSQL: the claim's context in three statements, its posting in one.

Everything else (and every path on SQLite) goes through context.py and claims.py; the rows here
come back in the shapes those modules' queries return and are turned into domain objects by the
same functions, so the two paths differ only in how the rows travel.

1. The member row lock, with the stored claim of this claim_id; then, each with its own
   snapshot taken after the lock was granted (READ COMMITTED), so seeing what the lock's previous
   holder committed: the billing provider's and facility's contracts joined with their rates of
   the claim's codes; and the accumulators with the duplicate keys of paid lines.
2. Only when needed, through context.py: authorizations (a line's code needs one), and what
   out-of-network lines need (cached rates; the whole network's contracts for the QPA).
3. One INSERT ... ON CONFLICT (claim_id) DO NOTHING whose CTEs insert the lines and postings,
   upsert the accumulators and add authorization units, all only when the claim row was inserted.

Not a psycopg pipeline, though it would save round trips: measured under load (bench/), the same
reads sent as one pipeline cost 0.6-0.7 ms more worker CPU per claim than sent one by one, with
lower throughput (py-spy put the difference in psycopg's pipeline communication and wait loop).

The statement texts never change, so psycopg prepares them on each connection after a few uses,
and PostgreSQL can keep one generic plan for each. Parameters are scalars where the count is fixed
(the two NPIs), so that generic plan knows it looks up two providers, not a list of any size.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session

from ..domain.eob import ClaimStatus, Eob, LineStatus
from ..domain.model import Claim
from ..domain.money import fmt
from .claims import (
    StoredRequest,
    Submission,
    Submitted,
    authorization_units,
    line_values,
    posting_values,
    postings_to_store,
)
from .context import (
    MemberRecord,
    Prefetched,
    accumulators_from_rows,
    load_context,
    paid_lines_from_rows,
)

# The member, locked, and the stored claim of this claim_id. The claim is read in the lock's
# statement, so with a snapshot from before any wait for the lock: a claim that a racer stored
# meanwhile is not seen here, but its claim_id is, by the insert's ON CONFLICT (the replay path).
_LOCK_MEMBER = """
SELECT m.id, m.member_id, m.plan_id, p.network_id, m.coverage_from, m.coverage_to, s.rates_version,
       (SELECT c.request_hash FROM claims c WHERE c.claim_id = %(claim_id)s),
       (SELECT c.eob FROM claims c WHERE c.claim_id = %(claim_id)s)
FROM members m
JOIN plans p ON p.id = m.plan_id
LEFT JOIN fee_schedules s ON s.id = p.oon_fee_schedule_id
WHERE m.member_id = %(member_id)s
FOR UPDATE OF m
"""

_SUBMITTED = "SELECT request_hash, eob FROM claims WHERE claim_id = %(claim_id)s"

_PROVIDER_CONTRACTS_AND_RATES = """
SELECT c.id, pr.npi, c.effective_from, c.effective_to, c.timely_filing_days,
       c.unlisted_percent_of_billed, c.fee_schedule_id, fs.code, fs.rates_version,
       r.procedure_code, r.modifier, r.allowed_amount, r.percent_of_billed
FROM contracts c
JOIN providers pr ON pr.id = c.provider_id
JOIN fee_schedules fs ON fs.id = c.fee_schedule_id
LEFT JOIN fee_schedule_rates r
  ON r.fee_schedule_id = c.fee_schedule_id AND r.procedure_code = ANY(%(codes)s::text[])
WHERE c.network_id = %(network_id)s
  AND pr.npi IN (%(npi)s, %(facility_npi)s)
  AND c.effective_from <= %(last)s AND (c.effective_to IS NULL OR c.effective_to >= %(first)s)
ORDER BY c.id
"""

# Two small reads in one statement (one round trip less): the accumulators of the claim's plan
# years (kind 'a') and the duplicate keys of the member's paid lines (kind 'p').
_ACCUMULATORS_AND_PAID_LINES = f"""
SELECT 'a', plan_year, tier, deductible_met, out_of_pocket_met, NULL, NULL, NULL::date
FROM accumulators
WHERE member_id = %(member_pk)s AND plan_year = ANY(%(years)s::int[])
UNION ALL
SELECT 'p', NULL, NULL, NULL, NULL, l.procedure_code, l.modifiers, l.service_date
FROM claim_lines l
JOIN claims c ON c.id = l.claim_id
WHERE l.member_id = %(member_pk)s
  AND l.status = '{LineStatus.PAID.value}'
  AND l.procedure_code = ANY(%(codes)s::text[])
  AND l.service_date = ANY(%(dates)s::date[])
  AND c.billing_provider_npi = %(npi)s
  AND c.status <> '{ClaimStatus.VOIDED.value}'
  AND c.claim_id <> %(claim_id)s
"""

# The lines, postings, accumulator deltas and authorization units travel as JSON arrays; money
# as strings, so numeric receives the exact decimal.
_STORE = """
WITH claim AS (
  INSERT INTO claims (claim_id, member_ref, member_id, billing_provider_npi, received_date,
                      request_hash, request, status, plan_code, eob, adjudicated_at)
  VALUES (%(claim_id)s, %(member_ref)s, %(member_pk)s::int, %(npi)s, %(received_date)s,
          %(request_hash)s, %(request)s::json, %(status)s, %(plan_code)s, %(eob)s, now())
  ON CONFLICT (claim_id) DO NOTHING
  RETURNING id
), claim_lines AS (
  INSERT INTO claim_lines (claim_id, member_id, line_number, procedure_code, modifiers, units,
                           service_date, status, network_status, accumulator_tier, protected,
                           billed_amount, allowed_amount, deductible_amount, copay_amount,
                           coinsurance_amount, plan_paid_amount, patient_responsibility_amount,
                           balance_billing_amount, authorization_id, authorization_units)
  SELECT claim.id, %(member_pk)s::int, x.line_number, x.procedure_code, x.modifiers, x.units,
         x.service_date, x.status, x.network_status, x.accumulator_tier, x.protected,
         x.billed_amount, x.allowed_amount, x.deductible_amount, x.copay_amount,
         x.coinsurance_amount, x.plan_paid_amount, x.patient_responsibility_amount,
         x.balance_billing_amount, x.authorization_id, x.authorization_units
  FROM claim, jsonb_to_recordset(%(lines)s::jsonb) AS x(
    line_number int, procedure_code text, modifiers text, units int, service_date date,
    status text, network_status text, accumulator_tier text, protected boolean,
    billed_amount numeric, allowed_amount numeric, deductible_amount numeric,
    copay_amount numeric, coinsurance_amount numeric, plan_paid_amount numeric,
    patient_responsibility_amount numeric, balance_billing_amount numeric,
    authorization_id int, authorization_units int)
), postings AS (
  INSERT INTO accumulator_postings (claim_id, member_id, plan_year, tier, deductible, out_of_pocket)
  SELECT claim.id, %(member_pk)s::int, x.plan_year, x.tier, x.deductible, x.out_of_pocket
  FROM claim, jsonb_to_recordset(%(postings)s::jsonb)
    AS x(plan_year int, tier text, deductible numeric, out_of_pocket numeric)
), accumulators AS (
  INSERT INTO accumulators AS a (member_id, plan_year, tier, deductible_met, out_of_pocket_met)
  SELECT %(member_pk)s::int, x.plan_year, x.tier, x.deductible, x.out_of_pocket
  FROM claim, jsonb_to_recordset(%(deltas)s::jsonb)
    AS x(plan_year int, tier text, deductible numeric, out_of_pocket numeric)
  ON CONFLICT (member_id, plan_year, tier) DO UPDATE
    SET deductible_met = a.deductible_met + excluded.deductible_met,
        out_of_pocket_met = a.out_of_pocket_met + excluded.out_of_pocket_met
), units AS (
  UPDATE authorizations a SET units_used = a.units_used + x.delta
  FROM claim, jsonb_to_recordset(%(units)s::jsonb) AS x(authorization_pk int, delta int)
  WHERE a.id = x.authorization_pk
)
SELECT id FROM claim
"""


def _driver(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under the session's transaction."""
    return cast(psycopg.Connection[Any], session.connection().connection.driver_connection)


def load_submission(session: Session, claim: Claim) -> Submission:
    """Lock the member and read everything a new claim needs, in three statements."""
    conn = _driver(session)
    params: dict[str, Any] = {"member_id": claim.member_id, "claim_id": claim.claim_id}
    member = conn.execute(_LOCK_MEMBER, params).fetchone()
    if member is None:  # an unknown member: all denied, nothing else to read
        found = conn.execute(_SUBMITTED, params).fetchone()
        loaded = load_context(session, claim, lock=True, prefetched=_UNKNOWN_MEMBER)
        return Submission(None if found is None else Submitted(*found), loaded)

    record = MemberRecord(*member[:7])
    dates = sorted({line.service_date for line in claim.lines})
    params |= {
        "member_pk": record.pk,
        "network_id": record.network_id,
        "npi": claim.billing_provider_npi,
        "facility_npi": claim.facility_npi or claim.billing_provider_npi,
        "codes": sorted({line.procedure_code for line in claim.lines}),
        "dates": dates,
        "years": sorted({d.year for d in dates}),
        "first": dates[0],
        "last": dates[-1],
    }
    contracts = conn.cursor(row_factory=namedtuple_row).execute(_PROVIDER_CONTRACTS_AND_RATES, params)
    accumulators, paid_lines = [], []
    for kind, *values in conn.execute(_ACCUMULATORS_AND_PAID_LINES, params):
        if kind == "a":
            accumulators.append(values[:4])
        else:
            paid_lines.append(values[4:])
    prefetched = Prefetched(
        record=record,
        provider_contract_rows=contracts.fetchall(),
        accumulators=accumulators_from_rows(accumulators),
        paid_lines=paid_lines_from_rows(claim.billing_provider_npi, paid_lines),
    )
    loaded = load_context(session, claim, lock=True, prefetched=prefetched)
    submitted = None if member[7] is None else Submitted(member[7], member[8])
    return Submission(submitted, loaded)


_UNKNOWN_MEMBER = Prefetched(record=None, provider_contract_rows=(), accumulators={}, paid_lines=frozenset())


def store_claim(
    session: Session, request: StoredRequest, member_pk: int | None, eob: Eob, eob_json: str
) -> int | None:
    """Insert the claim and post its effects in one statement; None (and nothing written) when
    another transaction stored the same claim_id first. The rows are claims.py's, as JSON."""
    postings = postings_to_store(eob) if member_pk else []
    deltas: dict[tuple[int, str], list[Decimal]] = {}
    for p in postings:  # one upsert row per bucket: ON CONFLICT cannot touch a row twice
        bucket = deltas.setdefault((p.plan_year, p.tier.value), [Decimal(0), Decimal(0)])
        bucket[0] += p.deductible
        bucket[1] += p.out_of_pocket
    units = authorization_units(eob) if member_pk else {}
    params = {
        "claim_id": eob.claim_id,
        "member_ref": eob.member_id,
        "member_pk": member_pk,
        "npi": eob.billing_provider_npi,
        "received_date": request.received_date,
        "request_hash": request.request_hash,
        "request": _json(request.canonical),
        "status": eob.status.value,
        "plan_code": eob.plan_code,
        "eob": eob_json,
        "lines": _json([line_values(line) for line in eob.lines]),
        "postings": _json([posting_values(p) for p in postings]),
        "deltas": _json(
            [
                {"plan_year": year, "tier": tier, "deductible": d, "out_of_pocket": o}
                for (year, tier), (d, o) in sorted(deltas.items())
            ]
        ),
        "units": _json([{"authorization_pk": pk, "delta": n} for pk, n in sorted(units.items())]),
    }
    row = _driver(session).execute(_STORE, params).fetchone()
    return None if row is None else int(row[0])


def _json(value: Any) -> str:
    """JSON for the statement's parameters: money as two-place strings (numeric takes them
    exactly), dates as ISO strings."""
    return json.dumps(value, separators=(",", ":"), default=_json_value)


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
