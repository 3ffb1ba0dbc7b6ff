"""Run history: every run cimedic ingested (from a CI platform or a CSV export) with its jobs, steps
and test results, the diagnoses made of them, deployments, and how far each ingest source got.

Flaky-test detection, anomaly detection and prediction read it as two pandas frames (``runs_frame``
and ``tests_frame``, documented in ``cimedic.history.frames``). Writes are batched: a batch of runs
and the cursor covering them commit together or not at all, so an ingest killed at any moment
leaves whole runs and a cursor that tells exactly which.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, computed_field
from sqlalchemy import Engine, func, select

from cimedic.errors import InputError
from cimedic.models import Diagnosis, RunInfo, Status, TestResult
from cimedic.store import history_tables as t
from cimedic.store.db import StoreError, as_utc, display_url, engine_for, transaction
from cimedic.store.history_write import (
    Cursor,
    RunRecord,
    TestCounts,
    UpsertOutcome,
    clip_text,
    dialect_insert,
    write_batch,
    write_cursor,
)
from cimedic.store.migrate import upgrade

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Cursor", "HistoryStats", "HistoryStore", "RunRecord", "StoredRun", "TestCounts", "UpsertOutcome"]

_DIALECTS = {"sqlite", "postgresql"}


class StoredRun(BaseModel):
    """What ingest needs to know about a run it may already have: its newest attempt's state."""

    run_id: str
    attempt: int
    status: str
    finished_at: datetime | None


class HistoryStats(BaseModel):
    project: str | None = None  # None: the whole store
    projects: int
    runs: int
    by_status: dict[str, int]
    first_started: datetime | None
    last_started: datetime | None
    jobs: int
    test_results: int
    diagnoses: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure_rate(self) -> float | None:
        """Failed runs over runs with an outcome (success or failure); cancelled runs are neither."""
        failed = self.by_status.get(Status.FAILURE, 0)
        decided = failed + self.by_status.get(Status.SUCCESS, 0)
        return failed / decided if decided else None


