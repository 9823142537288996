"""API keys and scopes (api.md, Authentication).

Two checks, so a request is refused as early as possible:
- an ASGI middleware demands a valid key on every path except the open operational ones, before
  the body is read: a request without a valid key gets 401 even when its body is malformed;
- each router declares the scope its routes need (`scoped_router`); its route class answers 403
  when the key lacks it, before the body is read or any dependency runs. The scope is also
  written into each operation of the OpenAPI document (`x-required-scope`), which is how the
  route-walking test finds routes without a rule, and so is the bearer scheme (`security`).

The checks are plain code, not FastAPI dependencies: solving dependencies costs tens of
microseconds a request on the claims hot path (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .json_body import json_body_handler
from .problems import Forbidden, problem_response


class Access(StrEnum):
    ADMIN = "admin"
    CLAIMS_WRITE = "claims:write"
    CLAIMS_READ = "claims:read"
    ANY_KEY = "any"  # any valid key, whatever its scopes
    OPEN = "open"  # no key needed (health, readiness, metrics)


# Paths served without a key. Everything else needs one, including paths that do not exist,
# so an unauthenticated caller learns nothing about the API's shape.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
SCOPE_EXTENSION = "x-required-scope"

# The bearer scheme as the OpenAPI document names it (components.securitySchemes).
BEARER_SCHEME_NAME = "HTTPBearer"
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "API key from CLAIMS_API_KEYS",
}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _checking_scope(access: Access, handler: Handler) -> Handler:
    async def checked(request: Request) -> Response:
        scopes: frozenset[str] | None = request.scope.get("state", {}).get("api_scopes")
        if scopes is not None and access.value not in scopes:
            raise Forbidden(f"this API key lacks the '{access.value}' scope")
        return await handler(request)

    return checked


def _route_class(access: Access) -> type[APIRoute]:
    def __init__(self: APIRoute, *args: Any, **kwargs: Any) -> None:
        extra = dict(kwargs.pop("openapi_extra", None) or {})
        extra[SCOPE_EXTENSION] = access.value
        if access is not Access.OPEN:
            extra.setdefault("security", [{BEARER_SCHEME_NAME: []}])
        APIRoute.__init__(self, *args, openapi_extra=extra, **kwargs)

    def get_route_handler(self: APIRoute) -> Handler:
        handler = json_body_handler(self, APIRoute.get_route_handler(self))
        # Any valid key passed the middleware already; OPEN routes need none.
        if access in (Access.OPEN, Access.ANY_KEY):
            return handler
        return _checking_scope(access, handler)

    namespace = {"required_access": access, "__init__": __init__, "get_route_handler": get_route_handler}
    return type(f"Route_{access.name}", (APIRoute,), namespace)


def scoped_router(access: Access, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes all require `access`; documents the bearer scheme in OpenAPI."""
    return APIRouter(route_class=_route_class(access), **kwargs)


def document_bearer_scheme(schema: dict[str, Any]) -> None:
    """Declare the bearer scheme the operations' `security` names (app.openapi() post-processing)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME_NAME] = BEARER_SCHEME


class KeyRing:
    """Holds key digests only; compares in constant time against every key."""

    def __init__(self, keys: Mapping[str, list[str]]) -> None:
        self._entries = [(hashlib.sha256(k.encode()).digest(), frozenset(s)) for k, s in keys.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def scopes_for(self, presented: str) -> frozenset[str] | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: frozenset[str] | None = None
        for key_digest, scopes in self._entries:  # no early exit: time does not depend on position
            if hmac.compare_digest(digest, key_digest):
                found = scopes
        return found


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            kind, _, token = text.partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, keyring: KeyRing) -> None:
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keyring.enabled or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        scopes = self.keyring.scopes_for(token) if token else None
        if scopes is None:
            response = problem_response(
                401,
                "Unauthorized",
                "a valid API key is required: send 'Authorization: Bearer <key>'",
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_scopes"] = scopes
        await self.app(scope, receive, send)
