"""Load the AdjudicationContext for one claim: the hot path, so a fixed handful of queries.

1. the member with its plan and network (row-locked on PostgreSQL when the claim will post),
2. the plan's copay categories,
3. the contracts in the plan's network that can matter (the billing provider's and the
   facility's; every provider's when a line can be protected, for the QPA median),
4. the rates for the claim's procedure codes only (every modifier) of those contracts' fee
   schedules and of the out-of-network reference schedule,
5. the member's authorizations: approved ones, used up or not (units short is CARC 198), and
   denied ones (a line whose only match was denied is CARC 39, not 197),
6. the accumulators of the plan years the claim touches,
7. the duplicate keys of paid lines of the member's other non-voided claims.

Only rows whose dates overlap the claim's service dates are loaded: the core looks at nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from ..db.models import (
    AccumulatorRow,
    AuthorizationRow,
    ClaimLineRow,
    ClaimRow,
    ContractRow,
    CopayCategoryRow,
    FeeScheduleRateRow,
    FeeScheduleRow,
    MemberRow,
    NetworkRow,
    PlanRow,
    ProviderRow,
)
from ..domain.codes import CodeSet
from ..domain.eob import ClaimStatus, LineStatus
from ..domain.model import (
    AccumulatorBalance,
    Accumulators,
    AdjudicationContext,
    AllowedBasis,
    AllowedBasisMethod,
    Authorization,
    AuthorizationStatus,
    Claim,
    Contract,
    CopayCategory,
    DuplicateKey,
    FeeSchedule,
    Member,
    OutOfNetworkBenefit,
    Plan,
    Rate,
    RateKey,
    Tier,
    TierBenefit,
)


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as stored: its database id (for posting) and the plan's rows."""

    row: MemberRow
    plan_row: PlanRow
    network_code: str
    oon_fee_schedule_code: str | None


@dataclass(frozen=True, slots=True)
class LoadedContext:
    context: AdjudicationContext
    member_pk: int | None  # members.id; None for an unknown member


def load_member(session: Session, member_id: str, *, lock: bool = False) -> MemberRecord | None:
    """The member, its plan and network. `lock` takes the member row lock (PostgreSQL).

    Every posting for a member happens under this lock, so two claims for one member never
    read the same accumulators or authorization units. SQLite ignores FOR UPDATE: there every
    write transaction starts with BEGIN IMMEDIATE and is serialised anyway.
    """
    oon_schedule = aliased(FeeScheduleRow)
    stmt = (
        select(MemberRow, PlanRow, NetworkRow.code, oon_schedule.code)
        .join(PlanRow, MemberRow.plan_id == PlanRow.id)
        .join(NetworkRow, PlanRow.network_id == NetworkRow.id)
        .outerjoin(oon_schedule, PlanRow.oon_fee_schedule_id == oon_schedule.id)
        .where(MemberRow.member_id == member_id)
    )
    if lock:
        stmt = stmt.with_for_update(of=MemberRow)
    found = session.execute(stmt).one_or_none()
    if found is None:
        return None
    member_row, plan_row, network_code, oon_code = found
    return MemberRecord(member_row, plan_row, network_code, oon_code)


