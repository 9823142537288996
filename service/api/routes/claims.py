"""Claims endpoints (api.md, Claims): submit, read, void, re-adjudicate, estimate, accumulators.

EOBs are returned as the exact JSON text stored with the claim, so GET returns byte for byte what
POST returned; response_model documents that JSON in openapi.json.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request, Response, status

from ...services import claims as claims_service
from ..auth import Access, scoped_router
from ..deps import SessionDep
from ..json_body import json_body
from ..schemas.claims import AccumulatorsOut, ClaimIn, EobOut, EstimateIn, EstimateOut
from ..schemas.common import Identifier

write_router = scoped_router(Access.CLAIMS_WRITE, prefix="/v1", tags=["claims"])
read_router = scoped_router(Access.CLAIMS_READ, prefix="/v1", tags=["claims"])

ClaimIdPath = Annotated[Identifier, Path(description="The submitter's claim id")]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _eob(body: str, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(content=body, status_code=status_code, media_type="application/json")


@write_router.post(
    "/claims",
    summary="Submit a claim; returns its EOB",
    response_model=EobOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": EobOut, "description": "The same claim was submitted before: its stored EOB"},
        409: {"description": "The claim_id was used for a different claim", **PROBLEM},
        422: {"description": "The claim is malformed", **PROBLEM},
    },
)
@json_body  # validated from the JSON text; FastAPI still reports any invalid body
async def submit_claim(body: ClaimIn, request: Request) -> Response:
    # Submitted with whatever other claims arrive meanwhile, in one transaction (group commit,
    # services/batching.py); answered once that transaction committed.
    result = await request.app.state.submissions.submit(claims_service.prepare_claim(body))
    return _eob(result.body, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@read_router.get(
    "/claims/{claim_id}",
    summary="The stored EOB of a claim",
    response_model=EobOut,
    responses={404: {"description": "No such claim", **PROBLEM}},
)
def get_claim(claim_id: ClaimIdPath, session: SessionDep) -> Response:
    return _eob(claims_service.get_claim(session, claim_id))


@write_router.post(
    "/claims/{claim_id}/void",
    summary="Void a claim, reversing its accumulators and authorization units",
    response_model=EobOut,
    responses={404: {"description": "No such claim", **PROBLEM}},
)
def void_claim(claim_id: ClaimIdPath, session: SessionDep) -> Response:
    return _eob(claims_service.void_claim(session, claim_id))


@write_router.post(
    "/claims/{claim_id}/adjudicate",
    summary="Adjudicate a pended claim again against today's reference data",
    response_model=EobOut,
    responses={
        404: {"description": "No such claim", **PROBLEM},
        409: {"description": "The claim is not pended", **PROBLEM},
    },
)
def readjudicate_claim(claim_id: ClaimIdPath, session: SessionDep) -> Response:
    return _eob(claims_service.readjudicate_claim(session, claim_id))


@write_router.post(
    "/estimates",
    summary="The EOB a claim would get; stores and posts nothing",
    response_model=EstimateOut,
    responses={422: {"description": "The claim is malformed", **PROBLEM}},
)
def estimate(body: EstimateIn, session: SessionDep) -> Response:
    return _eob(claims_service.estimate(session, body))


@read_router.get(
    "/members/{member_id}/accumulators",
    summary="A member's deductible and out-of-pocket accumulators for a plan year",
    response_model=AccumulatorsOut,
    responses={404: {"description": "No such member", **PROBLEM}},
)
def member_accumulators(
    member_id: Annotated[Identifier, Path()],
    session: SessionDep,
    plan_year: Annotated[
        int | None, Query(ge=1900, le=2999, description="Calendar year; defaults to the current one")
    ] = None,
) -> dict[str, Any]:
    return claims_service.accumulators_of(session, member_id, plan_year)
