"""The submit path on PostgreSQL in two round trips: the claim's context in one pipeline, its
posting in one statement.

Everything else (and every path on SQLite) goes through context.py and claims.py; the rows here
come back in the shapes those modules' queries return and are turned into domain objects by the
same functions, so the two paths differ only in how the rows travel.

1. One pipeline (psycopg pipeline mode: the statements go out together and the server runs them
   in order): BEGIN, the member row lock, the stored claim of this claim_id, the billing
   provider's and facility's contracts joined with their rates of the claim's codes, the
   authorizations, the accumulators, and the duplicate keys of paid lines. PostgreSQL runs
   pipelined statements one after another and each takes its own snapshot (READ COMMITTED), so
   everything after the lock sees what the transaction that held the lock before us committed.
   Statements name the member by member_id, so none needs an earlier one's result.
2. Out-of-network lines only: what context.py loads for them (cached rates; the whole network's
   contracts when a line may be protected).
3. One INSERT ... ON CONFLICT (claim_id) DO NOTHING whose CTEs insert the lines and postings,
   upsert the accumulators and add authorization units, all only when the claim row was inserted.

The statement texts never change, so psycopg prepares them on each connection after a few uses,
and PostgreSQL can keep one generic plan for each. Parameters are scalars where the count is fixed
(the two NPIs), so that generic plan knows it looks up two providers, not a list of any size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session

from ..domain.eob import ClaimStatus, Eob, LineStatus
from ..domain.model import Claim
from ..domain.money import fmt
from .claims import StoredRequest, Submission, Submitted
from .context import (
    MemberRecord,
    Prefetched,
    accumulators_from_rows,
    load_context,
    paid_lines_from_rows,
)

_MEMBER_PK = "(SELECT id FROM members WHERE member_id = %(member_id)s)"

_LOCK_MEMBER = """
SELECT m.id, m.member_id, m.plan_id, p.network_id, m.coverage_from, m.coverage_to, s.rates_version
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
WHERE c.network_id = (SELECT p.network_id FROM members m JOIN plans p ON p.id = m.plan_id
                      WHERE m.member_id = %(member_id)s)
  AND pr.npi IN (%(npi)s, %(facility_npi)s)
  AND c.effective_from <= %(last)s AND (c.effective_to IS NULL OR c.effective_to >= %(first)s)
ORDER BY c.id
"""

_AUTHORIZATIONS = f"""
SELECT a.id, a.authorization_number, a.procedure_codes, a.units, a.units_used, a.valid_from,
       a.valid_to, p.npi, a.status
FROM authorizations a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.member_id = {_MEMBER_PK}
  AND a.valid_from <= %(last)s AND (a.valid_to IS NULL OR a.valid_to >= %(first)s)
