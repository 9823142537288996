"""What the rules work on: one line's adjudication so far, and the claim-wide running state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..eob import AuthorizationUse, Group
from ..model import (
    AccumulatorBalance,
    AdjudicationContext,
    Claim,
    ClaimLine,
    Contract,
    Member,
    Plan,
    Tier,
)
from ..money import ZERO
from ..records import record, replace

NOTHING_MET = AccumulatorBalance(deductible_met=ZERO, out_of_pocket_met=ZERO)


@record
class Denial:
    group: Group
    reason_code: str  # CARC


@record
class CostShare:
    copay: Decimal
    deductible: Decimal
    coinsurance: Decimal

    @property
    def total(self) -> Decimal:
        return self.copay + self.deductible + self.coinsurance


@record
class LineWork:
    """One line as the rules have decided it so far. Rules return a changed copy."""

    line: ClaimLine
    network_status: Tier | None = None
    contract: Contract | None = None  # the billing provider's contract in effect, when in network
    protection_remark: str | None = None  # N864 / N865 when the No Surprises Act protects the line
    denial: Denial | None = None
    unpriced: bool = False  # no price found: the claim pends
    authorization_use: AuthorizationUse | None = None
    allowed: Decimal | None = None
    cost_share: CostShare | None = None

    @property
    def protected(self) -> bool:
        return self.protection_remark is not None

    @property
    def in_network_terms(self) -> bool:
        """Priced, cost-shared and written off as in network (in network, or protected)."""
        return self.network_status is Tier.IN_NETWORK or self.protected

    @property
    def cost_tier(self) -> Tier:
        return Tier.IN_NETWORK if self.in_network_terms else Tier.OUT_OF_NETWORK

    @property
    def decided(self) -> bool:
        """Denied or pended: the deciding rules stop here."""
        return self.denial is not None or self.unpriced

    def deny(self, group: Group, reason_code: str) -> LineWork:
        return replace(self, denial=Denial(group, reason_code))


@dataclass(slots=True)
class ClaimScope:
    """The claim being adjudicated and what its earlier lines used up (mutable, one per call)."""

    claim: Claim
    member: Member
    ctx: AdjudicationContext
    accumulators: dict[tuple[int, Tier], AccumulatorBalance]
    # Authorization id -> units consumed by earlier lines of this claim.
    units_used: dict[int, int]

    @property
    def plan(self) -> Plan:
        return self.member.plan

    def balance(self, plan_year: int, tier: Tier) -> AccumulatorBalance:
        return self.accumulators.get((plan_year, tier), NOTHING_MET)

    def post(self, plan_year: int, tier: Tier, share: CostShare) -> None:
        met = self.balance(plan_year, tier)
        self.accumulators[(plan_year, tier)] = AccumulatorBalance(
            deductible_met=met.deductible_met + share.deductible,
            out_of_pocket_met=met.out_of_pocket_met + share.total,
        )


RuleFn = Callable[[LineWork, ClaimScope], LineWork]


@record
class Rule:
    name: str
    apply: RuleFn
    in_estimate: bool = True  # estimates skip duplicates and timely filing
    # A fact the EOB shows on every line (network status, protection): it runs even on a line
    # an earlier rule denied.
    fact: bool = False


def contract_on(contracts: Iterable[Contract], npi: str, on: date) -> Contract | None:
    """The provider's contract in effect on the date; the latest-starting one if several are."""
    in_effect = [c for c in contracts if c.provider_npi == npi and c.in_effect(on)]
    return max(in_effect, key=lambda c: c.effective_from, default=None)
