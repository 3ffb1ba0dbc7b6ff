"""The history store on real databases (a SQLite file and PostgreSQL): migrations, idempotent upserts,
diagnoses, deployments, cursors, and the exact columns and dtypes of the two frames.

PostgreSQL comes from TEST_POSTGRES_URL, as in test_store_fingerprints.py: each test gets its own
schema (search_path), dropped afterwards, so parallel runs never collide. The other history test
files import the ``db_url`` fixture from here. Test results come from a real pytest JUnit report
(tests/fixtures/junit, MIT; see its SOURCE.md).
"""

from __future__ import annotations

import multiprocessing
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from cimedic.models import Category, Diagnosis, Fingerprint, Job, RunInfo, Source, SourceKind, Step, TestResult
from cimedic.store import FingerprintStore, StoreError, dispose_engines, engine_for
from cimedic.store.db import Base
from cimedic.store.fingerprints import Fingerprint as FingerprintRow
from cimedic.store.fingerprints import FingerprintSighting
from cimedic.store.history import Cursor, HistoryStore, RunRecord, UpsertOutcome
from cimedic.store.history_tables import MESSAGE_MAX, JobRow, RunRow, StepRow, TestResultRow
from cimedic.store.migrate import HEAD, MIGRATIONS_DIR, VERSION_TABLE, revision
from cimedic.tools.ingest.junit import parse_junit_file

JUNIT = Path(__file__).parent / "fixtures/junit/publish-unit-test-result/junit-xml/pytest/junit.fail.xml"
T0 = datetime(2024, 5, 3, 16, 20, 11, tzinfo=UTC)

RUNS_DTYPES = {
    "project": "object",
    "run_id": "object",
    "attempt": "int64",
    "job": "object",
    "status": "object",
    "branch": "object",
    "pull_request": "object",
    "commit": "object",
    "actor": "object",
    "started_at": "datetime64[ns, UTC]",
    "finished_at": "datetime64[ns, UTC]",
    "duration_s": "float64",
    "queue_s": "float64",
    "tests_passed": "Int64",
    "tests_failed": "Int64",
    "tests_skipped": "Int64",
    "runner": "object",
    "fingerprint": "object",
}
TESTS_DTYPES = {
    "project": "object",
    "run_id": "object",
    "attempt": "int64",
    "job": "object",
    "commit": "object",
    "test": "object",
    "status": "object",
    "duration_s": "float64",
    "runner": "object",
    "finished_at": "datetime64[ns, UTC]",
    "message": "object",
}


@pytest.fixture
def store(db_url: str) -> HistoryStore:
    return HistoryStore.open(db_url)


def junit_tests() -> list[TestResult]:
    return parse_junit_file(JUNIT)


def make_run(run_id: str, started: datetime, status: str = "failure", *, attempt: int = 1, jobs: int = 2) -> RunInfo:
    """A GitHub Actions run shaped like tests/fixtures/ci/github/run-failed.json and run-jobs.json."""
    job_list = [
        Job(
            name=name,
            id=f"{run_id}{n}",
            status="success" if n == 0 else status,
            platform="github-actions",
            runner=f"GitHub Actions {n + 2}",
            queued_at=started,
            started_at=started + timedelta(seconds=5),
            finished_at=started + timedelta(minutes=3),
            steps=[
                Step(name="Set up job", number=1, status="success"),
                Step(name=f"Run {name}", number=2, status="success" if n == 0 else status),
            ],
        )
        for n, name in enumerate(["build", "test"][:jobs])
    ]
    return RunInfo(
        platform="github-actions",
        id=run_id,
        url=f"https://github.com/octo-org/hello-world/actions/runs/{run_id}",
        project="octo-org/hello-world",
        name="CI",
        number="42",
        attempt=attempt,
        status=status,
        commit="d6fde92930d4715a2b49857d24b940956b26d2d3",
        branch="main",
        actor="octocat",
        event="push",
        queued_at=started - timedelta(seconds=20),
        started_at=started,
        finished_at=None if status == "running" else started + timedelta(minutes=4, seconds=46),
        jobs=job_list,
    )


