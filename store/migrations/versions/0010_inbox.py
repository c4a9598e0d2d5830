"""the Alertmanager inbox

Revision ID: 0010_inbox
Revises: 0009_probes
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.db

revision: str = "0010_inbox"
down_revision: str | None = "0009_probes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_alert",
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("alertname", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("starts_at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", store.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("receiver", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    with op.batch_alter_table("inbox_alert", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_alert_service_resolved", ["service", "resolved"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_alert_service_resolved")
    op.drop_table("inbox_alert")
