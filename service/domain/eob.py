"""The Explanation of Benefits the core returns, its JSON form, and the invariants as functions."""

from __future__ import annotations

import operator
from dataclasses import field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .model import Tier
from .money import ZERO, fmt
from .records import record, replace


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


@record
class Adjustment:
    group: Group
    reason_code: str  # CARC
    amount: Decimal


@record
class AuthorizationUse:
    authorization_id: int
    units: int


@record
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


_amounts = operator.attrgetter(*MONEY_FIELDS)


@record
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
        # Column sums of the lines' amounts, in MONEY_FIELDS order (the fields' order, which a
        # test checks): one attrgetter call a line, 13 -> 5 us for three lines.
        return (
            cls(*[sum(column, ZERO) for column in zip(*map(_amounts, lines), strict=True)])
            if lines
            else cls()
        )


@record
class TierAccumulators:
    deductible: Decimal
    deductible_met: Decimal
    out_of_pocket_max: Decimal
    out_of_pocket_met: Decimal


@record
class AccumulatorSnapshot:
    plan_year: int
    in_network: TierAccumulators
    out_of_network: TierAccumulators | None  # None when the plan covers no out-of-network care


@record
class AccumulatorPosting:
    """What a claim adds to one accumulator bucket. Voiding subtracts it again."""

    plan_year: int
    tier: Tier
    deductible: Decimal
    out_of_pocket: Decimal


@record
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


def status_of(lines: tuple[EobLine, ...]) -> ClaimStatus:
    """The claim status the line statuses make (adjudication.md, "Claim status")."""
    statuses = {ln.status for ln in lines}
    if LineStatus.PENDED in statuses:
        return ClaimStatus.PENDED
    if statuses == {LineStatus.PAID}:
        return ClaimStatus.PAID
    return ClaimStatus.PARTIALLY_PAID if LineStatus.PAID in statuses else ClaimStatus.DENIED


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


# ---------------------------------------------------------------- invariants (adjudication.md)

# Eligibility denials are the only ones an in-network or protected member can owe.
ELIGIBILITY_CARCS = frozenset({"26", "27", "31"})
CONTRACTUAL = "45"  # CARC 45: charge exceeds the allowed amount


def check_invariants(eob: Eob) -> list[str]:
    """The invariants 1-5 of adjudication.md (plus the shape rules for denied and pended lines,
    the totals, the status and the snapshot's limits) that one EOB must satisfy.

    Returns one message per violation; an empty list means the EOB is consistent.
    """
    if eob.status is ClaimStatus.VOIDED:
        # A void keeps the lines as adjudicated (pended ones too): check them as they were.
        eob = replace(eob, status=status_of(eob.lines))
    pended = eob.status is ClaimStatus.PENDED
    problems = [
        f"line {ln.line_number}: {problem}"
        for ln in eob.lines
        for problem in (_pended_line_problems(ln) if pended else _line_problems(ln))
    ]
    problems += _claim_problems(eob)
    return problems


def _adjusted(adjustments: tuple[Adjustment, ...]) -> Decimal:
    return sum((a.amount for a in adjustments), ZERO)


def _line_problems(ln: EobLine) -> list[str]:
    # The adjustments' sums in one pass (every check runs on every EOB before it is posted):
    # all of them, the PR group's, CO-45 and PR-45.
    adjusted = patient = co_45 = pr_45 = ZERO
    for a in ln.adjustments:
        adjusted += a.amount
        if a.group == Group.PR:
            patient += a.amount
            if a.reason_code == CONTRACTUAL:
                pr_45 += a.amount
        elif a.group == Group.CO and a.reason_code == CONTRACTUAL:
            co_45 += a.amount
    cost_share = ln.deductible_amount + ln.copay_amount + ln.coinsurance_amount
    paid = ln.status is LineStatus.PAID
    checks = [
        (ln.billed_amount == ln.plan_paid_amount + adjusted, "1: billed != plan paid + adjustments"),
        (ln.patient_responsibility_amount == patient, "2: patient != sum of PR adjustments"),
        (
            not paid or ln.patient_responsibility_amount == cost_share + ln.balance_billing_amount,
            "2: patient != deductible + copay + coinsurance + balance billing",
        ),
        (
            not paid or ln.allowed_amount == ln.plan_paid_amount + cost_share,
            "3: allowed != plan paid + cost share",
        ),
        (ln.network_discount_amount == co_45, "network discount != CO-45"),
        (ln.balance_billing_amount == pr_45, "balance billing != PR-45"),
        (ln.status is not LineStatus.PENDED, "a pended line on a claim that is not pended"),
    ]
    return [message for ok, message in checks if not ok] + _protection_problems(ln) + _bounds_problems(ln)


