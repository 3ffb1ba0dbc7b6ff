"""predict_failure with a predictor trained on a real Jenkins history (LRTS Hive) and promoted in the
registry: it agrees with `cimedic predict`, and says so when there is no model or no history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.models import RunInfo
from cimedic.registry import ModelRegistry
from cimedic.store.history import HistoryStore
from cimedic.tools.agent.base import Workspace
from cimedic.tools.agent.predict_failure import NO_MODEL, PredictFailure
from cimedic.tools.predict import FailurePredictor
from tests.agent_tools.history_data import LRTS, install, runs_db
from tests.conftest import EXAMPLES

STATUS = {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "failure", "ABORTED": "cancelled"}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The run history and a predictor fitted on Hive's runs (as `cimedic train predictor hive` fits it)."""
    folder = tmp_path_factory.mktemp("predict")
    db = runs_db(folder)
    artifact = folder / "predictor.json"
    FailurePredictor().fit(HistoryStore.open(f"sqlite:///{db}").runs_frame("hive")).save(artifact)
    return db, artifact


@pytest.fixture
def promoted(stored: tuple[Path, Path]) -> str:
    settings = install(stored[0])
    return ModelRegistry(settings.models_dir).register("predictor", stored[1], promote=True).version


def on_run(ws: Workspace, run_id: str, **info: str) -> Workspace:
    ws.diagnosis.run = RunInfo(platform="jenkins", id=run_id, project="hive", name="hive", **info)
    return ws


def cli_predict(*args: str) -> Any:
    result = CliRunner().invoke(app, ["predict", *args, "--project", "hive", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_run_under_investigation_agrees_with_the_cli(promoted: str, workspace_of) -> None:  # type: ignore[no-untyped-def]
    builds = pd.read_csv(LRTS / "hive_training.csv").sort_values("build_timestamp")
    last = builds.iloc[-1]
    run_id = f"{last['pr_name']}#{last['build_id']}"
    ws = on_run(workspace_of(EXAMPLES / "gha-timeout.log"), run_id)
    out = json.loads(PredictFailure(workspace=ws).run())
    cli = cli_predict(run_id)
    assert out["subject"] == cli["subject"] == f"run {run_id}"
    assert out["probability"] == pytest.approx(cli["probability"], abs=6e-4)
    assert out["threshold"] == pytest.approx(cli["threshold"], abs=6e-4)
    assert out["model"] == cli["model"] == f"predictor {promoted}"
    assert [r["feature"] for r in out["reasons"]] == [r["feature"] for r in cli["reasons"]]
    assert len(out["reasons"]) == 5 and all(r["why"] for r in out["reasons"])
    assert out["verdict"] == ("likely to fail" if out["probability"] >= out["threshold"] else "likely to pass")
    assert out["actual_status"] == STATUS[last["build_result"]]


def test_a_run_named_by_id_and_an_unknown_one(promoted: str, workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = PredictFailure(workspace=on_run(workspace_of(EXAMPLES / "gha-timeout.log"), "PR-4014#1"))
    first = json.loads(tool.run(run="PR-4014#1"))
    assert first["subject"] == "run PR-4014#1" and first["actual_status"] == "failure"  # UNSTABLE in the CSV
    assert first["probability"] == pytest.approx(cli_predict("PR-4014#1")["probability"], abs=6e-4)
    missing = json.loads(tool.run(run="PR-1#1"))
    assert missing["input"] == "predict_failure"
    assert "no run 'PR-1#1' in the history of hive; the newest are ['PR-4032#20'" in missing["error"]


def test_a_run_not_stored_is_predicted_as_its_jobs_next_run(promoted: str, workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = on_run(workspace_of(EXAMPLES / "gha-timeout.log"), "PR-4032#21", pull_request="PR-4032", branch="master")
    out = json.loads(PredictFailure(workspace=ws).run())
    assert out["subject"] == "next run of job 'hive' (run PR-4032#21, not stored yet)"
    assert 0.0 <= out["probability"] <= 1.0 and out["reasons"] and "actual_status" not in out


def test_no_model_no_history_or_no_project_are_answers_saying_so(stored: tuple[Path, Path], workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = on_run(workspace_of(EXAMPLES / "gha-timeout.log"), "PR-4014#1")
    assert json.loads(PredictFailure(workspace=ws).run()) == {
        "probability": None,
        "note": "no run history for hive, so there is nothing to predict from; `cimedic ingest` fills it",
    }
    install(stored[0])
    ws = on_run(workspace_of(EXAMPLES / "gha-timeout.log"), "PR-4014#1")
    assert json.loads(PredictFailure(workspace=ws).run()) == {"probability": None, "note": NO_MODEL}
    local = json.loads(PredictFailure(workspace=workspace_of(EXAMPLES / "gha-timeout.log")).run())
    assert local["probability"] is None
    assert local["note"] == "this run names no project and the history holds several: ['hive', 'kafka']"
    blank = json.loads(PredictFailure(workspace=ws).run(run=""))
    assert blank["input"] == "predict_failure" and "validation" in blank["error"]
