"""Structured JSON log lines with a request id.

Claims carry protected health information (member ids, diagnoses, amounts). At INFO and above we
log only what operations need: request id, method, route TEMPLATE (never the raw path, which
holds claim and member ids), status and duration. Handlers must not log PHI at INFO either.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# color_message: uvicorn's copy of its message with terminal colour codes, noise in a JSON line.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            if record.levelno <= logging.DEBUG:
                entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


_configured = False


def configure_logging(level: str = "info") -> None:
    global _configured
    if _configured:
        return
    # What the JSON lines never show, each record need not gather (the logging documentation's
    # "Optimization"): the caller's file and line (a stack walk), thread and process ids and
    # names. For the whole process: any handler added later sees none of them either.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # These log raw URLs (which carry claim and member ids) or chatter on every readiness probe.
    for name in ("httpx", "uvicorn.access", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    _configured = True


access_log = logging.getLogger("service.access")

_id_source: tuple[int, str, itertools.count[int]] | None = None


def new_request_id() -> str:
    """32 hex digits, unique across processes: a random prefix drawn once per process, then a
    counter. Ids need to be unique, not unguessable; uuid4 cost a getrandom call per request."""
    global _id_source
    if _id_source is None or _id_source[0] != os.getpid():  # a forked child draws its own
        _id_source = (os.getpid(), os.urandom(10).hex(), itertools.count())
    return f"{_id_source[1]}{next(_id_source[2]) % 16**12:012x}"


class RequestContextMiddleware:
    """Assigns a request id (honouring a sane incoming X-Request-ID), echoes it, logs the request."""

    def __init__(self, app: ASGIApp, route_template: Callable[[Scope], str]) -> None:
        self.app = app
        self.route_template = route_template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
                    rid = candidate
        rid = rid or new_request_id()
        token = request_id_var.set(rid)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "route": self.route_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
            request_id_var.reset(token)
