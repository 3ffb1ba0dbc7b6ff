"""get_test_history over real isolated reruns (Lam et al.) stored as CI runs with their test results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cimedic.models import RunInfo
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.get_test_history import MAX_FAILURES, MAX_LIMIT, GetTestHistory
from tests.agent_tools.history_data import FLAKY, STEADY, install, needs_reruns, reruns, reruns_db
from tests.conftest import EXAMPLES

pytestmark = needs_reruns
LETTER = {"pass": "P", "failure": "F", "error": "E"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reruns_db(tmp_path_factory.mktemp("reruns"))


@pytest.fixture(scope="module")
def flaky() -> pd.DataFrame:
    """The stored executions of the flaky test, in the order they were stored, read from the data set."""
    rows = reruns()
    return rows[rows["test_name"] == FLAKY].reset_index(drop=True)


def tool(workspace_of, project: str | None = None) -> GetTestHistory:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-pytest-failure.zip")
    if project is not None:
        ws.diagnosis.run = RunInfo(platform="generic", id="1", project=project)
    return GetTestHistory(workspace=ws)


def test_counts_outcomes_and_latest_failures(db: Path, flaky: pd.DataFrame, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    out = json.loads(tool(workspace_of).run(test=FLAKY, limit=30))
    failing = flaky[flaky["result"] != "pass"]
    assert (out["test"], out["projects"]) == (FLAKY, ["TooTallNate/Java-WebSocket"])
    assert (out["executions"], out["passed"], out["failed"], out["skipped"]) == (80, 80 - len(failing), len(failing), 0)
    assert len(failing) == 15 and out["failure_rate"] == round(15 / 80, 4)
    assert out["recent"] == "".join(LETTER[r] for r in flaky["result"].tail(30))
    newest = failing.iloc[::-1].head(MAX_FAILURES)
    assert [f["run_id"] for f in out["last_failures"]] == [
        f"{m}#{n}" for m, n in zip(newest["machine_id"], newest["run_num"], strict=True)
    ]
    assert {f["commit"] for f in out["last_failures"]} == {flaky["sha"].iloc[0][:12]}
    assert {f["status"] for f in out["last_failures"]} == {"error"}  # the data set records these as errors
    assert out["duration_s"]["median"] == pytest.approx(flaky["time_s"].median(), abs=1e-3)
    # It fails at its 5 s timeout, far slower than it passes: the durations show it.
    assert out["duration_s"]["median_failed"] == pytest.approx(failing["time_s"].median(), abs=1e-3)
    assert out["duration_s"]["median_failed"] > 4.5 > out["duration_s"]["median"]


def test_the_end_of_a_name_finds_the_test(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    t = tool(workspace_of)
    for given in ("Issue256Test.runReconnectScenario0", "runReconnectScenario0"):
        assert json.loads(t.run(test=given, limit=1))["test"] == FLAKY
    steady = json.loads(t.run(test="Issue580Test.runNoCloseBlockingTestScenario3"))
    assert steady["test"] == STEADY and steady["failed"] == 0 and steady["last_failures"] == []
    miss = json.loads(t.run(test="Scenario0"))  # not a whole name segment
    assert miss["input"] == "get_test_history"
    assert miss["error"].endswith(f"no stored results for test 'Scenario0'; names containing 'scenario0': {[FLAKY]}")


def test_the_runs_project_scopes_the_lookup(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    mine = json.loads(tool(workspace_of, "TooTallNate/Java-WebSocket").run(test=FLAKY))
    assert mine["executions"] == 80
    elsewhere = json.loads(tool(workspace_of, "alibaba/fastjson").run(test=FLAKY))
    assert f"no stored results for test {FLAKY!r} in alibaba/fastjson" in elsewhere["error"]
    unknown = json.loads(tool(workspace_of, "acme/none").run(test=FLAKY))
    assert unknown == {
        "test": FLAKY,
        "executions": 0,
        "note": "no test results are stored for acme/none; `cimedic ingest` stores them with each run's test reports",
    }


def test_a_large_limit_is_capped_and_bad_arguments_are_errors(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    t = tool(workspace_of)
    text = t.run(test=FLAKY, limit=5000)
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)
    assert len(out["recent"]) == MAX_LIMIT and out["note"] == f"limit capped at {MAX_LIMIT}"
    for bad in ({"test": ""}, {"test": FLAKY, "limit": 0}, {"test": "x" * 501}):
        answer = json.loads(t.run(**bad))
        assert answer["input"] == "get_test_history" and "validation" in answer["error"], bad
