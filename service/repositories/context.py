"""Load the AdjudicationContext for one claim: the hot path, so a fixed handful of queries.

1. the member, its plan id and network, and the version of the plan's reference schedule
   (row-locked on PostgreSQL when the claim will post),
2. the billing provider's and the facility's contracts in the plan's network, joined with
   their fee schedules' rates for the claim's procedure codes (every modifier),
3. only when a line is out of network: the out-of-network reference schedule's rates for those
   codes (from the cache when it has them, else in one query) and, when such a line may be
   protected, every provider's contract in the network, counted by schedule and period, with
   its schedule's rates of the claim's codes, in one query, for the QPA median,
4. the member's authorizations, when a line's code needs one and the claim is no emergency:
   approved ones, used up or not (units short is CARC 198), and denied ones (a line whose only
   match was denied is CARC 39, not 197),
5. the accumulators of the plan years the claim touches,
6. the duplicate keys of paid lines of the member's other non-voided claims.

Plans come from the reference cache (refcache.py) by id; so do the reference schedule's rates of
step 3, by (schedule, rates_version, code), with the version read here in the claim's transaction.
Statements are built once, select plain columns (no ORM objects) and run on the session's
connection. Only rows whose dates overlap the claim's service dates are loaded: the core looks at
nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.engine import Row
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
    NetworkRates,
    OutOfNetworkBenefit,
    Plan,
    Rate,
    RateKey,
    Tier,
    TierBenefit,
)
from ..domain.records import record
from .refcache import CachedPlan, CodeRates, RateKeyTuple, reference_cache


@record
class MemberRecord:
    """A member as stored: its database id (for posting), plan and network ids."""

    pk: int
    member_id: str
    plan_id: int
    network_id: int
    coverage_from: date
    coverage_to: date | None
    # rates_version of the plan's out-of-network reference schedule, if it has one
    oon_rates_version: int | None


@record
class LoadedContext:
    context: AdjudicationContext
    member_pk: int | None  # members.id; None for an unknown member


def _overlaps(start: InstrumentedAttribute[date], end: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """The row's inclusive [start, end] (end may be open) meets the claim's [:first, :last]."""
    return and_(start <= bindparam("last"), or_(end.is_(None), end >= bindparam("first")))


_OON_SCHEDULE = aliased(FeeScheduleRow)
_MEMBER = (
    select(
        MemberRow.id,
        MemberRow.member_id,
        MemberRow.plan_id,
        PlanRow.network_id,
        MemberRow.coverage_from,
        MemberRow.coverage_to,
        _OON_SCHEDULE.rates_version,
    )
    .join(PlanRow, MemberRow.plan_id == PlanRow.id)
    .outerjoin(_OON_SCHEDULE, PlanRow.oon_fee_schedule_id == _OON_SCHEDULE.id)
    .where(MemberRow.member_id == bindparam("member_id"))
)
_MEMBER_LOCKED = _MEMBER.with_for_update(of=MemberRow)

_CONTRACT_COLUMNS = (
    ContractRow.id,
    ProviderRow.npi,
    ContractRow.effective_from,
    ContractRow.effective_to,
    ContractRow.timely_filing_days,
    ContractRow.unlisted_percent_of_billed,
    ContractRow.fee_schedule_id,
    FeeScheduleRow.code,
    FeeScheduleRow.rates_version,
)
_NETWORK_CONTRACTS = (
    select(*_CONTRACT_COLUMNS)
    .join(ProviderRow, ContractRow.provider_id == ProviderRow.id)
    .join(FeeScheduleRow, ContractRow.fee_schedule_id == FeeScheduleRow.id)
    .where(
        ContractRow.network_id == bindparam("network_id"),
        _overlaps(ContractRow.effective_from, ContractRow.effective_to),
    )
    .order_by(ContractRow.id)
)
# The network's contracts for the QPA median, counted by schedule and period (a few hundred rows
# and domain objects for a network of thousands of contracts on a few hundred schedules), each
# joined with its schedule's rates of the claim's codes (none: one row, no rate). One statement,
# so the rates are those of the schedules' current versions, read with them: they skip the rate
# cache, whose (schedule, version, code) keys a QPA would fill by the hundred per claim
# (200 schedules x the claim's codes), each entry evicting another's, at 0.8 ms a claim for the
# cache alone, while the statement's index lookups cost about what the cache-missing read of the
# same rates did (docs/performance.md, fourteenth round).
_NETWORK_SCHEDULES = (
    select(
        ContractRow.fee_schedule_id,
        FeeScheduleRow.code,
        ContractRow.effective_from,
        ContractRow.effective_to,
        func.count().label("contracts"),
    )
    .join(FeeScheduleRow, ContractRow.fee_schedule_id == FeeScheduleRow.id)
    .where(
        ContractRow.network_id == bindparam("network_id"),
        _overlaps(ContractRow.effective_from, ContractRow.effective_to),
    )
    .group_by(
        ContractRow.fee_schedule_id,
        FeeScheduleRow.code,
        ContractRow.effective_from,
        ContractRow.effective_to,
    )
    .subquery("network")
)


def _with_rates(
    statement: Select[*tuple[Any, ...]], fee_schedule_id: ColumnElement[int] | InstrumentedAttribute[int]
) -> Select[*tuple[Any, ...]]:
    """`statement` with the rates of :codes in the schedule `fee_schedule_id` names, one row per
    rate (a row without any: one row, no rate)."""
    return statement.add_columns(
        FeeScheduleRateRow.procedure_code,
        FeeScheduleRateRow.modifier,
        FeeScheduleRateRow.allowed_amount,
        FeeScheduleRateRow.percent_of_billed,
    ).outerjoin(
        FeeScheduleRateRow,
        and_(
            FeeScheduleRateRow.fee_schedule_id == fee_schedule_id,
            FeeScheduleRateRow.procedure_code.in_(bindparam("codes", expanding=True)),
        ),
    )


_NETWORK_RATES = _with_rates(select(_NETWORK_SCHEDULES), _NETWORK_SCHEDULES.c.fee_schedule_id).order_by(
    _NETWORK_SCHEDULES.c.fee_schedule_id,
    _NETWORK_SCHEDULES.c.effective_from,
    _NETWORK_SCHEDULES.c.effective_to,
)
# The same read on PostgreSQL, its rows as the driver returns them (numeric is Decimal already):
# through the column types, some 700 rows (200 schedules x the claim's codes) cost 1.3 ms of CPU
# more a claim in type processing alone; and one statement text whatever the number of codes.
_NETWORK_RATES_PG = """
SELECT n.fee_schedule_id, n.code, n.effective_from, n.effective_to, n.contracts,
       r.procedure_code, r.modifier, r.allowed_amount, r.percent_of_billed
