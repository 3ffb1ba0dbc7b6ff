"""The run history as pandas frames: the one shape flaky-test, anomaly and prediction code reads.

``runs_frame``: one row per stored run attempt, oldest first (runs not yet started last).

=============== ===================== ==================================================================
column          dtype                 meaning
=============== ===================== ==================================================================
project         object (str)          owner/repo, group/project, Jenkins job or Azure project
run_id          object (str)          the platform's run id (LRTS: ``"{pr_name}#{build_id}"``)
attempt         int64                 1 unless the platform re-ran the same run id
job             object (str|None)     the run's name: workflow, pipeline or Jenkins job
status          object (str)          success, failure, cancelled, skipped, running or unknown
branch          object (str|None)     branch built; for a pull-request build its base branch
pull_request    object (str|None)     PR/MR number or name
commit          object (str|None)     head commit SHA
actor           object (str|None)     who triggered it
started_at      datetime64[ns, UTC]   NaT when unknown
finished_at     datetime64[ns, UTC]   NaT when unknown or still running
duration_s      float64               finished - started; NaN when unknown
queue_s         float64               started - queued; NaN when unknown
tests_passed    Int64                 <NA> when no test report was seen
tests_failed    Int64                 failed + errored
tests_skipped   Int64
runner          object (str|None)     runner of the first job (in platform order) that names one
fingerprint     object (str|None)     fingerprint of the run's latest diagnosis
=============== ===================== ==================================================================

``tests_frame``: one row per stored test result, in run order: project, run_id, attempt, job and
commit as above (``job`` is the run's name, so both frames join on project/run_id/attempt);
``test`` (object: ``classname.name``, or ``name`` without a class), ``status`` (object: passed,
failed, error, skipped), ``duration_s`` (float64), ``runner`` (object: the test's, else its job's),
``finished_at`` (datetime64[ns, UTC]: the run's), ``message`` (object: failure message, clipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from cimedic.store import history_tables as t
from cimedic.store.db import as_utc

if TYPE_CHECKING:
    import pandas as pd

TEXT = "object"
TIME = "datetime64[ns, UTC]"
RUNS_COLUMNS: dict[str, str] = {
    "project": TEXT,
    "run_id": TEXT,
    "attempt": "int64",
    "job": TEXT,
    "status": TEXT,
    "branch": TEXT,
    "pull_request": TEXT,
    "commit": TEXT,
    "actor": TEXT,
    "started_at": TIME,
    "finished_at": TIME,
    "duration_s": "float64",
    "queue_s": "float64",
    "tests_passed": "Int64",
    "tests_failed": "Int64",
    "tests_skipped": "Int64",
    "runner": TEXT,
    "fingerprint": TEXT,
}
TESTS_COLUMNS: dict[str, str] = {
    "project": TEXT,
    "run_id": TEXT,
    "attempt": "int64",
    "job": TEXT,
    "commit": TEXT,
    "test": TEXT,
    "status": TEXT,
    "duration_s": "float64",
    "runner": TEXT,
    "finished_at": TIME,
    "message": TEXT,
}


def runs_frame(conn: Connection, *, project: str | None = None, since: datetime | None = None) -> pd.DataFrame:
    R, J, D = t.RunRow, t.JobRow, t.DiagnosisRow
    runner = (
        select(J.runner)
        .where(J.run_pk == R.id, J.runner.is_not(None))
        .order_by(J.position)
        .limit(1)
        .correlate(R)
        .scalar_subquery()
    )
    fingerprint = (
        select(D.fingerprint_id)
        .where(D.run_pk == R.id)
        .order_by(D.created_at.desc(), D.id.desc())
        .limit(1)
        .correlate(R)
        .scalar_subquery()
    )
    query = select(
        R.project,
        R.run_id,
        R.attempt,
        R.name,
        R.status,
        R.branch,
        R.pull_request,
        R.commit,
        R.actor,
        R.started_at,
        R.finished_at,
        R.duration_s,
        R.queue_s,
        R.tests_passed,
        R.tests_failed,
        R.tests_skipped,
        runner,
        fingerprint,
    )
    rows = conn.execute(_scoped(query, project, since).order_by(*_run_order())).all()
    return _frame(rows, RUNS_COLUMNS)


def tests_frame(conn: Connection, *, project: str | None = None, since: datetime | None = None) -> pd.DataFrame:
    R, J, T = t.RunRow, t.JobRow, t.TestResultRow
    query = (
        select(
            R.project,
            R.run_id,
            R.attempt,
            R.name,
            R.commit,
            T.classname,
            T.name,
            T.status,
            T.duration_s,
            func.coalesce(T.runner, J.runner),
            R.finished_at,
            T.message,
        )
        .select_from(T)
        .join(R, T.run_pk == R.id)
        .outerjoin(J, T.job_pk == J.id)
    )
    rows = conn.execute(_scoped(query, project, since).order_by(*_run_order(), T.id)).all()
    named = [(*row[:5], f"{row[5]}.{row[6]}" if row[5] else row[6], *row[7:]) for row in rows]
    return _frame(named, TESTS_COLUMNS)


def _when() -> Any:
    # A queued run has no start yet; its queue time places it.
    return func.coalesce(t.RunRow.started_at, t.RunRow.queued_at)


def _scoped(query: Any, project: str | None, since: datetime | None) -> Any:
    if project is not None:
        query = query.where(t.RunRow.project == project)
    if since is not None:
        query = query.where(_when() >= as_utc(since))
    return query


def _run_order() -> tuple[Any, ...]:
    R = t.RunRow
    # NULLS LAST spelled out: SQLite and PostgreSQL disagree on where NULLs sort by default.
    return (_when().asc().nulls_last(), R.project, R.run_id, R.attempt)


def _frame(rows: Sequence[Any], columns: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    data: dict[str, Any] = {}
    for (name, dtype), column in zip(columns.items(), values, strict=True):
        if dtype == TIME:
            data[name] = pd.Series(pd.to_datetime(list(column), utc=True), dtype=TIME)
        else:
            data[name] = pd.Series(list(column), dtype=dtype)
    return pd.DataFrame(data, columns=list(columns))
