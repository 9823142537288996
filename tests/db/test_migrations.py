"""The migrations are the only way the schema is made; they must agree with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from service.db.base import Base
from service.db.migrate import alembic_config, is_up_to_date


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_database_is_at_head(engine: Engine) -> None:
    assert is_up_to_date(engine)


def test_a_database_url_with_percent_escapes_reaches_alembic_unchanged() -> None:
    # A Unix socket directory (rendered as ?host=%2Fvar%2F...) or an escaped character in a
    # password made configparser refuse the URL ("invalid interpolation syntax"), and `serve`
    # failed at its migration step.
    url = "postgresql+psycopg://claims:p%25ss%40word@/claims?host=/var/run/postgresql"
    engine = create_engine(url)
    rendered = engine.url.render_as_string(hide_password=False)
    assert "%" in rendered
    assert alembic_config(engine).get_main_option("sqlalchemy.url") == rendered


def test_postgresql_compresses_stored_claims_with_lz4(engine: Engine) -> None:
    """Migration 0003: the EOB and the request, over the TOAST threshold, compress with lz4."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL column setting")
    with engine.connect() as conn:
        has_lz4 = conn.execute(
            text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
        if not has_lz4:
            pytest.skip("this server was built without lz4")
        methods = dict(
            conn.execute(
                text(
                    "SELECT attname, attcompression FROM pg_attribute"
                    " WHERE attrelid = 'claims'::regclass AND attname IN ('eob', 'request')"
                )
            ).all()
        )
    assert methods == {"eob": "l", "request": "l"}
