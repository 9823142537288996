"""lz4 for the stored claims' TOAST columns (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:10:00

A stored claim's row is some 3 kB (the EOB's JSON text 2.3 kB on average, the request 0.7 kB),
over PostgreSQL's 2 kB TOAST threshold, so every insert compresses the EOB and the request, with
pglz by default. lz4 compresses them in less than half the time: 20,000 stored claims inserted
again took 822-862 ms with pglz against 325-343 ms with lz4 (17 against 42 us a row), and take
as much room (1,000 against 918 bytes an EOB); reading them back decompresses faster too
(docs/performance.md, fifteenth round). Only values written from now on use it. A server built
without lz4 keeps pglz; SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("eob", "request")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    query = text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    return bool(bind.execute(query).scalar())


def upgrade() -> None:
    if _lz4_available():
        for column in COLUMNS:
            op.execute(f"ALTER TABLE claims ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():  # else upgrade() changed nothing (and before PostgreSQL 14 there is no such setting)
        for column in COLUMNS:
            op.execute(f"ALTER TABLE claims ALTER COLUMN {column} SET COMPRESSION default")
