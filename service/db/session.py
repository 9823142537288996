"""Engine and session factory. One transaction per request; repositories only flush."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from ..settings import Settings

# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def create_db_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    url, options = _postgresql_options(settings)
    engine = create_engine(url, **options)
    _ping_idle_connections(engine)
    return engine


# The claims batches' own pool, per worker: an event loop runs one batch at a time (and a test
# client's loop one more); a batch that fails is run again only after its connection went back.
SUBMIT_POOL_SIZE = 2


def create_submit_engine(settings: Settings) -> AsyncEngine | None:
    """On PostgreSQL, the engine of psycopg's async connections that claims batches await on the
    event loop (services/batching.py); None on SQLite, whose batches run in the threadpool.
    The same connection settings as create_db_engine, and the same ping of idle connections."""
    if settings.database_url.startswith("sqlite"):
        return None
    url, options = _postgresql_options(settings)
    engine = create_async_engine(
        url, **{**options, "pool_size": SUBMIT_POOL_SIZE, "max_overflow": SUBMIT_POOL_SIZE}
    )
    _ping_idle_connections(engine.sync_engine)
    return engine


def _postgresql_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The URL with psycopg as the driver, and the engine's pool and connection options."""
    url = settings.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args: dict[str, Any] = {
        "connect_timeout": 5,
        # A slow query must not hold a worker forever; the request fails with 503 instead.
        "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
        # A database that silently drops packets (a partition) is noticed in seconds, not at
        # the kernel's default of two hours.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": settings.db_statement_timeout_ms + 5_000,
    }
    return url, {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        "pool_recycle": 1800,
        "connect_args": connect_args,
    }


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, except for connections back in the pool less than
    PING_AFTER_IDLE_SECONDS ago.

    Why: the ping is a round trip before every transaction. Under load a worker reuses its
    connections every few milliseconds, and that round trip lengthened every claims batch: paced
    at 1,237 claims/s (70% of the maximum), p99 was 96-340 ms (median 117) pinging every checkout
    and 58-118 ms (median 76) pinging only idle connections, better in 6 of 7 alternating pairs
    (docs/performance.md). A connection idle for longer (a database restart, a failover, a
    dropped TCP session may have happened meanwhile) is still pinged, and replaced transparently
    if the ping fails, with all the pool's other connections. One that died within the last
    second fails its transaction: a claims batch then runs again on a fresh connection
    (services/batching.py); other requests answer 503 with Retry-After, as for a database that
    is down.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards every connection it holds (the database restarted or failed
            # over: the others are as dead, including those used within the last second) and
            # checks out a new one.
            raise InvalidatePoolError("a pooled connection failed its ping") from exc


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up front.
    # We emit BEGIN IMMEDIATE ourselves: SQLite has one writer, so taking the lock at the start
    # serialises read-modify-write of accumulators and authorization units between requests.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_async_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
