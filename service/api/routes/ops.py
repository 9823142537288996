"""Health, readiness and metrics: open, no key."""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from ...db.migrate import is_up_to_date
from ..auth import Access, scoped_router

router = scoped_router(Access.OPEN, tags=["operations"])
log = logging.getLogger("service.ops")


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    # async: answered on the event loop, so a liveness probe never queues behind requests that
    # hold every worker thread while the database stalls (and the pod is not restarted for it).
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated",
    responses={503: {"description": "Database unreachable or not migrated"}},
)
def readyz(request: Request) -> JSONResponse:
    try:
        migrated = is_up_to_date(request.app.state.engine)
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if not migrated:
        return JSONResponse({"status": "unavailable", "database": "not migrated"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format, or OpenMetrics when asked for)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "The metrics"}},
)
def metrics(request: Request) -> Response:
    multiproc_dir = request.app.state.settings.prometheus_multiproc_dir
    registry = REGISTRY
    if multiproc_dir:
        # Several workers: each writes its samples to the directory; aggregate them all.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(registry), media_type=content_type)
