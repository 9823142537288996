"""CMS Transparency-in-Coverage files for a network (scope admin): import one (streamed into the
database as it arrives) and export the network's contracts and rates as one (streamed out).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...export.tic import network_has_rates, tic_in_network_file
from ...ingest.tic import TicFormatError, TicImport, UnknownNetwork
from ...repositories import reference as reference_repo
from ..auth import Access, scoped_router
from ..deps import SessionDep
from ..problems import Conflict, NotFound, Unprocessable
from ..schemas.common import Identifier
from ..schemas.ingest import TicImportOut
from ..upload import body_chunks, require_media_type

router = scoped_router(Access.ADMIN, prefix="/v1", tags=["fee-schedule ingest"])

_TIC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A CMS Transparency-in-Coverage in-network-rates file (schema v2)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/networks/{code}/tic-in-network",
    summary="Import a Transparency-in-Coverage in-network-rates file into a network",
    description="Creates or updates the file's providers, one fee schedule per provider group, and "
    "contracts in the network. Meant for moderate files; use `claims-service import-tic` for big "
    "ones. A file that breaks the schema is a 422 naming the JSON path, and nothing is stored.",
    responses={
        404: {"description": "Unknown network"},
        413: {"description": "Body larger than the upload limit"},
        415: {"description": "The body is not application/json"},
        422: {"description": "Not a valid TiC file: `path` names where"},
    },
    openapi_extra=_TIC_BODY,
)
async def import_tic(
    code: Identifier,
    request: Request,
    effective_from: date | None = Query(
        None, description="Start of the contracts; default: the file's last_updated_on"
    ),
) -> TicImportOut:
    require_media_type(request, "application/json")
    tic = TicImport(request.app.state.engine, code, effective_from)
    try:
        await run_in_threadpool(tic.open)
    except UnknownNetwork:
        raise NotFound(f"no network {code!r}") from None
    try:
        async for chunk in body_chunks(request):
            await run_in_threadpool(tic.feed, chunk)
        report = await run_in_threadpool(tic.finish)
    except TicFormatError as error:
        raise Unprocessable(
            str(error), errors=[{"loc": ["body", error.path], "msg": error.message}], path=error.path
        ) from None
    finally:
        await run_in_threadpool(tic.abort)
    return TicImportOut(**report.as_dict())


@router.get(
    "/networks/{code}/tic-in-network",
    summary="The network's contracts and rates as a Transparency-in-Coverage in-network-rates file",
    description="Streamed; validates against the CMS schema v2. One provider group per fee schedule "
    "(provider_group_id is the schedule's id).",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        404: {"description": "Unknown network"},
        409: {"description": "The network has no contracted rates to publish"},
    },
)
def export_tic(
    code: Identifier,
    request: Request,
    session: SessionDep,
    as_of: date | None = Query(None, description="Only contracts in effect on this date; default: all"),
) -> StreamingResponse:
    network = reference_repo.network_by_code(session, code)
    if network is None:
        raise NotFound(f"no network {code!r}")
    if not network_has_rates(session.connection(), network.id, as_of):
        raise Conflict(f"network {code!r} has no contracted rates: a TiC file needs at least one")
    chunks = tic_in_network_file(request.app.state.engine, network.id, as_of, date.today())
    return StreamingResponse(chunks, media_type="application/json")
