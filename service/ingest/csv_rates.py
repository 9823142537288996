"""Fee-schedule rates from CSV (`procedure_code,modifier,allowed_amount`), streamed.

`CsvRatesParser` turns bytes, fed in chunks of any size, into validated rows that carry their
line number in the file (the header is line 1). `CsvRatesImport` stages those rows and replaces
the schedule's rates in one transaction; the HTTP upload and the CLI both drive it chunk by
chunk, so no more than one chunk and one batch are ever held in memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Connection, Engine, select, text

from ..db.models import FeeScheduleRow
from ..domain.codes import MODIFIER_RE, PROCEDURE_CODE_RE
from ..metrics import INGEST_ROWS
from .staging import Column, DuplicateKey, StagingTable, begin_ingest, end_ingest, money_column

COLUMNS = ("procedure_code", "modifier", "allowed_amount")
# At most two decimal places and ten whole digits (Numeric(12, 2)); no signs, exponents or spaces.
_AMOUNT_RE = re.compile(r"^[0-9]{1,10}(?:\.[0-9]{1,2})?$")
BATCH_ROWS = 20_000
# A "line" longer than this is not a rates row (or the file does not use \n line ends).
MAX_LINE_CHARS = 65_536

# (line, procedure_code, modifier, allowed_amount): the staging table's column order.
RateLine = tuple[int, str, str, Decimal]


class CsvRowError(Exception):
    """A row that cannot be loaded: its line in the file, the column (None: the whole row)."""

    def __init__(self, line: int, column: str | None, message: str) -> None:
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {message}")
        self.line = line
        self.column = column
        self.message = message


class UnknownFeeSchedule(Exception):
    pass


class CsvRatesParser:
    def __init__(self) -> None:
        # utf-8-sig drops the byte-order mark spreadsheet programs write.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._pending = ""
        self._lines_done = 0  # physical lines consumed so far
        self._index: tuple[int, int, int] | None = None  # positions of COLUMNS in the header

    def feed(self, chunk: bytes) -> tuple[list[RateLine], CsvRowError | None]:
        """The rows completed by this chunk, and the first error (rows before it are returned)."""
        try:
            text_ = self._pending + self._decoder.decode(chunk)
        except UnicodeDecodeError:
            return [], CsvRowError(self._lines_done + 1, None, "the file is not UTF-8 text")
        cut = text_.rfind("\n") + 1
        self._pending = text_[cut:]
        rows, error = self._parse(text_[:cut])
        if error is None and len(self._pending) > MAX_LINE_CHARS:
            error = CsvRowError(self._lines_done + 1, None, f"line longer than {MAX_LINE_CHARS} characters")
        return rows, error

    def close(self) -> tuple[list[RateLine], CsvRowError | None]:
        try:
            rest = self._pending + self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return [], CsvRowError(self._lines_done + 1, None, "the file is not UTF-8 text")
        self._pending = ""
        rows, error = self._parse(rest)
        if error is None and self._index is None:
            error = CsvRowError(1, None, f"missing header: expected {','.join(COLUMNS)}")
        return rows, error

    def _parse(self, complete_lines: str) -> tuple[list[RateLine], CsvRowError | None]:
        rows: list[RateLine] = []
        if not complete_lines:
            return rows, None
        reader = csv.reader(io.StringIO(complete_lines, newline=""), strict=True)
        base = self._lines_done
        try:
            for fields in reader:
                line = base + reader.line_num
                if not fields or fields == [""]:
                    continue  # blank lines, such as a trailing one, carry nothing
                if self._index is None:
                    self._index = _header_index(fields)
                else:
                    rows.append(self._row(line, fields))
        except CsvRowError as error:
            return rows, error
        except csv.Error as error:
            return rows, CsvRowError(base + reader.line_num, None, f"malformed CSV: {error}")
        self._lines_done = base + reader.line_num
        return rows, None

    def _row(self, line: int, fields: list[str]) -> RateLine:
        assert self._index is not None
        if len(fields) != len(COLUMNS):
            column = COLUMNS[len(fields)] if len(fields) < len(COLUMNS) else None
            raise CsvRowError(line, column, f"expected {len(COLUMNS)} fields, found {len(fields)}")
        code_at, modifier_at, amount_at = self._index
        code = fields[code_at].strip()
        if not PROCEDURE_CODE_RE.match(code):
            raise CsvRowError(line, "procedure_code", f"{code!r} is not a CPT or HCPCS code")
        modifier = fields[modifier_at].strip()
        if modifier and not MODIFIER_RE.match(modifier):
            raise CsvRowError(line, "modifier", f"{modifier!r} is not a two-character modifier")
        text_amount = fields[amount_at].strip()
        if not _AMOUNT_RE.match(text_amount):
            raise CsvRowError(
                line, "allowed_amount", f"{text_amount!r} is not an amount with at most two decimals"
            )
        amount = Decimal(text_amount)
        if amount <= 0:
            raise CsvRowError(line, "allowed_amount", "must be greater than 0")
        return (line, code, modifier, amount)


def _header_index(fields: list[str]) -> tuple[int, int, int]:
    names = [f.strip().lower() for f in fields]
    if sorted(names) != sorted(COLUMNS):
        raise CsvRowError(1, None, f"the header must name the columns {','.join(COLUMNS)}")
    return (names.index(COLUMNS[0]), names.index(COLUMNS[1]), names.index(COLUMNS[2]))


_STAGING_COLUMNS = (
    Column("line", "INTEGER", "INTEGER"),
    Column("procedure_code", "VARCHAR(5)", "TEXT"),
    Column("modifier", "VARCHAR(2)", "TEXT"),
    money_column("allowed_amount"),
)


class CsvRatesImport:
    """Replace one fee schedule's rates from a CSV stream: open(), feed()*, finish(); or abort().

    Sync and blocking: the HTTP route calls it from worker threads, one call at a time.
    """

    def __init__(self, engine: Engine, fee_schedule_code: str) -> None:
        self.engine = engine
        self.code = fee_schedule_code
        self._parser = CsvRatesParser()
        self._conn: Connection | None = None
        self._staging: StagingTable | None = None
        self._fee_schedule_id = 0
        self._batch: list[RateLine] = []

    def open(self) -> None:
        conn = begin_ingest(self.engine)
        self._conn = conn
        query = select(FeeScheduleRow.id).where(FeeScheduleRow.code == self.code)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # concurrent uploads of one schedule take turns
        fee_schedule_id = conn.execute(query).scalar_one_or_none()
        if fee_schedule_id is None:
            self.abort()
            raise UnknownFeeSchedule(self.code)
        self._fee_schedule_id = fee_schedule_id
        self._staging = StagingTable(
            conn, "staged_csv_rates", _STAGING_COLUMNS, primary_key=("procedure_code", "modifier")
        )

    def feed(self, chunk: bytes) -> None:
        self._accept(*self._parser.feed(chunk))

    def finish(self) -> int:
        """Swap the staged rates in, commit, and return the schedule's new rate count."""
        self._accept(*self._parser.close())
        self._flush()
        assert self._conn is not None and self._staging is not None
        count = self._staging.count()
        _swap(self._conn, self._fee_schedule_id, count)
        self._staging.drop()
        conn, self._conn = self._conn, None
        end_ingest(conn, commit=True)
        INGEST_ROWS.labels(source="csv").inc(count)
        return count

    def abort(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            end_ingest(conn, commit=False)

    def _accept(self, rows: list[RateLine], error: CsvRowError | None) -> None:
        self._batch.extend(rows)
        if error is not None:
            self._flush()  # a duplicate before the bad line is the first error of the file
            raise error
        if len(self._batch) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        assert self._staging is not None
        batch, self._batch = self._batch, []
        try:
            self._staging.write_unique(batch)
        except DuplicateKey as duplicate:
            line, code, modifier = duplicate.row[0], duplicate.row[1], duplicate.row[2]
            first = self._first_line(code, modifier)
            shown = code + (f"-{modifier}" if modifier else "")
            raise CsvRowError(
                line, "procedure_code", f"duplicate rate for {shown}: line {first} has it already"
            ) from None

    def _first_line(self, code: str, modifier: str) -> int:
        assert self._conn is not None
        found = self._conn.execute(
            text("SELECT line FROM staged_csv_rates WHERE procedure_code = :code AND modifier = :modifier"),
            {"code": code, "modifier": modifier},
        ).scalar_one()
        return int(found)


def _swap(conn: Connection, fee_schedule_id: int, count: int) -> None:
    params = {"id": fee_schedule_id, "count": count}
    conn.execute(text("DELETE FROM fee_schedule_rates WHERE fee_schedule_id = :id"), params)
    conn.execute(
        text(
            "INSERT INTO fee_schedule_rates (fee_schedule_id, procedure_code, modifier, allowed_amount) "
            "SELECT :id, procedure_code, modifier, allowed_amount FROM staged_csv_rates"
        ),
        params,
    )
    conn.execute(
        text(
            "UPDATE fee_schedules SET rates_version = rates_version + 1, rate_count = :count WHERE id = :id"
        ),
        params,
    )


def import_csv_file(engine: Engine, fee_schedule_code: str, chunks: Iterable[bytes]) -> int:
    """The CLI path: the same import, driven from an iterable of chunks."""
    upload = CsvRatesImport(engine, fee_schedule_code)
    upload.open()
    try:
        for chunk in chunks:
            upload.feed(chunk)
        return upload.finish()
    finally:
        upload.abort()
