"""Once, across sweeps, webhooks and processes: run claims and each repository's watermark.

The claims live in the history store's ``ingest_cursors`` table (source ``sweep-run:RUN:ATTEMPT``; no
migration), next to each repository's sweep watermark (source ``sweep``). A run whose investigation
fails is released and tried again later, at most ``MAX_TRIES`` times; a claim left by a process that
died mid-run is taken over after ``CLAIM_TTL``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from cimedic.bus.events import RunRef as EventRunRef
from cimedic.models import Platform
from cimedic.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cimedic.store.history import HistoryStore
    from cimedic.tools.ci.base import RunSummary

log = logging.getLogger("cimedic.sweep")


WATERMARK_SOURCE = "sweep"
RUN_SOURCE = "sweep-run:"
MAX_TRIES = 3
CLAIM_TTL = timedelta(hours=1)


# -- the run claims and the watermark -----------------------------------------------------------------


class Candidate(BaseModel):
    """A failed run to handle, from a sweep's listing or a webhook."""

    platform: Platform
    base_url: str
    project: str
    run_id: str
    attempt: int = 1
    url: str
    branch: str | None = None
    when: datetime | None = Field(default=None, description="when the run entered the platform")

    @classmethod
    def of(cls, summary: RunSummary, base_url: str) -> Candidate:
        return cls(
            platform=Platform(summary.platform),
            base_url=base_url,
            project=summary.project,
            run_id=summary.id,
            attempt=summary.attempt or 1,
            url=summary.url or "",
            branch=summary.branch,
            when=entered(summary),
        )

    def event_ref(self) -> EventRunRef:
        return EventRunRef(
            platform=str(self.platform),
            project=self.project,
            run_id=self.run_id,
            url=self.url or None,
            branch=self.branch,
            attempt=self.attempt,
        )


class Claim(BaseModel):
    """The state of one run in the ledger (the claim row's ``position``, as JSON)."""

    state: Literal["claimed", "done", "failed"]
    tries: int = 1
    by: str = "sweep"
    error: str | None = None

    @property
    def retryable(self) -> bool:
        return self.state == "failed" and self.tries < MAX_TRIES


class Ledger:
    """Which failed runs have been handled, and each repository's sweep watermark."""

    def __init__(self, store: HistoryStore) -> None:
        self._store = store

    @classmethod
    def open(cls, settings: Settings) -> Ledger:
        from cimedic.store.history import HistoryStore

        return cls(HistoryStore.open(settings.effective_database_url))

    @property
    def engine(self) -> Engine:
        return self._store.engine

    @staticmethod
    def _key(c: Candidate) -> dict[str, str]:
        from cimedic.store import history_tables as t
        from cimedic.store.history_write import clip_text

        return {
            "platform": clip_text(str(c.platform), t.PLATFORM_MAX) or "",
            "project": clip_text(c.project, t.PROJECT_MAX) or "",
            "source": f"{RUN_SOURCE}{c.run_id}:{c.attempt}"[: t.CURSOR_SOURCE_MAX],
        }

    def get(self, c: Candidate) -> Claim | None:
        from sqlalchemy import select

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C

        key = self._key(c)
        query = select(C.position).where(
            C.platform == key["platform"], C.project == key["project"], C.source == key["source"]
        )
        with transaction(self.engine) as conn:
            position = conn.execute(query).scalar_one_or_none()
        return _claim(position) if position is not None else None

    def handled(self, c: Candidate) -> bool:
        """Claimed by someone and not waiting for another try."""
        claim = self.get(c)
        return claim is not None and not claim.retryable

    def claim(self, c: Candidate, by: str, now: datetime | None = None) -> int:
        """Win the right to handle ``c``: which try this is (1, 2...), or 0 when it is not ours to do."""
        from sqlalchemy import select, update

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C
        from cimedic.store.history_write import dialect_insert

        now = now or datetime.now(UTC)
        key = self._key(c)
        first = Claim(state="claimed", tries=1, by=by)
        with transaction(self.engine, write=True) as conn:
            inserted = conn.execute(
                dialect_insert(conn, C)
                .values(**key, position=first.model_dump_json(), position_at=c.when, updated_at=now)
                .on_conflict_do_nothing(index_elements=["platform", "project", "source"])
            )
            if inserted.rowcount == 1:
                return 1
            where = (C.platform == key["platform"], C.project == key["project"], C.source == key["source"])
            row = conn.execute(select(C.position, C.updated_at).where(*where)).one_or_none()
            if row is None:
                return 0
            old = _claim(row.position)
            stale = old.state == "claimed" and row.updated_at is not None and now - row.updated_at > CLAIM_TTL
            if not (old.retryable or stale):
                return 0
            again = Claim(state="claimed", tries=old.tries + 1, by=by)
            # Compare-and-set on the old state: of two processes retrying at once, one wins.
            moved = conn.execute(
                update(C)
                .where(*where, C.position == row.position)
                .values(position=again.model_dump_json(), updated_at=now)
            )
            return again.tries if moved.rowcount == 1 else 0

    def finish(self, c: Candidate, tries: int, by: str, error: str | None = None) -> Claim:
        """Record how the claimed run ended: done, or failed (tried again while tries remain)."""
        from sqlalchemy import update

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C

        key = self._key(c)
        claim = Claim(state="failed" if error else "done", tries=tries, by=by, error=error)
        with transaction(self.engine, write=True) as conn:
            conn.execute(
                update(C)
                .where(C.platform == key["platform"], C.project == key["project"], C.source == key["source"])
                .values(position=claim.model_dump_json(), updated_at=datetime.now(UTC))
            )
        return claim

    def watermark(self, platform: str, project: str) -> datetime | None:
        cursor = self._store.cursor(platform, project, WATERMARK_SOURCE)
        return cursor.position_at if cursor is not None else None

    def set_watermark(self, platform: str, project: str, at: datetime) -> None:
        from cimedic.store.history_write import Cursor

        self._store.set_cursor(Cursor(platform=platform, project=project, source=WATERMARK_SOURCE, position_at=at))


def _claim(position: str) -> Claim:
    try:
        return Claim.model_validate_json(position)
    except ValueError:  # unreadable: treat as done rather than investigate again forever
        return Claim(state="done", tries=MAX_TRIES, error="unreadable claim")


def entered(summary: RunSummary) -> datetime | None:
    """When the run entered the platform: the earliest time it has (what listings filter on)."""
    times = [t for t in (summary.queued_at, summary.started_at, summary.finished_at) if t is not None]
    return min(times) if times else None
