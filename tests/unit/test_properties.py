"""Properties of the adjudication core on random scenarios (adjudication.md invariants 1-5, and
what the core can show of 6 and 7: accumulators within limits, postings that add up, a replay
that never goes negative)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from hypothesis import event, given

from service.domain.adjudicate import adjudicate
from service.domain.eob import AccumulatorPosting, Eob, Group, LineStatus, check_invariants
from service.domain.model import (
    AccumulatorBalance,
    Accumulators,
    AdjudicationContext,
    AuthorizationStatus,
    Plan,
    Tier,
)
from service.domain.money import ZERO

from .strategies import Scenario, authorization_scenarios, scenarios

Balances = dict[tuple[int, Tier], AccumulatorBalance]


def posted(before: Accumulators, postings: tuple[AccumulatorPosting, ...]) -> Balances:
    after = dict(before)
    for p in postings:
        was = after.get((p.plan_year, p.tier), AccumulatorBalance(ZERO, ZERO))
        after[(p.plan_year, p.tier)] = AccumulatorBalance(
            was.deductible_met + p.deductible, was.out_of_pocket_met + p.out_of_pocket
        )
    return after


def limit_breaches(plan: Plan, balances: Balances) -> list[str]:
    breaches = []
    for (year, tier), met in balances.items():
        benefit = plan.in_network if tier is Tier.IN_NETWORK else plan.out_of_network
        assert benefit is not None, f"{tier} accumulators on a plan without that tier"
        if not ZERO <= met.deductible_met <= benefit.deductible:
            breaches.append(f"{year} {tier} deductible met {met.deductible_met}")
        if not ZERO <= met.out_of_pocket_met <= benefit.out_of_pocket_max:
            breaches.append(f"{year} {tier} out-of-pocket met {met.out_of_pocket_met}")
    return breaches


def line_sums(eob: Eob) -> dict[tuple[int, Tier], tuple[Decimal, Decimal]]:
    sums: dict[tuple[int, Tier], tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    for ln in eob.lines:
        if ln.accumulator_tier is not None:
            key = (ln.service_date.year, ln.accumulator_tier)
            deductible, out_of_pocket = sums[key]
            sums[key] = (
                deductible + ln.deductible_amount,
                out_of_pocket + ln.deductible_amount + ln.copay_amount + ln.coinsurance_amount,
            )
    return {k: v for k, v in sums.items() if v != (ZERO, ZERO)}


def after_claim(ctx: AdjudicationContext, eob: Eob) -> AdjudicationContext:
    """The context the shell would load next: postings applied, authorization units used."""
    used = defaultdict(int)
    for use in eob.authorization_uses:
        used[use.authorization_id] += use.units
    auths = tuple(replace(a, units_used=a.units_used + used[a.id]) for a in ctx.authorizations)
    return replace(ctx, accumulators=posted(ctx.accumulators, eob.postings), authorizations=auths)


def describe(eob: Eob) -> None:
    event(f"claim {eob.status}")
    for ln in eob.lines:
        kind = "protected" if ln.protected else str(ln.network_status)
        event(f"line {ln.status} {kind}")
        for a in ln.adjustments:
            event(f"adjustment {a.group}-{a.reason_code}")
        if ln.authorization_use:
            event("authorization used")


@given(scenarios())
def test_every_eob_keeps_the_invariants(s: Scenario) -> None:
    eob = adjudicate(s.claim, s.ctx, estimate=s.estimate)
    describe(eob)
    assert check_invariants(eob) == []
    assert [ln.line_number for ln in eob.lines] == sorted(ln.line_number for ln in s.claim.lines)
    if s.ctx.member is None:
        assert eob.accumulators is None and eob.network_status is None and not eob.postings


@given(scenarios())
def test_accumulators_stay_within_limits_and_postings_add_up(s: Scenario) -> None:
    eob = adjudicate(s.claim, s.ctx, estimate=s.estimate)
    if s.ctx.member is None:
        return
    plan = s.ctx.member.plan
    after = posted(s.ctx.accumulators, eob.postings)
    assert limit_breaches(plan, after) == []
    assert {(p.plan_year, p.tier): (p.deductible, p.out_of_pocket) for p in eob.postings} == line_sums(eob)
    assert eob.accumulators is not None
    latest = max(ln.service_date.year for ln in s.claim.lines)
    in_network = after.get((latest, Tier.IN_NETWORK), AccumulatorBalance(ZERO, ZERO))
    assert eob.accumulators.plan_year == latest
    assert eob.accumulators.in_network.deductible_met == in_network.deductible_met
    assert eob.accumulators.in_network.out_of_pocket_met == in_network.out_of_pocket_met
    assert (eob.accumulators.out_of_network is None) == (plan.out_of_network is None)


@given(authorization_scenarios())
def test_authorizations_are_never_overdrawn(s: Scenario) -> None:
    eob = adjudicate(s.claim, s.ctx, estimate=s.estimate)
    describe(eob)
    assert check_invariants(eob) == []
    by_id = {a.id: a for a in s.ctx.authorizations}
    for a in after_claim(s.ctx, eob).authorizations:
        assert a.units_used <= a.units
    for use in eob.authorization_uses:
        assert by_id[use.authorization_id].status is AuthorizationStatus.APPROVED


@given(scenarios())
def test_replaying_the_claim_against_what_it_left_never_goes_negative(s: Scenario) -> None:
    first = adjudicate(s.claim, s.ctx, estimate=s.estimate)
    ctx = after_claim(s.ctx, first)
    again = adjudicate(s.claim, ctx, estimate=s.estimate)
    assert check_invariants(again) == []
    if ctx.member is not None:
        assert limit_breaches(ctx.member.plan, posted(ctx.accumulators, again.postings)) == []
    # Cost share can only shrink once deductibles and out-of-pocket have been met.
    for one, two in zip(first.lines, again.lines, strict=True):
        if one.status is two.status is LineStatus.PAID and one.allowed_amount == two.allowed_amount:
            assert two.patient_responsibility_amount <= one.patient_responsibility_amount


@given(scenarios())
def test_an_estimate_is_the_claim_without_duplicates_and_filing_limits(s: Scenario) -> None:
    estimate = adjudicate(s.claim, s.ctx, estimate=True)
    on_time = replace(s.claim, received_date=min(ln.service_date for ln in s.claim.lines))
    assert estimate == adjudicate(on_time, replace(s.ctx, paid_lines=frozenset()))
    reasons = {(a.group, a.reason_code) for ln in estimate.lines for a in ln.adjustments}
    assert not reasons & {(Group.OA, "18"), (Group.CO, "29")}
