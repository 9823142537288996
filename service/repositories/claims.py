"""Claims persistence: the claim-id lock, the stored claim, and posting or reversing its effects.

Repositories only flush; the request's session commits once (service/api/deps.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..db.models import AccumulatorPostingRow, AccumulatorRow, AuthorizationRow, ClaimLineRow, ClaimRow
from ..domain.eob import AccumulatorPosting, Eob, EobLine
from ..domain.records import record
from .context import LoadedContext

# First key of the two-key advisory lock: keeps claim-id locks apart from any other advisory lock.
_CLAIM_LOCK_NAMESPACE = 3

# Statements of the hot path, built once (building and cache-keying them per call costs more
# than running them). The upserts exist per dialect: ON CONFLICT is spelled by each.
_LOCK_CLAIM_ID = text(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK_NAMESPACE}, hashtext(:claim_id))")
_FIND_CLAIM = select(ClaimRow).where(ClaimRow.claim_id == bindparam("claim_id"))
_FIND_SUBMITTED = select(ClaimRow.request_hash, ClaimRow.eob).where(
    ClaimRow.claim_id == bindparam("claim_id")
)
_INSERT_LINE = insert(ClaimLineRow)
_INSERT_POSTING = insert(AccumulatorPostingRow)
_ADD_UNITS_USED = (
    update(AuthorizationRow)
    .where(AuthorizationRow.id == bindparam("authorization_pk"))
    .values(units_used=AuthorizationRow.units_used + bindparam("delta"))
)


def _insert_claim(dialect_insert: Any) -> Any:
    stmt = dialect_insert(ClaimRow).on_conflict_do_nothing(index_elements=["claim_id"])
    return stmt.returning(ClaimRow.id)


def _add_to_accumulator(dialect_insert: Any) -> Any:
    stmt = dialect_insert(AccumulatorRow)
    return stmt.on_conflict_do_update(
        index_elements=["member_id", "plan_year", "tier"],
        set_={
            "deductible_met": AccumulatorRow.deductible_met + stmt.excluded.deductible_met,
            "out_of_pocket_met": AccumulatorRow.out_of_pocket_met + stmt.excluded.out_of_pocket_met,
        },
    )


_INSERT_CLAIM = {"postgresql": _insert_claim(pg_insert), "sqlite": _insert_claim(sqlite_insert)}
_ADD_TO_ACCUMULATOR = {
    "postgresql": _add_to_accumulator(pg_insert),
    "sqlite": _add_to_accumulator(sqlite_insert),
}


def lock_claim_id(session: Session, claim_id: str) -> None:
    """Serialise transactions that change one stored claim (void, re-adjudication) on PostgreSQL,
    until commit or rollback. SQLite needs nothing: BEGIN IMMEDIATE serialises writers.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_LOCK_CLAIM_ID, {"claim_id": claim_id})


def find_claim(session: Session, claim_id: str) -> ClaimRow | None:
    return session.scalars(_FIND_CLAIM, {"claim_id": claim_id}).one_or_none()


@record
class Submitted:
    """What a resubmission needs of a stored claim."""

    request_hash: str
    eob: str


def find_submitted(session: Session, claim_id: str) -> Submitted | None:
    """The stored claim's request hash and EOB: two columns, no ORM object (the submit path)."""
    found = session.connection().execute(_FIND_SUBMITTED, {"claim_id": claim_id}).one_or_none()
    return None if found is None else Submitted(*found)


@record
class Submission:
    """What submitting a claim reads under the member lock: the stored claim of its claim_id, if
    any, and the context to adjudicate it in."""

    submitted: Submitted | None
    loaded: LoadedContext


@record
class StoredRequest:
    """The submitted claim in canonical form, its hash, and its defaulted received date."""

    canonical: dict[str, Any]
    request_hash: str
    received_date: date


@record
class ToStore:
    """An adjudicated claim to insert and post: its request, its member's id (None when the
    member is unknown), its EOB and that EOB's JSON text."""

    request: StoredRequest
    member_pk: int | None
    eob: Eob
    eob_json: str


def insert_claim(
    session: Session, request: StoredRequest, member_pk: int | None, eob: Eob, eob_json: str
) -> int | None:
    """Insert the claim row and return its id; None when another transaction stored the same
    claim_id first.

    Two submissions of one claim_id race here: the later insert waits for the earlier
    transaction on the unique index, then does nothing (ON CONFLICT), leaving this transaction
    usable to answer with the stored claim.
    """
    values = {
        "claim_id": eob.claim_id,
        "member_ref": eob.member_id,
        "member_id": member_pk,
        "billing_provider_npi": eob.billing_provider_npi,
        "received_date": request.received_date,
        "request_hash": request.request_hash,
        "request": request.canonical,
        **_adjudication_values(eob, eob_json),
    }
    stmt = _INSERT_CLAIM[session.get_bind().dialect.name]
    claim_pk: int | None = session.connection().execute(stmt, values).scalar_one_or_none()
    return claim_pk


def _adjudication_values(eob: Eob, eob_json: str) -> dict[str, Any]:
    return {
        "status": eob.status.value,
        "plan_code": eob.plan_code,
        "eob": eob_json,
        "adjudicated_at": datetime.now(UTC),
    }


