"""Bring a database to the newest schema with the Alembic revisions in ``cimedic/store/migrations``.

Every store calls ``upgrade(engine)`` when it opens. An up-to-date database costs one version read
(and Alembic is not even imported); otherwise the revisions run in one transaction under a lock,
so several processes opening a fresh database at once queue instead of racing each other's
CREATE TABLE: a file lock next to a SQLite file (``<file>.lock``, held from the first connection
on), a transaction-scoped advisory lock on PostgreSQL (per schema, so databases that differ only by
search_path do not wait on each other). Whoever gets the lock second re-reads the version and finds
nothing left to do.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from cimedic.store.db import StoreError, database_errors, display_url, transaction

# The version table's name says whose it is: a shared PostgreSQL database may hold other apps' Alembic.
VERSION_TABLE = "cimedic_schema_version"
# The newest revision; a test checks it is the head of the scripts, so the fast path stays honest.
HEAD = "0003"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A first open waits this long for another process's migration before giving up.
LOCK_TIMEOUT_S = 120.0

_current: weakref.WeakSet[Engine] = weakref.WeakSet()
_current_lock = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Apply every missing revision; when already at HEAD, one version read (once per engine per process)."""
    with _current_lock:
        if engine in _current:
            return
    # The file lock also covers the first connection: it switches a new SQLite file to WAL, which
    # SQLite refuses at once ("database is locked", no busy wait) while another process does the same.
    with database_errors(engine.url), _file_lock(engine):
        if revision(engine) != HEAD:
            _migrate(engine)
    with _current_lock:
        _current.add(engine)


def revision(engine: Engine) -> str | None:
    """The database's schema revision; None before any migration (empty, or fingerprints-only)."""
    with database_errors(engine.url), engine.connect() as conn:
        return _read_revision(conn)


def _read_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return ",".join(sorted(rows)) or None


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    # configparser would read "%" in the path as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cimedic-schema:' || current_schema()))"))
        current = _read_revision(conn)
        if current == HEAD:
            return  # another process migrated while we waited for the lock
        if current is not None and not set(current.split(",")) <= known:
            raise StoreError(
                display_url(engine.url),
                f"schema revision {current} is newer than this cimedic knows (newest {HEAD}); upgrade cimedic",
            )
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(display_url(engine.url), f"cannot migrate: {' '.join(str(exc).split())}") from exc


def _file_lock(engine: Engine) -> Any:
    """Cross-process lock for a SQLite file (PostgreSQL locks inside the transaction instead)."""
    path = _sqlite_path(engine)
    if path is None:
        return nullcontext()
    return _locked(path.with_name(path.name + ".lock"))


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout as exc:
        raise StoreError(str(lock_path), f"another process held the schema lock for {LOCK_TIMEOUT_S:.0f} s") from exc
    except OSError:
        # A read-only folder (a database shipped on a read-only mount): no one can migrate it either,
        # and readers need no lock.
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _sqlite_path(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):  # uri=true form: file:PATH?options
        database = database[len("file:") :].split("?", 1)[0]
    if database in {"", ":memory:"} or "mode=memory" in str(url):
        return None
    return Path(database).absolute()
