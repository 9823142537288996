"""Request body size limits, enforced before a handler reads the body (413 problem+json).

JSON routes get a small limit; the streaming rate uploads get a large one of their own. A declared
Content-Length over the limit is refused at once; a chunked body is counted as it streams.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PayloadTooLarge, problem_response

# Routes whose bodies are streamed to the database, never held in memory.
UPLOAD_PATHS = (
    re.compile(r"^/v1/fee-schedules/[^/]+/rates$"),
    re.compile(r"^/v1/networks/[^/]+/tic-in-network$"),
)


class _TooLarge(HTTPException):
    """Raised from receive(): frameworks re-raise HTTPExceptions from body parsing as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit_for(self, path: str) -> int:
        if any(p.match(path) for p in UPLOAD_PATHS):
            return self.max_upload_bytes
        return self.max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            PayloadTooLarge.status,
            PayloadTooLarge.title,
            f"the request body exceeds {limit} bytes",
            PayloadTooLarge.type_suffix,
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)
