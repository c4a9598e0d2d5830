"""prometheus series

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import store.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prom_step",
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("step_seconds", sa.Float(), nullable=False),
        sa.Column("requests", sa.Float(), nullable=True),
        sa.Column("errors", sa.Float(), nullable=True),
        sa.Column("latency_sum", sa.Float(), nullable=True),
        sa.Column("latency_count", sa.Float(), nullable=True),
        sa.Column("buckets", sa.Text(), nullable=True),
        sa.Column("latency_avg", sa.Float(), nullable=True),
        sa.Column("p50", sa.Float(), nullable=True),
        sa.Column("p95", sa.Float(), nullable=True),
        sa.Column("p99", sa.Float(), nullable=True),
        sa.Column("memory_bytes", sa.Float(), nullable=True),
        sa.Column("cpu_cores", sa.Float(), nullable=True),
        sa.Column("up", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("target", "at"),
    )
    op.create_table(
        "prom_checkpoint",
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("expr", sa.Text(), nullable=False),
        sa.Column("until", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "kind"),
    )
    op.create_table(
        "prom_outage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("since", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", store.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("prom_outage", schema=None) as batch_op:
        batch_op.create_index("ix_prom_outage_target_since", ["target", "since"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prom_outage", schema=None) as batch_op:
        batch_op.drop_index("ix_prom_outage_target_since")
    op.drop_table("prom_outage")
    op.drop_table("prom_checkpoint")
    op.drop_table("prom_step")
