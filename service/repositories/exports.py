"""Loads stored claims for the FHIR and X12 835 exports. Reads only; never flushes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..db.models import ClaimRow, ProviderRow
from ..export.records import StoredClaim


def stored_claim(session: Session, claim_id: str) -> StoredClaim | None:
    row = session.scalars(select(ClaimRow).where(ClaimRow.claim_id == claim_id)).one_or_none()
    return _stored(row) if row else None


def provider_claims_between(session: Session, npi: str, start: date, end: date) -> list[StoredClaim]:
    """A billing provider's claims adjudicated or voided on a day in [start, end] (UTC days)."""
    low = datetime.combine(start, time.min, tzinfo=UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    rows = session.scalars(
        select(ClaimRow).where(
            ClaimRow.billing_provider_npi == npi,
            or_(
                and_(ClaimRow.adjudicated_at >= low, ClaimRow.adjudicated_at < high),
                and_(ClaimRow.voided_at >= low, ClaimRow.voided_at < high),
            ),
        )
    ).all()
    return [_stored(row) for row in rows]


def provider_name(session: Session, npi: str) -> str | None:
    return session.scalars(select(ProviderRow.name).where(ProviderRow.npi == npi)).one_or_none()


def _stored(row: ClaimRow) -> StoredClaim:
    return StoredClaim(
        eob=json.loads(row.eob),
        request=row.request,
        payer_claim_number=str(row.id),
        received_date=row.received_date,
        created_at=_utc(row.created_at),
        adjudicated_at=_utc(row.adjudicated_at) if row.adjudicated_at else None,
        voided_at=_utc(row.voided_at) if row.voided_at else None,
    )


def _utc(moment: datetime) -> datetime:
    # SQLite returns naive timestamps; every timestamp the service writes is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
