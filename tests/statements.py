"""Count the SQL statements a request runs, on either database.

SQLite statements all go through SQLAlchemy (its before_cursor_execute event sees them); the
PostgreSQL submit path also runs statements on the psycopg connection itself
(service/repositories/claims_pg.py), so there every psycopg cursor execute is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
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
