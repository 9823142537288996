"""The rules of adjudication.md, in the order they run on each line of a claim."""

from __future__ import annotations

from .authorization import prior_authorization
from .base import ClaimScope, LineWork, Rule
from .cost_share import cost_share
from .duplicate import duplicate
from .eligibility import member_and_coverage
from .network import network_status, nsa_protection, out_of_network_not_covered
from .pricing import pricing
from .timely_filing import timely_filing

# Two steps are not line rules: an unknown member (step 1) denies the whole claim before any rule
# runs, and adjustments (step 10, adjustments.py) turn each decided line into its EOB line.
RULES: tuple[Rule, ...] = (
    Rule("member and coverage", member_and_coverage),
    Rule("duplicate", duplicate, in_estimate=False),
    Rule("network status", network_status, fact=True),
    Rule("No Surprises Act protection", nsa_protection, fact=True),
    Rule("out-of-network not covered", out_of_network_not_covered),
    Rule("timely filing", timely_filing, in_estimate=False),
    Rule("prior authorization", prior_authorization),
    Rule("pricing", pricing),
    Rule("cost share", cost_share),
)


def run_rules(work: LineWork, scope: ClaimScope, *, estimate: bool) -> LineWork:
    for rule in RULES:
        if estimate and not rule.in_estimate:
            continue
        if work.decided and not rule.fact:
            continue
        work = rule.apply(work, scope)
    return work


__all__ = ["RULES", "ClaimScope", "LineWork", "Rule", "run_rules"]
