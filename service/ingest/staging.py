"""Bulk staging for the ingest paths: one transaction, TEMP tables, then a set-based swap.

Rows are validated in Python, written into a TEMP table of the ingest's own transaction (COPY on
PostgreSQL, executemany on SQLite) and only then moved into the real tables with INSERT ...
SELECT, so a failure at any point rolls back with nothing half-written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from ..domain.records import record

# Bulk statements (a 1,000,000-row INSERT ... SELECT) outlast the request statement timeout.
INGEST_STATEMENT_TIMEOUT = "30min"

Row = tuple[Any, ...]


class DuplicateKey(Exception):
    """A staged row repeats the key of an earlier one."""

    def __init__(self, row: Row) -> None:
        super().__init__(f"duplicate key in row {row!r}")
        self.row = row


def begin_ingest(engine: Engine) -> Connection:
    """A connection inside a transaction that bulk statements may run long in."""
    conn = engine.connect()
    conn.begin()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{INGEST_STATEMENT_TIMEOUT}'")
        # Sorting a million staged rows in memory beats spilling; JIT compiling the set-based
        # statements costs more than it saves at these sizes.
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")
    return conn


def end_ingest(conn: Connection, *, commit: bool) -> None:
    try:
        if commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        conn.close()


@record
class Column:
    name: str
    pg_type: str
    sqlite_type: str
    # SQLite keeps money as scaled integers (db/types.py): staged values must already be scaled.
    to_sqlite: Callable[[Any], Any] | None = None


def _scaled(places: int) -> Callable[[Decimal | None], int | None]:
    factor = Decimal(10) ** places

    def convert(value: Decimal | None) -> int | None:
        return None if value is None else int((value * factor).to_integral_exact())

    return convert


def money_column(name: str) -> Column:
    return Column(name, "NUMERIC(12, 2)", "INTEGER", _scaled(2))


def rate_column(name: str) -> Column:
    return Column(name, "NUMERIC(9, 6)", "INTEGER", _scaled(6))


class StagingTable:
    """A TEMP table that lives until the ingest transaction ends."""

    def __init__(
        self, conn: Connection, name: str, columns: Sequence[Column], primary_key: Sequence[str] = ()
    ) -> None:
        self.conn = conn
        self.name = name
        self.columns = list(columns)
        self._postgres = conn.dialect.name == "postgresql"
        kind = "pg_type" if self._postgres else "sqlite_type"
        defs = [f"{c.name} {getattr(c, kind)}" for c in self.columns]
        if primary_key:
            defs.append(f"PRIMARY KEY ({', '.join(primary_key)})")
        # PostgreSQL drops it at commit; SQLite keeps TEMP tables per connection, see drop().
        suffix = " ON COMMIT DROP" if self._postgres else ""
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ({', '.join(defs)}){suffix}")
        names = ", ".join(c.name for c in self.columns)
        self._copy_sql = f"COPY {name} ({names}) FROM STDIN"
        marks = ", ".join("?" for _ in self.columns)
        self._insert_sql = f"INSERT INTO {name} ({names}) VALUES ({marks})"
        self._converters = [(i, c.to_sqlite) for i, c in enumerate(self.columns) if c.to_sqlite]

    def write(self, rows: Sequence[Row]) -> None:
        """Append rows (tuples in column order)."""
        if not rows:
            return
        driver = self.conn.connection.driver_connection
        if self._postgres:
            assert isinstance(driver, psycopg.Connection)
            with driver.cursor() as cur, cur.copy(self._copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if self._converters:
            rows = [self._for_sqlite(row) for row in rows]
        assert driver is not None
        cur = driver.cursor()
        try:
            cur.executemany(self._insert_sql, rows)
        finally:
            cur.close()

    def _for_sqlite(self, row: Row) -> Row:
        values = list(row)
        for index, convert in self._converters:
            values[index] = convert(values[index])
        return tuple(values)

    def write_unique(self, rows: Sequence[Row]) -> None:
        """Append rows to a table with a primary key; raise DuplicateKey naming the FIRST row
        (in order) whose key is already staged, with every row before it staged."""
        savepoint = self.conn.begin_nested()
        try:
            self.write(rows)
        except (IntegrityError, psycopg.errors.UniqueViolation, sqlite3.IntegrityError):
            savepoint.rollback()
        else:
            savepoint.commit()
            return
        if len(rows) == 1:
            raise DuplicateKey(rows[0])
        # Halve until the offending row is alone: about two writes per row, on the error path only.
        middle = len(rows) // 2
        self.write_unique(rows[:middle])
        self.write_unique(rows[middle:])

    def analyze(self) -> None:
        """Give the planner row counts before joining: TEMP tables are never auto-analyzed."""
        if self._postgres:
            self.conn.exec_driver_sql(f"ANALYZE {self.name}")

    def count(self) -> int:
        return int(self.conn.exec_driver_sql(f"SELECT count(*) FROM {self.name}").scalar_one())

    def drop(self) -> None:
        """Needed on SQLite only, whose TEMP tables outlive the transaction on a pooled connection."""
        if not self._postgres:
            self.conn.execute(text(f"DROP TABLE {self.name}"))
