"""The Explanation of Benefits the core returns, its JSON form, and the invariants as functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .model import Tier
from .money import ZERO, fmt


class LineStatus(StrEnum):
    PAID = "paid"
    DENIED = "denied"
    PENDED = "pended"


class ClaimStatus(StrEnum):
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    PENDED = "pended"
    VOIDED = "voided"


class Group(StrEnum):
    """X12 835 claim adjustment group codes."""

    CO = "CO"  # contractual obligation: the provider writes it off
    PR = "PR"  # patient responsibility
    OA = "OA"  # other adjustment
    PI = "PI"  # payer initiated


@dataclass(frozen=True, slots=True)
class Adjustment:
    group: Group
    reason_code: str  # CARC
    amount: Decimal


@dataclass(frozen=True, slots=True)
class AuthorizationUse:
    authorization_id: int
    units: int


@dataclass(frozen=True, slots=True)
class EobLine:
    line_number: int
    procedure_code: str
    modifiers: tuple[str, ...]
    units: int
    service_date: date
    status: LineStatus
    network_status: Tier | None  # the billing provider's, null for an unknown member
    protected: bool  # No Surprises Act protection (priced and cost-shared in network)
    billed_amount: Decimal
    allowed_amount: Decimal = ZERO
    network_discount_amount: Decimal = ZERO
    deductible_amount: Decimal = ZERO
    copay_amount: Decimal = ZERO
    coinsurance_amount: Decimal = ZERO
    plan_paid_amount: Decimal = ZERO
    patient_responsibility_amount: Decimal = ZERO
    balance_billing_amount: Decimal = ZERO
    adjustments: tuple[Adjustment, ...] = ()
    remark_codes: tuple[str, ...] = ()
    # Internal: the tier whose accumulators this line posts to, and the authorization it used.
    # Not part of the API response.
    accumulator_tier: Tier | None = None
    authorization_use: AuthorizationUse | None = None


MONEY_FIELDS = (
    "billed_amount",
    "allowed_amount",
    "network_discount_amount",
    "deductible_amount",
    "copay_amount",
    "coinsurance_amount",
    "plan_paid_amount",
    "patient_responsibility_amount",
    "balance_billing_amount",
)


@dataclass(frozen=True, slots=True)
class Totals:
    billed_amount: Decimal = ZERO
    allowed_amount: Decimal = ZERO
    network_discount_amount: Decimal = ZERO
    deductible_amount: Decimal = ZERO
    copay_amount: Decimal = ZERO
    coinsurance_amount: Decimal = ZERO
    plan_paid_amount: Decimal = ZERO
    patient_responsibility_amount: Decimal = ZERO
    balance_billing_amount: Decimal = ZERO

    @classmethod
    def of(cls, lines: tuple[EobLine, ...]) -> Totals:
        return cls(**{f: sum((getattr(ln, f) for ln in lines), ZERO) for f in MONEY_FIELDS})


@dataclass(frozen=True, slots=True)
class TierAccumulators:
    deductible: Decimal
    deductible_met: Decimal
    out_of_pocket_max: Decimal
    out_of_pocket_met: Decimal


@dataclass(frozen=True, slots=True)
class AccumulatorSnapshot:
    plan_year: int
    in_network: TierAccumulators
    out_of_network: TierAccumulators | None  # None when the plan covers no out-of-network care


@dataclass(frozen=True, slots=True)
class AccumulatorPosting:
    """What a claim adds to one accumulator bucket. Voiding subtracts it again."""

    plan_year: int
    tier: Tier
    deductible: Decimal
    out_of_pocket: Decimal


@dataclass(frozen=True, slots=True)
class Eob:
    claim_id: str
    status: ClaimStatus
    member_id: str
    plan_code: str | None
    billing_provider_npi: str
    network_status: Tier | None
    lines: tuple[EobLine, ...]
    totals: Totals
    accumulators: AccumulatorSnapshot | None
    postings: tuple[AccumulatorPosting, ...] = field(default=())

    @property
    def authorization_uses(self) -> tuple[AuthorizationUse, ...]:
        return tuple(ln.authorization_use for ln in self.lines if ln.authorization_use)


# ---------------------------------------------------------------- JSON form (api.md)


def _tier_acc_to_dict(t: TierAccumulators) -> dict[str, str]:
    return {
        "deductible": fmt(t.deductible),
        "deductible_met": fmt(t.deductible_met),
        "out_of_pocket_max": fmt(t.out_of_pocket_max),
        "out_of_pocket_met": fmt(t.out_of_pocket_met),
    }


def accumulators_to_dict(a: AccumulatorSnapshot) -> dict[str, Any]:
    return {
        "plan_year": a.plan_year,
        "in_network": _tier_acc_to_dict(a.in_network),
        "out_of_network": _tier_acc_to_dict(a.out_of_network) if a.out_of_network else None,
    }


def line_to_dict(ln: EobLine) -> dict[str, Any]:
    out: dict[str, Any] = {
        "line_number": ln.line_number,
        "procedure_code": ln.procedure_code,
        "modifiers": list(ln.modifiers),
        "units": ln.units,
        "service_date": ln.service_date.isoformat(),
        "status": ln.status.value,
        "network_status": ln.network_status.value if ln.network_status else None,
        "protected": ln.protected,
    }
    for f in MONEY_FIELDS:
        out[f] = fmt(getattr(ln, f))
    out["adjustments"] = [
        {"group": a.group.value, "reason_code": a.reason_code, "amount": fmt(a.amount)}
        for a in ln.adjustments
    ]
    out["remark_codes"] = list(ln.remark_codes)
    return out


def eob_to_dict(eob: Eob) -> dict[str, Any]:
    """The EOB exactly as api.md shows it; money as two-place strings."""
    return {
        "claim_id": eob.claim_id,
        "status": eob.status.value,
        "member_id": eob.member_id,
        "plan_code": eob.plan_code,
        "billing_provider_npi": eob.billing_provider_npi,
        "network_status": eob.network_status.value if eob.network_status else None,
        "lines": [line_to_dict(ln) for ln in eob.lines],
        "totals": {f: fmt(getattr(eob.totals, f)) for f in MONEY_FIELDS},
        "accumulators": accumulators_to_dict(eob.accumulators) if eob.accumulators else None,
    }
