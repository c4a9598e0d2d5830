"""where a decision's actor came from

Revision ID: 0011_actor_source
Revises: 0010_inbox
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_actor_source"
down_revision: str | None = "0010_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_source", sqlmodel.sql.sqltypes.AutoString(length=32),
                                      nullable=False, server_default="unknown"))


def downgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_column("actor_source")
