"""Alembic environment: runs against the engine cutover hands in (never one from a URL
in an ini file), with the project's metadata for autogenerate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: take the URL from -x db=...
    engine = create_engine(context.get_x_argument(as_dictionary=True)["db"])

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # several pods run `cutover db upgrade` at once on a fresh cluster: one migrates,
        # the others wait for it and then find nothing to do
        connection.execute(text("SELECT pg_advisory_xact_lock(7468229871)"))
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
