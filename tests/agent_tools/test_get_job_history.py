"""get_job_history over real Jenkins PR-build histories (LRTS Hive and Kafka), imported as ingest does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cimedic.models import RunInfo
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.get_job_history import MAX_LIMIT, GetJobHistory
from tests.agent_tools.history_data import LRTS, install, runs_db
from tests.conftest import EXAMPLES

# How LRTS build results are stored (cimedic.history.lrts): UNSTABLE means failed tests.
STATUS = {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "failure", "ABORTED": "cancelled"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runs_db(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def hive() -> pd.DataFrame:
    """One row per Hive build, oldest first, read straight from the CSV."""
    rows = pd.read_csv(LRTS / "hive_training.csv").drop_duplicates(["pr_name", "build_id"])
    return rows.sort_values("build_timestamp").reset_index(drop=True)


def tool(workspace_of, project: str | None = None) -> GetJobHistory:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    if project is not None:
        ws.diagnosis.run = RunInfo(platform="jenkins", id="PR-1#1", project=project)
    return GetJobHistory(workspace=ws)


def test_counts_rates_durations_and_the_newest_runs(db: Path, hive: pd.DataFrame, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    out = json.loads(tool(workspace_of).run(job="hive", limit=5))
    results = hive["build_result"].map(STATUS)
    assert out["runs"] == len(hive) == 200
    assert out["by_status"] == results.value_counts().to_dict() == {"failure": 143, "success": 54, "cancelled": 3}
    assert out["failure_rate"] == round(143 / 197, 4)
    assert out["duration_s"]["median"] == round(hive["build_duration"].median(), 1)
    assert out["duration_s"]["p90"] == round(hive["build_duration"].quantile(0.9), 1)
    assert out["queue_s"] is None  # Jenkins' CSV export has no queue times
    newest = hive.iloc[::-1].head(5)
    run_ids = [f"{pr}#{build}" for pr, build in zip(newest["pr_name"], newest["build_id"], strict=True)]
    assert [r["run_id"] for r in out["latest"]] == run_ids
    assert [r["status"] for r in out["latest"]] == results.iloc[::-1].head(5).tolist()
    assert out["latest"][0]["commit"] == newest["build_head_sha"].iloc[0][:12]
    assert out["latest"][0]["duration_s"] == newest["build_duration"].iloc[0]
    recent = results.iloc[::-1].head(5)
    assert out["recent_failure_rate"] == round((recent == "failure").sum() / (recent != "cancelled").sum(), 4)
    assert "project" not in out["latest"][0]  # one project holds this job


def test_the_runs_project_scopes_the_answer(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    kafka = json.loads(tool(workspace_of, "kafka").run(job="KAFKA"))  # a model may get the case wrong
    assert kafka["job"] == "kafka" and kafka["runs"] == 40
    assert kafka["by_status"] == {"failure": 38, "cancelled": 2} and kafka["failure_rate"] == 1.0
    other = json.loads(tool(workspace_of, "kafka").run(job="hive"))
    assert other["input"] == "get_job_history"
    assert other["error"].endswith("no runs of job 'hive' are stored for kafka; stored jobs: ['kafka']")


def test_a_large_limit_is_capped_and_the_answer_stays_whole_json(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    text = tool(workspace_of).run(job="hive", limit=10_000)
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)
    assert f"limit capped at {MAX_LIMIT}" in out["note"]
    left_out = MAX_LIMIT - len(out["latest"])
    assert left_out > 0 and f"{left_out} more runs left out to fit the answer" in out["note"]
    assert out["runs"] == 200  # the statistics still cover every stored run


def test_no_history_and_bad_arguments(workspace_of) -> None:  # type: ignore[no-untyped-def]
    t = tool(workspace_of)
    assert json.loads(t.run(job="hive")) == {
        "job": "hive",
        "runs": 0,
        "note": "no runs are stored; `cimedic ingest` fills the run history",
    }
    for bad in ({"job": ""}, {"job": "hive", "limit": 0}):
        out = json.loads(t.run(**bad))
        assert out["input"] == "get_job_history" and "validation" in out["error"], bad