class HistoryStore:
    """Read and write run history; the tables must exist (``open`` migrates them)."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _DIALECTS:
            raise StoreError(
                display_url(engine.url), f"run history needs SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> HistoryStore:
        """The store at ``url`` (e.g. ``settings.effective_database_url``), migrated to the newest schema."""
        store = cls(engine_for(url))  # refuses other dialects before migrating anything
        upgrade(store.engine)
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    def upsert_run(
        self,
        info: RunInfo,
        tests: Sequence[TestResult] = (),
        *,
        source: str = "provider",
        counts: TestCounts | None = None,
        cursor: Cursor | None = None,
    ) -> UpsertOutcome:
        """Store one run with its jobs, steps and tests (and ``cursor``) in one transaction; see ``upsert_runs``."""
        record = RunRecord(info=info, tests=list(tests), counts=counts)
        return self.upsert_runs([record], source=source, cursor=cursor)[0]

    def upsert_runs(
        self, records: Sequence[RunRecord], *, source: str, cursor: Cursor | None = None
    ) -> list[UpsertOutcome]:
        """Store runs in one transaction, with ``cursor`` if given: all of it commits or none does.

        Idempotent: a run already stored with identical content is left alone (UNCHANGED, no write);
        a changed one keeps its row (and diagnoses) and has its jobs, steps and tests replaced.
        """
        now = datetime.now(UTC)
        with transaction(self._engine, write=True) as conn:
            outcomes = write_batch(conn, records, source=source, now=now) if records else []
            if cursor is not None:
                write_cursor(conn, cursor, now)
        return outcomes

    def set_cursor(self, cursor: Cursor) -> None:
        with transaction(self._engine, write=True) as conn:
            write_cursor(conn, cursor, datetime.now(UTC))

    def cursor(self, platform: str, project: str, source: str) -> Cursor | None:
        C = t.IngestCursorRow
        query = select(C.position, C.position_at, C.updated_at).where(
            C.platform == platform, C.project == project, C.source == source
        )
        with transaction(self._engine) as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        position, position_at, updated_at = row
        return Cursor(
            platform=platform,
            project=project,
            source=source,
            position=position,
            position_at=position_at,
            updated_at=updated_at,
        )

    def latest_attempts(self, platform: str, project: str, run_ids: Sequence[str]) -> dict[str, StoredRun]:
        """The newest stored attempt of each of ``run_ids`` that is stored at all."""
        R = t.RunRow
        found: dict[str, StoredRun] = {}
        ids = list(dict.fromkeys(run_ids))
        with transaction(self._engine) as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(R.run_id, R.attempt, R.status, R.finished_at)
                    .where(R.platform == platform, R.project == project, R.run_id.in_(ids[start : start + 500]))
                    .order_by(R.run_id, R.attempt)
                )
                for run_id, attempt, status, finished_at in conn.execute(query):
                    found[run_id] = StoredRun(run_id=run_id, attempt=attempt, status=status, finished_at=finished_at)
        return found

    def record_diagnosis(
        self,
        platform: str,
        project: str,
        run_id: str,
        diagnosis: Diagnosis,
        *,
        attempt: int | None = None,
        model_version: str | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Attach ``diagnosis`` to a stored run (default: its newest attempt); the new diagnosis id.

        ``model_version`` says what produced it (default: the diagnosis's backend), so results of
        different classifier versions can be told apart; the whole diagnosis is kept as JSON.
        """
        R = t.RunRow
        query = select(R.id).where(R.platform == platform, R.project == project, R.run_id == run_id)
        query = query.where(R.attempt == attempt) if attempt is not None else query
        values = {
            "category": str(diagnosis.category),
            "confidence": diagnosis.confidence,
            "fingerprint_id": diagnosis.fingerprint.id if diagnosis.fingerprint else None,
            "summary": diagnosis.summary,
            "model_version": clip_text(model_version or diagnosis.backend, t.MODEL_VERSION_MAX),
            "created_at": as_utc(created_at) if created_at else datetime.now(UTC),
            "payload": diagnosis.model_dump(mode="json"),
        }
        with transaction(self._engine, write=True) as conn:
            run_pk = conn.execute(query.order_by(R.attempt.desc()).limit(1)).scalar_one_or_none()
            if run_pk is None:
                raise InputError(f"{platform} {project} run {run_id}", "not in the run history; ingest it first")
            inserted = conn.execute(dialect_insert(conn, t.DiagnosisRow).values(run_pk=run_pk, **values))
            pk = inserted.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def upsert_deployment(
        self,
        platform: str,
        project: str,
        external_id: str,
        *,
        environment: str | None,
        status: str,
        created_at: datetime,
        commit: str | None = None,
        finished_at: datetime | None = None,
        url: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Record a deployment (again: the platform's id makes it idempotent), linked to its run if stored."""
        R = t.RunRow
        values: dict[str, Any] = {
            "environment": clip_text(environment, t.ENVIRONMENT_MAX),
            "status": clip_text(status, t.STATUS_MAX),
            "commit": clip_text(commit, t.COMMIT_MAX),
            "created_at": as_utc(created_at),
            "finished_at": as_utc(finished_at) if finished_at else None,
            "url": url,
        }
        with transaction(self._engine, write=True) as conn:
            if run_id is not None:
                values["run_pk"] = conn.execute(
                    select(R.id)
                    .where(R.platform == platform, R.project == project, R.run_id == run_id)
                    .order_by(R.attempt.desc())
                    .limit(1)
                ).scalar_one_or_none()
            statement = dialect_insert(conn, t.DeploymentRow).values(
                platform=platform, project=project, external_id=external_id, **values
            )
            conn.execute(
                statement.on_conflict_do_update(index_elements=["platform", "project", "external_id"], set_=values)
            )

    def runs_frame(self, project: str | None = None, since: datetime | None = None) -> pd.DataFrame:
        """One row per stored run attempt; columns and dtypes in ``cimedic.history.frames.RUNS_COLUMNS``."""
        from cimedic.history.frames import runs_frame

        with transaction(self._engine) as conn:
            return runs_frame(conn, project=project, since=since)

    def tests_frame(self, project: str | None = None, since: datetime | None = None) -> pd.DataFrame:
        """One row per stored test result; columns and dtypes in ``cimedic.history.frames.TESTS_COLUMNS``."""
        from cimedic.history.frames import tests_frame

        with transaction(self._engine) as conn:
            return tests_frame(conn, project=project, since=since)

    def projects(self) -> list[str]:
        with transaction(self._engine) as conn:
            return list(conn.execute(select(t.RunRow.project).distinct().order_by(t.RunRow.project)).scalars())

    def stats(self, project: str | None = None) -> HistoryStats:
        """Counts, status mix and date range of one project's runs (None: all projects)."""
        R, J, T, D = t.RunRow, t.JobRow, t.TestResultRow, t.DiagnosisRow

        def scoped(query: Any) -> Any:
            return query.where(R.project == project) if project is not None else query

        with transaction(self._engine) as conn:
            by_status: dict[str, int] = {
                status: n for status, n in conn.execute(scoped(select(R.status, func.count()).group_by(R.status)))
            }
            projects, first, last = conn.execute(
                scoped(select(func.count(R.project.distinct()), func.min(R.started_at), func.max(R.started_at)))
            ).one()
            jobs = conn.execute(scoped(select(func.count()).select_from(J).join(R, J.run_pk == R.id))).scalar_one()
            tests = conn.execute(scoped(select(func.count()).select_from(T).join(R, T.run_pk == R.id))).scalar_one()
            diagnoses = conn.execute(scoped(select(func.count()).select_from(D).join(R, D.run_pk == R.id))).scalar_one()
        return HistoryStats(
            project=project,
            projects=projects,
            runs=sum(by_status.values()),
            by_status=by_status,
            # min/max bypass the column type on SQLite (naive text); read them back as UTC.
            first_started=_as_datetime(first),
            last_started=_as_datetime(last),
            jobs=jobs,
            test_results=tests,
            diagnoses=diagnoses,
        )


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