def count(store: HistoryStore, model: type[Base]) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def diagnosis(fp: str, category: Category = Category.TEST) -> Diagnosis:
    return Diagnosis(
        source=Source(kind=SourceKind.GITHUB_ACTIONS, path="https://github.com/octo-org/hello-world/actions/runs/1"),
        category=category,
        confidence=0.8,
        summary="test_rsh_events failed",
        excerpt=None,
        fingerprint=Fingerprint(id=fp),
    )


# --- migrations -----------------------------------------------------------------------------------


def _schema_diff(url: str) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine_for(url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def test_fresh_database_is_migrated_to_head_matching_the_models(db_url: str) -> None:
    HistoryStore.open(db_url)
    assert revision(engine_for(db_url)) == HEAD
    assert _schema_diff(db_url) == []


def test_head_constant_is_the_newest_script() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_database_made_before_migrations_is_upgraded_keeping_its_fingerprints(db_url: str) -> None:
    engine = engine_for(db_url)
    # Exactly what the old create_schema made: the fingerprint tables, no version table.
    Base.metadata.create_all(
        engine, tables=[Base.metadata.tables[m.__tablename__] for m in (FingerprintRow, FingerprintSighting)]
    )
    FingerprintStore(engine).record("fp-old", run_key="run-1", category="test", title="old failure", seen_at=T0)
    assert revision(engine) is None

    store = HistoryStore.open(db_url)
    assert revision(engine) == HEAD
    assert _schema_diff(db_url) == []
    old = FingerprintStore.open(db_url).stats("fp-old")
    assert old is not None and (old.count, old.title) == (1, "old failure")
    assert store.upsert_run(make_run("1", T0)) is UpsertOutcome.ADDED


def test_schema_newer_than_this_code_is_refused(db_url: str) -> None:
    HistoryStore.open(db_url)
    with engine_for(db_url).begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    dispose_engines()  # a new engine re-reads the version
    with pytest.raises(StoreError, match="9999 is newer than this cimedic"):
        HistoryStore.open(db_url)


def _open_and_write(url: str, worker: int, barrier: Any, results: Any) -> None:
    """Spawned worker: open a fresh database at the same moment as the other, then store one run.

    On SQLite both first connections switch the new file to WAL, which SQLite refuses at once to the
    second without the lock migrate takes; on PostgreSQL both would CREATE the same tables."""
    try:
        barrier.wait(timeout=60)
        store = HistoryStore.open(url)
        store.upsert_run(make_run(f"w{worker}", T0))
        results.put(("ok", ""))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_two_processes_opening_a_fresh_database_at_once(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_open_and_write, args=(db_url, n, barrier, results)) for n in range(2)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=90) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert [detail for kind, detail in outcomes if kind == "error"] == []
    store = HistoryStore.open(db_url)
    assert revision(store.engine) == HEAD
    assert sorted(store.runs_frame()["run_id"]) == ["w0", "w1"]


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"\x00garbage, not SQLite\xff" * 512)
    with pytest.raises(StoreError) as caught:
        HistoryStore.open(f"sqlite:///{path}")
    assert str(path) in str(caught.value) and "not a database" in str(caught.value)
    assert "\n" not in str(caught.value)


# --- writing runs ---------------------------------------------------------------------------------


def _ids(store: HistoryStore) -> tuple[list[int], list[int], list[int]]:
    with store.engine.connect() as conn:
        return (
            list(conn.execute(select(RunRow.id).order_by(RunRow.id)).scalars()),
            list(conn.execute(select(JobRow.id).order_by(JobRow.id)).scalars()),
            list(conn.execute(select(TestResultRow.id).order_by(TestResultRow.id)).scalars()),
        )


def test_reingesting_the_same_run_writes_nothing(store: HistoryStore) -> None:
    run, tests = make_run("8913000004", T0), junit_tests()
    assert store.upsert_run(run, tests) is UpsertOutcome.ADDED
    before = _ids(store)
    assert store.upsert_run(run, tests) is UpsertOutcome.UNCHANGED
    assert _ids(store) == before
    assert (count(store, RunRow), count(store, JobRow), count(store, StepRow), count(store, TestResultRow)) == (
        1,
        2,
        4,
        5,
    )


