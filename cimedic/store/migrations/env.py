"""Alembic environment: run only through ``cimedic.store.migrate``, which passes the connection.

That connection is already inside a transaction holding the migration lock, so the revisions run
in it (all or nothing, on PostgreSQL and on SQLite, whose DDL is transactional too).
"""

from __future__ import annotations

from alembic import context

from cimedic.store.db import Base
from cimedic.store.migrate import VERSION_TABLE

# Imported for their side effect: autogenerate compares the migrations with every model.
from cimedic.store import fingerprints, heal_tables, history_tables, spend_tables  # noqa: F401  # isort: skip

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("cimedic migrations run through cimedic.store.migrate.upgrade(engine), not the alembic CLI")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; future revisions then rebuild tables ("batch" mode).
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
