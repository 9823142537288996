"""Request and response bodies of the reference-data and directory endpoints (api.md).

Responses mirror the request bodies field for field, so what a client posts is what it reads back.
Each `...Out.of(row)` builds a response from ORM rows whose relationships the caller has loaded.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ...db.models import (
    AuthorizationRow,
    ContractRow,
    CopayCategoryRow,
    MemberRow,
    NetworkRow,
    PlanRow,
    ProviderRow,
)
from ...domain.model import AuthorizationStatus
from .common import (
    CodeRangeText,
    Identifier,
    IsoDate,
    Modifier,
    MoneyIn,
    MoneyOut,
    Name,
    Npi,
    PercentIn,
    PositiveMoneyIn,
    ProcedureCode,
    RateIn,
    RateOut,
    StrictModel,
)

# A share of billed charges: more than 100% would allow more than was billed.
ShareOfBilledIn = Annotated[RateIn, Field(gt=0)]
Tin = Annotated[str, Field(pattern=r"^[0-9]{9}$", description="Taxpayer id: nine digits, no dash")]
CategoryName = Annotated[Name, Field(max_length=100)]
CodeList = Annotated[list[CodeRangeText], Field(min_length=1, max_length=500)]


def _not_before(field: str, value: date | None, info: ValidationInfo) -> date | None:
    """An inclusive range's end may not precede its start (when the start itself was valid)."""
    start = info.data.get(field)
    if value is not None and start is not None and value < start:
        raise ValueError(f"must be on or after {field} ({start.isoformat()})")
    return value


class NetworkIn(StrictModel):
    code: Identifier
    name: Name


class NetworkOut(BaseModel):
    code: str
    name: str

    @classmethod
    def of(cls, row: NetworkRow) -> NetworkOut:
        return cls(code=row.code, name=row.name)


class ProviderIn(StrictModel):
    npi: Npi
    name: Name
    tin: Tin | None = None


class ProviderOut(BaseModel):
    npi: str
    name: str
    tin: str | None

    @classmethod
    def of(cls, row: ProviderRow) -> ProviderOut:
        return cls(npi=row.npi, name=row.name, tin=row.tin)


