"""FailurePredictor on real LRTS builds (tests/fixtures/lrts, MIT): time order, calibration, explanations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimedic.errors import InputError
from cimedic.tools.predict.features import ALL_FEATURES, build_features
from cimedic.tools.predict.lrts import lrts_frame
from cimedic.tools.predict.model import CANDIDATES, FailurePredictor, PreviousResult
from cimedic.tools.predict.runs import cut_at_share, planned_run, time_split
from cimedic.tools.predict.scorers import LinearScorer

LRTS = Path(__file__).resolve().parent / "fixtures" / "lrts"


@pytest.fixture(scope="module")
def hive() -> pd.DataFrame:
    return lrts_frame(LRTS / "hive_training.csv")


@pytest.fixture(scope="module")
def cut(hive: pd.DataFrame) -> pd.Timestamp:
    return cut_at_share(hive, 0.3)


@pytest.fixture(scope="module")
def fitted(hive: pd.DataFrame, cut: pd.Timestamp) -> FailurePredictor:
    return FailurePredictor().fit(hive, until=cut)


@pytest.fixture(scope="module")
def gbm(hive: pd.DataFrame, cut: pd.Timestamp) -> FailurePredictor:
    return FailurePredictor(candidates=("gbm_small",)).fit(hive, until=cut)


def _outcomes(runs: pd.DataFrame) -> np.ndarray:
    return np.asarray(runs["status"].map({"failure": 1.0, "success": 0.0}).to_numpy(dtype=float))


def test_time_split_learns_only_what_was_known_at_the_cut(hive: pd.DataFrame, cut: pd.Timestamp) -> None:
    learn, score = time_split(hive, cut)
    assert learn.any() and score.any()
    assert hive.loc[learn, "finished_at"].max() < cut <= hive.loc[score, "started_at"].min()
    assert (score.sum() / len(hive)) == pytest.approx(0.3, abs=1 / len(hive))
    in_flight = (hive["started_at"] < cut) & (hive["finished_at"] >= cut)
    assert not (learn & in_flight).any() and not (score & in_flight).any()


def test_fit_never_reads_a_result_from_after_the_cut(hive: pd.DataFrame, cut: pd.Timestamp) -> None:
    altered = hive.copy()
    unknown = ~(altered["finished_at"] < cut)  # runs in flight at the cut and all later ones
    altered.loc[unknown, "status"] = altered.loc[unknown, "status"].map({"success": "failure"}).fillna("success")
    altered.loc[unknown, "tests_failed"] += 5
    a = FailurePredictor().fit(hive, until=cut)
    b = FailurePredictor().fit(altered, until=cut)
    assert a.metrics == b.metrics and a.features == b.features
    learn, _ = time_split(hive, cut)
    np.testing.assert_array_equal(a.predict(hive)[learn.to_numpy()], b.predict(altered)[learn.to_numpy()])


def test_the_model_is_chosen_by_validation_inside_the_window(fitted: FailurePredictor) -> None:
    scores = fitted.metrics["validation_auc"]
    assert set(scores) == set(CANDIDATES)
    assert fitted.metrics["chosen"] == max(scores, key=lambda k: scores[k] if scores[k] is not None else -1)
    assert fitted.metrics["calibrated_on"] == "later slices"
    assert fitted.window["last_finish"] < str(fitted.window["until"])


def test_probabilities_are_calibrated_to_the_base_rate(
    fitted: FailurePredictor, hive: pd.DataFrame, cut: pd.Timestamp
) -> None:
    p = fitted.predict(hive)
    assert p.shape == (len(hive),) and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    learn, _ = time_split(hive, cut)
    y = _outcomes(hive)[learn.to_numpy()]
    # Platt scaling on later slices: the mean forecast lands near the observed failure rate.
    assert p[learn.to_numpy()].mean() == pytest.approx(y.mean(), abs=0.05)
    assert 0 < fitted.threshold < 1


def test_predictions_follow_the_input_order(fitted: FailurePredictor, hive: pd.DataFrame) -> None:
    shuffled = hive.sample(frac=1.0, random_state=1)
    p = pd.Series(fitted.predict(hive), index=hive["run_id"].to_numpy())
    q = pd.Series(fitted.predict(shuffled), index=shuffled["run_id"].to_numpy())
    pd.testing.assert_series_equal(q.loc[p.index], p)


def test_logistic_explanations_add_up_to_the_score(hive: pd.DataFrame, cut: pd.Timestamp) -> None:
    model = FailurePredictor(candidates=("logistic_c0.1",)).fit(hive, until=cut)
    assert isinstance(model.scorer, LinearScorer)
    feats = model.features_of(hive)
    row = feats.iloc[-1]
    every = model.explain(row, top=len(model.features))
    assert {c.feature for c in every} == set(model.features) and all(c.unit == "log-odds" for c in every)
    raw = sum(c.effect for c in every) + model.scorer.intercept
    assert model.calibrator(np.array([raw]))[0] == pytest.approx(model.predict_features(feats.iloc[[-1]])[0])
    top = model.explain(row, top=3)
    assert [abs(c.effect) for c in top] == sorted((abs(c.effect) for c in top), reverse=True)
    assert all(c.description == ALL_FEATURES[c.feature] for c in top)


def test_gbm_explanations_name_features_and_measure_them_in_probability(
    gbm: FailurePredictor, hive: pd.DataFrame
) -> None:
    assert gbm.metrics["chosen"] == "gbm_small"
    feats = gbm.features_of(hive)
    top = gbm.explain(feats.iloc[-1], top=4)
    assert len(top) == 4 and all(c.unit == "probability" and c.feature in gbm.features for c in top)
    assert all(-1 <= c.effect <= 1 for c in top) and abs(top[0].effect) > 0
    assert math.isclose(top[0].value, feats[top[0].feature].iloc[-1], rel_tol=0, abs_tol=0) or math.isnan(top[0].value)


def test_previous_result_baseline(hive: pd.DataFrame) -> None:
    base = PreviousResult().predict(hive)
    feats = build_features(hive)
    want = feats["pr_prev_failed"].fillna(feats["job_last_failed"]).fillna(0.5).to_numpy()
    np.testing.assert_array_equal(base, want)
    assert set(np.unique(base)) <= {0.0, 0.5, 1.0}
    assert PreviousResult().explain(feats.iloc[-1])[0].feature in ("pr_prev_failed", "job_last_failed")


def test_a_planned_build_of_a_pull_request_gets_a_probability(fitted: FailurePredictor, hive: pd.DataFrame) -> None:
    pr = hive["pull_request"].iloc[-1]
    at = hive["finished_at"].max() + pd.Timedelta(hours=1)
    frame = planned_run(hive, project="hive", job="hive", pull_request=pr, at=at)
    assert len(frame) == len(hive) + 1 and frame["status"].iloc[-1] == "unknown"
    assert frame["branch"].iloc[-1] == hive.loc[hive["pull_request"] == pr, "branch"].iloc[-1]
    feats = fitted.features_of(frame)
    assert feats["pr_prev_failed"].iloc[-1] == _outcomes(hive)[hive["pull_request"] == pr][-1]
    p = fitted.predict(frame)[-1]
    assert 0 < p < 1


def test_too_little_history_and_unfitted_models_are_errors(hive: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="at least"):
        FailurePredictor().fit(hive.iloc[:20])
    with pytest.raises(InputError, match="not fitted"):
        FailurePredictor().predict(hive)
    with pytest.raises(InputError, match="unknown candidates"):
        FailurePredictor(candidates=("svm",)).fit(hive)
