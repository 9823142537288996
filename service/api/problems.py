"""RFC 9457 problem+json: one error base class, one handler each for ours and the framework's."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("service.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error the API reports to the client. Raise it anywhere in the shell."""

    status = 400
    title = "Bad request"
    type_suffix = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotFound(Problem):
    status, title, type_suffix = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, type_suffix = 409, "Conflict", "conflict"


class Unprocessable(Problem):
    status, title, type_suffix = 422, "Unprocessable content", "validation-error"


class Unauthorized(Problem):
    status, title, type_suffix = 401, "Unauthorized", "unauthorized"


class Forbidden(Problem):
    status, title, type_suffix = 403, "Forbidden", "forbidden"


class PayloadTooLarge(Problem):
    status, title, type_suffix = 413, "Content too large", "payload-too-large"


class ServiceUnavailable(Problem):
    status, title, type_suffix = 503, "Service unavailable", "service-unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str,
    type_suffix: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://claims.example/problems/{type_suffix}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        out.append({"loc": _loc(err.get("loc", ())), "msg": msg})
    return out


def _problem_of(exc: Problem) -> JSONResponse:
    # 401 says how to authenticate; 503 (the database unavailable or not keeping up) when to retry.
    headers = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "1"}}.get(exc.status)
    return problem_response(
        exc.status, exc.title, exc.detail, exc.type_suffix, exc.errors, headers, **exc.extra
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return _problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(
            422, "Unprocessable content", f"invalid request: {fields}", "validation-error", errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}
        return problem_response(
            exc.status_code,
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail),
            f"http-{exc.status_code}",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)  # the PostgreSQL submit path's own statements
    @app.exception_handler(PoolTimeoutError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return _problem_of(ServiceUnavailable("the database is unavailable; retry later"))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return problem_response(
            500, "Internal server error", "an unexpected error occurred", "internal-error"
        )