class FeeScheduleRateIn(StrictModel):
    procedure_code: ProcedureCode
    modifier: Modifier | None = Field(default=None, description='null, absent or "" for none')
    allowed_amount: PositiveMoneyIn

    @field_validator("modifier", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v  # the CSV upload spells "no modifier" as an empty cell


class FeeScheduleIn(StrictModel):
    code: Identifier
    name: Name
    rates: list[FeeScheduleRateIn] = Field(default_factory=list, max_length=20_000)


class FeeScheduleOut(BaseModel):
    code: str
    name: str
    rate_count: int


class ContractIn(StrictModel):
    network_code: Identifier
    provider_npi: Npi
    fee_schedule_code: Identifier
    effective_from: IsoDate
    effective_to: IsoDate | None = None
    timely_filing_days: int | None = Field(default=None, ge=1, le=3650)
    unlisted_percent_of_billed: ShareOfBilledIn | None = None

    @field_validator("effective_to")
    @classmethod
    def _ends_after_start(cls, v: date | None, info: ValidationInfo) -> date | None:
        return _not_before("effective_from", v, info)


class ContractOut(BaseModel):
    id: int
    network_code: str
    provider_npi: str
    fee_schedule_code: str
    effective_from: date
    effective_to: date | None
    timely_filing_days: int | None
    unlisted_percent_of_billed: RateOut | None

    @classmethod
    def of(cls, row: ContractRow) -> ContractOut:
        return cls(
            id=row.id,
            network_code=row.network.code,
            provider_npi=row.provider.npi,
            fee_schedule_code=row.fee_schedule.code,
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            timely_filing_days=row.timely_filing_days,
            unlisted_percent_of_billed=row.unlisted_percent_of_billed,
        )


class InNetworkIn(StrictModel):
    deductible: MoneyIn
    out_of_pocket_max: MoneyIn
    coinsurance_rate: RateIn

    @field_validator("out_of_pocket_max")
    @classmethod
    def _covers_deductible(cls, v: MoneyIn, info: ValidationInfo) -> MoneyIn:
        # The deductible counts toward the out-of-pocket maximum (ACA), so it cannot exceed it.
        deductible = info.data.get("deductible")
        if deductible is not None and v < deductible:
            raise ValueError(f"must be at least the deductible ({deductible})")
        return v


class PercentOfBilledIn(StrictModel):
    method: Literal["percent_of_billed"]
    percent: ShareOfBilledIn


class PercentOfFeeScheduleIn(StrictModel):
    method: Literal["percent_of_fee_schedule"]
    fee_schedule_code: Identifier
    percent: PercentIn


AllowedBasisIn = Annotated[PercentOfBilledIn | PercentOfFeeScheduleIn, Field(discriminator="method")]


class OutOfNetworkIn(InNetworkIn):
    allowed_basis: AllowedBasisIn


class CopayCategoryIn(StrictModel):
    name: CategoryName
    procedure_codes: CodeList
    in_network_copay: MoneyIn | None = None
    out_of_network_copay: MoneyIn | None = None
    deductible_applies: bool = True
    coinsurance_rate: RateIn | None = None


class PlanIn(StrictModel):
    code: Identifier
    name: Name
    network_code: Identifier
    in_network: InNetworkIn
    # Required even when null: leaving it out must not silently make a plan in-network only.
    out_of_network: OutOfNetworkIn | None
    copay_categories: list[CopayCategoryIn] = Field(default_factory=list, max_length=100)
    prior_authorization_codes: list[CodeRangeText] = Field(default_factory=list, max_length=500)


class InNetworkOut(BaseModel):
    deductible: MoneyOut
    out_of_pocket_max: MoneyOut
    coinsurance_rate: RateOut


class PercentOfBilledOut(BaseModel):
    method: Literal["percent_of_billed"] = "percent_of_billed"
    percent: RateOut


class PercentOfFeeScheduleOut(BaseModel):
    method: Literal["percent_of_fee_schedule"] = "percent_of_fee_schedule"
    fee_schedule_code: str
    percent: RateOut


class OutOfNetworkOut(InNetworkOut):
    allowed_basis: PercentOfBilledOut | PercentOfFeeScheduleOut


class CopayCategoryOut(BaseModel):
    name: str
    procedure_codes: list[str]
    in_network_copay: MoneyOut | None
    out_of_network_copay: MoneyOut | None
    deductible_applies: bool
    coinsurance_rate: RateOut | None

    @classmethod
    def of(cls, row: CopayCategoryRow) -> CopayCategoryOut:
        return cls(
            name=row.name,
            procedure_codes=row.procedure_codes,
            in_network_copay=row.in_network_copay,
            out_of_network_copay=row.out_of_network_copay,
            deductible_applies=row.deductible_applies,
            coinsurance_rate=row.coinsurance_rate,
        )


class PlanOut(BaseModel):
    code: str
    name: str
    network_code: str
    in_network: InNetworkOut
    out_of_network: OutOfNetworkOut | None
    copay_categories: list[CopayCategoryOut]
    prior_authorization_codes: list[str]

    @classmethod
    def of(cls, row: PlanRow, oon_fee_schedule_code: str | None) -> PlanOut:
        """`oon_fee_schedule_code`: the code of row.oon_fee_schedule_id (PlanRow has no relationship)."""
        return cls(
            code=row.code,
            name=row.name,
            network_code=row.network.code,
            in_network=InNetworkOut(
                deductible=row.in_deductible,
                out_of_pocket_max=row.in_out_of_pocket_max,
                coinsurance_rate=row.in_coinsurance_rate,
            ),
            out_of_network=_out_of_network_out(row, oon_fee_schedule_code),
            copay_categories=[CopayCategoryOut.of(c) for c in row.copay_categories],
            prior_authorization_codes=row.prior_authorization_codes,
        )


def _out_of_network_out(row: PlanRow, fee_schedule_code: str | None) -> OutOfNetworkOut | None:
    if (
        row.oon_deductible is None
        or row.oon_out_of_pocket_max is None
        or row.oon_coinsurance_rate is None
        or row.oon_allowed_percent is None
    ):
        return None
    basis: PercentOfBilledOut | PercentOfFeeScheduleOut
    if fee_schedule_code is None:
        basis = PercentOfBilledOut(percent=row.oon_allowed_percent)
    else:
        basis = PercentOfFeeScheduleOut(fee_schedule_code=fee_schedule_code, percent=row.oon_allowed_percent)
    return OutOfNetworkOut(
        deductible=row.oon_deductible,
        out_of_pocket_max=row.oon_out_of_pocket_max,
        coinsurance_rate=row.oon_coinsurance_rate,
        allowed_basis=basis,
    )


class MemberIn(StrictModel):
    member_id: Identifier
    plan_code: Identifier
    coverage_from: IsoDate
    coverage_to: IsoDate | None = None

    @field_validator("coverage_to")
    @classmethod
    def _ends_after_start(cls, v: date | None, info: ValidationInfo) -> date | None:
        return _not_before("coverage_from", v, info)


class MemberOut(BaseModel):
    member_id: str
    plan_code: str
    coverage_from: date
    coverage_to: date | None

    @classmethod
    def of(cls, row: MemberRow) -> MemberOut:
        return cls(
            member_id=row.member_id,
            plan_code=row.plan.code,
            coverage_from=row.coverage_from,
            coverage_to=row.coverage_to,
        )


class AuthorizationIn(StrictModel):
    authorization_number: Identifier
    member_id: Identifier
    procedure_codes: CodeList
    units: int = Field(ge=1, le=9999)
    valid_from: IsoDate
    valid_to: IsoDate
    provider_npi: Npi | None = None
    status: AuthorizationStatus

    @field_validator("valid_to")
    @classmethod
    def _ends_after_start(cls, v: date, info: ValidationInfo) -> date | None:
        return _not_before("valid_from", v, info)


class AuthorizationOut(BaseModel):
    authorization_number: str
    member_id: str
    procedure_codes: list[str]
    units: int
    units_used: int
    valid_from: date
    valid_to: date
    provider_npi: str | None
    status: AuthorizationStatus

    @classmethod
    def of(cls, row: AuthorizationRow) -> AuthorizationOut:
        return cls(
            authorization_number=row.authorization_number,
            member_id=row.member.member_id,
            procedure_codes=row.procedure_codes,
            units=row.units,
            units_used=row.units_used,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            provider_npi=row.provider.npi if row.provider is not None else None,
            status=AuthorizationStatus(row.status),
        )


class DirectoryEntryOut(BaseModel):
    network_code: str
    npi: str
    as_of: date
    in_network: bool
    contract: ContractOut | None
