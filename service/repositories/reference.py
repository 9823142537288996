"""Reference data by business key: networks, providers, fee schedules, contracts, plans, members,
authorizations. Functions return ORM rows with the relationships their callers need loaded, and
only ever flush: the request's transaction commits or rolls back once, elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from ..db.base import Base
from ..db.models import (
    AuthorizationRow,
    ContractRow,
    FeeScheduleRateRow,
    FeeScheduleRow,
    MemberRow,
    NetworkRow,
    PlanRow,
    ProviderRow,
)

RowT = TypeVar("RowT", bound=Base)

_CONTRACT_LOADS = (
    joinedload(ContractRow.network),
    joinedload(ContractRow.provider),
    joinedload(ContractRow.fee_schedule),
)


class AlreadyExists(Exception):
    """An insert hit a unique key: another transaction created the same thing after we looked."""


def add(session: Session, row: RowT) -> RowT:
    """Insert one row now, so a unique-key collision surfaces here as AlreadyExists."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(str(exc.orig)) from exc
    return row


def network_by_code(session: Session, code: str) -> NetworkRow | None:
    return session.scalars(select(NetworkRow).where(NetworkRow.code == code)).one_or_none()


def provider_by_npi(session: Session, npi: str, *, lock: bool = False) -> ProviderRow | None:
    """`lock` serialises writers that check-then-insert per provider (contract overlap on
    PostgreSQL). FOR NO KEY UPDATE still lets others insert rows that reference the provider."""
    query = select(ProviderRow).where(ProviderRow.npi == npi)
    if lock:
        query = query.with_for_update(key_share=True)
    return session.scalars(query).one_or_none()


def fee_schedule_by_code(session: Session, code: str) -> FeeScheduleRow | None:
    return session.scalars(select(FeeScheduleRow).where(FeeScheduleRow.code == code)).one_or_none()


def fee_schedule_code(session: Session, fee_schedule_id: int) -> str:
    return session.scalars(select(FeeScheduleRow.code).where(FeeScheduleRow.id == fee_schedule_id)).one()


def add_rates(session: Session, fee_schedule_id: int, rates: Iterable[tuple[str, str, Decimal]]) -> None:
    """Insert (procedure_code, modifier or "", allowed_amount) rows in one executemany."""
    rows = [
        {
            "fee_schedule_id": fee_schedule_id,
            "procedure_code": code,
            "modifier": modifier,
            "allowed_amount": amount,
        }
        for code, modifier, amount in rates
    ]
    if rows:
        session.execute(insert(FeeScheduleRateRow), rows)


def contract_by_id(session: Session, contract_id: int) -> ContractRow | None:
    query = select(ContractRow).options(*_CONTRACT_LOADS).where(ContractRow.id == contract_id)
    return session.scalars(query).one_or_none()


def contract_starting(
    session: Session, network_id: int, provider_id: int, effective_from: date
) -> ContractRow | None:
    """The contract with this natural key (network, provider, effective_from), if any."""
    query = select(ContractRow).where(
        ContractRow.network_id == network_id,
        ContractRow.provider_id == provider_id,
        ContractRow.effective_from == effective_from,
    )
    return session.scalars(query).one_or_none()


def overlapping_contract(
    session: Session, network_id: int, provider_id: int, start: date, end: date | None
) -> ContractRow | None:
    """A contract of the provider in the network sharing a day with [start, end] (None = open)."""
    query = select(ContractRow).where(
        ContractRow.network_id == network_id,
        ContractRow.provider_id == provider_id,
        or_(ContractRow.effective_to.is_(None), ContractRow.effective_to >= start),
    )
    if end is not None:
        query = query.where(ContractRow.effective_from <= end)
    return session.scalars(query.order_by(ContractRow.effective_from).limit(1)).first()


def contract_in_effect(session: Session, network_id: int, provider_id: int, on: date) -> ContractRow | None:
    """The provider's contract in the network on a date (contracts never overlap: at most one)."""
    query = (
        select(ContractRow)
        .options(*_CONTRACT_LOADS)
        .where(
            ContractRow.network_id == network_id,
            ContractRow.provider_id == provider_id,
            ContractRow.effective_from <= on,
            or_(ContractRow.effective_to.is_(None), ContractRow.effective_to >= on),
        )
    )
    return session.scalars(query.order_by(ContractRow.effective_from.desc()).limit(1)).first()


def plan_by_code(session: Session, code: str) -> PlanRow | None:
    """The plan with its network and copay categories (in position order) loaded."""
    query = (
        select(PlanRow)
        .options(joinedload(PlanRow.network), selectinload(PlanRow.copay_categories))
        .where(PlanRow.code == code)
    )
    return session.scalars(query).one_or_none()


def member_by_member_id(session: Session, member_id: str) -> MemberRow | None:
    """The member with their plan loaded (the plan's own relationships are not)."""
    query = select(MemberRow).options(joinedload(MemberRow.plan)).where(MemberRow.member_id == member_id)
    return session.scalars(query).one_or_none()


def authorization_by_number(session: Session, number: str) -> AuthorizationRow | None:
    query = (
        select(AuthorizationRow)
        .options(joinedload(AuthorizationRow.member), joinedload(AuthorizationRow.provider))
        .where(AuthorizationRow.authorization_number == number)
    )
    return session.scalars(query).one_or_none()