FROM (
  SELECT c.fee_schedule_id, fs.code, c.effective_from, c.effective_to, count(*) AS contracts
  FROM contracts c JOIN fee_schedules fs ON fs.id = c.fee_schedule_id
  WHERE c.network_id = %(network_id)s
    AND c.effective_from <= %(last)s AND (c.effective_to IS NULL OR c.effective_to >= %(first)s)
  GROUP BY c.fee_schedule_id, fs.code, c.effective_from, c.effective_to
) AS n
LEFT JOIN fee_schedule_rates r
  ON r.fee_schedule_id = n.fee_schedule_id AND r.procedure_code = ANY(%(codes)s::text[])
ORDER BY n.fee_schedule_id, n.effective_from, n.effective_to
"""
# One row per contract and rate of the claim's codes (a contract without any: one row, no rate).
_PROVIDER_CONTRACTS_AND_RATES = _with_rates(_NETWORK_CONTRACTS, ContractRow.fee_schedule_id).where(
    ProviderRow.npi.in_(bindparam("npis", expanding=True))
)
AnyRow = Row[*tuple[Any, ...]]  # a contract's columns above, and maybe a rate's

_RATES = select(
    FeeScheduleRateRow.fee_schedule_id,
    FeeScheduleRateRow.procedure_code,
    FeeScheduleRateRow.modifier,
    FeeScheduleRateRow.allowed_amount,
    FeeScheduleRateRow.percent_of_billed,
).where(
    FeeScheduleRateRow.fee_schedule_id.in_(bindparam("schedule_ids", expanding=True)),
    FeeScheduleRateRow.procedure_code.in_(bindparam("codes", expanding=True)),
)

# The same read on PostgreSQL: one statement text whatever the number of schedules and codes,
# so psycopg prepares it, and no list of parameters is rendered and bound each time;
# its rows are read as the driver returns them (numeric is Decimal already).
_RATES_PG = (
    "SELECT fee_schedule_id, procedure_code, modifier, allowed_amount, percent_of_billed"
    " FROM fee_schedule_rates"
    " WHERE fee_schedule_id = ANY(%s::int[]) AND procedure_code = ANY(%s::text[])"
)

_AUTHORIZATIONS = (
    select(
        AuthorizationRow.id,
        AuthorizationRow.authorization_number,
        AuthorizationRow.procedure_codes,
        AuthorizationRow.units,
        AuthorizationRow.units_used,
        AuthorizationRow.valid_from,
        AuthorizationRow.valid_to,
        ProviderRow.npi,
        AuthorizationRow.status,
    )
    .outerjoin(ProviderRow, AuthorizationRow.provider_id == ProviderRow.id)
    .where(
        AuthorizationRow.member_id == bindparam("member_pk"),
        _overlaps(AuthorizationRow.valid_from, AuthorizationRow.valid_to),
    )
    .order_by(AuthorizationRow.id)
)

_ACCUMULATORS = select(
    AccumulatorRow.plan_year,
    AccumulatorRow.tier,
    AccumulatorRow.deductible_met,
    AccumulatorRow.out_of_pocket_met,
).where(
    AccumulatorRow.member_id == bindparam("member_pk"),
    AccumulatorRow.plan_year.in_(bindparam("plan_years", expanding=True)),
)

# A paid line's claim by its primary key, in a scalar subquery (PostgreSQL does not turn it into
# a join): as a join, PostgreSQL could reach the claims through the billing NPI's index, every
# claim the provider ever had (claims_pg.py's _ACCUMULATORS_AND_PAID_LINES says more).
_LINES_CLAIM_MATCHES = (
    select(
        and_(
            ClaimRow.billing_provider_npi == bindparam("npi"),
            ClaimRow.status != ClaimStatus.VOIDED.value,
            ClaimRow.claim_id != bindparam("claim_id"),
        )
    )
    .where(ClaimRow.id == ClaimLineRow.claim_id)
    .scalar_subquery()
)

_PAID_LINES = select(ClaimLineRow.procedure_code, ClaimLineRow.modifiers, ClaimLineRow.service_date).where(
    ClaimLineRow.member_id == bindparam("member_pk"),
    ClaimLineRow.status == LineStatus.PAID.value,
    ClaimLineRow.procedure_code.in_(bindparam("codes", expanding=True)),
    ClaimLineRow.service_date.in_(bindparam("dates", expanding=True)),
    _LINES_CLAIM_MATCHES,
)


def load_member(session: Session, member_id: str, *, lock: bool = False) -> MemberRecord | None:
    """The member, its plan and network. `lock` takes the member row lock (PostgreSQL).

    Every posting for a member happens under this lock, so two claims for one member never
    read the same accumulators or authorization units. SQLite ignores FOR UPDATE: there every
    write transaction starts with BEGIN IMMEDIATE and is serialised anyway.
    """
    stmt = _MEMBER_LOCKED if lock else _MEMBER
    found = session.connection().execute(stmt, {"member_id": member_id}).one_or_none()
    return None if found is None else MemberRecord(*found)


@record
class Prefetched:
    """Rows a caller already read (claims_pg.py), in the shapes the queries below return:
    load_context then runs only what they do not cover (what out-of-network lines need, the
    plan when it is not cached, and authorizations when the caller did not read them)."""

    record: MemberRecord | None
    # Attribute access by column name: a Row or a namedtuple. Rows with no contract id may add
    # the rates of the plan's out-of-network reference schedule (so none need be read again).
    provider_contract_rows: Sequence[Any]
    accumulators: Accumulators
    paid_lines: frozenset[DuplicateKey]
    # The member's authorizations: those read when needs_authorizations, () when it is false (no
    # rule reads them then), or None: not read, load_context decides.
    authorizations: tuple[Authorization, ...] | None = None


def load_context(
    session: Session,
    claim: Claim,
    *,
    lock: bool,
    with_duplicates: bool = True,
    prefetched: Prefetched | None = None,
) -> LoadedContext:
    """Everything the core needs for `claim`. `lock`: the claim will post (see load_member)."""
    record = prefetched.record if prefetched else load_member(session, claim.member_id, lock=lock)
    if record is None:
        return LoadedContext(AdjudicationContext(member=None), None)
    dates = sorted({line.service_date for line in claim.lines})
    codes = sorted({line.procedure_code for line in claim.lines})
    span = {"first": dates[0], "last": dates[-1]}
    cached = load_plan(session, record.plan_id)

    provider_rows = (
        prefetched.provider_contract_rows
        if prefetched
        else _provider_contract_rows(session, record.network_id, span, claim, codes)
    )
    contracts = _load_contracts(session, record, cached, claim, span, codes, provider_rows)
    plan = with_reference_rates(cached, contracts.reference)
    member = Member(record.member_id, plan, record.coverage_from, record.coverage_to)
    if prefetched:
        accumulators, paid_lines = prefetched.accumulators, prefetched.paid_lines
    else:
        accumulators = load_accumulators(session, record.pk, {d.year for d in dates})
        paid_lines = _paid_lines(session, record.pk, claim, codes, dates) if with_duplicates else frozenset()
    context = AdjudicationContext(
        member=member,
        billing_provider_contracts=tuple(contracts.by_npi.get(claim.billing_provider_npi, ())),
        facility_contracts=tuple(contracts.by_npi.get(claim.facility_npi, ())) if claim.facility_npi else (),
        network_rates=contracts.whole_network,
        authorizations=_authorizations(session, record.pk, span, claim, plan, prefetched),
        accumulators=accumulators,
        paid_lines=paid_lines,
    )
    return LoadedContext(context, record.pk)


@record
class _Contracts:
    by_npi: dict[str, list[Contract]]
    whole_network: tuple[NetworkRates, ...]  # loaded only when a line may be protected
    reference: FeeSchedule | None  # the out-of-network reference schedule, when a line needs it


def _load_contracts(
    session: Session,
    record: MemberRecord,
    cached: CachedPlan,
    claim: Claim,
    span: dict[str, date],
    codes: list[str],
    provider_rows: Sequence[AnyRow],
) -> _Contracts:
    contracts, rates = _provider_contracts(provider_rows)
    out_of_network = _out_of_network_on_some_date(claim, contracts)
    whole_network = out_of_network and (claim.emergency or claim.facility_npi is not None)
    network: Sequence[AnyRow] = ()
    if whole_network:  # a line may be protected: the QPA median needs every contract's rate
        params = {"network_id": record.network_id, "codes": codes, **span}
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            network_rows = conn.exec_driver_sql(_NETWORK_RATES_PG, params).all()
        else:
            network_rows = conn.execute(_NETWORK_RATES, params).all()
        network, network_rates = _network_entries(network_rows)
        for schedule_id, schedule_rates in network_rates.items():
            rates.setdefault(schedule_id, schedule_rates)  # a contract's read came first
    versions = {
        row.fee_schedule_id: row.rates_version for row in contracts if row.fee_schedule_id not in rates
    }
    reference = reference_schedule(cached, record) if out_of_network else None
    if reference is not None and reference[0] not in rates:
        assert record.oon_rates_version is not None  # reference_schedule() checked it
        versions[reference[0]] = record.oon_rates_version
    rates.update(_rates(session, versions, codes))
    schedules: dict[int, FeeSchedule] = {}  # contracts sharing a schedule share one object

    def schedule(schedule_id: int, code: str) -> FeeSchedule:
        if schedule_id not in schedules:
            schedules[schedule_id] = FeeSchedule(code, rates[schedule_id])
        return schedules[schedule_id]

    by_npi: dict[str, list[Contract]] = defaultdict(list)
    for row in contracts:
        by_npi[row.npi].append(_contract(row, schedule(row.fee_schedule_id, row.code)))
    return _Contracts(
        by_npi=by_npi,
        whole_network=tuple(
            NetworkRates(
                schedule(row.fee_schedule_id, row.code), row.effective_from, row.effective_to, row.contracts
            )
            for row in network
        ),
        reference=schedule(*reference) if reference is not None else None,
    )


def _network_entries(
    rows: Sequence[AnyRow],
) -> tuple[list[AnyRow], dict[int, dict[RateKey, Rate]]]:
    """One row per (schedule, period) of the network, and each schedule's rates, from the joined
    rows of _NETWORK_RATES."""
    entries: dict[tuple[int, date, date | None], AnyRow] = {}
    rates: dict[int, dict[RateKey, Rate]] = {}
    entry: tuple[int, date, date | None] | None = None
    schedule_rates: dict[RateKey, Rate] = {}
    for row in rows:
        schedule_id, _, effective_from, effective_to, _, code, modifier, amount, percent = row
        if (schedule_id, effective_from, effective_to) != entry:  # an entry's rows come together
            entry = (schedule_id, effective_from, effective_to)
            entries.setdefault(entry, row)
            schedule_rates = rates.setdefault(schedule_id, {})
        if code is not None:
            schedule_rates[code, modifier] = Rate(amount, percent)
    return list(entries.values()), rates


def reference_schedule(cached: CachedPlan, record: MemberRecord) -> tuple[int, str] | None:
    """(id, code) of the plan's out-of-network reference schedule, when it has one and the
    member's read gave its rates_version (the key of its cached rates)."""
    return cached.oon_schedule if record.oon_rates_version is not None else None


