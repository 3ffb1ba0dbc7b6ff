"""Writing runs into the history tables: one batch of runs (and a cursor) per transaction.

Idempotence: a run is keyed by (platform, project, run id, attempt) and carries a sha256 of
everything stored for it. Re-ingesting identical data is skipped without a write; changed data
(a run that was still going, a fixed importer) updates the run row in place, so its id and the
diagnoses pointing at it survive, and replaces its jobs, steps and test results wholesale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, delete, insert, select, tuple_

from cimedic.models import Job, RunInfo, Status, TestResult, TestStatus
from cimedic.store import history_tables as t
from cimedic.store.db import Base, as_utc

# A run in one of these states will not change any more; anything else is fetched again next time.
TERMINAL = frozenset({Status.SUCCESS, Status.FAILURE, Status.CANCELLED, Status.SKIPPED})
# Keys per SELECT … IN: well under SQLite's 32,766 bound parameters at 4 per key.
_KEYS_PER_QUERY = 500


class TestCounts(BaseModel):
    __test__ = False  # not a pytest test class despite the name

    passed: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0)

    @classmethod
    def of(cls, tests: Sequence[TestResult]) -> TestCounts | None:
        """Counted from results; None when there are none (no report is not "zero tests ran")."""
        if not tests:
            return None
        statuses = [test.status for test in tests]
        failed = sum(s in (TestStatus.FAILED, TestStatus.ERROR) for s in statuses)
        skipped = statuses.count(TestStatus.SKIPPED)
        return cls(passed=len(statuses) - failed - skipped, failed=failed, skipped=skipped)


class RunRecord(BaseModel):
    """One run to store: the platform's metadata, its test results, and counts when only counts are known."""

    info: RunInfo
    tests: list[TestResult] = Field(default_factory=list)
    counts: TestCounts | None = Field(default=None, description="default: counted from ``tests``")


class UpsertOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class Cursor(BaseModel):
    """How far one ingest source got; ``position`` means what the source says it means."""

    platform: str
    project: str
    source: str
    position: str | None = None
    position_at: datetime | None = None
    updated_at: datetime | None = None


def is_complete(status: str, finished_at: datetime | None) -> bool:
    """A run that will not change: a terminal status, or an unknown one that has finished."""
    return status in TERMINAL or (status == Status.UNKNOWN and finished_at is not None)


def write_batch(conn: Connection, records: Sequence[RunRecord], *, source: str, now: datetime) -> list[UpsertOutcome]:
    """Upsert ``records`` (distinct keys) in the caller's transaction; the outcome of each, in order."""
    rows = [_run_values(rec, source) for rec in records]
    keys = [_key(row) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("a batch names the same run (platform, project, run id, attempt) twice")
    children = [_children(rec, row) for rec, row in zip(records, rows, strict=True)]
    for row, (jobs, tests) in zip(rows, children, strict=True):
        row["content_sha"] = _digest(row, jobs, tests)
        row["ingested_at"] = now
    stored = _stored_digests(conn, keys)
    outcomes = [
        UpsertOutcome.ADDED
        if key not in stored
        else (UpsertOutcome.UNCHANGED if stored[key] == row["content_sha"] else UpsertOutcome.UPDATED)
        for key, row in zip(keys, rows, strict=True)
    ]
    todo = [i for i, outcome in enumerate(outcomes) if outcome is not UpsertOutcome.UNCHANGED]
    if todo:
        ids = _upsert_runs(conn, [rows[i] for i in todo])
        pks = [ids[keys[i]] for i in todo]
        _replace_children(conn, pks, [children[i] for i in todo])
    return outcomes


def write_cursor(conn: Connection, cursor: Cursor, now: datetime) -> None:
    values = {
        "platform": _clip(cursor.platform, t.PLATFORM_MAX),
        "project": _clip(cursor.project, t.PROJECT_MAX),
        "source": _clip(cursor.source, t.CURSOR_SOURCE_MAX),
        "position": cursor.position,
        "position_at": cursor.position_at,
        "updated_at": now,
    }
    statement = dialect_insert(conn, t.IngestCursorRow).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["platform", "project", "source"],
            set_={"position": values["position"], "position_at": values["position_at"], "updated_at": now},
        )
    )


