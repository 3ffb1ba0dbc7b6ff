"""Rolling median/MAD spikes on a real Kafka PR-build history (LRTS, MIT; tests/fixtures/anomaly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimedic.tools.anomaly.base import MEANAD_TO_SIGMA, SCALE_FLOOR, robust_center_scale
from cimedic.tools.anomaly.robust import RobustZ, robust_z

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anomaly"


def kafka() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / "lrts_kafka_runs.csv", parse_dates=["started_at"])
    return frame[frame["status"] != "cancelled"].reset_index(drop=True)


def flagged(frame: pd.DataFrame, metric: str = "duration_s") -> dict[int, float]:
    """Row position -> score of each run RobustZ flags."""
    position = {r: i for i, r in enumerate(frame["run_id"])}
    return {position[a.run_id]: a.score for a in RobustZ().detect(frame, [metric])}


def test_injected_spikes_are_found_and_nothing_else_changes() -> None:
    runs = kafka()
    clean = flagged(runs)
    durations = runs["duration_s"].to_numpy().copy()
    injected = [60, 140, 220]
    assert not set(injected) & set(clean)
    durations[injected] *= 3.0
    found = RobustZ().detect(runs.assign(duration_s=durations), ["duration_s"])
    by_row = {int(np.flatnonzero(runs["run_id"] == a.run_id)[0]): a for a in found}
    for row in injected:
        a = by_row[row]
        assert a.kind == "spike" and a.detector == "robust_z" and a.score > 3.5
        assert a.observed == durations[row]
        # The expectation is the run's usual duration, not the spike.
        assert a.expected_low <= runs["duration_s"].iloc[row] * 1.3 and a.expected_high < a.observed
    # The median baseline is not dragged by the spikes: they add no verdict of their own elsewhere.
    assert set(by_row) - set(injected) <= set(clean)
    assert len(set(by_row) - set(injected)) >= len(clean) - 1


def test_clean_noise_stays_within_the_expected_false_positive_rate() -> None:
    # 5 % multiplicative Gaussian noise around a 10-minute job. The nominal two-sided tail beyond 3.5 σ is
    # 0.05 %; with median and MAD estimated from 30 runs it is ~0.45 % (0.27–0.77 % over 40 seeds).
    rng = np.random.default_rng(11)
    n = 3000
    runs = pd.DataFrame(
        {
            "project": "p",
            "job": "j",
            "run_id": [str(i) for i in range(n)],
            "started_at": pd.date_range("2024-01-01", periods=n, freq="37min", tz="UTC"),
            "duration_s": 600.0 * np.exp(rng.normal(0.0, 0.05, n)),
        }
    )
    assert len(flagged(runs)) / n <= 0.008


def test_mad_of_zero_falls_back_and_never_divides_by_zero() -> None:
    center, scale = robust_center_scale(np.array([5.0, 5, 5, 5, 5, 5, 7, 9]))
    assert center == 5.0 and scale == pytest.approx(MEANAD_TO_SIGMA * 0.75)
    assert robust_center_scale(np.full(20, 3.0)) == (3.0, SCALE_FLOOR)
    # Queue times that are always 0 s, with a few seconds of jitter and one real 10-minute wait.
    queue = np.zeros(80)
    queue[[20, 45]] = 4.0
    queue[60] = 600.0
    runs = pd.DataFrame(
        {
            "project": "p",
            "job": "j",
            "run_id": [str(i) for i in range(80)],
            "started_at": pd.date_range("2024-01-01", periods=80, freq="h", tz="UTC"),
            "queue_s": queue,
        }
    )
    z = robust_z(np.log1p(queue))
    assert not np.isinf(z).any()
    assert flagged(runs, "queue_s").keys() == {60}


def test_verdicts_never_change_when_later_runs_arrive() -> None:
    runs = kafka()
    prefix = runs.iloc[:150]
    early = RobustZ().detect(prefix, ["duration_s"])
    later = RobustZ().detect(
        runs.assign(duration_s=runs["duration_s"] * np.r_[np.ones(150), np.full(149, 5.0)]), ["duration_s"]
    )
    assert [a for a in later if a.at <= prefix["started_at"].iloc[-1]] == early
    y = np.log1p(runs["duration_s"].to_numpy())
    changed = y.copy()
    changed[150:] = 0.0
    np.testing.assert_array_equal(robust_z(y)[:150], robust_z(changed)[:150])
