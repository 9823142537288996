"""Step 9, cost share: copay, deductible, coinsurance, capped by the out-of-pocket maximum."""

from __future__ import annotations

from decimal import Decimal

from ..model import CopayCategory, OutOfNetworkBenefit, Plan, Tier, TierBenefit
from ..money import ZERO, round_cents
from ..records import record, replace
from .base import ClaimScope, CostShare, LineWork


@record
class Terms:
    """The cost-sharing terms for one line in one tier."""

    copay: Decimal
    deductible_applies: bool
    coinsurance_rate: Decimal


def cost_share(work: LineWork, scope: ClaimScope) -> LineWork:
    assert work.allowed is not None, "pricing runs before cost share"
    tier = work.cost_tier
    plan_year = work.line.service_date.year
    benefit = _benefit(scope.plan, tier)
    met = scope.balance(plan_year, tier)
    share = share_of(
        work.allowed,
        terms_for(scope.plan, tier, work.line.procedure_code),
        deductible_left=max(ZERO, benefit.deductible - met.deductible_met),
        out_of_pocket_left=max(ZERO, benefit.out_of_pocket_max - met.out_of_pocket_met),
    )
    scope.post(plan_year, tier, share)
    return replace(work, cost_share=share)


def _benefit(plan: Plan, tier: Tier) -> TierBenefit | OutOfNetworkBenefit:
    if tier is Tier.IN_NETWORK:
        return plan.in_network
    assert plan.out_of_network is not None, "lines not covered out of network are denied earlier"
    return plan.out_of_network


def terms_for(plan: Plan, tier: Tier, procedure_code: str) -> Terms:
    """The first copay category matching the code, when it gives a copay in this tier; else the
    tier's plain rules (no copay, deductible applies, the tier's coinsurance)."""
    category = next((c for c in plan.copay_categories if c.procedure_codes.contains(procedure_code)), None)
    tier_rate = _benefit(plan, tier).coinsurance_rate
    copay = category.copay_for(tier) if category else None
    if category is None or copay is None:
        return Terms(copay=ZERO, deductible_applies=True, coinsurance_rate=tier_rate)
    return _category_terms(category, copay, tier_rate)


def _category_terms(category: CopayCategory, copay: Decimal, tier_rate: Decimal) -> Terms:
    rate = category.coinsurance_rate if category.coinsurance_rate is not None else tier_rate
    return Terms(copay=copay, deductible_applies=category.deductible_applies, coinsurance_rate=rate)


def share_of(
    allowed: Decimal, terms: Terms, *, deductible_left: Decimal, out_of_pocket_left: Decimal
) -> CostShare:
    copay = min(terms.copay, allowed)
    deductible = min(allowed - copay, deductible_left) if terms.deductible_applies else ZERO
    coinsurance = round_cents((allowed - copay - deductible) * terms.coinsurance_rate)
    return _cap(CostShare(copay, deductible, coinsurance), out_of_pocket_left)


def _cap(share: CostShare, out_of_pocket_left: Decimal) -> CostShare:
    """Over the out-of-pocket maximum: cut coinsurance, then copay, then deductible."""
    excess = max(ZERO, share.total - out_of_pocket_left)
    coinsurance_cut = min(share.coinsurance, excess)
    copay_cut = min(share.copay, excess - coinsurance_cut)
    deductible_cut = excess - coinsurance_cut - copay_cut
    return CostShare(
        copay=share.copay - copay_cut,
        deductible=share.deductible - deductible_cut,
        coinsurance=share.coinsurance - coinsurance_cut,
    )
