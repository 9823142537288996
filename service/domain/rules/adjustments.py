"""Step 10, adjustments: turn a decided line into its EOB line, explaining every dollar."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..eob import CONTRACTUAL, Adjustment, EobLine, Group, LineStatus
from ..money import ZERO
from .base import LineWork
from .pricing import PRICE_MISSING_REMARK

NSA_REMARK = "N830"  # processed under the No Surprises Act
DEDUCTIBLE = "1"
COINSURANCE = "2"
COPAY = "3"


def eob_line(work: LineWork) -> EobLine:
    if work.denial is not None:
        return _denied(work)
    return _paid(work)


def pended_line(work: LineWork) -> EobLine:
    """A line of a pended claim: billed as submitted, nothing else until it is adjudicated."""
    remarks = (PRICE_MISSING_REMARK,) if work.unpriced else ()
    return EobLine(**_as_submitted(work, LineStatus.PENDED), remark_codes=remarks)


def _as_submitted(work: LineWork, status: LineStatus) -> dict[str, Any]:
    """The EOB line's fields that every status shares: the line as billed, and its network."""
    line = work.line
    return {
        "line_number": line.line_number,
        "procedure_code": line.procedure_code,
        "modifiers": line.modifiers,
        "units": line.units,
        "service_date": line.service_date,
        "status": status,
        "network_status": work.network_status,
        "protected": work.protected,
        "billed_amount": line.billed_amount,
    }


def _remarks(work: LineWork) -> tuple[str, ...]:
    return (NSA_REMARK, work.protection_remark) if work.protection_remark else ()


def _denied(work: LineWork) -> EobLine:
    assert work.denial is not None
    billed = work.line.billed_amount
    return EobLine(
        **_as_submitted(work, LineStatus.DENIED),
        remark_codes=_remarks(work),
        adjustments=(Adjustment(work.denial.group, work.denial.reason_code, billed),),
        patient_responsibility_amount=billed if work.denial.group is Group.PR else ZERO,
    )


def _paid(work: LineWork) -> EobLine:
    assert work.allowed is not None and work.cost_share is not None, "paid lines are priced"
    allowed, share = work.allowed, work.cost_share
    over_allowed = work.line.billed_amount - allowed
    # In network (or protected) the provider writes off the excess; otherwise the member may owe it.
    written_off = work.in_network_terms
    balance_billing = ZERO if written_off else over_allowed
    # One construction with every field (a blank line then dataclasses.replace built it twice).
    return EobLine(
        **_as_submitted(work, LineStatus.PAID),
        remark_codes=_remarks(work),
        allowed_amount=allowed,
        network_discount_amount=over_allowed if written_off else ZERO,
        deductible_amount=share.deductible,
        copay_amount=share.copay,
        coinsurance_amount=share.coinsurance,
        plan_paid_amount=allowed - share.total,
        patient_responsibility_amount=share.total + balance_billing,
        balance_billing_amount=balance_billing,
        adjustments=_nonzero(
            (Group.CO if written_off else Group.PR, CONTRACTUAL, over_allowed),
            (Group.PR, DEDUCTIBLE, share.deductible),
            (Group.PR, COINSURANCE, share.coinsurance),
            (Group.PR, COPAY, share.copay),
        ),
        accumulator_tier=work.cost_tier,
        authorization_use=work.authorization_use,
    )


def _nonzero(*candidates: tuple[Group, str, Decimal]) -> tuple[Adjustment, ...]:
    return tuple(Adjustment(group, code, amount) for group, code, amount in candidates if amount)