def apply_adjudication(row: ClaimRow, eob: Eob, eob_json: str) -> None:
    for name, value in _adjudication_values(eob, eob_json).items():
        setattr(row, name, value)


def post_adjudication(session: Session, claim_pk: int, member_pk: int | None, eob: Eob) -> None:
    """Store the EOB's lines and post its accumulator changes and authorization units."""
    # Core executemany inserts on the session's connection: one statement however many lines.
    conn = session.connection()
    ids = {"claim_id": claim_pk, "member_id": member_pk}
    conn.execute(_INSERT_LINE, [{**ids, **line_values(line)} for line in eob.lines])
    if member_pk is None:
        return  # an unknown member's claim is all denied: nothing to post
    postings = postings_to_store(eob)
    if postings:
        conn.execute(_INSERT_POSTING, [{**ids, **posting_values(p)} for p in postings])
    deltas = ((p.plan_year, p.tier.value, p.deductible, p.out_of_pocket) for p in postings)
    add_to_accumulators(session, member_pk, deltas)
    _add_units_used(session, authorization_units(eob))
    session.flush()


def postings_to_store(eob: Eob) -> list[AccumulatorPosting]:
    """The EOB's accumulator postings that change something."""
    return [p for p in eob.postings if p.deductible or p.out_of_pocket]


def authorization_units(eob: Eob) -> Counter[int]:
    """Authorization units the EOB uses, by authorization id."""
    units: Counter[int] = Counter()
    for use in eob.authorization_uses:
        units[use.authorization_id] += use.units
    return units


def delete_lines(session: Session, claim: ClaimRow) -> None:
    """Drop a pended claim's lines before it is adjudicated again (a pended claim posted nothing).

    Executed at once, so the new lines (same line numbers) never meet the old ones.
    """
    session.execute(delete(ClaimLineRow).where(ClaimLineRow.claim_id == claim.id))


def reverse_postings(session: Session, claim: ClaimRow) -> None:
    """Undo exactly what the claim posted: its accumulator postings and authorization units."""
    if claim.member_id is None:
        return  # an unknown member's claim posted nothing
    postings = session.scalars(
        select(AccumulatorPostingRow).where(AccumulatorPostingRow.claim_id == claim.id)
    ).all()
    deltas = ((p.plan_year, p.tier, -p.deductible, -p.out_of_pocket) for p in postings)
    add_to_accumulators(session, claim.member_id, deltas)
    units: Counter[int] = Counter()
    for line in session.scalars(select(ClaimLineRow).where(ClaimLineRow.claim_id == claim.id)):
        if line.authorization_id is not None:
            units[line.authorization_id] -= line.authorization_units
    _add_units_used(session, units)
    session.flush()


def add_to_accumulators(
    session: Session, member_pk: int, deltas: Iterable[tuple[int, str, Decimal, Decimal]]
) -> None:
    """Add (plan_year, tier, deductible, out_of_pocket) deltas, creating buckets as needed.

    An atomic upsert (INSERT ... ON CONFLICT DO UPDATE SET met = met + delta): correct even
    without the member lock, which callers hold anyway.
    """
    rows = [
        {
            "member_id": member_pk,
            "plan_year": plan_year,
            "tier": tier,
            "deductible_met": deductible,
            "out_of_pocket_met": out_of_pocket,
        }
        for plan_year, tier, deductible, out_of_pocket in deltas
    ]
    if rows:
        session.connection().execute(_ADD_TO_ACCUMULATOR[session.get_bind().dialect.name], rows)


def _add_units_used(session: Session, units: Counter[int]) -> None:
    """Add units (negative to give them back), in authorization id order."""
    rows = [{"authorization_pk": pk, "delta": delta} for pk, delta in sorted(units.items())]
    if rows:
        session.connection().execute(_ADD_UNITS_USED, rows)


def line_values(line: EobLine) -> dict[str, Any]:
    """A stored line's columns (claim_lines), but for the claim and member ids."""
    use = line.authorization_use
    return dict(
        line_number=line.line_number,
        procedure_code=line.procedure_code,
        modifiers=",".join(sorted(line.modifiers)),
        units=line.units,
        service_date=line.service_date,
        status=line.status.value,
        network_status=line.network_status.value if line.network_status else None,
        accumulator_tier=line.accumulator_tier.value if line.accumulator_tier else None,
        protected=line.protected,
        billed_amount=line.billed_amount,
        allowed_amount=line.allowed_amount,
        deductible_amount=line.deductible_amount,
        copay_amount=line.copay_amount,
        coinsurance_amount=line.coinsurance_amount,
        plan_paid_amount=line.plan_paid_amount,
        patient_responsibility_amount=line.patient_responsibility_amount,
        balance_billing_amount=line.balance_billing_amount,
        authorization_id=use.authorization_id if use else None,
        authorization_units=use.units if use else 0,
    )


def posting_values(posting: AccumulatorPosting) -> dict[str, Any]:
    """A stored posting's columns (accumulator_postings), but for the claim and member ids."""
    return dict(
        plan_year=posting.plan_year,
        tier=posting.tier.value,
        deductible=posting.deductible,
        out_of_pocket=posting.out_of_pocket,
    )
