"""Ingest a CI project's recent runs into the history store (``cimedic ingest REPO``), incrementally.

The provider lists runs newest first; they are ingested oldest first, each with its jobs, steps and
test results in its own transaction, so an interrupted ingest keeps every run it finished. The
cursor is a watermark: the start time of the newest run such that it and every run listed before
it is complete and stored. It is written in the same transaction as that run, and the next ingest
lists from it instead of from ``since``. A run still going is stored as it is and holds the
watermark back, so it is fetched again (with its final state) next time; a run already stored
complete, with the status and end time the listing shows, is skipped without fetching it.

When the listing hits ``limit``, runs older than the ones listed may be missing, so the watermark
does not move at all in that ingest (the report says so): a later ingest with a larger limit, or
a later ``since``, fills the gap, and nothing is ever skipped for good.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from cimedic.errors import CimedicError, one_line
from cimedic.models import Status
from cimedic.store.history import HistoryStore, StoredRun
from cimedic.store.history_write import Cursor, UpsertOutcome, is_complete
from cimedic.tools.ci.base import CIProvider, RunFilter, RunRef, RunSummary

SOURCE = "provider"
DEFAULT_LIMIT = 200


class FailedRun(BaseModel):
    run_id: str
    error: str


class IngestReport(BaseModel):
    platform: str
    project: str
    listed_since: datetime | None = None
    listed: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # already stored complete: not fetched again
    incomplete: int = 0  # still running when fetched: stored, fetched again next time
    failed: list[FailedRun] = Field(default_factory=list)
    truncated: bool = False  # the listing stopped at the limit: older runs were not read
    cursor_at: datetime | None = None


def ingest_provider(
    provider: CIProvider,
    project: str,
    since: datetime | None,
    store: HistoryStore,
    *,
    with_tests: bool = True,
    limit: int = DEFAULT_LIMIT,
    base_url: str = "",
    progress: Callable[[RunSummary, str], None] | None = None,
) -> IngestReport:
    """Store ``project``'s runs since ``since`` (or the cursor, when later); see the module docstring.

    ``base_url`` is the platform's API root as ``parse_project`` returned it (only used in RunRefs).
    Fetch errors of one run (CimedicError) are reported and skipped; database errors stop the ingest.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    platform = str(provider.platform)
    report = IngestReport(platform=platform, project=project)
    cursor = store.cursor(platform, project, SOURCE)
    start = since
    if cursor is not None and cursor.position_at is not None and (start is None or cursor.position_at > start):
        start = cursor.position_at
    report.listed_since = start
    summaries = []
    for summary in provider.runs(project, RunFilter(since=start, limit=limit)):
        summaries.append(summary)
        if len(summaries) >= limit:
            break
    report.listed = len(summaries)
    report.truncated = len(summaries) >= limit
    summaries.sort(key=lambda s: (_when(s) is None, _when(s) or datetime.min, s.id))
    stored = store.latest_attempts(platform, project, [s.id for s in summaries])

    # The watermark only moves over an unbroken prefix of complete, stored runs.
    contiguous = not report.truncated
    pending: Cursor | None = None  # a watermark move not yet written (the runs it passed were skipped)
    for summary in summaries:
        when = _when(summary)
        if _already_stored(stored.get(summary.id), summary):
            report.skipped += 1
            if contiguous and when is not None:
                pending = _cursor(platform, project, summary, when)
            else:
                contiguous = False
            _tell(progress, summary, "skipped")
            continue
        ref = RunRef(
            platform=provider.platform, base_url=base_url, project=project, run_id=summary.id, url=summary.url or ""
        )
        try:
            info = provider.run(ref)
            complete = is_complete(str(info.status), info.finished_at)
            tests = provider.test_results(ref) if with_tests and complete else []
        except CimedicError as exc:
            report.failed.append(FailedRun(run_id=summary.id, error=one_line(exc)))
            contiguous = False
            _tell(progress, summary, "failed")
            continue
        if not complete:
            report.incomplete += 1
        contiguous = contiguous and complete and when is not None
        move = _cursor(platform, project, summary, when) if contiguous and when is not None else None
        outcome = store.upsert_run(info, tests, source=SOURCE, cursor=move or pending)
        pending = None
        if outcome is UpsertOutcome.ADDED:
            report.added += 1
        elif outcome is UpsertOutcome.UPDATED:
            report.updated += 1
        else:
            report.unchanged += 1
        _tell(progress, summary, outcome.value)
        if move is not None:
            report.cursor_at = move.position_at
    if pending is not None:
        store.set_cursor(pending)
        report.cursor_at = pending.position_at
    return report


def ingest_deployments(
    provider: CIProvider, project: str, since: datetime | None, store: HistoryStore, *, limit: int = DEFAULT_LIMIT
) -> int:
    """Store the project's deployments since ``since`` (idempotent by the platform's deployment id); how many.

    Platforms without a deployments API list none. A deployment with no time at all cannot be placed
    in DORA's windows and is left out.
    """
    stored = 0
    for deployment in provider.deployments(project, since=since, limit=limit):
        created = deployment.created_at or deployment.finished_at
        if created is None:
            continue
        store.upsert_deployment(
            str(provider.platform),
            project,
            deployment.id,
            environment=deployment.environment,
            status=str(deployment.status),
            created_at=created,
            commit=deployment.commit,
            finished_at=deployment.finished_at,
            url=deployment.url,
            run_id=deployment.run_id,
        )
        stored += 1
    return stored


def _when(summary: RunSummary) -> datetime | None:
    """When the run entered the platform: the earliest time it has (what the listings filter on)."""
    times = [t for t in (summary.queued_at, summary.started_at, summary.finished_at) if t is not None]
    return min(times) if times else None


def _already_stored(stored: StoredRun | None, summary: RunSummary) -> bool:
    """Stored complete, and the listing shows nothing newer (a re-run changes status or end time)."""
    if stored is None or not is_complete(stored.status, stored.finished_at):
        return False
    if summary.status not in (Status.UNKNOWN, stored.status):
        return False
    if summary.attempt is not None:
        # The listing's end time need not be the stored one (GitHub lists the run's last update,
        # the store keeps the last job's end); an attempt number says re-run or not exactly.
        return summary.attempt <= stored.attempt
    return summary.finished_at is None or summary.finished_at == stored.finished_at


def _cursor(platform: str, project: str, summary: RunSummary, when: datetime) -> Cursor:
    return Cursor(platform=platform, project=project, source=SOURCE, position=summary.id, position_at=when)


def _tell(progress: Callable[[RunSummary, str], None] | None, summary: RunSummary, what: str) -> None:
    if progress is not None:
        progress(summary, what)
