"""Robust CUSUM level shifts on a real Kafka PR-build history (LRTS, MIT; tests/fixtures/anomaly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimedic.tools.anomaly.level_shift import CONFIRM_RUNS, CusumShift, cusum_shifts, lag1_correlation

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anomaly"


def kafka() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / "lrts_kafka_runs.csv", parse_dates=["started_at"])
    return frame[frame["status"] != "cancelled"].reset_index(drop=True)


def shifts(frame: pd.DataFrame) -> list[tuple[int, float]]:
    """(row of the onset, observed/expected) of each level shift found in ``duration_s``."""
    position = {r: i for i, r in enumerate(frame["run_id"])}
    return [(position[a.run_id], a.observed / a.expected) for a in CusumShift().detect(frame, ["duration_s"])]


def scaled(frame: pd.DataFrame, start: int, factor: float, end: int | None = None) -> pd.DataFrame:
    durations = frame["duration_s"].to_numpy().copy()
    durations[start:end] *= factor
    return frame.assign(duration_s=durations)


def test_a_slowdown_is_found_at_its_onset() -> None:
    runs = kafka()
    # The real history creeps up by ~15 % from run 217 on (2021-04-02 to June); nothing happens near 150.
    assert [onset for onset, _ in shifts(runs)] == [217]
    found = [(onset, ratio) for onset, ratio in shifts(scaled(runs, 150, 1.4)) if onset < 200]
    assert len(found) == 1
    onset, ratio = found[0]
    assert 148 <= onset <= 155
    assert ratio == pytest.approx(1.4, abs=0.15)


@pytest.mark.parametrize(("start", "factor"), [(120, 0.7), (90, 1.5), (200, 1.45)])
def test_shifts_either_way_are_found_near_onset(start: int, factor: float) -> None:
    found = shifts(scaled(kafka(), start, factor))
    assert any(start - 2 <= onset <= start + 5 and (ratio > 1) == (factor > 1) for onset, ratio in found)


def test_spikes_and_a_burst_that_fades_are_not_shifts() -> None:
    runs = kafka()
    durations = runs["duration_s"].to_numpy().copy()
    durations[[60, 100]] *= 4.0
    durations[150:153] *= 2.0
    assert all(not 50 <= onset <= 175 for onset, _ in shifts(runs.assign(duration_s=durations)))


def test_iid_noise_gives_no_shift() -> None:
    # Over seeds, about one false shift per 7,500 runs of Gaussian noise: ~300 alarms per 30,000 runs,
    # each confirmed with the ~1 % chance of the 2.58-standard-error test.
    y = np.random.default_rng(5).normal(6.0, 0.1, 3000)
    assert cusum_shifts(y) == []
    assert lag1_correlation(y) < 0.1


def test_a_decided_shift_never_changes_when_later_runs_arrive() -> None:
    runs = scaled(kafka(), 100, 1.5)
    y = np.log1p(runs["duration_s"].to_numpy())
    early = cusum_shifts(y[:160])
    assert [s.onset for s in early] and all(s.decided < 160 for s in early)
    later = y.copy()
    later[160:] += 1.0  # whatever happens next
    assert cusum_shifts(later)[: len(early)] == early


def test_a_shift_is_decided_only_once_enough_runs_confirm_it() -> None:
    y = np.log1p(scaled(kafka(), 150, 1.5)["duration_s"].to_numpy())
    complete = [s for s in cusum_shifts(y) if 148 <= s.onset <= 155]
    assert complete and complete[0].decided >= complete[0].onset + CONFIRM_RUNS
    assert all(s.onset < 140 for s in cusum_shifts(y[: complete[0].decided]))
