"""Real run histories for the history-reading agent tools, stored through the project's own APIs.

- ``runs_db``: the shipped LRTS excerpts (Apache Hive and Kafka Jenkins PR builds, MIT, see
  tests/fixtures/lrts/README.md) imported with ``import_csv``, as ``cimedic ingest --from-csv`` does.
- ``reruns_db``: test results from Lam et al.'s isolated reruns (../shared/data/flaky-reruns), each
  isolated run stored as one CI run with ``HistoryStore.upsert_runs``. That data has no license
  file, so it is read in place, never copied here, and the tests using it skip without it.

Each builds a SQLite file once per test module; ``install`` copies it into a test's CIMEDIC_HOME.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cimedic.history.csv_import import import_csv
from cimedic.models import Job, Platform, RunInfo, TestResult
from cimedic.settings import Settings, get_settings
from cimedic.store import dispose_engines
from cimedic.store.history import HistoryStore, RunRecord
from tests.conftest import FIXTURES, ROOT

LRTS = FIXTURES / "lrts"
RERUNS = ROOT.parent / "shared" / "data" / "flaky-reruns" / "isolation_per_run.csv.gz"
needs_reruns = pytest.mark.skipif(not RERUNS.exists(), reason=f"flaky-reruns data not found at {RERUNS}")

# Java-WebSocket: a test failing 16.5% of 4,000 isolated runs, and one that never failed in them.
FLAKY = "org.java_websocket.issues.Issue256Test.runReconnectScenario0"
STEADY = "org.java_websocket.issues.Issue580Test.runNoCloseBlockingTestScenario3"
BROKEN = "com.alibaba.json.bvt.issue_1200.Issue1298.test_for_issue"  # fastjson: failed all 4,000
SHORT = "cn.hutool.cron.test.CronTest.matchAllTest"  # hutool: only its first 3 runs are stored
RUNS_PER_MACHINE = 2
T0 = datetime(2020, 1, 1, tzinfo=UTC)
STATUS = {"pass": "passed", "failure": "failed", "error": "error"}


def runs_db(dest: Path) -> Path:
    db = dest / "runs.db"
    store = HistoryStore.open(f"sqlite:///{db}")
    for name in ("hive_training.csv", "kafka_testing.csv"):
        import_csv(LRTS / name, store)
    dispose_engines()
    return db


def reruns() -> pd.DataFrame:
    """The stored executions, one row per test run, in the order they are stored."""
    df = pd.read_csv(RERUNS)
    df = df[df["test_name"].isin([FLAKY, STEADY, BROKEN, SHORT])].sort_values(["test_name", "machine_id", "run_num"])
    kept = df.groupby(["test_name", "machine_id"], group_keys=False).head(RUNS_PER_MACHINE)
    short = df[df["test_name"] == SHORT].head(3)
    return pd.concat([kept[kept["test_name"] != SHORT], short]).sort_values(["slug", "machine_id", "run_num"])


def reruns_db(dest: Path) -> Path:
    db = dest / "reruns.db"
    records = []
    for n, ((slug, machine, run_num), rows) in enumerate(reruns().groupby(["slug", "machine_id", "run_num"])):
        status = "failure" if (rows["result"] != "pass").any() else "success"
        started = T0 + timedelta(minutes=n)
        info = RunInfo(
            platform=Platform.GENERIC,
            id=f"{machine}#{run_num}",
            project=slug.removeprefix("https://github.com/"),
            name="isolation",
            status=status,
            commit=rows["sha"].iloc[0],
            started_at=started,
            finished_at=started + timedelta(seconds=float(rows["time_s"].sum())),
            jobs=[Job(name="isolation", status=status, runner=machine)],
        )
        tests = [
            TestResult(
                classname=r.test_name.rsplit(".", 1)[0],
                name=r.test_name.rsplit(".", 1)[1],
                status=STATUS[r.result],
                duration_s=r.time_s,
            )
            for r in rows.itertuples()
        ]
        records.append(RunRecord(info=info, tests=tests))
    HistoryStore.open(f"sqlite:///{db}").upsert_runs(records, source="csv")
    dispose_engines()
    return db


def install(db: Path) -> Settings:
    """This test's settings, with a copy of ``db`` as its run history: tests never share a store."""
    settings = get_settings()
    dispose_engines()  # a store opened before must not keep serving the file this replaces
    settings.home.mkdir(parents=True, exist_ok=True)
    for stale in settings.home.glob("cimedic.db*"):
        stale.unlink()  # its -wal and -shm files too: they belong to the file being replaced
    shutil.copyfile(db, settings.home / "cimedic.db")
    return settings
