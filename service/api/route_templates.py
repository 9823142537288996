"""Names a request by its route TEMPLATE ("/v1/claims/{claim_id}"), never its raw path.

Raw paths hold claim and member ids: protected health information, and unbounded values. A
routed request names its route; one refused before routing (401) is matched against the API's
path templates (its OpenAPI paths); a path that matches none is "unmatched". Shared by the
metrics and the access log so both name a request the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from starlette.routing import compile_path
from starlette.types import Scope


class RouteTemplates:
    def __init__(self, templates: Callable[[], Iterable[str]]) -> None:
        self.templates = templates
        self._matchers: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, scope: Scope) -> str:
        routed = getattr(scope.get("route"), "path", None)
        if isinstance(routed, str):
            return routed
        if self._matchers is None:  # built on first use, once every route is included
            self._matchers = [(compile_path(t)[0], t) for t in self.templates()]
        path = scope["path"]
        return next((template for regex, template in self._matchers if regex.match(path)), "unmatched")
