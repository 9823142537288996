"""Hostile input: every refusal is an RFC 9457 problem+json (never a 500, never a stack trace) and
stores nothing. Runs in-process on SQLite and, with CLAIMS_TEST_DATABASE_URL, on PostgreSQL, whose
text columns refuse what SQLite takes (NUL characters), so both must say 4xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.api.auth import SCOPE_EXTENSION, Access
from service.api.limits import UPLOAD_PATHS
from tests import factories as f
from tests.conftest import ADMIN, READ, WRITE

SCOPE_HEADERS = {
    Access.ADMIN: ADMIN,
    Access.CLAIMS_WRITE: WRITE,
    Access.CLAIMS_READ: READ,
    Access.ANY_KEY: READ,
}
JSON = {"Content-Type": "application/json"}


def claim_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "claim_id": "HOSTILE-1",
        "member_id": f.WORKED_MEMBER,
        "billing_provider_npi": f.WORKED_NPI,
        "place_of_service": "11",
        "received_date": "2026-03-05",
        "diagnosis_codes": ["J06.9"],
        "lines": [line(1)],
    }
    return {**body, **overrides}


def line(number: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "line_number": number,
        "procedure_code": "99213",
        "units": 1,
        "billed_amount": "200.00",
        "service_date": "2026-03-01",
    }
    return {**body, **overrides}


@pytest.fixture
def world(admin: TestClient, engine: Engine) -> Engine:
    """The worked example's reference data; returns the engine, to count rows with."""
    f.load_worked_example(admin)
    return engine


def refused(
    response: Any, status: int, engine: Engine, before: dict[str, int], loc: list[Any] | None = None
) -> None:
    f.problem(response, status, loc)
    assert "Traceback" not in response.text
    assert f.row_counts(engine) == before, "a refused request stored something"


def json_body_operations(app: FastAPI) -> list[tuple[str, str, Access]]:
    """Operations taking a JSON object; streamed uploads (TiC files) have tests of their own."""
    out = []
    for path, item in app.openapi()["paths"].items():
        if any(upload.match(_concrete(path)) for upload in UPLOAD_PATHS):
            continue
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content and op[SCOPE_EXTENSION] != Access.OPEN:
                out.append((method.upper(), path, Access(op[SCOPE_EXTENSION])))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X-1", path)


# ---------------------------------------------------------------- bodies that are not JSON objects

NOT_JSON_OBJECTS = [
    (b'{"claim_id": ', 422),  # truncated
    (b"{'claim_id': 'single quotes'}", 422),
    (b'{"a": 1}}', 422),  # trailing garbage
    (b"", 422),
    (b"null", 422),
    (b"[]", 422),
    (b'"a string"', 422),
    (b'{"claim_id": "\xc3\x28"}', 400),  # not UTF-8
    (b"[" * 100_000, 400),  # nested past the parser's recursion limit
    (b'{"units": ' + b"9" * 5000 + b"}", 400),  # more digits than Python will parse
]


