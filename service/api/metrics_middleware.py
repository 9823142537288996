"""Records every HTTP request in the Prometheus metrics, labelled by route TEMPLATE.

Raw paths hold claim and member ids: protected health information, and unbounded label values
that would grow the metrics without limit. A routed request names its route; one refused before
routing (401) is matched against the API's path templates (its OpenAPI paths); a path that
matches none counts as "unmatched".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import HTTP_LATENCY, HTTP_REQUESTS

# Any other method string a client sends is folded into one label value.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, templates: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self.templates = templates
        self._matchers: list[tuple[re.Pattern[str], str]] | None = None

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
            route = self._template(scope)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - start)

    def _template(self, scope: Scope) -> str:
        routed = getattr(scope.get("route"), "path", None)
        if isinstance(routed, str):
            return routed
        if self._matchers is None:  # built on first use, once every route is included
            self._matchers = [(compile_path(t)[0], t) for t in self.templates()]
        path = scope["path"]
        return next((template for regex, template in self._matchers if regex.match(path)), "unmatched")