def needs_authorizations(claim: Claim, plan: Plan) -> bool:
    """Prior authorization applies only to codes the plan lists, and never to emergencies."""
    codes = plan.prior_authorization_codes
    return not claim.emergency and any(codes.contains(line.procedure_code) for line in claim.lines)


def _out_of_network_on_some_date(claim: Claim, rows: Sequence[AnyRow]) -> bool:
    """Whether the billing provider has no contract in effect on one of the claim's dates."""
    billing = [row for row in rows if row.npi == claim.billing_provider_npi]

    def in_network(day: date) -> bool:
        return any(
            r.effective_from <= day and (r.effective_to is None or day <= r.effective_to) for r in billing
        )

    return not all(in_network(line.service_date) for line in claim.lines)


def _provider_contract_rows(
    session: Session, network_id: int, span: dict[str, date], claim: Claim, codes: list[str]
) -> Sequence[AnyRow]:
    """The billing provider's and the facility's contracts, each joined with its schedule's rates
    of `codes` (a contract without any: one row, no rate)."""
    npis = sorted({claim.billing_provider_npi, claim.facility_npi or claim.billing_provider_npi})
    params = {"network_id": network_id, "npis": npis, "codes": codes, **span}
    return session.connection().execute(_PROVIDER_CONTRACTS_AND_RATES, params).all()


