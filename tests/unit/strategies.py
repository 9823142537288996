"""Random adjudication scenarios for hypothesis: a plan, its network's contracts, a member with
accumulators and authorizations, and a claim mixing in-network, out-of-network, protected,
denied and pended lines.

Speed matters (2000 examples per property in well under a minute), and a hypothesis draw costs
about as much as a whole adjudication. So each scenario is decoded from ONE drawn byte string:
every decision reads a few bytes, and past the end every decision is 0. Option 0 is always the
simplest (no out-of-network benefit, no authorizations, one line...), so hypothesis shrinks a
failure towards a simple scenario by zeroing bytes.

Small pools of codes, modifiers and providers make the rules collide often: rates found and
missing, authorizations matching and used up, duplicates, copay categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from hypothesis import strategies as st

from service.domain.codes import CodeSet
from service.domain.model import (
    AccumulatorBalance,
    AdjudicationContext,
    AllowedBasis,
    AllowedBasisMethod,
    Authorization,
    AuthorizationStatus,
    Claim,
    ClaimLine,
    Contract,
    CopayCategory,
    DuplicateKey,
    FeeSchedule,
    Member,
    NetworkRates,
    OutOfNetworkBenefit,
    Plan,
    Rate,
    Tier,
    TierBenefit,
)

T = TypeVar("T")

CODES = ("99213", "99283", "20610", "97110", "70551", "J3490")
MODIFIERS = ("25", "50", "59", "RT")
BILLING, FACILITY, OTHER = "1234567893", "1555555550", "1666666668"
FIRST_DAY, LAST_DAY = date(2025, 11, 1), date(2027, 2, 28)
# Enough for nearly every scenario (they read 200 bytes on average); a fixed size draws much faster.
SCENARIO_BYTES = 384


class Choices:
    """Decisions read from drawn bytes; 0 once the bytes run out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def below(self, n: int) -> int:
        """A number in 0..n-1."""
        size = max(1, ((n - 1).bit_length() + 7) // 8)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return int.from_bytes(chunk, "big") % n if chunk else 0

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def one_in(self, n: int) -> bool:
        """True one time in n (False when the bytes run out)."""
        return self.below(n) == n - 1

    def subset(self, options: Sequence[T], most: int) -> list[T]:
        return list(dict.fromkeys(self.pick(options) for _ in range(self.below(most + 1))))

    def money(self, high: str, low: str = "0.00") -> Decimal:
        return Decimal(self.between(int(Decimal(low) * 100), int(Decimal(high) * 100))).scaleb(-2)

    def fraction(self, high: str = "1.000") -> Decimal:
        """Rates and percentages with up to three places, so half-cent rounding comes up."""
        return Decimal(self.between(0, int(Decimal(high) * 1000))).scaleb(-3)

    def day(self) -> date:
        return FIRST_DAY + timedelta(days=self.below((LAST_DAY - FIRST_DAY).days + 1))


def fee_schedule(c: Choices) -> FeeSchedule:
    rates: dict[tuple[str, str], Rate] = {}
    for code in CODES:
        kind = c.pick(("fixed", "fixed", "fixed", "percent", "missing"))
        if kind == "fixed":
            rates[(code, "")] = Rate(allowed_amount=c.money("800.00", "0.01"))
        elif kind == "percent":
            rates[(code, "")] = Rate(percent_of_billed=c.fraction("1.500"))
    for _ in range(c.below(3)):
        rates[(c.pick(CODES), c.pick(MODIFIERS))] = Rate(allowed_amount=c.money("800.00", "0.01"))
    return FeeSchedule("FS", rates)


def contract(c: Choices, npi: str, contract_id: int) -> Contract:
    start = FIRST_DAY - timedelta(days=30) if c.below(3) == 0 else c.day()
    end = None if c.below(3) == 0 else start + timedelta(days=c.below(400))
    return Contract(
        id=contract_id,
        provider_npi=npi,
        effective_from=start,
        effective_to=end,
        fee_schedule=fee_schedule(c),
        timely_filing_days=None if c.below(2) == 0 else c.between(0, 365),
        unlisted_percent_of_billed=c.fraction() if c.one_in(3) else None,
    )


def tier_benefit(c: Choices) -> TierBenefit:
    return TierBenefit(c.money("3000.00"), c.money("8000.00"), c.fraction())


def out_of_network(c: Choices) -> OutOfNetworkBenefit | None:
    if c.below(3) == 0:
        return None
    limits = tier_benefit(c)
    method = c.pick(list(AllowedBasisMethod))
    reference = fee_schedule(c) if method is AllowedBasisMethod.PERCENT_OF_FEE_SCHEDULE else None
    basis = AllowedBasis(method, c.fraction("2.000"), reference)
    return OutOfNetworkBenefit(limits.deductible, limits.out_of_pocket_max, limits.coinsurance_rate, basis)


def copay_category(c: Choices) -> CopayCategory:
    return CopayCategory(
        name="category",
        procedure_codes=CodeSet.parse(c.subset(CODES, 3)),
        in_network_copay=c.money("200.00") if c.below(3) else None,
        out_of_network_copay=c.money("200.00") if c.below(2) else None,
        deductible_applies=c.one_in(2),
        coinsurance_rate=c.fraction() if c.below(2) else None,
    )


def plan(c: Choices) -> Plan:
    return Plan(
        code="PLAN",
        network_code="NET",
        in_network=tier_benefit(c),
        out_of_network=out_of_network(c),
        copay_categories=tuple(copay_category(c) for _ in range(c.below(3))),
        prior_authorization_codes=CodeSet.parse(c.subset(CODES, 4)),
    )


def accumulators(c: Choices, the_plan: Plan) -> dict[tuple[int, Tier], AccumulatorBalance]:
    """Balances already within the plan's limits, for some of the years and tiers."""
    limits = {Tier.IN_NETWORK: the_plan.in_network, Tier.OUT_OF_NETWORK: the_plan.out_of_network}
    out = {}
    for year in (2025, 2026, 2027):
        for tier, benefit in limits.items():
            if benefit is not None and c.one_in(2):
                out[(year, tier)] = AccumulatorBalance(
                    c.money(str(benefit.deductible)), c.money(str(benefit.out_of_pocket_max))
                )
    return out


def authorization(c: Choices, auth_id: int, lines: Sequence[ClaimLine]) -> Authorization:
    """Mostly one around a line of the claim, so that matching, running out and denials come up."""
    units = c.between(1, 6)
    if c.below(4):
        anchor = c.pick(lines)
        codes = [anchor.procedure_code, *c.subset(CODES, 1)]
        start = anchor.service_date - timedelta(days=c.below(60))
        end = anchor.service_date + timedelta(days=c.below(60))
    else:
        codes, start = c.subset(CODES, 3), c.day()
        end = start + timedelta(days=c.below(120))
    return Authorization(
        id=auth_id,
        authorization_number=f"PA-{auth_id}",
        procedure_codes=CodeSet.parse(dict.fromkeys(codes)),
        units=units,
        units_used=c.between(0, units) if c.one_in(2) else 0,
        valid_from=start,
        valid_to=end,
        provider_npi=c.pick((None, BILLING, OTHER)),
        status=AuthorizationStatus.DENIED if c.one_in(4) else AuthorizationStatus.APPROVED,
    )


def claim_line(c: Choices, line_number: int) -> ClaimLine:
    return ClaimLine(
        line_number=line_number,
        procedure_code=c.pick(CODES),
        modifiers=tuple(c.subset(MODIFIERS, 2)),
        units=c.between(1, 4),
        billed_amount=c.money("3000.00", "0.01"),
        service_date=c.day(),
        authorization_number=c.pick((None, None, None, "PA-0", "PA-1", "PA-9")),
    )


def claim(c: Choices) -> Claim:
    numbers = list(dict.fromkeys(c.between(1, 50) for _ in range(c.between(1, 5))))
    lines = tuple(claim_line(c, n) for n in numbers)  # in no particular order
    latest = max(ln.service_date for ln in lines)
    filed_after = c.below(60) if c.below(4) else c.below(400)
    return Claim(
        claim_id="CLM-P",
        member_id="M-P",
        billing_provider_npi=BILLING,
        facility_npi=c.pick((None, FACILITY, OTHER)),
        place_of_service="11",
        emergency=c.one_in(4),
        received_date=latest + timedelta(days=filed_after),
        diagnosis_codes=("J06.9",),
        lines=lines,
    )


def member(c: Choices, the_plan: Plan) -> Member | None:
    if c.one_in(20):
        return None
    if c.below(4):
        return Member("M-P", the_plan, date(2025, 1, 1), None)
    start = c.day()
    return Member("M-P", the_plan, start, start + timedelta(days=c.below(500)) if c.one_in(2) else None)


@dataclass(frozen=True)
class Scenario:
    claim: Claim
    ctx: AdjudicationContext
    estimate: bool


def scenario(data: bytes) -> Scenario:
    c = Choices(data)
    the_plan = plan(c)
    the_claim = claim(c)
    billing = [contract(c, BILLING, 1 + i) for i in range(c.pick((1, 1, 0, 2)))]
    facility = [contract(c, FACILITY, 10) for _ in range(c.below(2))]
    others = [contract(c, OTHER, 20 + i) for i in range(c.below(3))]
    already_paid = [c.pick(the_claim.lines)] if c.one_in(5) else []
    ctx = AdjudicationContext(
        member=member(c, the_plan),
        billing_provider_contracts=tuple(billing),
        facility_contracts=tuple(facility),
        network_rates=tuple(NetworkRates.of(c) for c in billing + facility + others),
        authorizations=tuple(authorization(c, i, the_claim.lines) for i in range(c.below(4))),
        accumulators=accumulators(c, the_plan),
        paid_lines=frozenset(DuplicateKey.of(BILLING, ln) for ln in already_paid),
    )
    return Scenario(the_claim, ctx, estimate=c.one_in(4))


def authorization_scenario(data: bytes) -> Scenario:
    """A course of one service: every line has the same code, needs prior authorization, and
    nothing else stops it first, so the lines compete for the same authorization units."""
    s = scenario(data)
    if s.ctx.member is None:
        return s
    the_plan = replace(s.ctx.member.plan, prior_authorization_codes=CodeSet.parse(CODES))
    member = Member("M-P", the_plan, date(2025, 1, 1), None)
    code = s.claim.lines[0].procedure_code
    lines = tuple(replace(ln, procedure_code=code) for ln in s.claim.lines)
    claim = replace(s.claim, emergency=False, lines=lines)
    return Scenario(claim, replace(s.ctx, member=member), s.estimate)


def scenarios() -> st.SearchStrategy[Scenario]:
    return st.binary(min_size=SCENARIO_BYTES, max_size=SCENARIO_BYTES).map(scenario)


def authorization_scenarios() -> st.SearchStrategy[Scenario]:
    return st.binary(min_size=SCENARIO_BYTES, max_size=SCENARIO_BYTES).map(authorization_scenario)
