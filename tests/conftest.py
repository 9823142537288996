"""Shared fixtures. The database is SQLite by default; set CLAIMS_TEST_DATABASE_URL to a
PostgreSQL URL to run the very same suite there (`make test-pg`, and .ci/run does both).

The schema is built by the real Alembic migrations once per session; each test starts from
empty tables (TRUNCATE on PostgreSQL, DELETE on SQLite), since requests commit for real.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from service.db.base import Base
from service.db.migrate import upgrade
from service.db.session import create_db_engine
from service.main import create_app, dispose_engines
from service.settings import Settings

ADMIN_KEY = "test-admin-key"
WRITE_KEY = "test-claims-write-key"
READ_KEY = "test-claims-read-key"
TEST_KEYS = {
    ADMIN_KEY: ["admin"],
    WRITE_KEY: ["claims:write"],
    READ_KEY: ["claims:read"],
}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
WRITE = {"Authorization": f"Bearer {WRITE_KEY}"}
READ = {"Authorization": f"Bearer {READ_KEY}"}


def _database_url(tmp_dir: Path) -> str:
    url = os.environ.get("CLAIMS_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_dir / 'test.db'}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield _database_url(Path(tmp))


def reset_schema(engine: Engine) -> None:
    """Drop everything, then build the schema with the migrations (never create_all)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        with engine.begin() as conn:
            tables = (
                conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
                )
                .scalars()
                .all()
            )
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for name in tables:
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    upgrade(engine)


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(Settings(database_url=database_url))
    reset_schema(engine)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    empty_tables(migrated_engine)
    return migrated_engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, api_keys=TEST_KEYS)


@pytest.fixture
def app(engine: Engine, settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    dispose_engines(application)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client with no key; pass headers=ADMIN / WRITE / READ per call."""
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends the admin key."""
    with TestClient(app, headers=ADMIN, raise_server_exceptions=False) as c:
        yield c