def load_context(
    session: Session, claim: Claim, *, lock: bool, with_duplicates: bool = True
) -> LoadedContext:
    """Everything the core needs for `claim`. `lock`: the claim will post (see load_member)."""
    record = load_member(session, claim.member_id, lock=lock)
    if record is None:
        return LoadedContext(AdjudicationContext(member=None), None)
    member_pk = record.row.id
    dates = [line.service_date for line in claim.lines]
    codes = sorted({line.procedure_code for line in claim.lines})
    first, last = min(dates), max(dates)

    contracts = _contract_rows(session, record.plan_row.network_id, claim, first, last)
    schedule_ids = {row.fee_schedule_id for row, _, _ in contracts}
    if record.plan_row.oon_fee_schedule_id is not None:
        schedule_ids.add(record.plan_row.oon_fee_schedule_id)
    rates = _rates(session, schedule_ids, codes)

    schedules: dict[int, FeeSchedule] = {}

    def schedule(schedule_id: int, code: str) -> FeeSchedule:
        # Contracts sharing a fee schedule share one FeeSchedule object.
        if schedule_id not in schedules:
            schedules[schedule_id] = FeeSchedule(code, rates.get(schedule_id, {}))
        return schedules[schedule_id]

    by_npi: dict[str, list[Contract]] = defaultdict(list)
    for row, npi, schedule_code in contracts:
        by_npi[npi].append(_contract(row, npi, schedule(row.fee_schedule_id, schedule_code)))

    oon_schedule = None
    if record.plan_row.oon_fee_schedule_id is not None and record.oon_fee_schedule_code is not None:
        oon_schedule = schedule(record.plan_row.oon_fee_schedule_id, record.oon_fee_schedule_code)
    plan = plan_from_rows(record, _copay_category_rows(session, record.plan_row.id), oon_schedule)
    member = Member(record.row.member_id, plan, record.row.coverage_from, record.row.coverage_to)

    context = AdjudicationContext(
        member=member,
        billing_provider_contracts=tuple(by_npi.get(claim.billing_provider_npi, ())),
        facility_contracts=tuple(by_npi.get(claim.facility_npi, ())) if claim.facility_npi else (),
        network_contracts=(
            tuple(c for group in by_npi.values() for c in group) if _can_be_protected(claim) else ()
        ),
        authorizations=_authorizations(session, member_pk, first, last),
        accumulators=load_accumulators(session, member_pk, {d.year for d in dates}),
        paid_lines=_paid_lines(session, member_pk, claim) if with_duplicates else frozenset(),
    )
    return LoadedContext(context, member_pk)


def _can_be_protected(claim: Claim) -> bool:
    """No Surprises Act: only an emergency or a claim naming a facility can have protected lines."""
    return claim.emergency or claim.facility_npi is not None


def _overlaps(
    start: InstrumentedAttribute[date], end: InstrumentedAttribute[Any], first: date, last: date
) -> ColumnElement[bool]:
    """The row's inclusive [start, end] (end may be open) meets [first, last]."""
    return and_(start <= last, or_(end.is_(None), end >= first))


def _contract_rows(
    session: Session, network_id: int, claim: Claim, first: date, last: date
) -> Sequence[tuple[ContractRow, str, str]]:
    stmt = (
        select(ContractRow, ProviderRow.npi, FeeScheduleRow.code)
        .join(ProviderRow, ContractRow.provider_id == ProviderRow.id)
        .join(FeeScheduleRow, ContractRow.fee_schedule_id == FeeScheduleRow.id)
        .where(
            ContractRow.network_id == network_id,
            _overlaps(ContractRow.effective_from, ContractRow.effective_to, first, last),
        )
        .order_by(ContractRow.id)
    )
    if not _can_be_protected(claim):
        stmt = stmt.where(ProviderRow.npi == claim.billing_provider_npi)
    return session.execute(stmt).all()


def _rates(session: Session, schedule_ids: set[int], codes: list[str]) -> dict[int, dict[RateKey, Rate]]:
    if not schedule_ids:
        return {}
    stmt = select(FeeScheduleRateRow).where(
        FeeScheduleRateRow.fee_schedule_id.in_(sorted(schedule_ids)),
        FeeScheduleRateRow.procedure_code.in_(codes),
    )
    out: dict[int, dict[RateKey, Rate]] = defaultdict(dict)
    for rate in session.scalars(stmt):
        out[rate.fee_schedule_id][(rate.procedure_code, rate.modifier)] = Rate(
            allowed_amount=rate.allowed_amount, percent_of_billed=rate.percent_of_billed
        )
    return out


def _contract(row: ContractRow, npi: str, fee_schedule: FeeSchedule) -> Contract:
    return Contract(
        id=row.id,
        provider_npi=npi,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        fee_schedule=fee_schedule,
        timely_filing_days=row.timely_filing_days,
        unlisted_percent_of_billed=row.unlisted_percent_of_billed,
    )


def _copay_category_rows(session: Session, plan_pk: int) -> Sequence[CopayCategoryRow]:
    stmt = select(CopayCategoryRow).where(CopayCategoryRow.plan_id == plan_pk)
    return session.scalars(stmt.order_by(CopayCategoryRow.position)).all()


