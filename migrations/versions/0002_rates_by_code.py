"""fee_schedule_rates by procedure code, for the QPA

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:45:00

A protected out-of-network line's QPA reads one code's rate in every schedule of the network
(some 200 in the benchmark). Through the (fee_schedule_id, procedure_code, modifier) key that is
one index descent and heap fetch per schedule and code; by code first, with the prices included,
it is one range scan per code, answered from the index (docs/performance.md, fourteenth round).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_fee_schedule_rates_by_code",
        "fee_schedule_rates",
        ["procedure_code", "fee_schedule_id"],
        unique=False,
        postgresql_include=["modifier", "allowed_amount", "percent_of_billed"],
    )


def downgrade() -> None:
    op.drop_index("ix_fee_schedule_rates_by_code", table_name="fee_schedule_rates")
