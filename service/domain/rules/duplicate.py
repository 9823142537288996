"""Step 2, duplicates: the same service already paid on another claim is denied OA-18."""

from __future__ import annotations

from ..eob import Group
from ..model import DuplicateKey
from .base import ClaimScope, LineWork

DUPLICATE = "18"


def duplicate(work: LineWork, scope: ClaimScope) -> LineWork:
    if DuplicateKey.of(scope.claim.billing_provider_npi, work.line) in scope.ctx.paid_lines:
        return work.deny(Group.OA, DUPLICATE)
    return work
