"""A faster way into an endpoint whose only input is a JSON body (POST /v1/claims).

FastAPI reads such a body with json.loads, validates the Python objects against the model and
solves the endpoint's parameters: under load, 17% of a worker's time on the claims path (py-spy,
docs/performance.md). Pydantic validates the JSON text directly (`model_validate_json`) in less
time, with the same values (both read a JSON number the same way, and money is formatted from
the Decimal either way).

Only a body that is valid takes this path: the endpoint is called with the model directly. Any
other request (another content type, an empty body, bad JSON, a validation error, and every
request while FastAPI's own OpenTelemetry records it, so that its spans stay whole) goes through
FastAPI's own handler, which reads the same cached body, so the 422s and their messages stay
exactly FastAPI's. The OpenAPI document is FastAPI's too: the endpoint keeps its signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, parameters aside (as FastAPI decides)."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    # email.message, which FastAPI asks, takes a type with a second slash for text/plain.
    return kind == "application" and "/" not in subtype and (subtype == "json" or subtype.endswith("+json"))


def json_body(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint for the JSON body path (put it below the route decorator)."""
    endpoint.__json_body__ = True  # type: ignore[attr-defined]
    return endpoint


def json_body_handler(route: APIRoute, fallback: Handler) -> Handler:
    """`fallback` (FastAPI's handler), or the JSON body path when the endpoint is marked with
    `json_body`. A marked endpoint must be a coroutine that takes one body model and, if it
    likes, the Request, and returns a Response: anything else is refused when the app is built."""
    endpoint = route.endpoint
    if not getattr(endpoint, "__json_body__", False):
        return fallback
    dependant = route.dependant
    fields = dependant.body_params
    model = fields[0].field_info.annotation if len(fields) == 1 else None
    if (
        not (inspect.isclass(model) and issubclass(model, BaseModel))
        or fields[0].alias != fields[0].name
        or getattr(fields[0].field_info, "embed", False)
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.dependencies
        or not inspect.iscoroutinefunction(endpoint)
        or get_type_hints(endpoint).get("return") is not Response
    ):
        raise TypeError(
            f"{endpoint.__name__}: the JSON body path takes an async endpoint with one body model "
            "(and the Request) that returns a Response"
        )
    body_name, request_name = fields[0].name, dependant.request_param_name

    async def handler(request: Request) -> Response:
        if request.scope.get("fastapi.telemetry") is not None or not _is_json(
            request.headers.get("content-type")
        ):
            return await fallback(request)
        try:
            raw = await request.body()
        except ClientDisconnect:  # FastAPI answers it as it always has (HTTPExceptions, such as
            return await fallback(request)  # a body over its limit, go up as they did)
        try:
            body = model.model_validate_json(raw)
        except ValidationError:
            return await fallback(request)  # FastAPI reports it, as it always has
        kwargs: dict[str, Any] = {body_name: body}
        if request_name:
            kwargs[request_name] = request
        response: Response = await endpoint(**kwargs)
        return response

    return handler