def test_changed_run_is_updated_in_place_with_children_replaced(store: HistoryStore) -> None:
    store.upsert_run(make_run("7", T0, "running"), [])
    diag_id = store.record_diagnosis("github-actions", "octo-org/hello-world", "7", diagnosis("fp-early"))
    run_pk = _ids(store)[0]
    assert store.upsert_run(make_run("7", T0, "failure"), junit_tests()) is UpsertOutcome.UPDATED
    assert _ids(store)[0] == run_pk  # same row: the diagnosis still points at it
    assert (count(store, RunRow), count(store, JobRow), count(store, StepRow), count(store, TestResultRow)) == (
        1,
        2,
        4,
        5,
    )
    frame = store.runs_frame()
    assert frame.loc[0, "status"] == "failure" and frame.loc[0, "fingerprint"] == "fp-early"
    assert diag_id > 0


def test_a_rerun_attempt_is_its_own_row(store: HistoryStore) -> None:
    store.upsert_run(make_run("7", T0, "failure"))
    assert store.upsert_run(make_run("7", T0 + timedelta(hours=1), "success", attempt=2)) is UpsertOutcome.ADDED
    frame = store.runs_frame()
    assert list(zip(frame["attempt"], frame["status"], strict=True)) == [(1, "failure"), (2, "success")]
    latest = store.latest_attempts("github-actions", "octo-org/hello-world", ["7", "never"])
    assert list(latest) == ["7"] and (latest["7"].attempt, latest["7"].status) == (2, "success")


def test_a_batch_commits_whole_or_not_at_all(store: HistoryStore) -> None:
    good = RunRecord(info=make_run("1", T0))
    naive = make_run("2", T0).model_copy(update={"started_at": datetime(2024, 5, 3, 16, 0)})
    cursor = Cursor(platform="github-actions", project="octo-org/hello-world", source="provider", position="2")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.upsert_runs([good, RunRecord(info=naive)], source="provider", cursor=cursor)
    assert count(store, RunRow) == 0 and count(store, JobRow) == 0
    assert store.cursor("github-actions", "octo-org/hello-world", "provider") is None
    with pytest.raises(ValueError, match="twice"):
        store.upsert_runs([good, good], source="provider")


def test_cursor_is_written_with_the_runs(store: HistoryStore) -> None:
    cursor = Cursor(platform="jenkins", project="*", source="csv:x", position='{"line": 3}', position_at=T0)
    store.upsert_runs([RunRecord(info=make_run("1", T0))], source="csv", cursor=cursor)
    stored = store.cursor("jenkins", "*", "csv:x")
    assert stored is not None and (stored.position, stored.position_at) == ('{"line": 3}', T0)
    store.set_cursor(cursor.model_copy(update={"position": '{"line": 9}'}))
    again = store.cursor("jenkins", "*", "csv:x")
    assert again is not None and again.position == '{"line": 9}'
    assert count(store, RunRow) == 1


def test_diagnosis_needs_a_stored_run_and_the_latest_names_the_fingerprint(store: HistoryStore) -> None:
    from cimedic.errors import InputError

    with pytest.raises(InputError, match="ingest it first"):
        store.record_diagnosis("github-actions", "octo-org/hello-world", "404", diagnosis("fp"))
    store.upsert_run(make_run("5", T0))
    store.record_diagnosis("github-actions", "octo-org/hello-world", "5", diagnosis("fp-a"), created_at=T0)
    store.record_diagnosis(
        "github-actions", "octo-org/hello-world", "5", diagnosis("fp-b", Category.INFRA), created_at=T0 + timedelta(1)
    )
    assert store.runs_frame()["fingerprint"].tolist() == ["fp-b"]
    assert store.stats().diagnoses == 2


def test_deployments_are_idempotent_by_platform_id(store: HistoryStore) -> None:
    from cimedic.store.history_tables import DeploymentRow

    store.upsert_run(make_run("5", T0))
    for status in ("running", "success"):
        store.upsert_deployment(
            "github-actions",
            "octo-org/hello-world",
            "1502150333",
            environment="production",
            status=status,
            created_at=T0,
            run_id="5",
        )
    with store.engine.connect() as conn:
        rows = conn.execute(select(DeploymentRow.status, DeploymentRow.run_pk)).all()
    assert rows == [("success", _ids(store)[0][0])]


