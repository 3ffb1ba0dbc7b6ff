"""Alembic migrations of the cimedic database, applied by ``cimedic.store.migrate.upgrade``."""
