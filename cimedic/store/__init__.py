"""Persistent state shared by cimedic processes: one SQLAlchemy database (SQLite or PostgreSQL).

Every table module is imported here so that ``create_schema`` (``Base.metadata.create_all``) knows all
tables whichever store module a caller imported first.
"""

from cimedic.store.db import Base, StoreError, create_schema, database_errors, dispose_engines, engine_for, transaction
from cimedic.store.fingerprints import FingerprintStats, FingerprintStore, describe

__all__ = [
    "Base",
    "FingerprintStats",
    "FingerprintStore",
    "StoreError",
    "create_schema",
    "database_errors",
    "describe",
    "dispose_engines",
    "engine_for",
    "transaction",
]
