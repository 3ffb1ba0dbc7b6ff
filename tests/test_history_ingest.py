"""Ingesting a CI project's runs into the history store: incremental through the cursor, resumable after
a crash, idempotent, on a SQLite file and on PostgreSQL.

The provider is an in-memory double implementing the CIProvider Protocol (the pluggable part): it
serves runs shaped like the recorded GitHub responses in tests/fixtures/ci/github and test results
parsed from a real pytest JUnit report, and records what ingest asked it for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from test_history_store import T0, junit_tests, make_run
from typer.testing import CliRunner

from cimedic.errors import InputError
from cimedic.history.ingest import ingest_deployments, ingest_provider
from cimedic.history_cli import history_app, ingest
from cimedic.models import Platform, RunInfo, TestResult
from cimedic.store.history import HistoryStore
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteResult
from cimedic.tools.ingest.base import RunMaterial

PROJECT = "octo-org/hello-world"


class MemoryProvider:
    """The CIProvider Protocol over a dict of runs; refuses to download logs or write anything."""

    platform = Platform.GITHUB_ACTIONS

    def __init__(self, runs: list[RunInfo], deployments: list[Deployment] | None = None) -> None:
        self.infos = {run.id: run for run in runs}
        self.tests = {run.id: junit_tests() for run in runs if run.status == "failure"}
        self.deployment_list = deployments or []
        self.listed_since: list[datetime | None] = []
        self.fetched: list[str] = []
        self.tests_fetched: list[str] = []
        self.crash_on: set[str] = set()
        self.fail_on: set[str] = set()

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        assert project == PROJECT
        self.listed_since.append(filters.since)
        newest_first = sorted(self.infos.values(), key=lambda r: r.queued_at or T0, reverse=True)
        for info in newest_first:
            if filters.since is None or (info.queued_at is not None and info.queued_at >= filters.since):
                yield RunSummary(
                    platform=info.platform,
                    project=info.project,
                    id=info.id,
                    number=info.number,
                    name=info.name,
                    status=info.status,
                    branch=info.branch,
                    commit=info.commit,
                    actor=info.actor,
                    event=info.event,
                    url=info.url,
                    queued_at=info.queued_at,
                    started_at=info.started_at,
                    finished_at=info.finished_at,
                    duration_s=info.duration_s,
                )

    def run(self, ref: RunRef) -> RunInfo:
        if ref.run_id in self.crash_on:
            raise RuntimeError("process killed")
        if ref.run_id in self.fail_on:
            raise InputError(ref.url, "404 Not Found")
        self.fetched.append(ref.run_id)
        return self.infos[ref.run_id]

    def test_results(self, ref: RunRef) -> list[TestResult]:
        self.tests_fetched.append(ref.run_id)
        return self.tests.get(ref.run_id, [])

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        yield from self.deployment_list[:limit]

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        raise AssertionError("ingest must not download logs")

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        raise AssertionError("ingest must not write to the platform")

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        raise AssertionError("ingest must not write to the platform")

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        raise AssertionError("ingest must not write to the platform")

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        raise AssertionError("ingest must not write to the platform")


def five_runs(start: datetime = T0) -> list[RunInfo]:
    statuses = ["success", "failure", "success", "failure", "cancelled"]
    return [make_run(str(8913000000 + n), start + timedelta(hours=n), status) for n, status in enumerate(statuses)]


def when(run: RunInfo) -> datetime:
    assert run.queued_at is not None
    return run.queued_at


@pytest.fixture
def store(db_url: str) -> HistoryStore:
    return HistoryStore.open(db_url)


def ingest_(provider: MemoryProvider, store: HistoryStore, **kwargs: Any) -> Any:
    return ingest_provider(provider, PROJECT, T0 - timedelta(days=1), store, **kwargs)


def test_first_ingest_stores_runs_with_jobs_steps_and_tests(store: HistoryStore) -> None:
    runs = five_runs()
    provider = MemoryProvider(runs)
    report = ingest_(provider, store)
    assert (report.listed, report.added, report.skipped, report.failed, report.truncated) == (5, 5, 0, [], False)
    assert provider.fetched == [r.id for r in runs]  # oldest first
    assert provider.tests_fetched == [r.id for r in runs]
    frame = store.runs_frame(PROJECT)
    assert frame["run_id"].tolist() == [r.id for r in runs]
    assert frame["tests_failed"].fillna(-1).tolist() == [-1, 1, -1, 1, -1]  # no report: <NA>, not 0
    assert len(store.tests_frame(PROJECT)) == 10
    assert store.stats(PROJECT).jobs == 10
    cursor = store.cursor("github-actions", PROJECT, "provider")
    assert cursor is not None and (cursor.position, cursor.position_at) == (runs[-1].id, when(runs[-1]))
    assert report.cursor_at == when(runs[-1])


def test_second_ingest_lists_from_the_cursor_and_fetches_only_new_runs(store: HistoryStore) -> None:
    runs = five_runs()
    provider = MemoryProvider(runs)
    ingest_(provider, store)
    newer = [make_run(str(8913000100 + n), T0 + timedelta(days=1, hours=n), "failure") for n in range(2)]
    provider.infos.update({r.id: r for r in newer})
    provider.tests.update({r.id: junit_tests() for r in newer})
    provider.fetched.clear()

    report = ingest_(provider, store)
    assert provider.listed_since == [T0 - timedelta(days=1), when(runs[-1])]
    assert provider.fetched == [r.id for r in newer]
    assert (report.listed, report.added, report.skipped) == (3, 2, 1)
    assert len(store.runs_frame(PROJECT)) == 7 and len(store.tests_frame(PROJECT)) == 4 * 5
    again = ingest_(provider, store)
    assert (again.added, again.updated, again.skipped) == (0, 0, 1)


def test_interrupted_ingest_resumes_where_it_stopped(store: HistoryStore) -> None:
    runs = five_runs()
    provider = MemoryProvider(runs)
    provider.crash_on = {runs[2].id}
    with pytest.raises(RuntimeError, match="killed"):
        ingest_(provider, store)
    assert store.runs_frame(PROJECT)["run_id"].tolist() == [runs[0].id, runs[1].id]
    cursor = store.cursor("github-actions", PROJECT, "provider")
    assert cursor is not None and cursor.position == runs[1].id

    provider.crash_on.clear()
    provider.fetched.clear()
    report = ingest_(provider, store)
    assert provider.listed_since[-1] == when(runs[1])
    assert provider.fetched == [r.id for r in runs[2:]]
    assert (report.added, report.skipped) == (3, 1)
    assert store.runs_frame(PROJECT)["run_id"].tolist() == [r.id for r in runs]
    assert len(store.tests_frame(PROJECT)) == 10


def test_a_running_run_is_stored_and_holds_the_cursor_until_it_ends(store: HistoryStore) -> None:
    runs = five_runs()
    finished = runs[2]
    runs[2] = make_run(finished.id, T0 + timedelta(hours=2), "running")
    provider = MemoryProvider(runs)
    report = ingest_(provider, store)
    assert (report.added, report.incomplete) == (5, 1)
    assert runs[2].id not in provider.tests_fetched  # no final test results yet
    cursor = store.cursor("github-actions", PROJECT, "provider")
    assert cursor is not None and cursor.position == runs[1].id

    provider.infos[finished.id] = finished
    provider.fetched.clear()
    report = ingest_(provider, store)
    assert provider.fetched == [finished.id]
    assert (report.updated, report.skipped, report.added) == (1, 3, 0)
    assert store.runs_frame(PROJECT)["status"].tolist() == ["success", "failure", "success", "failure", "cancelled"]
    cursor = store.cursor("github-actions", PROJECT, "provider")
    assert cursor is not None and cursor.position == runs[4].id


def test_a_run_that_cannot_be_fetched_is_reported_and_fetched_next_time(store: HistoryStore) -> None:
    runs = five_runs()
    provider = MemoryProvider(runs)
    provider.fail_on = {runs[1].id}
    report = ingest_(provider, store)
    assert [(f.run_id, f.error) for f in report.failed] == [(runs[1].id, f"{runs[1].url}: 404 Not Found")]
    assert report.added == 4
    cursor = store.cursor("github-actions", PROJECT, "provider")
    assert cursor is not None and cursor.position == runs[0].id

    provider.fail_on.clear()
    provider.fetched.clear()
    report = ingest_(provider, store)
    assert provider.fetched == [runs[1].id] and report.added == 1
    assert len(store.runs_frame(PROJECT)) == 5


def test_listing_cut_by_the_limit_leaves_the_cursor_alone(store: HistoryStore) -> None:
    runs = five_runs()
    provider = MemoryProvider(runs)
    report = ingest_(provider, store, limit=3)
    assert report.truncated and report.added == 3 and report.cursor_at is None
    assert store.runs_frame(PROJECT)["run_id"].tolist() == [r.id for r in runs[2:]]  # the newest three
    assert store.cursor("github-actions", PROJECT, "provider") is None
    report = ingest_(provider, store, limit=10)
    assert (report.added, report.skipped, report.truncated) == (2, 3, False)


def test_no_tests_means_none_fetched(store: HistoryStore) -> None:
    provider = MemoryProvider(five_runs())
    ingest_(provider, store, with_tests=False)
    assert provider.tests_fetched == []
    assert store.runs_frame(PROJECT)["tests_passed"].isna().all()


def test_deployments_are_stored_once(store: HistoryStore) -> None:
    runs = five_runs()
    deployment = Deployment(
        platform=Platform.GITHUB_ACTIONS,
        project=PROJECT,
        id="1502150333",
        environment="production",
        commit=runs[0].commit,
        status="success",
        created_at=T0 + timedelta(minutes=10),
        run_id=runs[0].id,
    )
    provider = MemoryProvider(runs, [deployment])
    ingest_(provider, store)
    assert ingest_deployments(provider, PROJECT, None, store) == 1
    assert ingest_deployments(provider, PROJECT, None, store) == 1
    from sqlalchemy import func, select

    from cimedic.store.history_tables import DeploymentRow

    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeploymentRow)).scalar_one() == 1


def test_cli_ingest_and_stats(store: HistoryStore, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import cimedic.tools.ci.providers as providers
    from cimedic.settings import get_settings

    now = datetime.now(UTC).replace(microsecond=0)
    provider = MemoryProvider(five_runs(now - timedelta(days=3)))
    monkeypatch.setattr(providers, "provider_for", lambda *args: provider)
    monkeypatch.setenv("CIMEDIC_DATABASE_URL", db_url)
    get_settings.cache_clear()
    app = typer.Typer()  # registered as cli.py registers them
    app.command("ingest")(ingest)
    app.add_typer(history_app, name="history")
    runner = CliRunner()

    result = runner.invoke(app, ["ingest", PROJECT, "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert (
        "listed 5 runs since" in result.output and "5 added, 0 updated, 0 unchanged, 0 already stored" in result.output
    )
    assert "no deployments listed" in result.output
    result = runner.invoke(app, ["history", "stats", PROJECT, "--json"])
    stats = result.output.strip().splitlines()
    assert len(stats) == 1 and '"runs":5' in stats[0] and '"failure":2' in stats[0]
    assert '"failure_rate":0.5' in stats[0]
    result = runner.invoke(app, ["history", "stats"])
    assert result.exit_code == 0 and "50.0%" in result.output  # 2 failed of 4 decided (cancelled is neither)
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code != 0 and "either a REPO or --from-csv" in str(result.exception)
