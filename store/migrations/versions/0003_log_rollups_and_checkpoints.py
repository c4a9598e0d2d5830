"""log rollups and checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.db  # noqa: F401

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_rollup",
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("variant", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("minute", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("service", "variant", "minute"),
    )
    op.create_table(
        "log_checkpoint",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("stream", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pod_time", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("updated_at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "stream"),
    )
    op.create_table(
        "log_reject",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("file", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("last_at", store.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "file", "reason"),
    )


def downgrade() -> None:
    op.drop_table("log_reject")
    op.drop_table("log_checkpoint")
    op.drop_table("log_rollup")