ORDER BY a.id
"""

_ACCUMULATORS = f"""
SELECT plan_year, tier, deductible_met, out_of_pocket_met
FROM accumulators
WHERE member_id = {_MEMBER_PK} AND plan_year = ANY(%(years)s::int[])
"""

_PAID_LINES = f"""
SELECT l.procedure_code, l.modifiers, l.service_date
FROM claim_lines l
JOIN claims c ON c.id = l.claim_id
WHERE l.member_id = {_MEMBER_PK}
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
         x.billed, x.allowed, x.deductible, x.copay, x.coinsurance, x.plan_paid,
         x.patient_responsibility, x.balance_billing, x.authorization_id, x.authorization_units
  FROM claim, jsonb_to_recordset(%(lines)s::jsonb) AS x(
    line_number int, procedure_code text, modifiers text, units int, service_date date,
    status text, network_status text, accumulator_tier text, protected boolean,
    billed numeric, allowed numeric, deductible numeric, copay numeric, coinsurance numeric,
    plan_paid numeric, patient_responsibility numeric, balance_billing numeric,
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
    """Lock the member and read everything a new claim needs, in one round trip."""
    dates = sorted({line.service_date for line in claim.lines})
    params: dict[str, Any] = {
        "member_id": claim.member_id,
        "claim_id": claim.claim_id,
        "npi": claim.billing_provider_npi,
        "facility_npi": claim.facility_npi or claim.billing_provider_npi,
        "codes": sorted({line.procedure_code for line in claim.lines}),
        "dates": dates,
        "years": sorted({d.year for d in dates}),
        "first": dates[0],
        "last": dates[-1],
    }
    conn = _driver(session)
    with conn.pipeline():
        member = conn.execute(_LOCK_MEMBER, params)
        submitted = conn.execute(_SUBMITTED, params)
        contracts = conn.cursor(row_factory=namedtuple_row).execute(_PROVIDER_CONTRACTS_AND_RATES, params)
        authorizations = conn.execute(_AUTHORIZATIONS, params)
        accumulators = conn.execute(_ACCUMULATORS, params)
        paid_lines = conn.execute(_PAID_LINES, params)
    found = submitted.fetchone()
    member_row = member.fetchone()
    prefetched = Prefetched(
        record=None if member_row is None else MemberRecord(*member_row),
        provider_contract_rows=contracts.fetchall(),
        authorization_rows=authorizations.fetchall(),
        accumulators=accumulators_from_rows(accumulators.fetchall()),
        paid_lines=paid_lines_from_rows(claim.billing_provider_npi, paid_lines.fetchall()),
    )
    loaded = load_context(session, claim, lock=True, prefetched=prefetched)
    return Submission(None if found is None else Submitted(*found), loaded)


def store_claim(
    session: Session, request: StoredRequest, member_pk: int | None, eob: Eob, eob_json: str
) -> int | None:
    """Insert the claim and post its effects in one statement; None (and nothing written) when
    another transaction stored the same claim_id first."""
    postings = [p for p in eob.postings if p.deductible or p.out_of_pocket] if member_pk else []
    deltas: dict[tuple[int, str], list[Any]] = {}
    for p in postings:  # one upsert row per bucket: ON CONFLICT cannot touch a row twice
        bucket = deltas.setdefault((p.plan_year, p.tier.value), [0, 0])
        bucket[0] += p.deductible
        bucket[1] += p.out_of_pocket
    units: Counter[int] = Counter()
    for use in eob.authorization_uses if member_pk else ():
        units[use.authorization_id] += use.units
    params = {
        "claim_id": eob.claim_id,
        "member_ref": eob.member_id,
        "member_pk": member_pk,
        "npi": eob.billing_provider_npi,
        "received_date": request.received_date,
        "request_hash": request.request_hash,
        "request": json.dumps(request.canonical, separators=(",", ":")),
        "status": eob.status.value,
        "plan_code": eob.plan_code,
        "eob": eob_json,
        "lines": _json([_line(line) for line in eob.lines]),
        "postings": _json(
            [
                {
                    "plan_year": p.plan_year,
                    "tier": p.tier.value,
                    "deductible": fmt(p.deductible),
                    "out_of_pocket": fmt(p.out_of_pocket),
                }
                for p in postings
            ]
        ),
        "deltas": _json(
            [
                {"plan_year": year, "tier": tier, "deductible": fmt(d), "out_of_pocket": fmt(o)}
                for (year, tier), (d, o) in sorted(deltas.items())
            ]
        ),
        "units": _json([{"authorization_pk": pk, "delta": n} for pk, n in sorted(units.items())]),
    }
    row = _driver(session).execute(_STORE, params).fetchone()
    return None if row is None else int(row[0])


def _json(value: Sequence[dict[str, Any]]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _line(line: Any) -> dict[str, Any]:
    use = line.authorization_use
    return {
        "line_number": line.line_number,
        "procedure_code": line.procedure_code,
        "modifiers": ",".join(sorted(line.modifiers)),
        "units": line.units,
        "service_date": line.service_date.isoformat(),
        "status": line.status.value,
        "network_status": line.network_status.value if line.network_status else None,
        "accumulator_tier": line.accumulator_tier.value if line.accumulator_tier else None,
        "protected": line.protected,
        "billed": fmt(line.billed_amount),
        "allowed": fmt(line.allowed_amount),
        "deductible": fmt(line.deductible_amount),
        "copay": fmt(line.copay_amount),
        "coinsurance": fmt(line.coinsurance_amount),
        "plan_paid": fmt(line.plan_paid_amount),
        "patient_responsibility": fmt(line.patient_responsibility_amount),
        "balance_billing": fmt(line.balance_billing_amount),
        "authorization_id": use.authorization_id if use else None,
        "authorization_units": use.units if use else 0,
    }
