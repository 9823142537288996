"""Claims API schemas: the claim request (ClaimIn / EstimateIn) and the EOB response (EobOut).

The EOB is serialised by the domain (eob_to_dict) and returned as stored bytes; EobOut exists so
that openapi.json documents that JSON exactly.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints, field_validator

from .common import (
    Identifier,
    IsoDate,
    Modifier,
    MoneyOut,
    Npi,
    PositiveMoneyIn,
    ProcedureCode,
    StrictModel,
)

MAX_LINES = 50
MAX_DIAGNOSIS_CODES = 12  # the 837P / CMS-1500 limit

# ICD-10-CM: a letter, a digit, a letter or digit, then up to four more characters after an
# optional dot ("J06.9" or "J069"). Stored in the dotted form.
_ICD10_RE = re.compile(r"^([A-Z][0-9][0-9A-Z])\.?([0-9A-Z]{1,4})?$")


def _dotted_icd10(code: str) -> str:
    match = _ICD10_RE.match(code)
    if match is None:
        raise ValueError("not an ICD-10-CM diagnosis code (e.g. 'J06.9')")
    category, rest = match.groups()
    return f"{category}.{rest}" if rest else category


DiagnosisCode = Annotated[str, StringConstraints(max_length=8)]
PlaceOfService = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")]
# The shape POST /v1/authorizations accepts: any other value could never match one (and a NUL
# character would be stored with the claim).
AuthorizationNumber = Identifier


class LineIn(StrictModel):
    line_number: Annotated[StrictInt, Field(ge=1, le=999)]
    procedure_code: ProcedureCode
    modifiers: Annotated[list[Modifier], Field(default_factory=list, max_length=4)]
    units: Annotated[StrictInt, Field(ge=1, le=9999)]
    billed_amount: PositiveMoneyIn
    service_date: IsoDate
    authorization_number: AuthorizationNumber | None = None

    @field_validator("modifiers")
    @classmethod
    def _distinct_modifiers(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a modifier appears more than once")
        return v


class _ClaimBody(StrictModel):
    member_id: Identifier
    billing_provider_npi: Npi
    facility_npi: Npi | None = None
    place_of_service: PlaceOfService
    emergency: StrictBool = False
    received_date: IsoDate | None = Field(
        default=None, description="Defaults to the day the claim was first received."
    )
    diagnosis_codes: Annotated[list[DiagnosisCode], Field(min_length=1, max_length=MAX_DIAGNOSIS_CODES)]
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]

    @field_validator("diagnosis_codes")
    @classmethod
    def _icd10(cls, v: list[str]) -> list[str]:
        return [_dotted_icd10(code) for code in v]

    @field_validator("lines")
    @classmethod
    def _unique_line_numbers(cls, v: list[LineIn]) -> list[LineIn]:
        seen: set[int] = set()
        for line in v:
            if line.line_number in seen:
                raise ValueError(f"line_number {line.line_number} appears more than once")
            seen.add(line.line_number)
        return v


class ClaimIn(_ClaimBody):
    claim_id: Identifier = Field(description="The submitter's id and the idempotency key.")


class EstimateIn(_ClaimBody):
    claim_id: Identifier | None = None


# ---------------------------------------------------------------- the EOB (response only)

ClaimStatusOut = Literal["paid", "partially_paid", "denied", "pended", "voided"]
LineStatusOut = Literal["paid", "denied", "pended"]
NetworkStatusOut = Literal["in_network", "out_of_network"]


class AdjustmentOut(BaseModel):
    group: Literal["CO", "PR", "OA", "PI"] = Field(description="X12 835 claim adjustment group code")
    reason_code: str = Field(description="Claim adjustment reason code (CARC)")
    amount: MoneyOut


class AmountsOut(BaseModel):
    billed_amount: MoneyOut
    allowed_amount: MoneyOut
    network_discount_amount: MoneyOut = Field(description="The CO-45 amount")
    deductible_amount: MoneyOut
    copay_amount: MoneyOut
    coinsurance_amount: MoneyOut
    plan_paid_amount: MoneyOut
    patient_responsibility_amount: MoneyOut
    balance_billing_amount: MoneyOut = Field(description="The PR-45 amount the provider may bill")


class EobLineOut(AmountsOut):
    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    service_date: IsoDate
    status: LineStatusOut
    network_status: NetworkStatusOut | None = Field(description="null for an unknown member")
    protected: bool = Field(description="No Surprises Act protection")
    adjustments: list[AdjustmentOut]
    remark_codes: list[str] = Field(description="Remittance advice remark codes (RARC)")


class TierAccumulatorsOut(BaseModel):
    deductible: MoneyOut
    deductible_met: MoneyOut
    out_of_pocket_max: MoneyOut
    out_of_pocket_met: MoneyOut


class AccumulatorsOut(BaseModel):
    plan_year: int
    in_network: TierAccumulatorsOut
    out_of_network: TierAccumulatorsOut | None = Field(
        description="null when the plan does not cover out-of-network care"
    )


class _EobBody(BaseModel):
    status: ClaimStatusOut
    member_id: str
    plan_code: str | None = Field(description="null for an unknown member")
    billing_provider_npi: str
    network_status: NetworkStatusOut | None
    lines: list[EobLineOut]
    totals: AmountsOut
    accumulators: AccumulatorsOut | None = Field(
        description="The member's accumulators after this claim, for the plan year of its last "
        "service date; null for an unknown member"
    )


class EobOut(_EobBody):
    claim_id: str


class EstimateOut(_EobBody):
    claim_id: str | None = Field(description="As submitted; null when the estimate named none")
