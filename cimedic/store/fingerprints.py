"""When each failure fingerprint was seen, so a report can say "first seen now" or "seen 14 times".

One row per fingerprint holds the summary a report needs (first/last seen, count); one row per
(fingerprint, run) sighting is the truth it is recomputed from. Recording is idempotent per run, so
a retried upload or a re-investigated run counts once, and safe when many CI workers record the same
new failure at the same moment (INSERT … ON CONFLICT DO NOTHING, then recount under a row lock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, ForeignKey, Index, Select, String, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from cimedic.store.db import Base, StoreError, UTCDateTime, as_utc, display_url, engine_for, transaction
from cimedic.store.migrate import upgrade

RECENT_WINDOW = timedelta(days=30)
ID_MAX = 64
RUN_KEY_MAX = 500
CATEGORY_MAX = 32
TITLE_MAX = 300
_DIALECTS = {"sqlite", "postgresql"}


class Fingerprint(Base):
    """The summary row of one fingerprint; count/first_seen/last_seen are derived from its sightings."""

    __tablename__ = "fingerprints"

    id: Mapped[str] = mapped_column(String(ID_MAX), primary_key=True)
    category: Mapped[str] = mapped_column(String(CATEGORY_MAX))
    # The newest sighting's summary: rules and wording improve, the latest is the most useful.
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(index=True)  # indexed for top()


class FingerprintSighting(Base):
    """One run in which a fingerprint was seen; the (fingerprint, run) key makes recording idempotent."""

    __tablename__ = "fingerprint_sightings"
    # For the per-fingerprint window counts (count_30d, top(since=…)).
    __table_args__ = (Index("ix_fingerprint_sightings_seen", "fingerprint_id", "seen_at"),)

    # The composite primary key is the unique (fingerprint, run_key) constraint ON CONFLICT targets.
    fingerprint_id: Mapped[str] = mapped_column(
        String(ID_MAX), ForeignKey("fingerprints.id", ondelete="CASCADE"), primary_key=True
    )
    run_key: Mapped[str] = mapped_column(String(RUN_KEY_MAX), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FingerprintStats(BaseModel):
    """What is known about a fingerprint as of ``now`` (a recording's ``seen_at``, or the caller's)."""

    id: str
    category: str
    title: str
    first_seen: datetime
    last_seen: datetime
    count: int  # all sightings (distinct runs)
    count_30d: int  # sightings at or after now - 30 days
    first_seen_now: bool = False  # this recording created the fingerprint


class FingerprintStore:
    """Record and query fingerprint sightings; the tables must exist (``open`` migrates them)."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _DIALECTS:
            raise StoreError(
                display_url(engine.url), f"fingerprints need SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> FingerprintStore:
        """The store at ``url`` (e.g. ``settings.effective_database_url``), migrated to the newest schema."""
        engine = engine_for(url)
        upgrade(engine)
        return cls(engine)

    def record(
        self, fp_id: str, *, run_key: str, category: str, title: str, seen_at: datetime | None = None
    ) -> FingerprintStats:
        """Note that run ``run_key`` failed with ``fp_id``; recording the same run again changes nothing."""
        _check_key("fingerprint id", fp_id, ID_MAX)
        _check_key("run key", run_key, RUN_KEY_MAX)
        seen = as_utc(seen_at) if seen_at is not None else datetime.now(UTC)
        summary = {"category": str(category)[:CATEGORY_MAX], "title": _clip(title, TITLE_MAX)}
        with transaction(self._engine, write=True) as conn:
            created = _insert_ignore(
                conn, Fingerprint, {"id": fp_id, "first_seen": seen, "last_seen": seen, "count": 0, **summary}
            )
            # Serialise recorders of this fingerprint (SQLite already is, by BEGIN IMMEDIATE). Under
            # PostgreSQL's READ COMMITTED the recount below is a new statement, so its snapshot
            # includes every sighting committed by whoever held the lock before us.
            last_seen = conn.execute(
                select(Fingerprint.last_seen).where(Fingerprint.id == fp_id).with_for_update()
            ).scalar_one()
            new_sighting = _insert_ignore(
                conn, FingerprintSighting, {"fingerprint_id": fp_id, "run_key": run_key, "seen_at": seen}
            )
            if new_sighting:
                # Recomputed, not incremented: concurrent and out-of-order (backfilled) sightings
                # cannot make the summary drift from the sightings it summarises.
                def of_fp(expr: Any) -> Any:
                    return select(expr).where(FingerprintSighting.fingerprint_id == fp_id).scalar_subquery()

                conn.execute(
                    update(Fingerprint)
                    .where(Fingerprint.id == fp_id)
                    .values(
                        count=of_fp(func.count()),
                        first_seen=of_fp(func.min(FingerprintSighting.seen_at)),
                        last_seen=of_fp(func.max(FingerprintSighting.seen_at)),
                        # A backfilled older run does not replace the newest summary.
                        **(summary if seen >= last_seen else {}),
                    )
                )
            row = conn.execute(_stats_query(seen).where(Fingerprint.id == fp_id)).one()
        return _to_stats(row, first_seen_now=created)

    def stats(self, fp_id: str, now: datetime | None = None) -> FingerprintStats | None:
        """The fingerprint's stats as of ``now`` (default: the current time), None if never recorded."""
        with transaction(self._engine) as conn:
            row = conn.execute(_stats_query(_now(now)).where(Fingerprint.id == fp_id)).one_or_none()
        return None if row is None else _to_stats(row)

    def top(
        self, limit: int = 20, since: datetime | None = None, *, now: datetime | None = None
    ) -> list[FingerprintStats]:
        """The fingerprints seen most often; with ``since``, only those seen since then, ranked by
        their sightings since then (what keeps failing lately), ties by total count."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        query = _stats_query(_now(now))
        if since is None:
            query = query.order_by(Fingerprint.count.desc(), Fingerprint.last_seen.desc(), Fingerprint.id)
        else:
            start = as_utc(since)
            in_window = _sightings_since(start)
            query = query.where(Fingerprint.last_seen >= start).order_by(
                in_window.desc(), Fingerprint.count.desc(), Fingerprint.last_seen.desc(), Fingerprint.id
            )
        with transaction(self._engine) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [_to_stats(row) for row in rows]


def describe(stats: FingerprintStats, now: datetime | None = None) -> str:
    """Short human text: "first seen now", "first seen 3 days ago, seen 14 times (9 in the last 30 days)"."""
    if stats.first_seen_now:
        return "first seen now"
    text = f"first seen {_ago(_now(now) - stats.first_seen)}, seen {_times(stats.count)}"
    if stats.count_30d != stats.count:
        text += f" ({stats.count_30d} in the last {RECENT_WINDOW.days} days)"
    return text


def _sightings_since(start: datetime) -> Any:
    """Correlated count of the enclosing query's fingerprint's sightings at or after ``start``."""
    return (
        select(func.count())
        .select_from(FingerprintSighting)
        .where(FingerprintSighting.fingerprint_id == Fingerprint.id, FingerprintSighting.seen_at >= start)
        .scalar_subquery()
    )


def _stats_query(now: datetime) -> Select[Any]:
    return select(
        Fingerprint.id,
        Fingerprint.category,
        Fingerprint.title,
        Fingerprint.first_seen,
        Fingerprint.last_seen,
        Fingerprint.count,
        _sightings_since(now - RECENT_WINDOW),
    )


def _to_stats(row: Any, *, first_seen_now: bool = False) -> FingerprintStats:
    # Unpacked by position: a Row is a tuple, so row.count would be tuple.count.
    fp_id, category, title, first_seen, last_seen, count, count_30d = row
    return FingerprintStats(
        id=fp_id,
        category=category,
        title=title,
        first_seen=first_seen,
        last_seen=last_seen,
        count=count,
        count_30d=count_30d,
        first_seen_now=first_seen_now,
    )


def _insert_ignore(conn: Connection, model: type[Base], values: dict[str, Any]) -> bool:
    """INSERT that does nothing when the primary key exists; True if a row was inserted.

    ON CONFLICT DO NOTHING never raises IntegrityError when a concurrent transaction inserted the
    same key first: PostgreSQL waits for it to commit and then skips, SQLite is serialised anyway.
    """
    # Imported per dialect: loading the PostgreSQL dialect costs a cold SQLite run ~0.15 s.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(model).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(model).values(**values).on_conflict_do_nothing()
    result = conn.execute(statement)
    return bool(result.rowcount == 1)


def _check_key(what: str, value: str, max_len: int) -> None:
    if not value or len(value) > max_len:
        raise ValueError(f"{what} must be 1 to {max_len} characters, got {len(value)}")


def _clip(text: str, max_len: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= max_len else flat[: max_len - 1] + "…"


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now is not None else datetime.now(UTC)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    # Under a minute, or negative: clock skew between workers can put first_seen slightly ahead.
    return "just now"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"
