"""Pre-run features on real LRTS builds (tests/fixtures/lrts, MIT): correct, and blind to the future."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimedic.tools.predict.features import ALL_FEATURES, FEATURES, FeatureConfig, build_features
from cimedic.tools.predict.lrts import lrts_frame

LRTS = Path(__file__).resolve().parent / "fixtures" / "lrts"
OUTCOME = {"failure": 1.0, "success": 0.0}


@pytest.fixture(scope="module")
def hive() -> pd.DataFrame:
    return lrts_frame(LRTS / "hive_training.csv")


@pytest.fixture(scope="module")
def log4j() -> pd.DataFrame:
    return lrts_frame([LRTS / "log4j_training.csv", LRTS / "log4j_testing.csv"])


def _alter_future(runs: pd.DataFrame, i: int) -> pd.DataFrame:
    """Every run whose result was unknown when run ``i`` started (run ``i`` too) gets another result.

    Other runs also get another commit; run ``i`` keeps its own (known before it starts).
    """
    out = runs.copy()
    t = runs["started_at"].iloc[i]
    unknown = ~(out["finished_at"] < t)
    flip = {"success": "failure", "failure": "success", "cancelled": "failure"}
    out.loc[unknown, "status"] = out.loc[unknown, "status"].map(flip).fillna("failure")
    out.loc[unknown, "tests_failed"] = out.loc[unknown, "tests_failed"] + 7
    out.loc[unknown & (np.arange(len(out)) != i), "commit"] = "0" * 40
    later = out["started_at"] > t  # these may also take any duration: they cannot finish before t
    out.loc[later, "duration_s"] = 1.0
    out.loc[later, "finished_at"] = out.loc[later, "started_at"] + pd.Timedelta(seconds=1)
    return out


@pytest.mark.parametrize("name", ["hive", "log4j"])
def test_no_feature_of_a_run_sees_results_that_were_unknown_when_it_started(
    name: str, request: pytest.FixtureRequest
) -> None:
    runs: pd.DataFrame = request.getfixturevalue(name)
    base = build_features(runs)
    for i in range(5, len(runs), max(1, len(runs) // 12)):
        altered = build_features(_alter_future(runs, i))
        pd.testing.assert_series_equal(altered.iloc[i], base.iloc[i], check_names=False)
    # The alteration is real: later runs' features do change.
    assert not build_features(_alter_future(runs, 5)).equals(base)


def test_a_run_still_going_at_t_is_not_history_yet(hive: pd.DataFrame) -> None:
    # Find a run i that started while an earlier run was still going; that earlier run's result
    # must not reach run i's features, while it must reach a run that starts after it finished.
    starts, finishes = hive["started_at"], hive["finished_at"]
    pairs = [(j, i) for i in range(1, len(hive)) for j in range(i) if finishes.iloc[j] > starts.iloc[i]]
    assert pairs, "the fixture has overlapping builds"
    j, i = pairs[len(pairs) // 2]
    flipped = hive.copy()
    flipped.loc[j, "status"] = "success" if hive.loc[j, "status"] == "failure" else "failure"
    before, after = build_features(hive), build_features(flipped)
    pd.testing.assert_series_equal(before.iloc[i], after.iloc[i])
    later = int(np.argmax(starts > finishes.iloc[j]))
    assert not before.iloc[later:].equals(after.iloc[later:])


def _reference(runs: pd.DataFrame, i: int, cfg: FeatureConfig) -> dict[str, float]:
    """Naive per-run computation of some features, straight from their definitions."""
    run = runs.iloc[i]
    t = run["started_at"]
    y = runs["status"].map(OUTCOME)
    done = runs[(runs["finished_at"] < t) & y.notna() & (runs["project"] == run["project"])]
    done = done.assign(y=y[done.index]).sort_values("finished_at", kind="stable")
    window = done[done["finished_at"] >= t - pd.Timedelta(days=cfg.window_days)]
    pr = done[done["pull_request"] == run["pull_request"]]
    finished_pr = runs[(runs["finished_at"] < t) & (runs["pull_request"] == run["pull_request"])]
    other = window[window["pull_request"] != run["pull_request"]]
    other_branch = other[other["branch"] == run["branch"]]
    fails = done.index[done["y"] == 1]
    nan = float("nan")
    prev_tf = float(pr["tests_failed"].iloc[-1]) if len(pr) else nan
    seen = other[(other["tests_failed"] == prev_tf) & (other["tests_failed"] > 0)] if prev_tf > 0 else None
    return {
        "job_fail_rate_last_n": done["y"].tail(cfg.last_n).mean() if len(done) else nan,
        "job_fail_rate_last_d": window["y"].mean() if len(window) else nan,
        "job_last_failed": done["y"].iloc[-1] if len(done) else nan,
        "job_runs_since_failure": math.log1p(len(done) - 1 - list(done.index).index(fails[-1])) if len(fails) else nan,
        "pr_builds_before": math.log1p(len(finished_pr)),
        "pr_prev_failed": pr["y"].iloc[-1] if len(pr) else nan,
        "prev_failed": pr["y"].iloc[-1] if len(pr) else (done["y"].iloc[-1] if len(done) else nan),
        "pr_prev_tests_failed": math.log1p(prev_tf) if len(pr) else nan,
        "pr_fail_rate": pr["y"].mean() if len(pr) else nan,
        "branch_other_fail_rate_last_d": other_branch["y"].mean() if len(other_branch) else nan,
        "ambient_test_fail_share_d": (other["tests_failed"] > 0).mean() if len(other) else nan,
        "pr_prev_failure_seen_elsewhere": math.log1p(len(seen)) if seen is not None else nan,
    }


@pytest.mark.parametrize("name", ["hive", "log4j"])
def test_features_match_their_definitions(name: str, request: pytest.FixtureRequest) -> None:
    runs: pd.DataFrame = request.getfixturevalue(name)
    cfg = FeatureConfig()
    feats = build_features(runs, cfg)
    for i in range(0, len(runs), 3):
        for feature, want in _reference(runs, i, cfg).items():
            got = feats[feature].iloc[i]
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), (i, feature, got, want)


def test_projects_do_not_see_each_other_and_row_order_does_not_matter(hive: pd.DataFrame, log4j: pd.DataFrame) -> None:
    together = pd.concat([hive, log4j], ignore_index=True).sample(frac=1.0, random_state=0)
    mixed = build_features(together)
    for alone in (hive, log4j):
        own = build_features(alone).set_axis(alone["run_id"].to_numpy())
        got = mixed[together["project"] == alone["project"].iloc[0]]
        got = got.set_axis(together.loc[got.index, "run_id"].to_numpy()).loc[own.index]
        pd.testing.assert_frame_equal(got, own)
    assert list(mixed.index) == list(together.index)


def test_every_feature_is_documented_and_optional_ones_need_their_data(hive: pd.DataFrame) -> None:
    feats = build_features(hive)
    assert list(feats.columns) == list(FEATURES)
    assert all(ALL_FEATURES[c] for c in feats.columns)
    changed = hive.assign(files_changed=np.where(np.arange(len(hive)) % 2, 3.0, np.nan), author="a")
    extra = build_features(changed)
    assert set(extra.columns) - set(feats.columns) == {"change_files_changed", "author_fail_rate", "author_runs_before"}
    assert extra["change_files_changed"].iloc[1] == pytest.approx(math.log1p(3.0))
    assert math.isnan(extra["change_files_changed"].iloc[0])


def test_time_features_follow_the_utc_start(hive: pd.DataFrame) -> None:
    feats = build_features(hive)
    hours = np.arctan2(feats["hour_sin"], feats["hour_cos"]) % (2 * np.pi) * 24 / (2 * np.pi)
    start = hive["started_at"]
    np.testing.assert_allclose(hours, start.dt.hour + start.dt.minute / 60, atol=1e-9)


class _RecordingRates:
    """A per-test flake-rate source that records what it was asked (the hook's contract)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime]] = []

    def rate(self, test_id: str, before: datetime) -> float | None:
        self.asked.append((test_id, before))
        return {"TestA": 0.5, "TestB": 0.1}.get(test_id)


def test_flake_hook_is_asked_as_of_the_run_start(log4j: pd.DataFrame) -> None:
    failed = [["TestA", "TestB", "TestC"] if s == "failure" else [] for s in log4j["status"]]
    runs = log4j.assign(failed_tests=failed)
    rates = _RecordingRates()
    feats = build_features(runs, flake_rates=rates)
    i = int(np.flatnonzero(feats["pr_prev_failed"].to_numpy() == 1)[0])
    assert feats["pr_prev_flaky_share"].iloc[i] == pytest.approx(0.3)
    starts = {ts.to_pydatetime() for ts in runs["started_at"]}
    assert rates.asked and all(before in starts for _, before in rates.asked)
    assert "pr_prev_flaky_share" not in build_features(runs).columns


def test_history_store_frames_fit_the_contract(hive: pd.DataFrame) -> None:
    """Re-run attempts share a run id; a queued run has no start; ``actor`` names who triggered it."""
    again = hive["finished_at"].iloc[10] + pd.Timedelta(minutes=5)
    rerun = hive.iloc[[10]].assign(attempt=2, started_at=again, finished_at=again + pd.Timedelta(hours=1))
    queued = hive.iloc[[11]].assign(attempt=1, run_id="queued", started_at=pd.NaT, finished_at=pd.NaT)
    store = pd.concat([hive.assign(attempt=1), rerun, queued]).rename(columns={"author": "actor"})
    store["actor"] = "someone"
    feats = build_features(store)
    assert list(feats.index) == list(store.index) and feats.iloc[-1].isna().all()
    assert feats.iloc[-2]["pr_builds_before"] > feats.iloc[10]["pr_builds_before"]  # it sees attempt 1
    assert "author_fail_rate" in feats.columns
    # Until the re-run's result is known, every other run's features are what they were without it.
    before = (hive["started_at"] <= rerun["finished_at"].iloc[0]).to_numpy()
    alone = build_features(hive)
    pd.testing.assert_frame_equal(feats.iloc[: len(hive)][list(FEATURES)][before], alone[before])
