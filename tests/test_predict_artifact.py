"""The failure model file: a JSON round trip that predicts and explains exactly as before (LRTS fixtures, MIT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimedic.errors import InputError
from cimedic.tools.predict.artifact import FORMAT, FORMAT_VERSION
from cimedic.tools.predict.features import build_features
from cimedic.tools.predict.lrts import lrts_frame
from cimedic.tools.predict.model import CANDIDATES, FailurePredictor
from cimedic.tools.predict.scorers import TreeScorer

LRTS = Path(__file__).resolve().parent / "fixtures" / "lrts"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return lrts_frame([LRTS / "log4j_training.csv", LRTS / "log4j_testing.csv"])


@pytest.mark.parametrize("candidate", ["logistic_c0.1", "gbm"])
def test_save_load_round_trip_predicts_and_explains_identically(
    candidate: str, runs: pd.DataFrame, tmp_path: Path
) -> None:
    cut = lrts_frame(LRTS / "log4j_testing.csv")["started_at"].min()
    model = FailurePredictor(candidates=(candidate,)).fit(runs, until=cut)
    path = tmp_path / "models" / "failure.json"
    model.save(path)
    loaded = FailurePredictor.load(path)
    np.testing.assert_array_equal(loaded.predict(runs), model.predict(runs))
    feats = model.features_of(runs)
    assert loaded.explain(feats.iloc[-1]) == model.explain(feats.iloc[-1])
    assert loaded.threshold == model.threshold and loaded.features == model.features


def test_the_file_is_versioned_strict_json_with_metrics_and_window(runs: pd.DataFrame, tmp_path: Path) -> None:
    model = FailurePredictor().fit(runs)
    path = tmp_path / "failure.json"
    model.save(path)
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert (data["format"], data["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert data["metrics"]["chosen"] in CANDIDATES and data["metrics"]["train_runs"] > 0
    assert data["window"]["first_start"] < data["window"]["last_start"] and data["window"]["projects"] == ["log4j"]
    assert data["features"] == model.features and "scikit-learn" in data["fitted_with"]
    assert not list(tmp_path.glob(".failure.json.*")), "no temporary file is left behind"


def test_exported_trees_score_exactly_like_scikit_learn(runs: pd.DataFrame) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    feats = build_features(runs).to_numpy(dtype=float)
    y = runs["status"].map({"failure": 1.0, "success": 0.0}).to_numpy(dtype=float)
    keep = ~np.isnan(y)
    assert np.isnan(feats[keep]).any(), "the data exercise missing values"
    est = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=8, min_samples_leaf=5, random_state=0)
    with threadpool_limits(limits=1):  # tiny data: OpenMP start-up would dominate
        est.fit(feats[keep], y[keep])
    trees = TreeScorer.from_sklearn(est)
    np.testing.assert_allclose(trees.raw(feats), est.decision_function(feats), rtol=0, atol=1e-12)
    again = TreeScorer.from_json(json.loads(json.dumps(trees.to_json())))
    np.testing.assert_array_equal(again.raw(feats), trees.raw(feats))


def test_unusable_files_are_input_errors(tmp_path: Path, runs: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="no such model file"):
        FailurePredictor.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else", "format_version": 1}')
    with pytest.raises(InputError, match="not a usable failure model"):
        FailurePredictor.load(bad)
    model = FailurePredictor(candidates=("logistic_c0.1",)).fit(runs)
    model.save(bad)
    data = json.loads(bad.read_text())
    data["scorer"]["coef"] = data["scorer"]["coef"][:-1]
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match="differ in length"):
        FailurePredictor.load(bad)
