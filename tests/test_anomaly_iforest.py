"""IsolationForest over whole runs, on a real Kafka PR-build history (LRTS, MIT; tests/fixtures/anomaly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cimedic.tools.anomaly.base import Anomaly
from cimedic.tools.anomaly.iforest import CONTAMINATION, IsolationForestDetector
from cimedic.tools.anomaly.robust import RobustZ

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anomaly"


def kafka() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / "lrts_kafka_runs.csv", parse_dates=["started_at"])
    return frame[frame["status"] != "cancelled"].reset_index(drop=True)


def rows(frame: pd.DataFrame, anomalies: list[Anomaly]) -> dict[int, str]:
    position = {r: i for i, r in enumerate(frame["run_id"])}
    return {position[a.run_id]: a.metric for a in anomalies}


def test_a_run_odd_only_in_combination_is_found() -> None:
    runs = kafka()
    odd = 200
    # Usual duration, but the run failed a thousand tests and skipped none: no single count is beyond
    # what some PR build of this history has done, the combination is.
    runs.loc[odd, ["tests_failed", "tests_skipped"]] = [1000, 0]
    assert odd not in rows(runs, RobustZ().detect(runs, ["duration_s"]))
    found = rows(runs, IsolationForestDetector().detect(runs, ["duration_s"]))
    assert found.get(odd) in ("tests_failed", "tests_skipped")


def homogeneous(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "project": "p",
            "job": "j",
            "run_id": [str(i) for i in range(n)],
            "started_at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "duration_s": 900 * np.exp(rng.normal(0, 0.05, n)),
            "queue_s": 20 * np.exp(rng.normal(0, 0.3, n)),
            "tests_passed": rng.poisson(1200, n).astype(float),
        }
    )


def test_no_more_than_the_budget_on_homogeneous_runs_and_deterministic() -> None:
    runs = homogeneous(1000, 3)
    first = IsolationForestDetector().detect(runs, ["duration_s", "queue_s"])
    assert len(first) <= CONTAMINATION * len(runs)
    assert first == IsolationForestDetector().detect(runs, ["duration_s", "queue_s"])


def test_runner_resources_are_used_when_recorded_and_ignored_when_mostly_missing() -> None:
    runs = homogeneous(300, 4)
    # Peak memory around 4 GB, and one run that needed 16 GB at an ordinary duration and queue time.
    mem = 4000.0 * np.exp(np.random.default_rng(5).normal(0.0, 0.05, len(runs)))
    mem[150] = 16000.0
    with_mem = runs.assign(mem_mb=mem)
    assert rows(with_mem, IsolationForestDetector().detect(with_mem, ["duration_s"])).get(150) == "mem_mb"
    sparse = mem.copy()
    sparse[np.arange(len(runs)) % 3 != 0] = np.nan  # recorded for a third of the runs only
    sparse[150] = 16000.0
    with_sparse = runs.assign(mem_mb=sparse)
    assert "mem_mb" not in rows(runs, IsolationForestDetector().detect(with_sparse, ["duration_s"])).values()
    assert not IsolationForestDetector().suitable(with_sparse, "mem_mb")
