"""PUT /v1/fee-schedules/{code}/rates: a streamed CSV replaces a schedule's rates atomically."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db.models import FeeScheduleRateRow, FeeScheduleRow
from tests.factories import fee_schedule, problem

CSV = {"Content-Type": "text/csv"}
PATH = "/v1/fee-schedules/ACME-2026/rates"


def rates(engine: Engine, code: str = "ACME-2026") -> dict[tuple[str, str], Decimal | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                FeeScheduleRateRow.procedure_code,
                FeeScheduleRateRow.modifier,
                FeeScheduleRateRow.allowed_amount,
            )
            .join(FeeScheduleRow)
            .where(FeeScheduleRow.code == code)
        ).all()
    return {(code_, modifier): amount for code_, modifier, amount in rows}


def schedule_row(engine: Engine, code: str = "ACME-2026") -> FeeScheduleRow:
    with Session(engine) as session:
        return session.scalars(select(FeeScheduleRow).where(FeeScheduleRow.code == code)).one()


def test_replaces_all_rates_with_and_without_modifiers(admin: TestClient, engine: Engine) -> None:
    fee_schedule(admin)
    before = rates(engine)
    assert before[("99213", "")] == Decimal("110.00")
    body = "procedure_code,modifier,allowed_amount\n99213,,120\n70551,26,95.5\n70551,,410.00\nJ1100,,12.34\n"
    response = admin.put(PATH, content=body, headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json() == {"code": "ACME-2026", "rate_count": 4}
    assert rates(engine) == {
        ("99213", ""): Decimal("120.00"),
        ("70551", "26"): Decimal("95.50"),
        ("70551", ""): Decimal("410.00"),
        ("J1100", ""): Decimal("12.34"),
    }
    row = schedule_row(engine)
    assert (row.rate_count, row.rates_version) == (4, 2)
    assert admin.get("/v1/fee-schedules/ACME-2026").json()["rate_count"] == 4


def test_crlf_bom_quotes_column_order_and_blank_lines(admin: TestClient, engine: Engine) -> None:
    fee_schedule(admin)
    body = '\ufeffallowed_amount,procedure_code,modifier\r\n"110.00","99213",""\r\n\r\n90,70551,TC\r\n'
    response = admin.put(PATH, content=body.encode(), headers={"Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 200, response.text
    assert rates(engine) == {("99213", ""): Decimal("110.00"), ("70551", "TC"): Decimal("90.00")}


@pytest.mark.parametrize(
    ("row3", "column"),
    [
        ("99214,,0", "allowed_amount"),
        ("99214,,0.00", "allowed_amount"),
        ("99214,,-5", "allowed_amount"),
        ("99214,,1.234", "allowed_amount"),
        ("99214,,abc", "allowed_amount"),
        ("99214,,1e3", "allowed_amount"),
        ("9921,,10.00", "procedure_code"),
        ("99214,2,10.00", "modifier"),
        ("99214,", "allowed_amount"),
        ("99213,,10.00", "procedure_code"),  # a duplicate of line 2
    ],
)
def test_bad_row_3_names_line_and_column_and_changes_nothing(
    admin: TestClient, engine: Engine, row3: str, column: str
) -> None:
    fee_schedule(admin)
    before = rates(engine)
    body = f"procedure_code,modifier,allowed_amount\n99213,,120.00\n{row3}\n99215,,200.00\n"
    body_problem = problem(admin.put(PATH, content=body, headers=CSV), 422, ["body", "line", 3, column])
    assert body_problem["line"] == 3 and body_problem["column"] == column
    assert "line 3" in body_problem["detail"]
    assert rates(engine) == before
    assert schedule_row(engine).rates_version == 1


def test_the_first_bad_line_is_reported_even_when_a_duplicate_is_earlier(admin: TestClient) -> None:
    fee_schedule(admin)
    body = "procedure_code,modifier,allowed_amount\n99213,,1\n99214,,2\n99213,,3\n99215,,0\n"
    body_problem = problem(
        admin.put(PATH, content=body, headers=CSV), 422, ["body", "line", 4, "procedure_code"]
    )
    assert "line 2 has it already" in body_problem["detail"]


@pytest.mark.parametrize(
    "body",
    ["", "code,modifier,amount\n99213,,1\n", "procedure_code,modifier\n99213,\n"],
)
def test_missing_or_wrong_header_is_line_1(admin: TestClient, body: str) -> None:
    fee_schedule(admin)
    assert problem(admin.put(PATH, content=body, headers=CSV), 422)["line"] == 1


def test_header_only_empties_the_schedule(admin: TestClient, engine: Engine) -> None:
    fee_schedule(admin)
    response = admin.put(PATH, content="procedure_code,modifier,allowed_amount\n", headers=CSV)
    assert response.json() == {"code": "ACME-2026", "rate_count": 0}
    assert rates(engine) == {}


def test_unknown_schedule_404_wrong_type_415_no_scope_403(client: TestClient, admin: TestClient) -> None:
    body = "procedure_code,modifier,allowed_amount\n99213,,1\n"
    problem(admin.put("/v1/fee-schedules/NOPE/rates", content=body, headers=CSV), 404)
    fee_schedule(admin)
    problem(admin.put(PATH, content=body, headers={"Content-Type": "application/json"}), 415)
    problem(admin.put(PATH, content=body), 415)
    from tests.conftest import READ

    problem(client.put(PATH, content=body, headers={**CSV, **READ}), 403)


def _generated(rows: int) -> Iterator[bytes]:
    yield b"procedure_code,modifier,allowed_amount\n"
    for i in range(rows):
        # 10,000 codes, each without a modifier and with modifier 26: distinct keys.
        modifier = "" if i < 10_000 else "26"
        yield f"{10000 + i % 10_000},{modifier},{1 + i % 997}.{i % 100:02d}\n".encode()


def test_twenty_thousand_rows_stream_in(admin: TestClient, engine: Engine) -> None:
    fee_schedule(admin)
    response = admin.put(PATH, content=_generated(20_000), headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json()["rate_count"] == 20_000
    stored = rates(engine)
    assert len(stored) == 20_000
    assert stored[("19999", "26")] == Decimal(f"{1 + 19_999 % 997}.99")


def test_parser_gives_the_same_rows_whatever_the_chunk_boundaries() -> None:
    from service.ingest.csv_rates import CsvRatesParser

    text = (
        '\ufeffprocedure_code,modifier,allowed_amount\r\n99213,,110.00\r\n"70551","26",90\r\n\r\nJ1100,,1.5\n'
    )
    data = text.encode()

    def parse(pieces: list[bytes]) -> list[tuple[int, str, str, Decimal]]:
        parser = CsvRatesParser()
        rows = []
        for piece in pieces:
            got, error = parser.feed(piece)
            assert error is None
            rows += got
        got, error = parser.close()
        assert error is None
        return rows + got

    whole = parse([data])
    assert whole == [
        (2, "99213", "", Decimal("110.00")),
        (3, "70551", "26", Decimal("90")),
        (5, "J1100", "", Decimal("1.5")),
    ]
    assert parse([data[i : i + 1] for i in range(len(data))]) == whole
    assert parse([data[:7], data[7:40], data[40:]]) == whole


def test_ingested_rows_are_counted_in_metrics(admin: TestClient) -> None:
    from prometheus_client import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("claims_ingest_rows_total", {"source": "csv"}) or 0.0

    fee_schedule(admin)
    before = counted()
    body = "procedure_code,modifier,allowed_amount\n99213,,1\n99214,,2\n"
    assert admin.put(PATH, content=body, headers=CSV).status_code == 200
    assert counted() == before + 2
