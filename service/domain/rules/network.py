"""Steps 3 to 5: network status, No Surprises Act protection, out-of-network not covered."""

from __future__ import annotations

from ..eob import Group
from ..model import Tier
from ..records import replace
from .base import ClaimScope, LineWork, contract_on

EMERGENCY_REMARK = "N864"
PARTICIPATING_FACILITY_REMARK = "N865"
NOT_COVERED_OUT_OF_NETWORK = "242"


def network_status(work: LineWork, scope: ClaimScope) -> LineWork:
    """In network when the billing provider has a contract in the plan's network that day."""
    contract = contract_on(
        scope.ctx.billing_provider_contracts, scope.claim.billing_provider_npi, work.line.service_date
    )
    status = Tier.IN_NETWORK if contract else Tier.OUT_OF_NETWORK
    return replace(work, network_status=status, contract=contract)


def nsa_protection(work: LineWork, scope: ClaimScope) -> LineWork:
    """Out-of-network emergency care, or care at an in-network facility, is protected."""
    if work.network_status is not Tier.OUT_OF_NETWORK:
        return work
    claim = scope.claim
    # An emergency at an in-network facility qualifies on both counts; the emergency is reported.
    if claim.emergency:
        return replace(work, protection_remark=EMERGENCY_REMARK)
    facility = claim.facility_npi
    if facility and contract_on(scope.ctx.facility_contracts, facility, work.line.service_date):
        return replace(work, protection_remark=PARTICIPATING_FACILITY_REMARK)
    return work


def out_of_network_not_covered(work: LineWork, scope: ClaimScope) -> LineWork:
    """A plan with no out-of-network benefit (HMO) denies unprotected out-of-network care."""
    if work.cost_tier is Tier.OUT_OF_NETWORK and scope.plan.out_of_network is None:
        return work.deny(Group.PR, NOT_COVERED_OUT_OF_NETWORK)
    return work