def _protection_problems(ln: EobLine) -> list[str]:
    if ln.network_status is not Tier.IN_NETWORK and not ln.protected:
        return []
    problems = []
    if ln.balance_billing_amount:
        problems.append("4: balance billing on an in-network or protected line")
    if ln.status is LineStatus.PAID and ln.patient_responsibility_amount > ln.allowed_amount:
        problems.append("4: patient responsibility exceeds allowed")
    member_owes = {a.reason_code for a in ln.adjustments if a.group is Group.PR}
    if ln.status is LineStatus.DENIED and member_owes - ELIGIBILITY_CARCS:
        problems.append(f"4: member owes a denial the provider controls: PR-{sorted(member_owes)}")
    return problems


def _bounds_problems(ln: EobLine) -> list[str]:
    problems = [f"5: {f} is negative" for f, v in zip(MONEY_FIELDS, _amounts(ln), strict=True) if v < 0]
    problems += [
        f"5: adjustment {a.group}-{a.reason_code} is negative" for a in ln.adjustments if a.amount < 0
    ]
    if ln.plan_paid_amount > ln.allowed_amount:
        problems.append("5: plan paid exceeds allowed")
    if ln.allowed_amount > ln.billed_amount:
        problems.append("5: allowed exceeds billed")
    if ln.status is LineStatus.DENIED and (ln.allowed_amount or len(ln.adjustments) != 1):
        problems.append("a denied line must show allowed 0 and its billed amount in one adjustment")
    return problems


def _pended_line_problems(ln: EobLine) -> list[str]:
    unadjudicated = [f for f in MONEY_FIELDS if f != "billed_amount" and getattr(ln, f)]
    problems = [f"pended claim: {f} is not 0" for f in unadjudicated]
    if ln.status is not LineStatus.PENDED:
        problems.append("pended claim: line is not pended")
    if ln.adjustments or ln.authorization_use or ln.accumulator_tier:
        problems.append("pended claim: line has adjustments, an authorization use or a posting")
    if ln.billed_amount < 0:
        problems.append("5: billed_amount is negative")
    return problems


def _claim_problems(eob: Eob) -> list[str]:
    totals = eob.totals
    adjusted = sum((_adjusted(ln.adjustments) for ln in eob.lines), ZERO)
    problems = []
    if totals != Totals.of(eob.lines):
        problems.append("totals are not the sums of the lines")
    if eob.status is not ClaimStatus.PENDED and totals.billed_amount != totals.plan_paid_amount + adjusted:
        problems.append("1: claim billed != plan paid + adjustments")
    if eob.status is ClaimStatus.PENDED and eob.postings:
        problems.append("pended claim: postings")
    if eob.status not in (ClaimStatus.VOIDED, status_of(eob.lines)):
        problems.append(f"status {eob.status} does not follow from the line statuses")
    return problems + _snapshot_problems(eob.accumulators)


def _snapshot_problems(snapshot: AccumulatorSnapshot | None) -> list[str]:
    if snapshot is None:
        return []
    tiers = [("in_network", snapshot.in_network), ("out_of_network", snapshot.out_of_network)]
    problems = []
    for name, t in tiers:
        if t is None:
            continue
        if not ZERO <= t.deductible_met <= t.deductible:
            problems.append(f"6: {name} deductible met outside 0..deductible")
        if not ZERO <= t.out_of_pocket_met <= t.out_of_pocket_max:
            problems.append(f"6: {name} out-of-pocket met outside 0..maximum")
    return problems
