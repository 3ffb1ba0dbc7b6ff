"""rank_flaky on real rerun histories: excerpts of Lam et al.'s 4,000 isolated runs per test.

Data: ../shared/data/flaky-reruns (Lam, Winter, Stodden et al., ISSRE 2020; repository
TestingResearchIllinois/rerunning-no-tests). It has no license file, so it is read in place and
never copied here; the tests skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cimedic.tools.flaky import FlakyTest, naive_flaky, rank_flaky

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flaky-reruns" / "isolation_per_run.csv.gz"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"flaky-reruns data not found at {DATA}")

ALWAYS_FAILS = "com.alibaba.json.bvt.issue_1200.Issue1298.test_for_issue"
STABLE = "org.apache.dubbo.remoting.exchange.support.header.HeartbeatHandlerTest.testHeartbeat"
SIM = "com.espertech.esper.example.rfidassetzone.TestLRMovingSimMain.testSim"  # errors in 146 of 4,000
TIMEOUT = "org.java_websocket.issues.Issue256Test.runReconnectScenario0"  # fails at its 5 s timeout
MACHINE = "uk.co.flax.luwak.matchers.TestPartitionMatcher.testParallelSlowLog"  # 9% to 100% by VM
TESTS = (ALWAYS_FAILS, STABLE, SIM, TIMEOUT, MACHINE)
STATUS = {"pass": "passed", "failure": "failed", "error": "error"}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = pd.read_csv(DATA)
    return df[df["test_name"].isin(TESTS)].sort_values(["test_name", "machine_id", "run_num"])


def frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Each isolated run is its own CI run of the test's one commit, on its VM."""
    rows = rows.reset_index(drop=True)
    return pd.DataFrame(
        {
            "project": rows["slug"],
            "run_id": rows["machine_id"] + "/" + rows["run_num"].astype(str),
            "attempt": 1,
            "job": "isolation",
            "commit": rows["sha"],
            "test": rows["test_name"],
            "status": rows["result"].map(STATUS),
            "duration_s": rows["time_s"],
            "runner": rows["machine_id"],
            "finished_at": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rows.index.to_numpy(), unit="s"),
            "message": None,
        }
    )


def excerpt(runs: pd.DataFrame, per_machine: int) -> pd.DataFrame:
    """The first ``per_machine`` runs on each of the 40 VMs of every test (the whole excerpt counts)."""
    return frame(runs.groupby(["test_name", "machine_id"], group_keys=False).head(per_machine))


@pytest.fixture(scope="module")
def ranked(runs: pd.DataFrame) -> dict[str, FlakyTest]:
    return {t.test: t for t in rank_flaky(excerpt(runs, 10), min_score=0.0, window=None)}


def test_flaky_tests_are_found_and_steady_ones_are_not(ranked: dict[str, FlakyTest]) -> None:
    for name in (SIM, TIMEOUT, MACHINE):
        assert ranked[name].definitive and ranked[name].score == 1.0, name
    for name in (ALWAYS_FAILS, STABLE):
        assert not ranked[name].definitive and ranked[name].score < 0.5, name
    assert ranked[ALWAYS_FAILS].failures == ranked[ALWAYS_FAILS].runs == 400
    assert list(ranked)[:3] == sorted(list(ranked)[:3], key=lambda t: -ranked[t].impact.ci_minutes_wasted)


def test_the_mechanism_is_named(ranked: dict[str, FlakyTest]) -> None:
    assert ranked[TIMEOUT].signals.kind == "timing"
    slow = ranked[TIMEOUT].signals.failure_duration_z
    assert slow is not None and slow > 3
    assert ranked[MACHINE].signals.kind == "machine"
    top = ranked[MACHINE].signals.failing_runners[0]
    assert top.failures == top.runs == 10
    # Its failures are fast (an assertion, not a wait): that is not a timing flake.
    fast = ranked[MACHINE].signals.failure_duration_z
    assert fast is not None and fast < -3


def test_interval_covers_the_full_history_rate_and_narrows(runs: pd.DataFrame, ranked: dict[str, FlakyTest]) -> None:
    full_rate = 146 / 4000
    short = ranked[SIM]
    long = next(t for t in rank_flaky(excerpt(runs, 50), window=None) if t.test == SIM)
    for t in (short, long):
        assert t.interval[0] < full_rate < t.interval[1]
    assert long.runs == 2000 and short.runs == 400
    # The default window keeps the most recent 500 executions only.
    assert next(t for t in rank_flaky(excerpt(runs, 50)) if t.test == SIM).runs == 500
    assert long.interval[1] - long.interval[0] < (short.interval[1] - short.interval[0]) / 2


def test_impact_is_the_time_spent_in_failing_runs(runs: pd.DataFrame, ranked: dict[str, FlakyTest]) -> None:
    rows = runs.groupby(["test_name", "machine_id"], group_keys=False).head(10)
    failing = rows[(rows["test_name"] == TIMEOUT) & (rows["result"] != "pass")]
    t = ranked[TIMEOUT]
    assert t.impact.runs_failed == len(failing) == t.failures
    assert t.impact.minutes_basis == "test_duration"
    assert t.impact.ci_minutes_wasted == pytest.approx(failing["time_s"].sum() / 60, abs=1e-3)


def test_naive_rule_agrees_on_definitive_cases(runs: pd.DataFrame) -> None:
    assert {t.test for t in naive_flaky(excerpt(runs, 10))} == {SIM, TIMEOUT, MACHINE}
