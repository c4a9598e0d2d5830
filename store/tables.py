"""Every table module, imported so ``SQLModel.metadata`` is complete (Alembic reads it)."""

from sqlmodel import SQLModel

from store import (  # noqa: F401
    alerts,
    evaluations,
    events,
    groups,
    heartbeat,
    inbox,
    probes,
    rollout,
    rollups,
    series,
)

metadata = SQLModel.metadata
