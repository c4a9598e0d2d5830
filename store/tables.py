"""Every table module, imported so ``SQLModel.metadata`` is complete (Alembic reads it)."""

from sqlmodel import SQLModel

from store import evaluations, events, rollout  # noqa: F401
from store import series  # noqa: F401
from store import rollups  # noqa: F401
from store import alerts  # noqa: F401

metadata = SQLModel.metadata
