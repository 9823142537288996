"""API keys and scopes (api.md, Authentication).

Checked in an ASGI middleware, before the body is read: a request without a valid key gets 401
even when its body is malformed. Every API route declares its scope through the router it
belongs to (`scoped_router`); a route without one is refused, so a new route cannot be left
open by accident.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import problem_response


class Access(StrEnum):
    ADMIN = "admin"
    CLAIMS_WRITE = "claims:write"
    CLAIMS_READ = "claims:read"
    ANY_KEY = "any"  # any valid key, whatever its scopes
    OPEN = "open"  # no key needed (health, readiness, metrics)


_bearer_doc = HTTPBearer(auto_error=False, description="API key from CLAIMS_API_KEYS")


def _route_class(access: Access) -> type[APIRoute]:
    return type(f"Route_{access.name}", (APIRoute,), {"required_access": access})


def scoped_router(access: Access, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes all require `access`; documents the bearer scheme in OpenAPI."""
    deps = list(kwargs.pop("dependencies", []))
    if access is not Access.OPEN:
        deps.append(Depends(_bearer_doc))
    return APIRouter(route_class=_route_class(access), dependencies=deps, **kwargs)


def required_access(route: Any) -> Access | None:
    return getattr(route, "required_access", None)


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
            text = value.decode("latin-1")
            kind, _, token = text.partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, keyring: KeyRing, routes: list[Any]) -> None:
        self.app = app
        self.keyring = keyring
        self.routes = routes

    def _access_for(self, scope: Scope) -> Access | None:
        partial: Access | None = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return required_access(route) if isinstance(route, APIRoute) else Access.OPEN
            if match is Match.PARTIAL and partial is None:
                # Path matches, method does not: still demand the path's key before saying 405.
                partial = required_access(route) if isinstance(route, APIRoute) else Access.OPEN
        return partial if partial is not None else Access.OPEN  # unknown path: 404 for anyone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self._access_for(scope)
        if access is None:
            response = problem_response(
                500, "Internal server error", "route has no access rule", "internal-error"
            )
            await response(scope, receive, send)
            return
        if access is Access.OPEN or not self.keyring.enabled:
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
        if access is not Access.ANY_KEY and access.value not in scopes:
            response = problem_response(
                403, "Forbidden", f"this API key lacks the '{access.value}' scope", "forbidden"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
