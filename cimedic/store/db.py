"""The database behind run history and failure fingerprints: engines, the declarative base, errors.

Any SQLAlchemy URL works for the generic parts; the stores themselves support SQLite (the default,
one file in ``$CIMEDIC_HOME``) and PostgreSQL (shared by many CI workers). Several cimedic processes
may write at once, so SQLite runs in WAL mode with a busy timeout and write transactions take the
write lock up front (``BEGIN IMMEDIATE``) instead of failing half-way when another writer commits.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from cimedic.errors import CimedicError

# How long a SQLite writer waits for another process's transaction before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL host that drops packets would otherwise hang a CI job for the TCP timeout (minutes).
PG_CONNECT_TIMEOUT_S = 10
# Execution option a write transaction sets so SQLite begins it with BEGIN IMMEDIATE.
_WRITE_OPTION = "cimedic_write"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class StoreError(CimedicError):
    """The database cannot be opened or used: names the database (password masked) and the problem."""

    def __init__(self, database: str, problem: str) -> None:
        self.database = database
        self.problem = problem
        super().__init__(f"database {database}: {problem}")


class Base(DeclarativeBase):
    """Declarative base of every cimedic table; the migrations in ``cimedic/store/migrations`` create them."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type, so values are stored as naive UTC (whose text sorts and compares
    correctly); PostgreSQL stores ``timestamptz`` and may answer in the session's zone. Either way
    Python sees aware UTC datetimes, and a naive one is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is an error because its zone is unknowable."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def display_url(url: str | URL) -> str:
    """The URL as shown to people: the password, if any, replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparseable, so make_url cannot mask it: blank out anything between "user:" and "@".
        return re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", str(url))


def _problem(exc: BaseException, url: str | URL) -> str:
    """One line from the driver's message (libpq's are several), never echoing the password."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join((str(orig) or type(orig).__name__).split())
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    return text.replace(str(password), "***") if password else text


@contextmanager
def database_errors(url: str | URL) -> Iterator[None]:
    """Turn driver failures (cannot connect, not a database, locked, …) into one-line StoreErrors.

    DBAPIError covers OperationalError, DatabaseError and InterfaceError, whatever the driver.
    """
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(display_url(url), _problem(exc, url)) from exc


@contextmanager
def transaction(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """A connection inside one transaction, committed on success; database failures become StoreError.

    ``write=True`` marks a transaction that will write, so SQLite takes the write lock at BEGIN and
    waits (busy_timeout) for other writers there, instead of upgrading a read snapshot later, which
    SQLite refuses with "database is locked" without waiting when another writer got in first.
    """
    with database_errors(engine.url), engine.connect() as conn:
        if write:
            conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


def engine_for(url: str) -> Engine:
    """The engine for ``url``, created once per process and URL (it owns the connection pool)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
        return engine


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema: the Alembic revisions, under a cross-process lock.

    Safe when several processes start on a fresh database at once, and upgrades databases made
    before migrations existed (see ``cimedic.store.migrate``).
    """
    # Imported here: migrate imports this module.
    from cimedic.store.migrate import upgrade

    upgrade(engine)


def dispose_engines() -> None:
    """Close every cached engine's pooled connections and forget the engines (tests, shutdown)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _create(url: str) -> Engine:
    shown = display_url(url)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return _create_sqlite(parsed)
        connect_args: dict[str, Any] = {}
        if parsed.get_driver_name() in {"psycopg2", "psycopg"} and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        # pre_ping: a long-lived process (a CI bot) must survive the server closing idle connections.
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(shown, f"cannot use this URL: {' '.join(str(exc).split())}") from exc
    except OSError as exc:
        raise StoreError(shown, f"cannot create its folder: {exc.strerror or exc}") from exc


def _create_sqlite(url: URL) -> Engine:
    database = url.database or ""
    if database not in {"", ":memory:"} and not url.query.get("uri"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin); sqlite3's own handling never begins
        # before SELECT and cannot say IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock that a concurrent opener may hold.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer and vice versa; the setting persists in the file.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _after_fork_in_child() -> None:
    # A forked worker (cli's ProcessPoolExecutor) must not reuse the parent's pooled sockets or
    # SQLite handles; dispose(close=False) drops them from the child's pools without closing them
    # under the parent's feet, as SQLAlchemy recommends for multiprocessing. The lock is replaced
    # because a thread of the parent may have held it at the moment of the fork.
    global _engines_lock
    _engines_lock = threading.Lock()
    for engine in list(_engines.values()):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
