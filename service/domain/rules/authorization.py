"""Step 7, prior authorization: a matching approved authorization with enough units left."""

from __future__ import annotations

from ..eob import AuthorizationUse, Group
from ..model import Authorization, AuthorizationStatus, Tier
from ..records import replace
from .base import ClaimScope, LineWork

NO_AUTHORIZATION = "197"
UNITS_EXCEEDED = "198"
AUTHORIZATION_DENIED = "39"


def prior_authorization(work: LineWork, scope: ClaimScope) -> LineWork:
    line = work.line
    needs_authorization = scope.plan.prior_authorization_codes.contains(line.procedure_code)
    # Emergency care and protected lines never need prior authorization.
    if not needs_authorization or scope.claim.emergency or work.protected:
        return work
    matching = [a for a in scope.ctx.authorizations if _matches(a, work, scope)]
    approved = [a for a in matching if a.status is AuthorizationStatus.APPROVED]
    usable = [a for a in approved if a.units_left - scope.units_used.get(a.id, 0) >= line.units]
    if usable:
        chosen = min(usable, key=lambda a: (a.valid_to, a.id))
        scope.units_used[chosen.id] = scope.units_used.get(chosen.id, 0) + line.units
        return replace(work, authorization_use=AuthorizationUse(chosen.id, line.units))
    # In network the provider should have obtained it, so the member owes nothing (CO).
    group = Group.CO if work.network_status is Tier.IN_NETWORK else Group.PR
    return work.deny(group, _reason(approved, matching))


def _matches(auth: Authorization, work: LineWork, scope: ClaimScope) -> bool:
    """Everything but status and units: member (the context holds only theirs), code, date,
    provider when the authorization names one, number when the line gives one."""
    line = work.line
    return (
        auth.procedure_codes.contains(line.procedure_code)
        and auth.valid_from <= line.service_date <= auth.valid_to
        and auth.provider_npi in (None, scope.claim.billing_provider_npi)
        and line.authorization_number in (None, auth.authorization_number)
    )


def _reason(approved: list[Authorization], matching: list[Authorization]) -> str:
    if approved:
        return UNITS_EXCEEDED
    if matching:
        return AUTHORIZATION_DENIED
    return NO_AUTHORIZATION
