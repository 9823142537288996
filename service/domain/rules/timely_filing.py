"""Step 6, timely filing: the contract's filing limit, counted from the service date."""

from __future__ import annotations

from ..eob import Group
from .base import ClaimScope, LineWork

FILED_LATE = "29"


def timely_filing(work: LineWork, scope: ClaimScope) -> LineWork:
    contract = work.contract
    if contract is None or contract.timely_filing_days is None:
        return work
    if (scope.claim.received_date - work.line.service_date).days > contract.timely_filing_days:
        return work.deny(Group.CO, FILED_LATE)
    return work