def _provider_contracts(
    rows: Sequence[AnyRow],
) -> tuple[Sequence[AnyRow], dict[int, dict[RateKey, Rate]]]:
    """One row per contract, and the rates of each contract's schedule, from the joined rows."""
    contracts: dict[int, AnyRow] = {}
    rates: dict[int, dict[RateKey, Rate]] = {}
    for row in rows:
        if row.id is not None:  # else a row of the reference schedule's rates (claims_pg.py)
            contracts.setdefault(row.id, row)
        schedule_rates = rates.setdefault(row.fee_schedule_id, {})
        if row.procedure_code is not None:
            schedule_rates[row.procedure_code, row.modifier] = Rate(row.allowed_amount, row.percent_of_billed)
    return list(contracts.values()), rates


def _contract(row: AnyRow, fee_schedule: FeeSchedule) -> Contract:
    return Contract(
        id=row.id,
        provider_npi=row.npi,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        fee_schedule=fee_schedule,
        timely_filing_days=row.timely_filing_days,
        unlisted_percent_of_billed=row.unlisted_percent_of_billed,
    )


def _rates(session: Session, versions: Mapping[int, int], codes: list[str]) -> dict[int, dict[RateKey, Rate]]:
    """The rates of `codes` in each schedule (id -> rates_version): cached, or loaded in one query."""
    keys = [(schedule_id, version, code) for schedule_id, version in versions.items() for code in codes]
    cache = reference_cache(session).rates
    found = cache.get_many(keys)
    if len(found) < len(keys):
        loaded = _load_rates(session, versions, [key for key in keys if key not in found])
        cache.put_many(loaded)
        found.update(loaded)
    out: dict[int, dict[RateKey, Rate]] = {schedule_id: {} for schedule_id in versions}
    for (schedule_id, _, _), code_rates in found.items():
        out[schedule_id].update(code_rates)
    return out


