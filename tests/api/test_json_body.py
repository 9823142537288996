"""POST /v1/claims validates a valid body from its JSON text (service/api/json_body.py) and leaves
every other body to FastAPI, whose answers must not change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.requests import Request as StarletteRequest

from service.api.auth import Access, scoped_router
from service.api.json_body import json_body
from tests import factories as f
from tests.api.test_hostile_input import claim_body, line
from tests.conftest import WRITE


class Thing(BaseModel):
    name: str


@pytest.fixture
def world(admin: TestClient, engine: Engine) -> Engine:
    f.load_worked_example(admin)
    return engine


@pytest.fixture
def json_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times FastAPI's path parsed a body (Request.json)."""
    calls: list[int] = []
    original = StarletteRequest.json

    async def counting(self: StarletteRequest) -> Any:
        calls.append(1)
        return await original(self)

    monkeypatch.setattr(StarletteRequest, "json", counting)
    yield calls


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_a_valid_claim_is_validated_from_its_json_text(
    client: TestClient, world: Engine, json_reads: list[int], content_type: str
) -> None:
    body = claim_body(claim_id=f"FAST-{len(content_type)}")
    response = client.post(
        "/v1/claims", content=json.dumps(body), headers={**WRITE, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    assert response.json()["claim_id"] == body["claim_id"]
    assert json_reads == []
    # A retry is the same claim: the request hash does not depend on the path taken.
    again = client.post("/v1/claims", json=body, headers=WRITE)
    assert again.status_code == 200 and again.text == response.text


def test_a_claim_has_the_same_values_and_hash_on_either_path(
    client: TestClient, world: Engine, json_reads: list[int]
) -> None:
    body = claim_body(claim_id="BOTH-PATHS", lines=[line(1, billed_amount="200.00")])
    first = client.post(
        "/v1/claims",
        content=json.dumps(body).replace('"200.00"', "2e2"),  # a JSON number, on the JSON body path
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert first.status_code == 201, first.text
    assert json_reads == []
    # A byte-order mark: pydantic refuses it, json.loads takes it, so FastAPI's path.
    again = client.post(
        "/v1/claims",
        content=b"\xef\xbb\xbf" + json.dumps(body).encode(),
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert json_reads == [1]
    assert again.status_code == 200 and again.text == first.text  # the same claim: a replay


@pytest.mark.parametrize("content_type", ["text/plain", "application/x/y+json", "application/xml"])
def test_other_content_types_get_fastapis_answer(
    client: TestClient, world: Engine, json_reads: list[int], content_type: str
) -> None:
    response = client.post(
        "/v1/claims", content=json.dumps(claim_body()), headers={**WRITE, "Content-Type": content_type}
    )
    assert response.status_code == 422  # FastAPI did not read it as JSON
    assert json_reads == []


def test_an_invalid_claim_gets_fastapis_answer(
    client: TestClient, world: Engine, json_reads: list[int]
) -> None:
    body = claim_body(lines=[line(1, units=0)])
    response = client.post("/v1/claims", json=body, headers=WRITE)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "lines", 0, "units"]]
    assert json_reads == [1]  # FastAPI parsed and validated it


def test_bad_json_gets_fastapis_answer(client: TestClient, world: Engine, json_reads: list[int]) -> None:
    response = client.post(
        "/v1/claims", content=b'{"claim_id": "X",', headers={**WRITE, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"] == "JSON decode error"
    assert json_reads == [1]


def plain_and_fast_app(**settings: Any) -> FastAPI:
    """/plain, an unmarked endpoint, and /fast, the same marked for the JSON body path (which
    also says which method its Request had)."""
    router = scoped_router(Access.ANY_KEY)

    @router.post("/plain")
    async def plain(body: Thing) -> Response:
        return Response(body.name)

    @router.post("/fast")
    @json_body
    async def fast(body: Thing, request: Request) -> Response:
        return Response(body.name, headers={"x-method": request.method})

    app = FastAPI(**settings)
    app.include_router(router)
    return app


def test_an_unmarked_endpoint_keeps_fastapis_path() -> None:
    with TestClient(plain_and_fast_app()) as client:
        assert client.post("/plain", json={"name": "a"}).text == "a"
        fast = client.post("/fast", json={"name": "b"})
        assert (fast.text, fast.headers["x-method"]) == ("b", "POST")
        assert client.post("/fast", json={"name": 1}).status_code == 422


def test_a_marked_endpoint_that_takes_more_is_refused_when_the_app_is_built() -> None:
    def dependency() -> int:
        return 1

    router = scoped_router(Access.ANY_KEY)
    with pytest.raises(TypeError, match="JSON body path"):

        @router.post("/fast")
        @json_body
        async def fast(body: Thing, n: int = Depends(dependency)) -> Response:
            return Response(body.name)

    with pytest.raises(TypeError, match="JSON body path"):

        @router.post("/not-a-response")
        @json_body
        async def returns_a_model(body: Thing) -> Thing:
            return body


def test_a_client_that_leaves_mid_body_gets_fastapis_answer(app: FastAPI, world: Engine) -> None:
    """FastAPI answers a body cut short with 400 (nobody reads it); never a 500 and its error log."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"claim_id": "LEFT-1", ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/claims",
        "raw_path": b"/v1/claims",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            *[(k.lower().encode(), v.encode()) for k, v in WRITE.items()],
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400


class _Tracer(trace.Tracer):
    """Records the names of the spans FastAPI starts."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.names.append(name)
        return trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    @contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:
        self.names.append(name)
        span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
        with trace.use_span(span, end_on_exit=False):
            yield span


class _TracerProvider(trace.TracerProvider):
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self.names)


def test_with_fastapis_opentelemetry_on_a_request_takes_fastapis_path() -> None:
    """So that its spans stay whole: the same as an unmarked endpoint's."""
    names: list[str] = []
    app = plain_and_fast_app(
        telemetry={"tracer_provider": _TracerProvider(names), "metrics": False, "logs": False}
    )
    spans = {}
    with TestClient(app) as client:
        for path in ("/plain", "/fast"):
            names.clear()
            assert client.post(path, json={"name": "a"}).text == "a"
            spans[path] = list(names)
    assert spans["/fast"] == spans["/plain"]
    assert len(spans["/plain"]) > 1  # the request's span and the endpoint's, at least
