"""Industry formats of stored EOBs: FHIR ExplanationOfBenefit and X12 835 remittance advice.

Both are generated on request from the stored EOB JSON (docs/exports.md), never stored apart
from it, so they cannot disagree with what the claims API returned.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from sqlalchemy.orm import Session

from ...export.fhir import explanation_of_benefit, to_json
from ...export.records import Payer, StoredClaim
from ...export.x12_835 import ClaimEvent, Interchange, Payee, remittance_advice, remittance_events
from ...repositories import exports as exports_repo
from ...settings import Settings
from ..auth import Access, scoped_router
from ..deps import SessionDep
from ..problems import Conflict, NotFound, Unprocessable
from ..schemas.common import Identifier, Npi

router = scoped_router(Access.CLAIMS_READ, prefix="/v1", tags=["exports"])

FHIR_JSON = "application/fhir+json"
X12 = "application/edi-x12"
MAX_RANGE_DAYS = 366  # one 835 per request is built in memory; a year of remittances at most
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ClaimIdPath = Annotated[Identifier, Path(description="The submitter's claim id")]


@router.get(
    "/claims/{claim_id}/fhir",
    summary="The claim's EOB as a FHIR R4 ExplanationOfBenefit (CARIN Blue Button)",
    response_class=Response,
    responses={
        200: {"content": {FHIR_JSON: {}}, "description": "The ExplanationOfBenefit resource"},
        404: {"description": "No such claim", **PROBLEM},
    },
)
def claim_fhir(claim_id: ClaimIdPath, request: Request, session: SessionDep) -> Response:
    claim = _claim(session, claim_id)
    resource = explanation_of_benefit(claim, _payer(request.app.state.settings))
    return Response(content=to_json(resource), media_type=FHIR_JSON)


@router.get(
    "/claims/{claim_id}/835",
    summary="The claim's X12 835 remittance advice (its payment, and its reversal once voided)",
    response_class=Response,
    responses={
        200: {"content": {X12: {}}, "description": "An X12 005010X221A1 interchange"},
        404: {"description": "No such claim", **PROBLEM},
        409: {"description": "The claim is pended: nothing is remitted yet", **PROBLEM},
    },
)
def claim_835(claim_id: ClaimIdPath, request: Request, session: SessionDep) -> Response:
    claim = _claim(session, claim_id)
    events = remittance_events([claim])
    if not events:
        raise Conflict(f"claim {claim_id!r} was never adjudicated (pended): there is nothing to remit")
    npi = str(claim.eob["billing_provider_npi"])
    return _remittance(events, npi, request, session)


@router.get(
    "/remittances/835",
    summary="One X12 835 for a billing provider's claims adjudicated or voided in a date range",
    response_class=Response,
    responses={
        200: {"content": {X12: {}}, "description": "An X12 005010X221A1 interchange"},
        422: {"description": "Invalid NPI or date range", **PROBLEM},
    },
)
def provider_835(
    request: Request,
    session: SessionDep,
    provider_npi: Annotated[Npi, Query(description="The billing provider (payee)")],
    start: Annotated[date, Query(alias="from", description="First day, inclusive (UTC)")],
    end: Annotated[date, Query(alias="to", description="Last day, inclusive (UTC)")],
) -> Response:
    if end < start:
        raise Unprocessable(
            "'to' is before 'from'", errors=[{"loc": ["query", "to"], "msg": "must not be before 'from'"}]
        )
    if (end - start).days >= MAX_RANGE_DAYS:
        raise Unprocessable(
            f"the range may span at most {MAX_RANGE_DAYS} days",
            errors=[{"loc": ["query", "to"], "msg": f"at most {MAX_RANGE_DAYS} days after 'from'"}],
        )
    claims = exports_repo.provider_claims_between(session, provider_npi, start, end)
    return _remittance(remittance_events(claims, start, end), provider_npi, request, session)


def _claim(session: Session, claim_id: str) -> StoredClaim:
    claim = exports_repo.stored_claim(session, claim_id)
    if claim is None:
        raise NotFound(f"no claim {claim_id!r}")
    return claim


def _remittance(events: Sequence[ClaimEvent], npi: str, request: Request, session: Session) -> Response:
    settings: Settings = request.app.state.settings
    payee = Payee(npi, exports_repo.provider_name(session, npi) or f"PROVIDER {npi}")
    interchange = Interchange(
        # Each generated file is a new interchange; a random control number keeps them distinct.
        control_number=secrets.randbelow(999_999_999) + 1,
        created_at=datetime.now(UTC),
        sender_id=settings.payer_id,
        receiver_id=npi,
        usage=settings.x12_usage_indicator,
    )
    text = remittance_advice(events, _payer(settings), payee, interchange)
    return Response(content=text, media_type=X12)


def _payer(settings: Settings) -> Payer:
    return Payer(
        name=settings.payer_name,
        payer_id=settings.payer_id,
        tin=settings.payer_tin,
        address_line=settings.payer_address_line,
        city=settings.payer_city,
        state=settings.payer_state,
        postal_code=settings.payer_postal_code,
        contact_phone=settings.payer_contact_phone,
        fhir_base=settings.fhir_identifier_base,
    )