def _load_rates(
    session: Session, versions: Mapping[int, int], missing: list[RateKeyTuple]
) -> dict[RateKeyTuple, CodeRates]:
    """Every (schedule, code) pair of the missing keys, an empty mapping where there is no rate.

    The versions were read by an earlier statement; should a replacement commit in between, these
    newer rates are cached under the older version, which no later claim reads again.
    """
    schedule_ids = sorted({schedule_id for schedule_id, _, _ in missing})
    codes = sorted({code for _, _, code in missing})
    loaded: dict[tuple[int, str], dict[RateKey, Rate]] = {(s, c): {} for s in schedule_ids for c in codes}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_RATES_PG, (schedule_ids, codes)).all()
    else:
        rows = conn.execute(_RATES, {"schedule_ids": schedule_ids, "codes": codes}).all()
    for schedule_id, code, modifier, allowed_amount, percent in rows:
        loaded[schedule_id, code][code, modifier] = Rate(allowed_amount, percent)
    return {(s, versions[s], c): rates for (s, c), rates in loaded.items()}


def load_plan(session: Session, plan_id: int) -> CachedPlan:
    """The plan (from the cache, else two queries), without reference rates."""
    cache = reference_cache(session).plans
    cached = cache.get_many((plan_id,)).get(plan_id)
    if cached is None:
        oon_schedule = aliased(FeeScheduleRow)
        stmt = (
            select(PlanRow, NetworkRow.code, oon_schedule.code)
            .join(NetworkRow, PlanRow.network_id == NetworkRow.id)
            .outerjoin(oon_schedule, PlanRow.oon_fee_schedule_id == oon_schedule.id)
            .where(PlanRow.id == plan_id)
        )
        row, network_code, oon_code = session.execute(stmt).one()
        by_position = select(CopayCategoryRow).order_by(CopayCategoryRow.position)
        categories = session.scalars(by_position.where(CopayCategoryRow.plan_id == plan_id))
        oon = (row.oon_fee_schedule_id, oon_code) if row.oon_fee_schedule_id is not None else None
        cached = CachedPlan(plan_from_rows(row, network_code, categories), oon)
        cache.put_many({plan_id: cached})
    return cached


