"""no foreign keys on the copies of the claim's member id (claim lines, postings)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:00:00

claim_lines.member_id and accumulator_postings.member_id copy their claim's member id (the
duplicate check's index, the accumulator postings by member); the store writes them from the
claim's row in the same statement. Their foreign keys checked only that a member with that id
exists, which the claim's own key (claims.member_id) already guarantees, and they cost a check a
row: 1.05 ms of PostgreSQL's execution for a batch of 32 claims, about 33 us a claim (ten
alternating replays, median 5.77 against 4.72 ms; docs/performance.md, fifteenth round). Every
claim's copies are compared with its member by a test and by the benchmark's final check.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("claim_lines", "accumulator_postings")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table
            batch.drop_constraint(f"fk_{table}_member_id_members", type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f"fk_{table}_member_id_members", "members", ["member_id"], ["id"])
