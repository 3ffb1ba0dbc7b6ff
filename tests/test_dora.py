"""DORA's four keys from run history: deployments found by the deploy pattern, bands from the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from cimedic.tools.delivery.dora import DEPLOY_COLUMNS, deployments_from_runs, dora, load_policy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run(run_id: str, job: str, status: str, commit: str, start: datetime, minutes: float, **extra: object) -> dict:
    row = {
        "project": "acme/shop",
        "run_id": run_id,
        "attempt": 1,
        "job": job,
        "status": status,
        "branch": "main",
        "pull_request": None,
        "commit": commit,
        "started_at": start,
        "finished_at": start + timedelta(minutes=minutes),
    }
    row.update(extra)
    return row


@pytest.fixture
def history() -> pd.DataFrame:
    day = timedelta(days=1)
    rows = [
        # commit a: CI on a PR two days before the deploy, then CI and deploy on main.
        run("1", "ci", "success", "a", NOW - 12 * day, 10, branch="feature", pull_request="7"),
        run("2", "ci", "success", "a", NOW - 10 * day, 10),
        run("3", "Deploy to production", "success", "a", NOW - 10 * day + timedelta(hours=1), 5),
        # commit b: deploy fails, restored 3 hours later by commit c.
        run("4", "ci", "success", "b", NOW - 5 * day, 10),
        run("5", "deploy", "failure", "b", NOW - 5 * day + timedelta(hours=1), 5),
        run("6", "ci", "success", "c", NOW - 5 * day + timedelta(hours=2), 10),
        run("7", "deploy", "success", "c", NOW - 5 * day + timedelta(hours=4), 5),
        # a deploy job on a PR branch is not a production deployment.
        run("8", "deploy", "success", "d", NOW - 2 * day, 5, branch="feature", pull_request="9"),
        # outside the 30-day window.
        run("9", "deploy", "success", "z", NOW - 60 * day, 5),
    ]
    return pd.DataFrame(rows)


def test_deployments_are_deploy_named_runs_on_production_branches(history: pd.DataFrame) -> None:
    deps = deployments_from_runs(history, load_policy().deployments)
    assert list(deps.columns) == DEPLOY_COLUMNS
    assert sorted(deps["run_id"]) == ["3", "5", "7", "9"]


def test_four_keys_over_the_window(history: pd.DataFrame) -> None:
    report = dora(history, now=NOW, days=30)
    assert report.deployments == 3
    assert report.source == "runs matching the deploy pattern"
    assert report.deployment_frequency.value == pytest.approx(3 / 30, abs=1e-4)
    assert report.deployment_frequency.band == "medium"
    # a: first CI 12 days before (the PR run) -> 12 days - 1 h + 5 min; c: 2 h 5 min - 2 h + ... median of two.
    lead_a = (timedelta(days=2) + timedelta(hours=1, minutes=5)).total_seconds() / 3600
    lead_c = timedelta(hours=2, minutes=5).total_seconds() / 3600
    assert report.lead_time.value == pytest.approx((lead_a + lead_c) / 2, abs=0.01)
    assert report.lead_time.basis == 2
    assert report.change_failure_rate.value == pytest.approx(1 / 3, abs=1e-4)
    assert report.change_failure_rate.band == "low"
    assert report.time_to_restore.value == pytest.approx(3.0, abs=0.01)
    assert report.time_to_restore.band == "high"


def test_store_deployments_win_and_are_filtered_by_environment(history: pd.DataFrame) -> None:
    deployments = pd.DataFrame(
        [
            {"project": "acme/shop", "environment": "production", "commit": "a", "status": "success",
             "started_at": NOW - timedelta(days=1, minutes=5), "finished_at": NOW - timedelta(days=1), "run_id": None},
            {"project": "acme/shop", "environment": "staging", "commit": "b", "status": "failure",
             "started_at": NOW - timedelta(hours=5), "finished_at": NOW - timedelta(hours=4), "run_id": None},
        ]
    )  # fmt: skip
    report = dora(history, deployments, now=NOW)
    assert (report.source, report.deployments) == ("store deployments", 1)
    assert report.change_failure_rate.value == 0.0
    assert report.change_failure_rate.band == "elite"


def test_no_deployments_says_so_rather_than_inventing_figures() -> None:
    empty = pd.DataFrame(columns=["project", "run_id", "job", "status", "branch", "pull_request", "commit",
                                  "started_at", "finished_at"])  # fmt: skip
    report = dora(empty, now=NOW)
    assert report.deployments == 0
    assert report.lead_time.value is None and report.lead_time.band is None
    assert report.change_failure_rate.value is None
    assert report.deployment_frequency.band is None
