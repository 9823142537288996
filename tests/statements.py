"""Count the SQL statements a request runs, on either database.

SQLite statements all go through SQLAlchemy (its before_cursor_execute event sees them); the
PostgreSQL submit path also runs statements on the psycopg connection itself
(service/repositories/claims_pg.py), so there every psycopg cursor execute is recorded.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from psycopg import pq
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def counted(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.engine
    if engine.dialect.name == "postgresql":
        # The claims batches run on async connections (services/batching.py), the rest on sync ones.
        patched = []
        for cls in (psycopg.Cursor, psycopg.AsyncCursor):
            for name in ("execute", "executemany"):
                real = getattr(cls, name)
                setattr(cls, name, _recording(real, statements, is_async=cls is psycopg.AsyncCursor))
                patched.append((cls, name, real))
        try:
            yield statements
        finally:
            for cls, name, real in patched:
                setattr(cls, name, real)
        return

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def connect_pools(app: FastAPI) -> None:
    """Connect the app's pools ahead (the claims batches' own too), so that what a test counts
    leaves out the statements SQLAlchemy runs on a new engine's first connection."""
    with app.state.engine.connect():
        pass
    if app.state.submit_engine is not None:
        asyncio.run(_connect(app.state.submit_engine))


async def _connect(engine: AsyncEngine) -> None:
    async with engine.connect():
        pass


def _recording(real: Any, statements: list[str], *, is_async: bool) -> Any:
    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return real(self, query, *args, **kwargs)

    async def execute_async(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return await real(self, query, *args, **kwargs)

    return execute_async if is_async else execute


@contextmanager
def round_trips(app: FastAPI) -> Iterator[list[list[str]]]:
    """The round trips to PostgreSQL on connections checked out of the app's pool meanwhile, from
    libpq's protocol trace: per ReadyForQuery the server sent, the statements it answered (each
    its text, or the name of a statement psycopg prepared earlier)."""
    trips: list[list[str]] = []
    # The requests' pool and the claims batches' own (async connections: the adapter's driver).
    engines = [app.state.engine] + ([app.state.submit_engine.sync_engine] if app.state.submit_engine else [])
    with tempfile.TemporaryFile("w+") as trace:

        def pgconn(dbapi_connection: Any) -> Any:
            return getattr(dbapi_connection, "driver_connection", dbapi_connection).pgconn

        def checked_out(dbapi_connection: Any, *_: Any) -> None:
            pgconn(dbapi_connection).trace(trace.fileno())
            pgconn(dbapi_connection).set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

        def checked_in(dbapi_connection: Any, *_: Any) -> None:
            pgconn(dbapi_connection).untrace()

        # insert=True: before the engine's own checkout listener, so a liveness ping is traced too.
        for engine in engines:
            event.listen(engine, "checkout", checked_out, insert=True)
            event.listen(engine, "checkin", checked_in)
        try:
            yield trips
        finally:
            for engine in engines:
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
