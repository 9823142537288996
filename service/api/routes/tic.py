"""CMS Transparency-in-Coverage files for a network (scope admin): import one (streamed into the
database as it arrives) and export the network's contracts and rates as one (streamed out).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from ...ingest.tic import TicFormatError, TicImport, UnknownNetwork
from ..auth import Access, scoped_router
from ..problems import NotFound, Unprocessable
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
    code: str,
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
    return TicImportOut(
        network_code=report.network_code,
        providers_created=report.providers_created,
        providers_updated=report.providers_updated,
        providers_unchanged=report.providers_unchanged,
        fee_schedules=report.fee_schedules,
        contracts_created=report.contracts_created,
        contracts_updated=report.contracts_updated,
        contracts_ended=report.contracts_ended,
        rates=report.rates,
        skipped=dict(report.skipped),
        warnings=report.warnings,
        warning_count=report.warning_count,
    )