def with_reference_rates(cached: CachedPlan, oon_schedule: FeeSchedule | None) -> Plan:
    """The plan with the reference schedule's rates for this claim set in its allowed basis."""
    benefit = cached.plan.out_of_network
    if benefit is None or oon_schedule is None:
        return cached.plan
    basis = replace(benefit.allowed_basis, fee_schedule=oon_schedule)
    return replace(cached.plan, out_of_network=replace(benefit, allowed_basis=basis))


def plan_from_rows(row: PlanRow, network_code: str, categories: Iterable[CopayCategoryRow]) -> Plan:
    """The domain Plan; its allowed basis has no reference rates yet (see with_reference_rates)."""
    return Plan(
        code=row.code,
        network_code=network_code,
        in_network=TierBenefit(row.in_deductible, row.in_out_of_pocket_max, row.in_coinsurance_rate),
        out_of_network=_out_of_network(row),
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


def _out_of_network(row: PlanRow) -> OutOfNetworkBenefit | None:
    if (
        row.oon_deductible is None
        or row.oon_out_of_pocket_max is None
        or row.oon_coinsurance_rate is None
        or row.oon_allowed_method is None
        or row.oon_allowed_percent is None
    ):
        return None  # out-of-network care is not covered (HMO)
    basis = AllowedBasis(AllowedBasisMethod(row.oon_allowed_method), row.oon_allowed_percent)
    return OutOfNetworkBenefit(row.oon_deductible, row.oon_out_of_pocket_max, row.oon_coinsurance_rate, basis)


def _authorizations(
    session: Session,
    member_pk: int,
    span: dict[str, date],
    claim: Claim,
    plan: Plan,
    prefetched: Prefetched | None,
) -> tuple[Authorization, ...]:
    if prefetched is not None and prefetched.authorizations is not None:
        return prefetched.authorizations  # the caller read them, or knew none are needed (())
    if not needs_authorizations(claim, plan):
        return ()
    rows = session.connection().execute(_AUTHORIZATIONS, {"member_pk": member_pk, **span}).all()
    return authorizations_from_rows(rows)


def authorizations_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[Authorization, ...]:
    """(id, number, procedure_codes, units, units_used, valid_from, valid_to, npi, status) rows."""
    return tuple(
        Authorization(
            id=auth_id,
            authorization_number=number,
            procedure_codes=CodeSet.parse(procedure_codes),
            units=units,
            units_used=units_used,
            valid_from=valid_from,
            valid_to=valid_to,
            provider_npi=npi,
            status=AuthorizationStatus(status),
        )
        for auth_id, number, procedure_codes, units, units_used, valid_from, valid_to, npi, status in rows
    )


def load_accumulators(session: Session, member_pk: int, plan_years: Iterable[int]) -> Accumulators:
    # Plain columns, not ORM rows: always the values as of now, even after an upsert in this session.
    params = {"member_pk": member_pk, "plan_years": sorted(set(plan_years))}
    return accumulators_from_rows(session.connection().execute(_ACCUMULATORS, params).all())


def accumulators_from_rows(rows: Iterable[Sequence[Any]]) -> Accumulators:
    """(plan_year, tier, deductible_met, out_of_pocket_met) rows as the core's balances."""
    return {
        (plan_year, Tier(tier)): AccumulatorBalance(deductible_met, out_of_pocket_met)
        for plan_year, tier, deductible_met, out_of_pocket_met in rows
    }


def _paid_lines(
    session: Session, member_pk: int, claim: Claim, codes: list[str], dates: list[date]
) -> frozenset[DuplicateKey]:
    params = {
        "member_pk": member_pk,
        "codes": codes,
        "dates": dates,
        "npi": claim.billing_provider_npi,
        "claim_id": claim.claim_id,
    }
    rows = session.connection().execute(_PAID_LINES, params).all()
    return paid_lines_from_rows(claim.billing_provider_npi, rows)


def paid_lines_from_rows(npi: str, rows: Iterable[Sequence[Any]]) -> frozenset[DuplicateKey]:
    """(procedure_code, modifiers, service_date) rows of paid lines billed by `npi`."""
    return frozenset(
        DuplicateKey(npi, code, tuple(modifiers.split(",")) if modifiers else (), service_date)
        for code, modifiers, service_date in rows
    )