def plan_from_rows(
    record: MemberRecord,
    categories: Iterable[CopayCategoryRow],
    oon_schedule: FeeSchedule | None,
) -> Plan:
    """The domain Plan. `oon_schedule` holds the reference rates the claim needs (may be None)."""
    row = record.plan_row
    return Plan(
        code=row.code,
        network_code=record.network_code,
        in_network=TierBenefit(row.in_deductible, row.in_out_of_pocket_max, row.in_coinsurance_rate),
        out_of_network=_out_of_network(row, oon_schedule),
        copay_categories=tuple(
            CopayCategory(
                name=c.name,
                procedure_codes=CodeSet.parse(c.procedure_codes),
                in_network_copay=c.in_network_copay,
                out_of_network_copay=c.out_of_network_copay,
                deductible_applies=c.deductible_applies,
                coinsurance_rate=c.coinsurance_rate,
            )
            for c in categories
        ),
        prior_authorization_codes=CodeSet.parse(row.prior_authorization_codes or ()),
    )


def _out_of_network(row: PlanRow, oon_schedule: FeeSchedule | None) -> OutOfNetworkBenefit | None:
    if (
        row.oon_deductible is None
        or row.oon_out_of_pocket_max is None
        or row.oon_coinsurance_rate is None
        or row.oon_allowed_method is None
        or row.oon_allowed_percent is None
    ):
        return None  # out-of-network care is not covered (HMO)
    basis = AllowedBasis(AllowedBasisMethod(row.oon_allowed_method), row.oon_allowed_percent, oon_schedule)
    return OutOfNetworkBenefit(row.oon_deductible, row.oon_out_of_pocket_max, row.oon_coinsurance_rate, basis)


def _authorizations(session: Session, member_pk: int, first: date, last: date) -> tuple[Authorization, ...]:
    stmt = (
        select(AuthorizationRow, ProviderRow.npi)
        .outerjoin(ProviderRow, AuthorizationRow.provider_id == ProviderRow.id)
        .where(
            AuthorizationRow.member_id == member_pk,
            _overlaps(AuthorizationRow.valid_from, AuthorizationRow.valid_to, first, last),
        )
        .order_by(AuthorizationRow.id)
    )
    return tuple(
        Authorization(
            id=row.id,
            authorization_number=row.authorization_number,
            procedure_codes=CodeSet.parse(row.procedure_codes),
            units=row.units,
            units_used=row.units_used,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            provider_npi=npi,
            status=AuthorizationStatus(row.status),
        )
        for row, npi in session.execute(stmt)
    )


def load_accumulators(session: Session, member_pk: int, plan_years: Iterable[int]) -> Accumulators:
    # Plain columns, not ORM rows: always the values as of now, even after an upsert in this session.
    stmt = select(
        AccumulatorRow.plan_year,
        AccumulatorRow.tier,
        AccumulatorRow.deductible_met,
        AccumulatorRow.out_of_pocket_met,
    ).where(AccumulatorRow.member_id == member_pk, AccumulatorRow.plan_year.in_(sorted(set(plan_years))))
    return {
        (plan_year, Tier(tier)): AccumulatorBalance(deductible_met, out_of_pocket_met)
        for plan_year, tier, deductible_met, out_of_pocket_met in session.execute(stmt)
    }


def _paid_lines(session: Session, member_pk: int, claim: Claim) -> frozenset[DuplicateKey]:
    stmt = (
        select(ClaimLineRow.procedure_code, ClaimLineRow.modifiers, ClaimLineRow.service_date)
        .join(ClaimRow, ClaimLineRow.claim_id == ClaimRow.id)
        .where(
            ClaimLineRow.member_id == member_pk,
            ClaimLineRow.status == LineStatus.PAID.value,
            ClaimLineRow.procedure_code.in_(sorted({line.procedure_code for line in claim.lines})),
            ClaimLineRow.service_date.in_(sorted({line.service_date for line in claim.lines})),
            ClaimRow.billing_provider_npi == claim.billing_provider_npi,
            ClaimRow.status != ClaimStatus.VOIDED.value,
            ClaimRow.claim_id != claim.claim_id,
        )
    )
    return frozenset(
        DuplicateKey(
            claim.billing_provider_npi,
            code,
            tuple(modifiers.split(",")) if modifiers else (),
            service_date,
        )
        for code, modifiers, service_date in session.execute(stmt)
    )
