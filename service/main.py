"""create_app(): builds the engine, includes routers, installs error handlers and middleware."""

from __future__ import annotations

import asyncio
import gc

from fastapi import FastAPI

from .api.auth import AuthMiddleware, KeyRing
from .api.limits import BodyLimitMiddleware
from .api.metrics_middleware import MetricsMiddleware
from .api.problem_docs import document_problems
from .api.problems import install_problem_handlers
from .api.route_templates import RouteTemplates
from .api.routes import claims, directory, exports, ops, rates, reference, tic
from .db.session import (
    create_async_session_factory,
    create_db_engine,
    create_session_factory,
    create_submit_engine,
)
from .logs import RequestContextMiddleware, configure_logging
from .repositories.refcache import share_cache
from .services.batching import SubmitBatcher
from .settings import Settings, get_settings

API_DESCRIPTION = (
    "Adjudicates professional health-insurance claims against stored fee schedules, networks, "
    "contracts, plans, members and prior authorizations, and returns an Explanation of Benefits."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Claims adjudication service",
        version="1.0.0",
        description=API_DESCRIPTION,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    engine = create_db_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    # PostgreSQL: claims batches await their statements on the event loop, on an engine of their own.
    app.state.submit_engine = submit_engine = create_submit_engine(settings)
    if submit_engine is not None:
        share_cache(engine, submit_engine.sync_engine)
    app.state.submissions = SubmitBatcher(
        app.state.session_factory,
        settings.submit_batch_max,
        max_wait_seconds=settings.db_statement_timeout_ms / 1000,
        async_session_factory=create_async_session_factory(submit_engine) if submit_engine else None,
    )

    # Routes are matched in order: the claims routes, the hot path, first.
    app.include_router(claims.write_router)
    app.include_router(claims.read_router)
    app.include_router(ops.router)
    app.include_router(reference.router)
    app.include_router(directory.router)
    app.include_router(exports.router)
    app.include_router(rates.router)
    app.include_router(tic.router)

    install_problem_handlers(app)
    document_problems(app)
    # Added last runs first: the key is checked before anything reads the body.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(AuthMiddleware, keyring=KeyRing(settings.api_keys))
    templates = RouteTemplates(lambda: app.openapi()["paths"])
    app.add_middleware(RequestContextMiddleware, route_template=templates.of)
    # Outermost: counts and times every request, including those refused before routing.
    app.add_middleware(MetricsMiddleware, templates=templates)
    return app


def dispose_engines(app: FastAPI) -> None:
    """Close the app's pooled connections, from outside any event loop (tests and tools; a
    served worker's connections close with its process)."""
    app.state.engine.dispose()
    if app.state.submit_engine is not None:
        asyncio.run(app.state.submit_engine.dispose())


# The cyclic collector's thresholds for served workers (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def create_served_app() -> FastAPI:
    """The app each `serve` worker runs: create_app, then the cyclic garbage collector is tuned.

    - What start-up allocated (routes, schemas, SQL metadata: some 150,000 objects) is frozen
      out of the collector: its full collections would otherwise pause a worker for ~90 ms.
    - A young-generation threshold of 50,000 allocations instead of 700: with the default, the
      objects of the claims in flight (dozens wait for their batch's commit) outlived a young
      collection every few claims, were promoted, and set off a full collection of the
      reference caches (~115,000 objects, 15-45 ms) about once a second per worker under load.
      Measured (docs/performance.md): 138 full collections in 75 s of load became 2.
    Tests build apps with create_app, so theirs keep the defaults and stay collectable."""
    app = create_app()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app
