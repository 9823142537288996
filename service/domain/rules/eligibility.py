"""Step 1, member and coverage: eligibility denials fall to the member (group PR)."""

from __future__ import annotations

from ..eob import Group
from ..model import ClaimLine
from .base import ClaimScope, Denial, LineWork

UNKNOWN_MEMBER = "31"
BEFORE_COVERAGE = "26"
AFTER_COVERAGE = "27"


def unknown_member(line: ClaimLine) -> LineWork:
    """A line of a claim whose member we do not know: denied before any other rule."""
    return LineWork(line, denial=Denial(Group.PR, UNKNOWN_MEMBER))


def member_and_coverage(work: LineWork, scope: ClaimScope) -> LineWork:
    served = work.line.service_date
    member = scope.member
    if served < member.coverage_from:
        return work.deny(Group.PR, BEFORE_COVERAGE)
    if member.coverage_to is not None and served > member.coverage_to:
        return work.deny(Group.PR, AFTER_COVERAGE)
    return work
