"""adjudicate(claim, context) -> Eob: the rules of adjudication.md, run line by line."""

from __future__ import annotations

from collections.abc import Mapping

from .eob import (
    AccumulatorPosting,
    AccumulatorSnapshot,
    Eob,
    EobLine,
    TierAccumulators,
    Totals,
    status_of,
)
from .model import (
    AccumulatorBalance,
    AdjudicationContext,
    Claim,
    OutOfNetworkBenefit,
    Plan,
    Tier,
    TierBenefit,
)
from .rules import ClaimScope, LineWork, run_rules
from .rules.adjustments import eob_line, pended_line
from .rules.base import NOTHING_MET
from .rules.eligibility import unknown_member

Balances = Mapping[tuple[int, Tier], AccumulatorBalance]


def adjudicate(claim: Claim, ctx: AdjudicationContext, *, estimate: bool = False) -> Eob:
    """Adjudicate one claim. Pure: the context holds everything; the result says what to post.

    `estimate` runs every rule except duplicates and timely filing (the caller posts nothing).
    """
    lines = sorted(claim.lines, key=lambda ln: ln.line_number)
    member = ctx.member
    if member is None:
        denied = tuple(eob_line(unknown_member(ln)) for ln in lines)
        return _eob(claim, network_status=None, lines=denied, accumulators=None, posted=())

    scope = ClaimScope(claim, member, ctx, dict(ctx.accumulators), {})
    works = [run_rules(LineWork(ln), scope, estimate=estimate) for ln in lines]
    pends = any(w.unpriced for w in works)
    eob_lines = tuple(pended_line(w) if pends else eob_line(w) for w in works)
    after = ctx.accumulators if pends else scope.accumulators
    latest_year = max(ln.service_date.year for ln in lines)
    return _eob(
        claim,
        network_status=works[0].network_status,  # the billing provider's on the first line's date
        lines=eob_lines,
        accumulators=snapshot(member.plan, after, latest_year),
        posted=postings(ctx.accumulators, after),
        plan_code=member.plan.code,
    )


def _eob(
    claim: Claim,
    *,
    network_status: Tier | None,
    lines: tuple[EobLine, ...],
    accumulators: AccumulatorSnapshot | None,
    posted: tuple[AccumulatorPosting, ...],
    plan_code: str | None = None,
) -> Eob:
    return Eob(
        claim_id=claim.claim_id,
        status=status_of(lines),
        member_id=claim.member_id,
        plan_code=plan_code,
        billing_provider_npi=claim.billing_provider_npi,
        network_status=network_status,
        lines=lines,
        totals=Totals.of(lines),
        accumulators=accumulators,
        postings=posted,
    )


def snapshot(plan: Plan, balances: Balances, plan_year: int) -> AccumulatorSnapshot:
    """The member's accumulators for one plan year, next to the plan's limits."""
    oon = plan.out_of_network
    return AccumulatorSnapshot(
        plan_year=plan_year,
        in_network=_tier_snapshot(plan.in_network, balances.get((plan_year, Tier.IN_NETWORK))),
        out_of_network=_tier_snapshot(oon, balances.get((plan_year, Tier.OUT_OF_NETWORK))) if oon else None,
    )


def _tier_snapshot(
    benefit: TierBenefit | OutOfNetworkBenefit, met: AccumulatorBalance | None
) -> TierAccumulators:
    met = met or NOTHING_MET
    return TierAccumulators(
        deductible=benefit.deductible,
        deductible_met=met.deductible_met,
        out_of_pocket_max=benefit.out_of_pocket_max,
        out_of_pocket_met=met.out_of_pocket_met,
    )


def postings(before: Balances, after: Balances) -> tuple[AccumulatorPosting, ...]:
    """One posting per (plan year, tier) bucket the claim changed."""
    changed = []
    for (plan_year, tier), met in sorted(after.items()):
        was = before.get((plan_year, tier), NOTHING_MET)
        posting = AccumulatorPosting(
            plan_year=plan_year,
            tier=tier,
            deductible=met.deductible_met - was.deductible_met,
            out_of_pocket=met.out_of_pocket_met - was.out_of_pocket_met,
        )
        if posting.deductible or posting.out_of_pocket:
            changed.append(posting)
    return tuple(changed)
