"""Step 8, pricing: the allowed amount, rounded once; no price found pends the line."""

from __future__ import annotations

from decimal import Decimal

from ..model import (
    AllowedBasisMethod,
    ClaimLine,
    Contract,
    FeeSchedule,
    OutOfNetworkBenefit,
    Rate,
)
from ..money import round_cents, weighted_median
from ..records import replace
from .base import ClaimScope, LineWork

PRICE_MISSING_REMARK = "N448"  # service not in the fee schedule or contracted arrangement


def pricing(work: LineWork, scope: ClaimScope) -> LineWork:
    allowed = _allowed(work, scope)
    if allowed is None:
        return replace(work, unpriced=True)
    return replace(work, allowed=min(work.line.billed_amount, allowed))


def _allowed(work: LineWork, scope: ClaimScope) -> Decimal | None:
    if work.protected:
        return _recognised_amount(work.line, scope)
    if work.contract is not None:
        return _contracted(work.line, work.contract)
    return _out_of_network(work.line, scope.plan.out_of_network)


def find_rate(schedule: FeeSchedule, line: ClaimLine) -> Rate | None:
    """The first of the line's modifiers, in order, with a rate for the code; else the plain code."""
    return _first_rate(schedule, _rate_keys(line))


def _rate_keys(line: ClaimLine) -> list[tuple[str, str]]:
    """The keys find_rate tries, in order."""
    return [(line.procedure_code, m) for m in line.modifiers] + [(line.procedure_code, "")]


def _first_rate(schedule: FeeSchedule, keys: list[tuple[str, str]]) -> Rate | None:
    for key in keys:
        rate = schedule.rates.get(key)
        if rate is not None and (rate.allowed_amount is not None or rate.percent_of_billed is not None):
            return rate
    return None


def per_unit(rate: Rate, line: ClaimLine) -> Decimal:
    """The rate's price for one unit of the line (a percentage of billed spreads over the units)."""
    if rate.allowed_amount is not None:
        return rate.allowed_amount
    assert rate.percent_of_billed is not None, "find_rate returns only priced rates"
    return line.billed_amount * rate.percent_of_billed / line.units


def _contracted(line: ClaimLine, contract: Contract) -> Decimal | None:
    rate = find_rate(contract.fee_schedule, line)
    if rate is not None:
        return round_cents(per_unit(rate, line) * line.units)
    if contract.unlisted_percent_of_billed is not None:
        return round_cents(line.billed_amount * contract.unlisted_percent_of_billed)
    return None


def _out_of_network(line: ClaimLine, benefit: OutOfNetworkBenefit | None) -> Decimal | None:
    if benefit is None:
        return None
    basis = benefit.allowed_basis
    if basis.method is AllowedBasisMethod.PERCENT_OF_BILLED:
        return round_cents(line.billed_amount * basis.percent)
    rate = find_rate(basis.fee_schedule, line) if basis.fee_schedule else None
    if rate is None:
        return None
    return round_cents(per_unit(rate, line) * line.units * basis.percent)


def _recognised_amount(line: ClaimLine, scope: ClaimScope) -> Decimal | None:
    """No Surprises Act: the QPA (median contracted rate in the plan's network that day) x units;
    with no contracted rate anywhere, the out-of-network basis."""
    keys = _rate_keys(line)  # once, not for each of the network's schedules
    rates = [
        (per_unit(rate, line), entry.contracts)  # each contract's rate counts once
        for entry in scope.ctx.network_rates
        if entry.in_effect(line.service_date) and (rate := _first_rate(entry.fee_schedule, keys)) is not None
    ]
    if rates:
        return weighted_median(rates) * line.units
    return _out_of_network(line, scope.plan.out_of_network)
