"""Reference data (api.md "Reference data", scope admin): create and read networks, providers,
fee schedules, contracts, plans, members and prior authorizations.

Every POST checks before it inserts: structure (422, by the schemas), references to other data
(422 naming the field), then existence (409), then for contracts overlap (422). A unique-key
collision from a concurrent request is also a 409. Nothing is stored when a check fails: the
request is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Path
from sqlalchemy.orm import Session

from ...db.base import Base
from ...db.models import (
    AuthorizationRow,
    ContractRow,
    CopayCategoryRow,
    FeeScheduleRow,
    MemberRow,
    NetworkRow,
    PlanRow,
    ProviderRow,
)
from ...repositories import reference as repo
from ..auth import Access, scoped_router
from ..deps import SessionDep
from ..problems import Conflict, NotFound, Unprocessable
from ..schemas.common import Identifier
from ..schemas.reference import (
    AuthorizationIn,
    AuthorizationOut,
    ContractIn,
    ContractOut,
    FeeScheduleIn,
    FeeScheduleOut,
    FeeScheduleRateIn,
    MemberIn,
    MemberOut,
    NetworkIn,
    NetworkOut,
    PercentOfFeeScheduleIn,
    PlanIn,
    PlanOut,
    ProviderIn,
    ProviderOut,
)

RowT = TypeVar("RowT", bound=Base)

router = scoped_router(Access.ADMIN, prefix="/v1", tags=["reference data"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "It exists already", **_PROBLEM},
    422: {"description": "Invalid body, or it names something that does not exist", **_PROBLEM},
}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown", **_PROBLEM}}


def _insert(session: Session, row: RowT, what: str) -> RowT:
    try:
        return repo.add(session, row)
    except repo.AlreadyExists as exc:
        raise Conflict(f"{what} already exists") from exc


def _unknown(loc: Sequence[str], what: str) -> Unprocessable:
    msg = f"{what} does not exist"
    return Unprocessable(msg, errors=[{"loc": ["body", *loc], "msg": msg}])


# Networks ---------------------------------------------------------------------------------------


@router.post("/networks", status_code=201, responses=_CREATE_ERRORS, summary="Create a network")
def create_network(body: NetworkIn, session: SessionDep) -> NetworkOut:
    if repo.network_by_code(session, body.code) is not None:
        raise Conflict(f"network {body.code!r} already exists")
    row = _insert(session, NetworkRow(code=body.code, name=body.name), f"network {body.code!r}")
    return NetworkOut.of(row)


@router.get("/networks/{code}", responses=_READ_ERRORS, summary="Read a network")
def read_network(code: Identifier, session: SessionDep) -> NetworkOut:
    row = repo.network_by_code(session, code)
    if row is None:
        raise NotFound(f"no network {code!r}")
    return NetworkOut.of(row)


# Providers --------------------------------------------------------------------------------------


@router.post("/providers", status_code=201, responses=_CREATE_ERRORS, summary="Create a provider")
def create_provider(body: ProviderIn, session: SessionDep) -> ProviderOut:
    if repo.provider_by_npi(session, body.npi) is not None:
        raise Conflict(f"provider {body.npi} already exists")
    row = _insert(session, ProviderRow(npi=body.npi, name=body.name, tin=body.tin), f"provider {body.npi}")
    return ProviderOut.of(row)


@router.get("/providers/{npi}", responses=_READ_ERRORS, summary="Read a provider")
def read_provider(npi: Identifier, session: SessionDep) -> ProviderOut:
    row = repo.provider_by_npi(session, npi)
    if row is None:
        raise NotFound(f"no provider {npi!r}")
    return ProviderOut.of(row)


# Fee schedules ----------------------------------------------------------------------------------


def _duplicate_rate_errors(rates: list[FeeScheduleRateIn]) -> list[dict[str, Any]]:
    first_row: dict[tuple[str, str | None], int] = {}
    errors: list[dict[str, Any]] = []
    for index, rate in enumerate(rates):
        key = (rate.procedure_code, rate.modifier)
        if key in first_row:
            shown = rate.procedure_code + (f"-{rate.modifier}" if rate.modifier else "")
            msg = f"duplicate rate for {shown}: rates[{first_row[key]}] has it already"
            errors.append({"loc": ["body", "rates", index], "msg": msg})
        else:
            first_row[key] = index
    return errors


@router.post(
    "/fee-schedules",
    status_code=201,
    responses=_CREATE_ERRORS,
    summary="Create a fee schedule with its rates",
    description="Large schedules: create with few or no rates, then upload them as CSV "
    "(`PUT /v1/fee-schedules/{code}/rates`).",
)
def create_fee_schedule(body: FeeScheduleIn, session: SessionDep) -> FeeScheduleOut:
    errors = _duplicate_rate_errors(body.rates)
    if errors:
        raise Unprocessable(f"{len(errors)} duplicate rate row(s)", errors=errors)
    if repo.fee_schedule_by_code(session, body.code) is not None:
        raise Conflict(f"fee schedule {body.code!r} already exists")
    row = _insert(
        session,
        FeeScheduleRow(code=body.code, name=body.name, rates_version=1, rate_count=len(body.rates)),
        f"fee schedule {body.code!r}",
    )
    repo.add_rates(
        session, row.id, ((r.procedure_code, r.modifier or "", r.allowed_amount) for r in body.rates)
    )
    return FeeScheduleOut(code=row.code, name=row.name, rate_count=row.rate_count)


@router.get("/fee-schedules/{code}", responses=_READ_ERRORS, summary="Read a fee schedule's summary")
def read_fee_schedule(code: Identifier, session: SessionDep) -> FeeScheduleOut:
    row = repo.fee_schedule_by_code(session, code)
    if row is None:
        raise NotFound(f"no fee schedule {code!r}")
    return FeeScheduleOut(code=row.code, name=row.name, rate_count=row.rate_count)


# Contracts --------------------------------------------------------------------------------------


def _overlap_error(body: ContractIn, other: ContractRow) -> Unprocessable:
    # Name the end of the new range that falls inside the other contract.
    field = "effective_from" if other.effective_from <= body.effective_from else "effective_to"
    until = other.effective_to.isoformat() if other.effective_to else "open-ended"
    msg = (
        f"overlaps contract {other.id} of this provider in this network "
        f"({other.effective_from.isoformat()} to {until})"
    )
    return Unprocessable(msg, errors=[{"loc": ["body", field], "msg": msg}])


@router.post(
    "/contracts",
    status_code=201,
    responses=_CREATE_ERRORS,
    summary="Create a provider's contract in a network",
)
def create_contract(body: ContractIn, session: SessionDep) -> ContractOut:
    network = repo.network_by_code(session, body.network_code)
    if network is None:
        raise _unknown(["network_code"], f"network {body.network_code!r}")
    provider = repo.provider_by_npi(session, body.provider_npi, lock=True)
    if provider is None:
        raise _unknown(["provider_npi"], f"provider {body.provider_npi}")
    fee_schedule = repo.fee_schedule_by_code(session, body.fee_schedule_code)
    if fee_schedule is None:
        raise _unknown(["fee_schedule_code"], f"fee schedule {body.fee_schedule_code!r}")
    what = f"contract of provider {provider.npi} in network {network.code!r} from {body.effective_from}"
    if repo.contract_starting(session, network.id, provider.id, body.effective_from) is not None:
        raise Conflict(f"{what} already exists")
    other = repo.overlapping_contract(
        session, network.id, provider.id, body.effective_from, body.effective_to
    )
    if other is not None:
        raise _overlap_error(body, other)
    row = ContractRow(
        network=network,
        provider=provider,
        fee_schedule=fee_schedule,
        effective_from=body.effective_from,
        effective_to=body.effective_to,
        timely_filing_days=body.timely_filing_days,
        unlisted_percent_of_billed=body.unlisted_percent_of_billed,
    )
    return ContractOut.of(_insert(session, row, what))


@router.get("/contracts/{contract_id}", responses=_READ_ERRORS, summary="Read a contract")
def read_contract(
    # Bounded to the id column's range: a larger number would fail in the database (500), not 422.
    contract_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    session: SessionDep,
) -> ContractOut:
    row = repo.contract_by_id(session, contract_id)
    if row is None:
        raise NotFound(f"no contract {contract_id}")
    return ContractOut.of(row)


# Plans ------------------------------------------------------------------------------------------


def _plan_row(body: PlanIn, network: NetworkRow, oon_fee_schedule: FeeScheduleRow | None) -> PlanRow:
    oon = body.out_of_network
    return PlanRow(
        code=body.code,
        name=body.name,
        network=network,
        in_deductible=body.in_network.deductible,
        in_out_of_pocket_max=body.in_network.out_of_pocket_max,
        in_coinsurance_rate=body.in_network.coinsurance_rate,
        oon_deductible=oon.deductible if oon else None,
        oon_out_of_pocket_max=oon.out_of_pocket_max if oon else None,
        oon_coinsurance_rate=oon.coinsurance_rate if oon else None,
        oon_allowed_method=oon.allowed_basis.method if oon else None,
        oon_allowed_percent=oon.allowed_basis.percent if oon else None,
        oon_fee_schedule_id=oon_fee_schedule.id if oon_fee_schedule else None,
        prior_authorization_codes=list(body.prior_authorization_codes),
        copay_categories=[
            CopayCategoryRow(
                position=position,
                name=category.name,
                procedure_codes=list(category.procedure_codes),
                in_network_copay=category.in_network_copay,
                out_of_network_copay=category.out_of_network_copay,
                deductible_applies=category.deductible_applies,
                coinsurance_rate=category.coinsurance_rate,
            )
            for position, category in enumerate(body.copay_categories)
        ],
    )


def _reference_schedule(body: PlanIn, session: Session) -> FeeScheduleRow | None:
    """The out-of-network reference fee schedule the plan names, if any; 422 if it is unknown."""
    basis = body.out_of_network.allowed_basis if body.out_of_network else None
    if not isinstance(basis, PercentOfFeeScheduleIn):
        return None
    row = repo.fee_schedule_by_code(session, basis.fee_schedule_code)
    if row is None:
        loc = ["out_of_network", "allowed_basis", "fee_schedule_code"]
        raise _unknown(loc, f"fee schedule {basis.fee_schedule_code!r}")
    return row


@router.post("/plans", status_code=201, responses=_CREATE_ERRORS, summary="Create a benefit plan")
def create_plan(body: PlanIn, session: SessionDep) -> PlanOut:
    network = repo.network_by_code(session, body.network_code)
    if network is None:
        raise _unknown(["network_code"], f"network {body.network_code!r}")
    reference_schedule = _reference_schedule(body, session)
    if repo.plan_by_code(session, body.code) is not None:
        raise Conflict(f"plan {body.code!r} already exists")
    row = _insert(session, _plan_row(body, network, reference_schedule), f"plan {body.code!r}")
    return PlanOut.of(row, reference_schedule.code if reference_schedule else None)


@router.get("/plans/{code}", responses=_READ_ERRORS, summary="Read a plan, in the shape it was created")
def read_plan(code: Identifier, session: SessionDep) -> PlanOut:
    row = repo.plan_by_code(session, code)
    if row is None:
        raise NotFound(f"no plan {code!r}")
    schedule_id = row.oon_fee_schedule_id
    return PlanOut.of(row, repo.fee_schedule_code(session, schedule_id) if schedule_id else None)


# Members ----------------------------------------------------------------------------------------


@router.post("/members", status_code=201, responses=_CREATE_ERRORS, summary="Enrol a member in a plan")
def create_member(body: MemberIn, session: SessionDep) -> MemberOut:
    plan = repo.plan_by_code(session, body.plan_code)
    if plan is None:
        raise _unknown(["plan_code"], f"plan {body.plan_code!r}")
    if repo.member_by_member_id(session, body.member_id) is not None:
        raise Conflict(f"member {body.member_id!r} already exists")
    row = MemberRow(
        member_id=body.member_id,
        plan=plan,
        coverage_from=body.coverage_from,
        coverage_to=body.coverage_to,
    )
    return MemberOut.of(_insert(session, row, f"member {body.member_id!r}"))


@router.get("/members/{member_id}", responses=_READ_ERRORS, summary="Read a member's enrolment")
def read_member(member_id: Identifier, session: SessionDep) -> MemberOut:
    row = repo.member_by_member_id(session, member_id)
    if row is None:
        raise NotFound(f"no member {member_id!r}")
    return MemberOut.of(row)


# Prior authorizations ---------------------------------------------------------------------------


@router.post(
    "/authorizations", status_code=201, responses=_CREATE_ERRORS, summary="Record a prior authorization"
)
def create_authorization(body: AuthorizationIn, session: SessionDep) -> AuthorizationOut:
    member = repo.member_by_member_id(session, body.member_id)
    if member is None:
        raise _unknown(["member_id"], f"member {body.member_id!r}")
    provider = None
    if body.provider_npi is not None:
        provider = repo.provider_by_npi(session, body.provider_npi)
        if provider is None:
            raise _unknown(["provider_npi"], f"provider {body.provider_npi}")
    number = body.authorization_number
    if repo.authorization_by_number(session, number) is not None:
        raise Conflict(f"authorization {number!r} already exists")
    row = AuthorizationRow(
        authorization_number=number,
        member=member,
        provider=provider,
        procedure_codes=list(body.procedure_codes),
        units=body.units,
        units_used=0,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        status=body.status.value,
    )
    return AuthorizationOut.of(_insert(session, row, f"authorization {number!r}"))


@router.get(
    "/authorizations/{authorization_number}",
    responses=_READ_ERRORS,
    summary="Read a prior authorization, with the units used so far",
)
def read_authorization(authorization_number: Identifier, session: SessionDep) -> AuthorizationOut:
    row = repo.authorization_by_number(session, authorization_number)
    if row is None:
        raise NotFound(f"no authorization {authorization_number!r}")
    return AuthorizationOut.of(row)
