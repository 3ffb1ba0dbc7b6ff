"""The history commands end to end: ingest a real LRTS build history, then stats, anomalies, train,
predict and the HTML report; flaky tests from runs stored with their test results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.models import Job, Platform, RunInfo, Status, TestResult, TestStatus
from cimedic.settings import get_settings
from cimedic.store.history import HistoryStore

LRTS = Path(__file__).resolve().parent / "fixtures" / "lrts" / "hive_training.csv"
runner = CliRunner()


@pytest.fixture
def hive() -> str:
    result = runner.invoke(app, ["ingest", "--from-csv", str(LRTS)])
    assert result.exit_code == 0, result.output
    return "hive"


def test_stats_anomalies_and_report_over_a_real_build_history(hive: str, tmp_path: Path) -> None:
    stats = runner.invoke(app, ["stats", hive, "--days", "3650", "--json"])
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.stdout)
    assert data["history"]["runs"] > 100
    assert 0.3 < data["history"]["failure_rate"] < 0.9
    assert data["dora"]["deployments"] == 0 and data["dora"]["deployment_frequency"]["band"] is None
    found = runner.invoke(app, ["anomalies", hive, "--json"])
    assert found.exit_code == 0, found.output
    for a in json.loads(found.stdout):
        assert a["project"] == hive and a["metric"] in (
            "duration_s",
            "queue_s",
            "tests_passed",
            "tests_failed",
            "tests_skipped",
        )
        assert a["expected_low"] <= a["expected"] <= a["expected_high"]
    page = tmp_path / "out" / "report.html"
    report = runner.invoke(app, ["report", hive, "--html", str(page), "--png", str(tmp_path / "png")])
    assert report.exit_code == 0, report.output
    text = page.read_text()
    assert "CI health: hive" in text and text.count("data:image/png;base64,") == 4
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "categories.png",
        "dora.png",
        "durations.png",
        "flaky.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in (tmp_path / "png").iterdir())


def test_train_then_predict_a_pull_request_and_a_stored_run(hive: str) -> None:
    trained = runner.invoke(app, ["train", "predictor", hive])
    assert trained.exit_code == 0, trained.output
    assert "promoted" in trained.output
    nxt = runner.invoke(app, ["predict", "--pr", "PR-2800", "--project", hive, "--json"])
    assert nxt.exit_code == 0, nxt.output
    payload = json.loads(nxt.stdout)
    assert 0.0 <= payload["probability"] <= 1.0
    assert payload["model"].startswith("predictor ") and payload["reasons"]
    stored = HistoryStore.open(get_settings().effective_database_url).runs_frame(hive)
    run_id = str(stored["run_id"].iloc[-1])
    again = runner.invoke(app, ["predict", run_id, "--project", hive])
    assert again.exit_code == 0, again.output
    assert "P(fail) =" in again.stdout
    missing = runner.invoke(app, ["predict", "PR-0#1", "--project", hive])
    assert missing.exit_code != 0 and "no such run" in str(missing.exception)


def test_flaky_ranks_a_test_that_passed_and_failed_on_one_commit() -> None:
    store = HistoryStore.open(get_settings().effective_database_url)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(12):
        when = start + timedelta(hours=i)
        info = RunInfo(
            platform=Platform.GITHUB_ACTIONS,
            id=str(1000 + i),
            project="acme/shop",
            name="ci",
            status=Status.FAILURE if i % 4 == 1 else Status.SUCCESS,
            commit="c0ffee" if i < 6 else "beef00",
            branch="main",
            started_at=when,
            finished_at=when + timedelta(minutes=8),
            jobs=[Job(name="test", status=Status.SUCCESS, runner=f"runner-{i % 3}")],
        )
        tests = [
            TestResult(name="test_total", classname="tests.test_cart", status=TestStatus.PASSED, duration_s=0.2),
            TestResult(
                name="test_checkout",
                classname="tests.test_cart",
                status=TestStatus.FAILED if i % 4 == 1 else TestStatus.PASSED,
                message="TimeoutError: payment stub did not answer" if i % 4 == 1 else None,
                duration_s=5.0 if i % 4 == 1 else 0.4,
            ),
        ]
        store.upsert_run(info, tests)
    result = runner.invoke(app, ["flaky", "--json"])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)
    assert [t["test"] for t in ranked] == ["tests.test_cart.test_checkout"]
    assert ranked[0]["definitive"] is True and ranked[0]["failures"] == 3
    table = runner.invoke(app, ["flaky"], env={"COLUMNS": "200"})
    assert "tests.test_cart.test_checkout" in table.stdout


def test_commands_without_history_say_how_to_fill_it() -> None:
    result = runner.invoke(app, ["anomalies", "acme/none"])
    assert result.exit_code != 0
    assert "cimedic ingest" in str(result.exception)
