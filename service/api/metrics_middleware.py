"""Records every HTTP request in the Prometheus metrics, labelled by route TEMPLATE
(service/api/route_templates.py): raw paths would be PHI and unbounded label values."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import HTTP_LATENCY, HTTP_REQUESTS
from .route_templates import RouteTemplates

# Any other method string a client sends is folded into one label value.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, templates: RouteTemplates) -> None:
        self.app = app
        self.templates = templates
        # The labelled series, kept: labels() validates and looks up its values on every call
        # (7.7-10 us a request for both series against 4.0 kept, docs/performance.md, seventeenth
        # round). Bounded: route templates x known methods x status codes.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before responding
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = self.templates.of(scope)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            series = self._series.get((route, method, status))
            if series is None:
                series = self._series[(route, method, status)] = (
                    HTTP_REQUESTS.labels(route, method, str(status)),
                    HTTP_LATENCY.labels(route, method),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