def dialect_insert(conn: Connection, model: type[Base]) -> Any:
    """INSERT with ON CONFLICT support; imported per dialect (loading PostgreSQL's costs SQLite ~0.15 s)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)


def clip_text(text: str | None, max_len: int) -> str | None:
    """``text`` cut to ``max_len`` characters (an ellipsis marks the cut); None stays None."""
    if text is None:
        return None
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


_clip = clip_text


def _key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return (row["platform"], row["project"], row["run_id"], row["attempt"])


def _run_values(rec: RunRecord, source: str) -> dict[str, Any]:
    info = rec.info
    counts = rec.counts or TestCounts.of(rec.tests)
    return {
        "platform": _clip(str(info.platform), t.PLATFORM_MAX),
        "project": _clip(info.project, t.PROJECT_MAX),
        "run_id": _clip(info.id, t.RUN_ID_MAX),
        # Platforms without attempts (and first attempts) are attempt 1: NULL would defeat the unique key.
        "attempt": info.attempt if info.attempt is not None else 1,
        "number": _clip(info.number, t.NUMBER_MAX),
        "name": _clip(info.name, t.NAME_MAX),
        "status": str(info.status),
        "commit": _clip(info.commit, t.COMMIT_MAX),
        "branch": _clip(info.branch, t.BRANCH_MAX),
        "pull_request": _clip(info.pull_request, t.PR_MAX),
        "actor": _clip(info.actor, t.PERSON_MAX),
        "event": _clip(info.event, t.EVENT_MAX),
        "url": info.url,
        "queued_at": _utc(info.queued_at),
        "started_at": _utc(info.started_at),
        "finished_at": _utc(info.finished_at),
        "duration_s": info.duration_s,
        "queue_s": info.queue_s,
        "tests_passed": counts.passed if counts else None,
        "tests_failed": counts.failed if counts else None,
        "tests_skipped": counts.skipped if counts else None,
        "source": _clip(source, t.SOURCE_MAX),
    }


def _job_values(job: Job, position: int) -> dict[str, Any]:
    return {
        "position": position,
        "job_id": _clip(job.id, t.RUN_ID_MAX),
        "name": _clip(job.name, t.NAME_MAX),
        "status": str(job.status),
        "runner": _clip(job.runner, t.RUNNER_MAX),
        "queued_at": _utc(job.queued_at),
        "started_at": _utc(job.started_at),
        "finished_at": _utc(job.finished_at),
        "duration_s": job.duration_s,
        "queue_s": job.queue_s,
        "steps": [
            {
                "number": step.number,
                "name": step.name,
                "status": str(step.status),
                "started_at": _utc(step.started_at),
                "finished_at": _utc(step.finished_at),
            }
            for step in job.steps
        ],
    }


def _children(rec: RunRecord, run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    jobs = [_job_values(job, n) for n, job in enumerate(rec.info.jobs)]
    # Test reports do not say which job wrote them; with a single job there is no doubt.
    only_job = jobs[0] if len(jobs) == 1 else None
    tests = [
        {
            "job_position": only_job["position"] if only_job else None,
            "suite": test.suite,
            "classname": test.classname,
            "name": test.name,
            "status": str(test.status),
            "duration_s": test.duration_s,
            "message": _clip(test.message, t.MESSAGE_MAX),
            "runner": only_job["runner"] if only_job else None,
        }
        for test in rec.tests
    ]
    return jobs, tests


def _digest(run: dict[str, Any], jobs: list[dict[str, Any]], tests: list[dict[str, Any]]) -> str:
    payload = json.dumps([run, jobs, tests], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _stored_digests(conn: Connection, keys: list[tuple[str, str, str, int]]) -> dict[tuple[str, str, str, int], str]:
    R = t.RunRow
    found: dict[tuple[str, str, str, int], str] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        query = select(R.platform, R.project, R.run_id, R.attempt, R.content_sha).where(
            tuple_(R.platform, R.project, R.run_id, R.attempt).in_(chunk)
        )
        for platform, project, run_id, attempt, sha in conn.execute(query):
            found[(platform, project, run_id, attempt)] = sha
    return found


def _upsert_runs(conn: Connection, rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], int]:
    """INSERT … ON CONFLICT DO UPDATE, so a concurrent writer of the same run cannot make this fail:
    PostgreSQL makes the second wait for the first's row lock, then updates what it committed."""
    R = t.RunRow
    statement = dialect_insert(conn, R)
    updates = {
        name: statement.excluded[name] for name in rows[0] if name not in ("platform", "project", "run_id", "attempt")
    }
    upsert = statement.on_conflict_do_update(
        index_elements=["platform", "project", "run_id", "attempt"], set_=updates
    ).returning(R.id, R.platform, R.project, R.run_id, R.attempt)
    # executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues"); keys
    # are distinct within a batch, so no statement touches one row twice (which ON CONFLICT refuses).
    # Sorted by key: concurrent writers of overlapping batches then lock rows in the same order and
    # cannot deadlock.
    ordered: list[dict[str, Any]] = sorted(rows, key=_key)
    result = conn.execute(upsert, ordered)
    return {(platform, project, run_id, attempt): pk for pk, platform, project, run_id, attempt in result}


def _replace_children(
    conn: Connection, pks: list[int], children: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]
) -> None:
    old_jobs = select(t.JobRow.id).where(t.JobRow.run_pk.in_(pks)).scalar_subquery()
    # Explicit, not left to ON DELETE CASCADE: that needs SQLite's foreign_keys pragma on every connection.
    conn.execute(delete(t.TestResultRow).where(t.TestResultRow.run_pk.in_(pks)))
    conn.execute(delete(t.StepRow).where(t.StepRow.job_pk.in_(old_jobs)))
    conn.execute(delete(t.JobRow).where(t.JobRow.run_pk.in_(pks)))
    job_rows = [
        {"run_pk": pk, **{k: v for k, v in job.items() if k != "steps"}}
        for pk, (jobs, _) in zip(pks, children, strict=True)
        for job in jobs
    ]
    job_pks: list[int] = []
    if job_rows:
        inserted = conn.execute(insert(t.JobRow).returning(t.JobRow.id, sort_by_parameter_order=True), job_rows)
        job_pks = list(inserted.scalars())
    step_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    next_job = 0
    for pk, (jobs, tests) in zip(pks, children, strict=True):
        run_job_pks = job_pks[next_job : next_job + len(jobs)]
        next_job += len(jobs)
        for job_pk, job in zip(run_job_pks, jobs, strict=True):
            step_rows.extend({"job_pk": job_pk, **step} for step in job["steps"])
        for test in tests:
            position = test["job_position"]
            test_job = run_job_pks[position] if position is not None else None
            test_rows.append(
                {"run_pk": pk, "job_pk": test_job, **{k: v for k, v in test.items() if k != "job_position"}}
            )
    if step_rows:
        conn.execute(insert(t.StepRow), step_rows)
    if test_rows:
        conn.execute(insert(t.TestResultRow), test_rows)


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
