"""rollout extras: drift tracking, the weight read back with each decision, and the
dry-run router's weights

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('service_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drift_since', store.db.UtcDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_back', sa.Integer(), nullable=True))
    op.create_table('dry_run_route',
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('updated_at', store.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('service')
    )


def downgrade() -> None:
    op.drop_table('dry_run_route')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_column('read_back')
    with op.batch_alter_table('service_state', schema=None) as batch_op:
        batch_op.drop_column('drift_since')