# --- frames and stats -----------------------------------------------------------------------------


def test_frames_have_exactly_the_documented_columns_and_dtypes(store: HistoryStore) -> None:
    for frame, expected in ((store.runs_frame(), RUNS_DTYPES), (store.tests_frame(), TESTS_DTYPES)):
        assert frame.empty
        assert {c: str(d) for c, d in frame.dtypes.items()} == expected
        assert list(frame.columns) == list(expected)
    store.upsert_run(make_run("1", T0), junit_tests())
    store.upsert_run(make_run("2", T0 + timedelta(hours=1), "running", jobs=0))
    runs, tests = store.runs_frame(), store.tests_frame()
    assert {c: str(d) for c, d in runs.dtypes.items()} == RUNS_DTYPES
    assert {c: str(d) for c, d in tests.dtypes.items()} == TESTS_DTYPES
    assert list(runs.columns) == list(RUNS_DTYPES) and list(tests.columns) == list(TESTS_DTYPES)


def test_runs_frame_values(store: HistoryStore) -> None:
    store.upsert_run(make_run("1", T0), junit_tests())
    store.upsert_run(make_run("2", T0 + timedelta(hours=1), "running", jobs=0))
    runs = store.runs_frame()
    first = runs.iloc[0].to_dict()
    assert first["run_id"] == "1" and first["job"] == "CI" and first["actor"] == "octocat"
    assert (first["tests_passed"], first["tests_failed"], first["tests_skipped"]) == (3, 1, 1)
    assert first["started_at"] == T0 and first["duration_s"] == 286.0 and first["queue_s"] == 20.0
    assert first["runner"] == "GitHub Actions 2" and first["fingerprint"] is None
    second = runs.iloc[1]
    assert second["status"] == "running"
    assert runs["finished_at"].isna().tolist() == [False, True]
    assert runs["tests_passed"].isna().tolist() == [False, True] and runs["runner"].tolist()[1] is None
    assert store.runs_frame(since=T0 + timedelta(minutes=30))["run_id"].tolist() == ["2"]
    assert store.runs_frame(project="someone/else").empty


def test_tests_frame_values(store: HistoryStore) -> None:
    long = TestResult(name="test_huge", classname="t.Big", status="failed", message="x" * (MESSAGE_MAX + 50))
    store.upsert_run(make_run("1", T0, jobs=1), [*junit_tests(), long])
    tests = store.tests_frame()
    assert len(tests) == 6
    failed = tests[tests["status"] == "failed"]
    assert failed["test"].tolist() == ["test.test_spark.SparkTests.test_rsh_events", "t.Big.test_huge"]
    assert len(failed["message"].iloc[1]) == MESSAGE_MAX
    # One job: every test ran on its runner.
    assert set(tests["runner"]) == {"GitHub Actions 2"} and set(tests["finished_at"]) == {T0 + timedelta(seconds=286)}
    assert tests["duration_s"].iloc[0] == pytest.approx(6.435)


def test_stats(store: HistoryStore) -> None:
    assert store.stats().runs == 0 and store.stats().failure_rate is None
    for n, status in enumerate(["failure", "success", "success", "cancelled"]):
        store.upsert_run(make_run(str(n), T0 + timedelta(days=n), status), junit_tests() if n == 0 else [])
    stats = store.stats("octo-org/hello-world")
    assert (stats.runs, stats.jobs, stats.test_results, stats.projects) == (4, 8, 5, 1)
    assert stats.by_status == {"failure": 1, "success": 2, "cancelled": 1}
    assert stats.failure_rate == pytest.approx(1 / 3)
    assert (stats.first_started, stats.last_started) == (T0, T0 + timedelta(days=3))
    assert store.stats("nobody/nothing").runs == 0
    assert store.projects() == ["octo-org/hello-world"]


def test_opening_an_up_to_date_database_does_not_load_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'c.db'}"
    HistoryStore.open(url)
    code = (
        "import sys; from cimedic.store.history import HistoryStore; from cimedic.store import FingerprintStore; "
        f"HistoryStore.open({url!r}); FingerprintStore.open({url!r}); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
