"""Count the SQL statements a request runs, on either database.

SQLite statements all go through SQLAlchemy (its before_cursor_execute event sees them); the
PostgreSQL submit path also runs statements on the psycopg connection itself
(service/repositories/claims_pg.py), so there every psycopg cursor execute is recorded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from psycopg import pq
from sqlalchemy import event


@contextmanager
def counted(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.engine
    if engine.dialect.name == "postgresql":
        real_execute, real_executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

        def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return real_execute(self, query, *args, **kwargs)

        def executemany(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return real_executemany(self, query, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
        try:
            yield statements
        finally:
            psycopg.Cursor.execute = real_execute  # type: ignore[method-assign]
            psycopg.Cursor.executemany = real_executemany  # type: ignore[method-assign]
        return

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def round_trips(app: FastAPI) -> Iterator[list[list[str]]]:
    """The round trips to PostgreSQL on connections checked out of the app's pool meanwhile, from
    libpq's protocol trace: per ReadyForQuery the server sent, the statements it answered (each
    its text, or the name of a statement psycopg prepared earlier)."""
    trips: list[list[str]] = []
    engine = app.state.engine
    with tempfile.TemporaryFile("w+") as trace:

        def checked_out(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

        def checked_in(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.pgconn.untrace()

        # insert=True: before the engine's own checkout listener, so a liveness ping is traced too.
        event.listen(engine, "checkout", checked_out, insert=True)
        event.listen(engine, "checkin", checked_in)
        try:
            yield trips
        finally:
            event.remove(engine, "checkout", checked_out)
            event.remove(engine, "checkin", checked_in)
            trace.seek(0)
            trips.extend(_trips(trace.read()))


def _trips(trace: str) -> Iterator[list[str]]:
    # Lines: direction, length, message type, then its fields ("name" "text" ...), tab-separated.
    statements: list[str] = []
    parsed = ""
    for entry in trace.splitlines():
        if entry[:2] not in {"F\t", "B\t"}:
            continue  # a statement's text goes on over several lines
        direction, _, message, *fields = entry.split("\t")
        rest = " ".join(fields).strip()
        if direction == "F" and message == "Query":  # the simple protocol: one statement
            statements.append(rest.strip('"'))
        elif direction == "F" and message == "Parse":
            parsed = rest.split('"')[3] or "(a statement on several lines)"  # Parse "name" "text" ...
        elif direction == "F" and message == "Bind":  # one per statement executed
            statements.append(parsed or rest.split('"')[3])  # Bind "portal" "statement" ...
            parsed = ""
        elif direction == "B" and message == "ReadyForQuery":
            yield statements
            statements = []
