"""Fee-schedule rates uploaded as CSV (api.md `PUT /v1/fee-schedules/{code}/rates`, scope admin).

The body is streamed: each piece is parsed and staged in a worker thread as it arrives, and the
rates are swapped in one transaction at the end. An async endpoint, so it can read the stream.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ...ingest.csv_rates import CsvRatesImport, CsvRowError, UnknownFeeSchedule
from ..auth import Access, scoped_router
from ..problems import NotFound, Unprocessable
from ..schemas.common import Identifier
from ..schemas.ingest import RateCountOut
from ..upload import body_chunks, require_media_type

router = scoped_router(Access.ADMIN, prefix="/v1", tags=["fee-schedule ingest"])

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "procedure_code,modifier,allowed_amount\n99213,,110.00\n70551,26,90.00\n",
            }
        },
    }
}


@router.put(
    "/fee-schedules/{code}/rates",
    summary="Replace all rates of a fee schedule from a CSV upload",
    description="Header `procedure_code,modifier,allowed_amount`; an empty modifier means none. "
    "Replaces the schedule's rates atomically. A bad row is a 422 naming its line (the header is "
    "line 1) and column, and nothing changes.",
    responses={
        404: {"description": "Unknown fee schedule"},
        413: {"description": "Body larger than the upload limit"},
        415: {"description": "The body is not text/csv"},
        422: {"description": "A bad row: `line` and `column` name it"},
    },
    openapi_extra=_CSV_BODY,
)
async def replace_rates(code: Identifier, request: Request) -> RateCountOut:
    require_media_type(request, "text/csv", "application/csv")
    upload = CsvRatesImport(request.app.state.engine, code)
    try:
        await run_in_threadpool(upload.open)
    except UnknownFeeSchedule:
        raise NotFound(f"no fee schedule {code!r}") from None
    try:
        async for chunk in body_chunks(request):
            await run_in_threadpool(upload.feed, chunk)
        count = await run_in_threadpool(upload.finish)
    except CsvRowError as error:
        raise _row_problem(error) from None
    finally:
        await run_in_threadpool(upload.abort)
    return RateCountOut(code=code, rate_count=count)


def _row_problem(error: CsvRowError) -> Unprocessable:
    loc: list[str | int] = ["body", "line", error.line]
    if error.column:
        loc.append(error.column)
    return Unprocessable(
        str(error),
        errors=[{"loc": loc, "msg": error.message}],
        line=error.line,
        column=error.column,
    )