@pytest.mark.parametrize(("content", "status"), NOT_JSON_OBJECTS, ids=lambda v: repr(v)[:30])
def test_every_json_operation_refuses_bodies_that_are_not_json_objects(
    app: FastAPI, client: TestClient, world: Engine, content: bytes, status: int
) -> None:
    before = f.row_counts(world)
    operations = json_body_operations(app)
    assert len(operations) >= 9  # reference data, claims, estimates
    for method, path, access in operations:
        response = client.request(
            method, _concrete(path), content=content, headers={**SCOPE_HEADERS[access], **JSON}
        )
        refused(response, status, world, before)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ],
)
def test_a_claim_in_the_wrong_content_type_is_refused(
    client: TestClient, world: Engine, content_type: str | None
) -> None:
    before = f.row_counts(world)
    headers = {**WRITE, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/v1/claims", content=json.dumps(claim_body()).encode(), headers=headers)
    refused(response, 422, world, before, ["body"])


def test_rates_in_the_wrong_content_type_are_415(admin: TestClient, world: Engine) -> None:
    before = f.row_counts(world)
    response = admin.put(f"/v1/fee-schedules/{f.WORKED_FEE_SCHEDULE}/rates", json={"rates": []})
    refused(response, 415, world, before)


# ---------------------------------------------------------------- size

TEN_MB = 10 * 1024 * 1024


def _padded_claim() -> bytes:
    """A syntactically valid claim of 10 MB (the padding is in a field the schema forbids)."""
    return json.dumps(claim_body(padding="x" * TEN_MB)).encode()


def test_a_10_mb_claim_is_413_before_it_is_read(client: TestClient, world: Engine) -> None:
    before = f.row_counts(world)
    response = client.post("/v1/claims", content=_padded_claim(), headers={**WRITE, **JSON})
    refused(response, 413, world, before)


def test_a_10_mb_claim_without_a_length_is_413_as_it_streams(client: TestClient, world: Engine) -> None:
    def chunks() -> Iterator[bytes]:
        body = _padded_claim()
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    before = f.row_counts(world)
    response = client.post("/v1/claims", content=chunks(), headers={**WRITE, **JSON})
    assert "content-length" not in response.request.headers
    refused(response, 413, world, before)


def test_51_lines_are_refused_and_50_are_taken(client: TestClient, world: Engine) -> None:
    before = f.row_counts(world)
    too_many = claim_body(lines=[line(n) for n in range(1, 52)])
    refused(client.post("/v1/claims", json=too_many, headers=WRITE), 422, world, before, ["body", "lines"])
    most = claim_body(lines=[line(n) for n in range(1, 51)])
    response = client.post("/v1/claims", json=most, headers=WRITE)
    assert response.status_code == 201, response.text
    assert len(response.json()["lines"]) == 50


# ---------------------------------------------------------------- unicode and control characters

HOSTILE_IDS = [
    "CLM\x00",
    "CLM\n1",
    "CLM\t1",
    "CLM\x1b[31m",
    "CLM\u202e1",  # right-to-left override
    "CLM\u200b1",  # zero-width space
    "\uff23\uff2c\uff2d\uff11",  # fullwidth CLM1
    "CLM-\U0001f600",
    "CLMé",
    " CLM",
    "",
    "A" * 65,
    "../../etc/passwd",
    "CLM'; DROP TABLE claims;--",
]


@pytest.mark.parametrize("field", ["claim_id", "member_id"])
@pytest.mark.parametrize("value", HOSTILE_IDS, ids=ascii)
def test_hostile_ids_in_a_claim_are_422_naming_the_field(
    client: TestClient, world: Engine, field: str, value: str
) -> None:
    before = f.row_counts(world)
    response = client.post("/v1/claims", json=claim_body(**{field: value}), headers=WRITE)
    refused(response, 422, world, before, ["body", field])


@pytest.mark.parametrize(
    ("field", "raw"),
    [("claim_id", '"CLM\\ud800"'), ("member_id", '"\\udfff"'), ("diagnosis_codes", '["J06\\ud8009"]')],
)
def test_lone_surrogates_are_422(client: TestClient, world: Engine, field: str, raw: str) -> None:
    before = f.row_counts(world)
    body = json.dumps(claim_body(**{field: "PLACEHOLDER"})).replace('"PLACEHOLDER"', raw)
    response = client.post("/v1/claims", content=body.encode(), headers={**WRITE, **JSON})
    refused(response, 422, world, before)
    assert response.json()["errors"][0]["loc"][:2] == ["body", field]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/networks", {"code": "N-2", "name": "Net\x00work"}),
        ("/v1/providers", {"npi": f.make_npi(7), "name": "Dr.\x00Evil"}),
        ("/v1/providers", {"npi": f.make_npi(7), "name": "Dr.\nEvil"}),
        ("/v1/fee-schedules", {"code": "FS-2", "name": "Fees\x1b[2J", "rates": []}),
        ("/v1/plans", f.plan_body(code="P-2", name="Plan\x00")),
        ("/v1/authorizations", f.authorization_body(authorization_number="PA\x00")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_control_characters_in_reference_data_are_422(
    admin: TestClient, world: Engine, path: str, body: dict[str, Any]
) -> None:
    before = f.row_counts(world)
    refused(admin.post(path, json=body), 422, world, before)


def test_a_nul_in_a_claim_lines_authorization_number_is_422(client: TestClient, world: Engine) -> None:
    before = f.row_counts(world)
    body = claim_body(lines=[line(1, authorization_number="PA\x00")])
    response = client.post("/v1/claims", json=body, headers=WRITE)
    refused(response, 422, world, before, ["body", "lines", 0, "authorization_number"])


@pytest.mark.parametrize("segment", ["X%00", "%ED%A0%80", "X%0A1", "X%1B", "%EF%BC%A1", "X%20Y"])
def test_hostile_path_ids_are_4xx_on_every_operation(
    app: FastAPI, client: TestClient, world: Engine, segment: str
) -> None:
    before = f.row_counts(world)
    checked = 0
    for path, item in app.openapi()["paths"].items():
        if "{" not in path:
            continue
        for method, op in item.items():
            url = re.sub(r"\{[^}]+\}", segment, path)
            response = client.request(method.upper(), url, headers=SCOPE_HEADERS[Access(op[SCOPE_EXTENSION])])
            assert response.status_code in (404, 415, 422), (
                method,
                path,
                response.status_code,
                response.text,
            )
            refused(response, response.status_code, world, before)
            checked += 1
    assert checked >= 10


# ---------------------------------------------------------------- numbers

HUGE = [
    ("billed_amount", "1e400"),  # a float overflow: infinity
    ("billed_amount", str(10**30)),
    ("billed_amount", '"1e400"'),
    ("billed_amount", '"1E+30"'),
    ("billed_amount", "NaN"),
    ("billed_amount", "Infinity"),
    ("billed_amount", "-Infinity"),
    ("billed_amount", '"0.001"'),
    ("billed_amount", "1e-400"),  # underflows to zero
    ("billed_amount", "-0"),
    ("units", str(10**30)),
    ("units", "1e400"),
    ("units", "1.5"),
    ("line_number", str(10**30)),
    ("line_number", "-1"),
]


@pytest.mark.parametrize(("field", "raw"), HUGE)
def test_huge_and_odd_numbers_are_422_naming_the_field(
    client: TestClient, world: Engine, field: str, raw: str
) -> None:
    before = f.row_counts(world)
    body = json.dumps(claim_body(lines=[line(1, **{field: "PLACEHOLDER"})])).replace('"PLACEHOLDER"', raw)
    response = client.post("/v1/claims", content=body.encode(), headers={**WRITE, **JSON})
    refused(response, 422, world, before, ["body", "lines", 0, field])


@pytest.mark.parametrize("plan_year", [str(10**30), "1e400", "-1", "2026.5"])
def test_huge_query_numbers_are_422(client: TestClient, world: Engine, plan_year: str) -> None:
    before = f.row_counts(world)
    response = client.get(f"/v1/members/{f.WORKED_MEMBER}/accumulators?plan_year={plan_year}", headers=READ)
    refused(response, 422, world, before, ["query", "plan_year"])


def test_a_huge_contract_id_is_422(admin: TestClient, world: Engine) -> None:
    before = f.row_counts(world)
    refused(admin.get(f"/v1/contracts/{2**31}"), 422, world, before, ["path", "contract_id"])


# ---------------------------------------------------------------- a bad row at the end of a big CSV

CSV_ROWS = 100_000


def _csv_with_a_bad_last_row() -> Iterator[bytes]:
    yield b"procedure_code,modifier,allowed_amount\n"
    batch = []
    for i in range(CSV_ROWS - 1):
        batch.append(f"{i:05d},,{1 + i % 500}.{i % 100:02d}\n")
        if len(batch) == 10_000:
            yield "".join(batch).encode()
            batch = []
    yield ("".join(batch) + "99999,,12.3.4\n").encode()


def test_a_bad_last_row_of_100000_leaves_the_old_rates(
    admin: TestClient, client: TestClient, world: Engine
) -> None:
    before = f.row_counts(world)
    path = f"/v1/fee-schedules/{f.WORKED_FEE_SCHEDULE}/rates"
    response = admin.put(path, content=_csv_with_a_bad_last_row(), headers={"Content-Type": "text/csv"})
    body = f.problem(response, 422)
    assert body["line"] == CSV_ROWS + 1  # the header is line 1
    assert body["column"] == "allowed_amount"
    assert f.row_counts(world) == before
    assert admin.get(f"/v1/fee-schedules/{f.WORKED_FEE_SCHEDULE}").json()["rate_count"] == len(
        f.ACME_2026_RATES
    )
    estimate = client.post("/v1/estimates", json=claim_body(claim_id=None), headers=WRITE)
    assert estimate.json()["lines"][0]["allowed_amount"] == "110.00"  # still the old contracted rate
