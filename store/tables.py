"""Every table module, imported so ``SQLModel.metadata`` is complete (Alembic reads it)."""

from sqlmodel import SQLModel

from store import alerts, evaluations, events, groups, rollout, rollups, series  # noqa: F401

metadata = SQLModel.metadata
