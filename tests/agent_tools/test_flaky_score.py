"""flaky_score over real isolated reruns (Lam et al.) stored as CI runs: each test's label is known from
all 4,000 of its runs, the store holds 80 (3 for the short one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.flaky_score import FlakyScore
from tests.agent_tools.history_data import BROKEN, FLAKY, RERUNS, SHORT, STEADY, install, needs_reruns, reruns_db
from tests.conftest import EXAMPLES

pytestmark = needs_reruns


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reruns_db(tmp_path_factory.mktemp("reruns"))


@pytest.fixture(scope="module")
def full_rate() -> float:
    """The flaky test's failure rate over all its 4,000 isolated runs: the truth the 80 stored ones sample."""
    df = pd.read_csv(RERUNS, usecols=["test_name", "result"])
    return float((df.loc[df["test_name"] == FLAKY, "result"] != "pass").mean())


def score(workspace_of, test: str) -> Any:  # type: ignore[no-untyped-def]
    answer = FlakyScore(workspace=workspace_of(EXAMPLES / "gha-pytest-failure.zip")).run(test=test)
    assert len(answer) <= OUTPUT_MAX_CHARS
    return json.loads(answer)


def test_a_flaky_test_is_proven_by_same_commit_passes(db: Path, full_rate: float, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    out = score(workspace_of, "Issue256Test.runReconnectScenario0")
    assert (out["test"], out["project"], out["verdict"]) == (FLAKY, "TooTallNate/Java-WebSocket", "flaky")
    assert out["definitive"] is True and out["p_flaky"] == 1.0 and out["commits_with_both"] == 1
    assert (out["runs"], out["failures"]) == (80, 15)
    low, high = out["interval_95"]
    assert low < full_rate < high and low < out["flake_rate"] < high
    assert out["kind"] == "timing"  # its failures hit a 5 s timeout; its passes take 0.1 s
    assert out["impact"]["runs_failed"] == 15 and out["impact"]["basis"] == "test_duration"
    assert len(out["evidence"]) == 3 and all(e["same_commit_passed"] for e in out["evidence"])
    assert out["flips"] > 0 and 0 < out["flip_rate"] < 1


def test_steady_and_always_failing_tests_are_not_called_flaky(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    steady = score(workspace_of, STEADY)
    assert steady["verdict"] == "likely not flaky" and steady["p_flaky"] < 0.5
    assert (steady["failures"], steady["definitive"], steady["evidence"]) == (0, False, [])
    assert "note" not in steady
    broken = score(workspace_of, BROKEN)
    assert broken["verdict"] == "likely not flaky" and broken["p_flaky"] < 0.5
    assert broken["failures"] == broken["runs"] == 80 and broken["flake_rate"] > 0.95
    assert broken["note"] == "failed in every usable execution: a persistent failure, not flakiness"


def test_too_little_history_is_a_clear_unknown(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    install(db)
    out = score(workspace_of, SHORT)
    assert out["verdict"] == "unknown" and (out["runs"], out["failures"]) == (3, 0)
    assert out["note"].startswith("too little history: 3 usable execution(s)")
    assert "p_flaky" not in out


def test_unknown_test_empty_store_and_bad_input(db: Path, workspace_of) -> None:  # type: ignore[no-untyped-def]
    empty = score(workspace_of, FLAKY)  # nothing installed yet
    assert empty["verdict"] == "unknown" and empty["note"].startswith("no test results are stored")
    install(db)
    miss = score(workspace_of, "testConnect")
    assert miss["input"] == "flaky_score" and "no stored results for test 'testConnect'" in miss["error"]
    blank = score(workspace_of, "")
    assert blank["input"] == "flaky_score" and "validation" in blank["error"]
