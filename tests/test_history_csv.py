"""Importing CSV build histories (the LRTS layout) into the history store, on a SQLite file and PostgreSQL:
mapping on real rows, bad rows, idempotent and resumable imports, and an import killed with SIGKILL.

Fixtures: rows of the LRTS dataset (github.com/lrtsuser/LRTS, MIT), see tests/fixtures/history/SOURCE.md;
the expected values below were read from those rows. The big CSV of the SIGKILL test is those rows
repeated under new pull-request names.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from cimedic.errors import InputError
from cimedic.history.csv_import import import_csv
from cimedic.history_cli import history_app, ingest
from cimedic.store.history import HistoryStore
from cimedic.store.history_tables import JobRow, RunRow

FIXTURES = Path(__file__).parent / "fixtures" / "history"
KAFKA = FIXTURES / "lrts_kafka_testing_builds.csv"
HIVE = FIXTURES / "lrts_hive_training_builds.csv"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(db_url: str) -> HistoryStore:
    return HistoryStore.open(db_url)


def jobs_of(store: HistoryStore) -> dict[str, list[tuple[str, str]]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(RunRow.run_id, JobRow.name, JobRow.status)
            .join(JobRow, JobRow.run_pk == RunRow.id)
            .order_by(RunRow.run_id, JobRow.position)
        ).all()
    jobs: dict[str, list[tuple[str, str]]] = {}
    for run_id, name, status in rows:
        jobs.setdefault(run_id, []).append((name, status))
    return jobs


def test_lrts_rows_become_runs_with_statuses_times_and_counts(store: HistoryStore) -> None:
    kafka = import_csv(KAFKA, store)
    assert (kafka.rows, kafka.runs, kafka.added, kafka.done) == (36, 11, 11, True)
    hive = import_csv(HIVE, store, "lrts")
    assert (hive.rows, hive.runs, hive.added) == (8, 8, 8)

    runs = store.runs_frame("kafka").set_index("run_id")
    assert runs["status"].to_dict() == {
        "PR-10338#2": "success",
        "PR-10317#2": "cancelled",  # ABORTED
        "PR-10334#4": "cancelled",
        "PR-10315#2": "success",
        "PR-11865#3": "failure",  # UNSTABLE
        "PR-12957#4": "failure",  # FAILURE
        "PR-13725#1": "failure",
        "PR-13857#3": "cancelled",  # NOT_BUILT
        "PR-13921#5": "cancelled",
        "PR-13643#7": "failure",
        "PR-14053#9": "failure",
    }
    assert list(runs.index[:3]) == ["PR-10338#2", "PR-10317#2", "PR-10334#4"]  # by start time
    run = runs.loc["PR-11865#3"]
    assert run["started_at"] == datetime(2022, 3, 10, 15, 16, 6, tzinfo=UTC)
    assert run["finished_at"] == datetime(2022, 3, 10, 17, 32, 24, tzinfo=UTC)
    assert run["duration_s"] == 8178.0
    # The build's totals, repeated on each of its 4 stage rows: not summed.
    assert (run["tests_passed"], run["tests_failed"], run["tests_skipped"]) == (73665, 32, 76)
    assert (run["project"], run["job"], run["attempt"], run["branch"], run["pull_request"]) == (
        "kafka",
        "kafka",
        1,
        "trunk",
        "PR-11865",
    )
    assert run["commit"] == "06b9d1acd41c29aaed65a3887bb66c209ac873ba"
    assert runs.loc["PR-12957#4", "branch"] == "3.2"
    assert store.tests_frame().empty  # LRTS has counts, not test results

    jobs = jobs_of(store)
    # Stages in file order (the file is sorted by stage); num_fail_method > 0 marks a failed stage.
    assert jobs["PR-11865#3"] == [
        ("ppc64le:_JDK_11_and_Scala_2.13_Build", "failure"),
        ("x86_64:_JDK_17_and_Scala_2.13_Build", "failure"),
        ("x86_64:_JDK_8_and_Scala_2.12_Build", "unknown"),
        ("x86_64:_JDK_11_and_Scala_2.13_Build", "failure"),
    ]
    assert jobs["PR-10338#2"] == [("JDK_11_Build", "success"), ("JDK_15_Build", "success"), ("JDK_8_Build", "success")]
    assert jobs["PR-3137#10"] == [("single", "failure")]
    hive_runs = store.runs_frame("hive").set_index("run_id")
    assert hive_runs.loc["PR-3448#1", "finished_at"] == datetime(2022, 7, 18, 5, 45, 17, tzinfo=UTC)
    assert hive_runs["status"].value_counts().to_dict() == {"failure": 4, "success": 2, "cancelled": 2}
    stats = store.stats()
    assert (stats.runs, stats.jobs, stats.projects) == (19, 44, 2)


def test_importing_again_changes_nothing(store: HistoryStore, tmp_path: Path) -> None:
    import_csv(KAFKA, store)
    again = import_csv(KAFKA, store)
    assert (again.already, again.added, again.resumed_after_line, again.batches) == (11, 0, 37, 0)
    # The same rows under another path (no cursor): every run is read again, and found unchanged.
    copy = tmp_path / "copy.csv"
    shutil.copy(KAFKA, copy)
    moved = import_csv(copy, store)
    assert (moved.added, moved.updated, moved.unchanged) == (0, 0, 11)
    assert (store.stats().runs, store.stats().jobs) == (11, 36)


def test_a_changed_file_is_read_from_the_top(store: HistoryStore, tmp_path: Path) -> None:
    path = tmp_path / "growing.csv"
    lines = KAFKA.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))  # the last two rows: stages of PR-13643#7 and PR-14053#9
    first = import_csv(path, store)
    assert first.runs == 11 and jobs_of(store)["PR-13643#7"][-1][0] == "JDK_8_and_Scala_2.12_Build"
    path.write_text("".join(lines))
    second = import_csv(path, store)
    assert (second.resumed_after_line, second.updated, second.unchanged) == (None, 2, 9)
    assert jobs_of(store)["PR-13643#7"][-1][0] == "JDK_11_and_Scala_2.13_Build"
    assert store.stats().jobs == 36


@pytest.mark.parametrize(
    ("line", "column", "value", "message"),
    [
        (5, "build_timestamp", "yesterday", "column build_timestamp: not a number: 'yesterday'"),
        (3, "build_result", "EXPLODED", "column build_result: 'EXPLODED' is not one of SUCCESS"),
        (9, "passcount", "-3", "column passcount: '-3' is outside 0..inf"),
        (20, "pr_name", "", "column pr_name: is empty"),
        # Line 9 is the second stage row of PR-10338#2, whose first row (line 2) says SUCCESS.
        (
            9,
            "build_result",
            "FAILURE",
            "column build_result: run PR-10338#2 has 'FAILURE' here but 'SUCCESS' on line 2",
        ),
    ],
)
def test_a_bad_row_stops_the_import_before_anything_is_written(
    store: HistoryStore, tmp_path: Path, line: int, column: str, value: str, message: str
) -> None:
    with KAFKA.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[line - 2][column] = value
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(InputError) as caught:
        import_csv(path, store, batch_size=1)
    assert str(caught.value).startswith(f"{path}:{line}: {message}")
    assert "\n" not in str(caught.value)
    assert store.stats().runs == 0
    assert store.cursor("jenkins", "*", f"csv:lrts:{path}") is None


def test_files_that_are_not_lrts(store: HistoryStore, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("project,build_id\nkafka,1\n")
    with pytest.raises(InputError, match=r"other.csv:1: not a lrts CSV: missing columns pr_name, pr_base_branch"):
        import_csv(other, store)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(KAFKA.read_text().splitlines()[0] + "\nkafka,PR-1,trunk\n")
    with pytest.raises(InputError, match=r"ragged.csv:2: 3 fields where the header has 23"):
        import_csv(ragged, store)
    with pytest.raises(InputError, match="unknown layout 'travis'; known: lrts"):
        import_csv(KAFKA, store, "travis")
    with pytest.raises(InputError, match="No such file"):
        import_csv(tmp_path / "missing.csv", store)


def test_an_interrupted_import_resumes_after_its_last_batch(store: HistoryStore) -> None:
    class Stop(Exception):
        pass

    def stop_after_two(report: object) -> None:
        if getattr(report, "batches", 0) == 2:
            raise Stop

    with pytest.raises(Stop):
        import_csv(KAFKA, store, batch_size=2, progress=stop_after_two)
    cursor = store.cursor("jenkins", "*", f"csv:lrts:{KAFKA.resolve()}")
    assert cursor is not None and cursor.position is not None
    line = json.loads(cursor.position)["line"]
    assert set(store.runs_frame()["run_id"]) == completed_by(KAFKA, line) and store.stats().runs == 4
    resumed = import_csv(KAFKA, store, batch_size=2)
    assert (resumed.resumed_after_line, resumed.already, resumed.added) == (line, 4, 7)
    assert (store.stats().runs, store.stats().jobs) == (11, 36)


def test_cli_from_csv_and_stats(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cimedic.settings import get_settings

    monkeypatch.setenv("CIMEDIC_DATABASE_URL", db_url)
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("ingest")(ingest)
    app.add_typer(history_app, name="history")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--from-csv", str(KAFKA), "--layout", "lrts"])
    assert result.exit_code == 0, result.output
    assert "36 rows, 11 runs: 11 added, 0 updated, 0 unchanged" in " ".join(result.output.split())
    result = runner.invoke(app, ["ingest", "--from-csv", str(KAFKA)])
    assert "11 already imported (resumed after line 37)" in " ".join(result.output.split())
    result = runner.invoke(app, ["history", "stats", "kafka"])
    assert result.exit_code == 0
    # 5 failed of 7 with an outcome; 4 cancelled runs are neither.
    assert "71.4%" in result.output and "2021-03-17" in result.output and "2023-07-24" in result.output


# --- SIGKILL ----------------------------------------------------------------------------------------

DRIVER = """
import sys
from cimedic.history.csv_import import import_csv
from cimedic.store.history import HistoryStore
report = import_csv(sys.argv[1], HistoryStore.open(sys.argv[2]), batch_size=int(sys.argv[3]))
print(report.model_dump_json())
"""
COPIES = 250  # 19 builds x 250 = 4,750 runs in 11,000 rows: seconds to import, cut short by the kill
BATCH = 50


def completed_by(path: Path, line: int) -> set[str]:
    """Run ids whose last row is at or before ``line`` (the cursor's promise)."""
    last: dict[str, int] = {}
    with path.open(newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            last[f"{row['pr_name']}#{row['build_id']}"] = n
    return {run for run, end in last.items() if end <= line}


def big_csv(path: Path) -> tuple[int, int]:
    """The fixture rows repeated under new PR names, keeping their stage-sorted order; (runs, rows)."""
    header: Sequence[str] | None = None
    rows: list[dict[str, str]] = []
    for source in (HIVE, KAFKA):
        with source.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            rows.extend(reader)
    assert header is not None
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        for row in rows:
            for copy in range(COPIES):
                writer.writerow({**row, "pr_name": f"{row['pr_name']}-{copy}"})
    runs = len({(row["pr_name"], row["build_id"]) for row in rows}) * COPIES
    return runs, len(rows) * COPIES


def run_driver(path: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(path), url, str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stored_runs(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RunRow)).scalar_one())
    except DBAPIError:
        return 0  # not migrated yet
    finally:
        engine.dispose()


def test_an_import_killed_with_sigkill_leaves_whole_batches_and_resumes(db_url: str, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    total_runs, total_rows = big_csv(big)
    proc = run_driver(big, db_url)
    deadline = time.monotonic() + 60
    while stored_runs(db_url) == 0:
        assert proc.poll() is None, f"the import ended before any batch was seen: {proc.communicate()}"
        assert time.monotonic() < deadline, "no batch committed within 60 s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the import finished before the kill; raise COPIES"

    store = HistoryStore.open(db_url)
    cursor = store.cursor("jenkins", "*", f"csv:lrts:{big.resolve()}")
    assert cursor is not None and cursor.position is not None
    position = json.loads(cursor.position)
    assert not position["done"]
    expected = completed_by(big, position["line"])
    frame = store.runs_frame()
    # Exactly the runs the cursor covers: no later batch half-written, no covered run missing.
    assert set(frame["run_id"]) == expected and len(frame) == len(expected) < total_runs
    # Every stored run has all its stage rows as jobs, counted from the file itself.
    assert {run: len(jobs) for run, jobs in jobs_of(store).items()} == stage_counts(big, expected)
    assert frame["tests_passed"].notna().all()

    done = run_driver(big, db_url)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    report = json.loads(out)
    assert report["resumed_after_line"] == position["line"]
    assert (report["already"], report["added"]) == (len(expected), total_runs - len(expected))
    stats = store.stats()
    assert (stats.runs, stats.jobs) == (total_runs, total_rows)
    final = store.runs_frame()
    assert not final.duplicated(["project", "run_id", "attempt"]).any()
    cursor = store.cursor("jenkins", "*", f"csv:lrts:{big.resolve()}")
    assert cursor is not None and cursor.position is not None and json.loads(cursor.position)["done"]


def stage_counts(path: Path, runs: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            run = f"{row['pr_name']}#{row['build_id']}"
            if run in runs:
                counts[run] = counts.get(run, 0) + 1
    return counts
