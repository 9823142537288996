"""Run Alembic migrations programmatically (service start, tests, CLI)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text


def _migrations_dir() -> Path:
    for candidate in (
        Path(__file__).resolve().parents[2] / "migrations",
        Path.cwd() / "migrations",
    ):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("migrations/ directory not found beside the service package or in cwd")


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations_dir()))
    if engine is not None:
        # Config options go through configparser's interpolation: a "%" (an escaped character in
        # a password, or a Unix socket directory as ?host=%2Fvar%2Frun%2Fpostgresql) is doubled.
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Any constant: replicas starting together take turns instead of racing to create tables.
_MIGRATION_LOCK_ID = 72_410_001


def upgrade(engine: Engine) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_up_to_date(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current == head
