"""Failure prediction: the probability that a CI run fails, from what was known when it started.

``FailurePredictor.fit(runs)`` builds pre-run features (``features``), picks a model by
time-ordered validation inside the training window, calibrates it on the later slices of that
window, and keeps a decision threshold chosen there too. Nothing of a later period is ever used to
fit, choose, calibrate or threshold. Candidates: logistic regression (median imputation with
missing indicators, standardised; C in a log grid 0.01/0.1/1) and scikit-learn's
HistGradientBoostingClassifier at two sizes; the one with the best validation AUC wins, ties going
to the simpler one.

Calibration is Platt scaling fitted on the validation blocks' scores (each from a model that had
not seen the block), then applied to the final model fitted on the whole window: the time-ordered
version of scikit-learn's CalibratedClassifierCV(ensemble=False).

``PreviousResult`` is the baseline behind the same ``FailureModel`` protocol: a run does what the
previous finished build of its pull request did (else the job's previous build).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cimedic.errors import InputError
from cimedic.tools.predict.features import ALL_FEATURES, FeatureConfig, FlakeRates, build_features
from cimedic.tools.predict.runs import normalize, outcome
from cimedic.tools.predict.scorers import LinearScorer, Platt, TreeScorer

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

MIN_RUNS = 30  # labelled runs below which no model is fitted: a rate would be as good and honest
BACKGROUND_ROWS = 50


def _logistic(c: float) -> Callable[[int], Any]:
    def make(seed: int) -> Any:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=c, max_iter=2000, random_state=seed)),
            ]
        )

    return make


def _gbm(leaves: int, iterations: int) -> Callable[[int], Any]:
    def make(seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Fixed iterations, no internal early stopping: its random holdout would ignore time order.
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=iterations,
            max_leaf_nodes=leaves,
            min_samples_leaf=20,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )

    return make


# Simplest first: on a tie the earlier one wins.
CANDIDATES: dict[str, Callable[[int], Any]] = {
    "logistic_c0.01": _logistic(0.01),
    "logistic_c0.1": _logistic(0.1),
    "logistic_c1": _logistic(1.0),
    "gbm_small": _gbm(4, 100),
    "gbm": _gbm(15, 200),
}


SERIAL_BELOW = 50_000  # rows; below this OpenMP threads cost more in start-up and spinning than they save


def _fit(name: str, seed: int, x: np.ndarray, y: np.ndarray) -> LinearScorer | TreeScorer:
    from threadpoolctl import threadpool_limits

    if len(x) >= SERIAL_BELOW:
        return _to_scorer(CANDIDATES[name](seed).fit(x, y))
    with threadpool_limits(limits=1):
        return _to_scorer(CANDIDATES[name](seed).fit(x, y))


def _to_scorer(estimator: Any) -> LinearScorer | TreeScorer:
    return (
        LinearScorer.from_sklearn(estimator)
        if hasattr(estimator, "named_steps")
        else TreeScorer.from_sklearn(estimator)
    )


@dataclass(frozen=True)
class Contribution:
    """How much one feature pushed one run's prediction; ``effect`` > 0 is toward failure."""

    feature: str
    value: float  # the run's feature value (NaN: unknown)
    effect: float
    unit: str  # "log-odds" (logistic) or "probability" (gbm)
    description: str


class FailureModel(Protocol):
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(failure) for every row of ``frame`` (same order), using the frame as history."""
        ...

    def explain(self, row: pd.Series, top: int = 5) -> list[Contribution]:
        """The features that moved this feature row's prediction most (see ``features_of``)."""
        ...


class PreviousResult:
    """Baseline: 1 if the previous finished outcome of the PR failed (else the job's), 0 if not, 0.5 unknown."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()

    def features_of(self, frame: pd.DataFrame) -> pd.DataFrame:
        return build_features(frame, self.config)[["pr_prev_failed", "job_last_failed"]]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        f = self.features_of(frame)
        return np.asarray(f["pr_prev_failed"].fillna(f["job_last_failed"]).fillna(0.5).to_numpy(dtype=float))

    def explain(self, row: pd.Series, top: int = 5) -> list[Contribution]:
        import math

        name = "pr_prev_failed" if not math.isnan(float(row["pr_prev_failed"])) else "job_last_failed"
        value = float(row[name])
        effect = 0.0 if math.isnan(value) else value - 0.5
        return [Contribution(name, value, effect, "probability", ALL_FEATURES[name])][:top]


@dataclass
class FailurePredictor:
    """Calibrated P(failure) of a run from pre-run features; see the module docstring.

    Typical use::

        p = FailurePredictor().fit(history)         # history: the runs frame (``runs``)
        probs = p.predict(history_with_new_runs)    # one probability per row
        feats = p.features_of(history_with_new_runs)
        p.explain(feats.iloc[-1])                   # top features of the last run
        p.save(path); FailurePredictor.load(path)
    """

    config: FeatureConfig = field(default_factory=FeatureConfig)
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    folds: int = 3
    validation_share: float = 0.4
    seed: int = 0
    flake_rates: FlakeRates | None = None
    # Fitted state.
    features: list[str] = field(default_factory=list)
    scorer: LinearScorer | TreeScorer | None = None
    calibrator: Platt = field(default_factory=Platt)
    threshold: float = 0.5
    background: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame, until: pd.Timestamp | None = None) -> FailurePredictor:
        """Fit on the outcomes of ``frame`` that finished before ``until`` (default: all of them)."""
        import numpy as np
        import pandas as pd

        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            raise InputError("failure model", f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
        runs = normalize(frame).reset_index(drop=True)
        feats = build_features(runs, self.config, self.flake_rates)
        y = outcome(runs["status"]).to_numpy()
        labelled = ~np.isnan(y) & (runs["finished_at"].notna() & runs["started_at"].notna()).to_numpy()
        if until is not None:
            labelled &= (runs["finished_at"] < pd.Timestamp(until)).to_numpy()
        rows = np.flatnonzero(labelled)
        rows = rows[np.argsort(runs["started_at"].to_numpy()[rows], kind="stable")]
        if len(rows) < MIN_RUNS or len(np.unique(y[rows])) < 2:
            raise InputError("runs", f"need at least {MIN_RUNS} finished runs with both outcomes to learn from")
        self.features = [c for c in feats.columns if feats[c].iloc[rows].notna().any()]
        x = feats[self.features].to_numpy(dtype=float)
        start = runs["started_at"].to_numpy("datetime64[ns]")
        finish = runs["finished_at"].to_numpy("datetime64[ns]")

        validation, oot = self._validate(x, y, rows, start, finish)
        scored = {k: v for k, v in validation.items() if not np.isnan(v)}
        chosen = max(scored, key=lambda k: (scored[k], -self.candidates.index(k))) if scored else self.candidates[0]
        self.scorer = _fit(chosen, self.seed, x[rows], y[rows])
        oot_rows, oot_raw = oot.get(chosen, (np.zeros(0, int), np.zeros(0)))
        if len(oot_rows) and len(np.unique(y[oot_rows])) == 2:
            self.calibrator = Platt.fit(oot_raw, y[oot_rows])
            probs, truth = self.calibrator(oot_raw), y[oot_rows]
        else:  # no later slice with both outcomes: calibrate in-sample, say so in the metrics
            self.calibrator = Platt.fit(self.scorer.raw(x[rows]), y[rows])
            probs, truth = self.calibrator(self.scorer.raw(x[rows])), y[rows]
        self.threshold = _best_f1_threshold(probs, truth)
        pick = rows[np.linspace(0, len(rows) - 1, min(BACKGROUND_ROWS, len(rows))).astype(int)]
        self.background = x[pick]
        self.metrics = _metrics(validation, chosen, probs, truth, self.threshold, len(oot_rows), y[rows])
        self.window = {
            "first_start": str(runs["started_at"].iloc[rows[0]]),
            "last_start": str(runs["started_at"].iloc[rows[-1]]),
            "last_finish": str(runs["finished_at"].iloc[rows].max()),
            "until": None if until is None else str(pd.Timestamp(until)),
            "projects": sorted(runs["project"].iloc[rows].unique().tolist()),
            "jobs": sorted(runs["job"].iloc[rows].unique().tolist())[:50],
        }
        return self

    def _validate(
        self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, start: np.ndarray, finish: np.ndarray
    ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Expanding-window validation over the last ``validation_share`` of the labelled runs.

        Each block is scored by models fitted on the runs that had FINISHED before the block's
        first run started, so no label from the block's time is used to predict it. The score is
        the share of (failure, success) pairs inside a block that a model ranks right, pooled over
        blocks: an AUC where a block weighs by the pairs it holds, so a block with one success (a
        coin toss) cannot outvote one with fifty, and scores of different blocks' models are never
        compared with each other.
        """
        import numpy as np

        first = int(len(rows) * (1 - self.validation_share))
        blocks = [b for b in np.array_split(rows[first:], self.folds) if len(b)]
        right = dict.fromkeys(self.candidates, 0.0)
        pairs = 0.0
        oot: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {k: ([], []) for k in self.candidates}
        for block in blocks:
            train = rows[finish[rows] < start[block[0]]]
            if len(train) < MIN_RUNS or len(np.unique(y[train])) < 2:
                continue
            positives = float(y[block].sum())
            pairs += positives * (len(block) - positives)
            for name in self.candidates:
                raw = _fit(name, self.seed, x[train], y[train]).raw(x[block])
                oot[name][0].append(block)
                oot[name][1].append(raw)
                right[name] += _concordant_pairs(y[block], raw)
        means = {k: v / pairs if pairs else float("nan") for k, v in right.items()}
        joined = {k: (np.concatenate(r), np.concatenate(s)) for k, (r, s) in oot.items() if r}
        return means, joined

    def features_of(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's feature columns for every run of ``frame`` (same index), absent ones NaN."""
        feats = build_features(frame, self.config, self.flake_rates)
        return feats.reindex(columns=self.features)

    def predict_features(self, feats: pd.DataFrame) -> np.ndarray:
        if self.scorer is None:
            raise InputError("failure model", "not fitted")
        x = feats.reindex(columns=self.features).to_numpy(dtype=float)
        return self.calibrator(self.scorer.raw(x))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(failure) for every row of ``frame``, in its order; earlier rows are history."""
        return self.predict_features(self.features_of(frame))

    def explain(self, row: pd.Series, top: int = 5) -> list[Contribution]:
        """Top features behind one run's prediction; ``row`` is a row of ``features_of``.

        Logistic: coefficient x standardized value (its missing indicator included), in log-odds
        against a run at the training mean: exact and additive. Gradient boosting: for each feature,
        the probability minus its mean when that feature alone is replaced by its value in each of
        up to 50 training runs spread over the window (single-feature occlusion against a
        background): honest about the feature's local effect, but not additive (interactions are
        not split between features).
        """
        import numpy as np

        if self.scorer is None:
            raise InputError("failure model", "not fitted")
        x = row.reindex(self.features).to_numpy(dtype=float)
        if isinstance(self.scorer, LinearScorer):
            effects, unit = self.scorer.contributions(x), "log-odds"
        else:
            background = self.background if self.background is not None else x.reshape(1, -1)
            base = float(self.calibrator(self.scorer.raw(x.reshape(1, -1)))[0])
            effects = np.zeros(len(self.features))
            for j in range(len(self.features)):
                probe = np.repeat(x.reshape(1, -1), len(background), axis=0)
                probe[:, j] = background[:, j]
                effects[j] = base - float(np.mean(self.calibrator(self.scorer.raw(probe))))
            unit = "probability"
        order = np.argsort(-np.abs(effects), kind="stable")[:top]
        return [
            Contribution(self.features[j], float(x[j]), float(effects[j]), unit, ALL_FEATURES.get(self.features[j], ""))
            for j in order
        ]

    def save(self, path: Path) -> None:
        from cimedic.tools.predict.artifact import save

        save(self, path)

    @classmethod
    def load(cls, path: Path) -> FailurePredictor:
        from cimedic.tools.predict.artifact import load

        return load(path)


def _concordant_pairs(y: np.ndarray, score: np.ndarray) -> float:
    """(failure, success) pairs where the failure scores higher, ties counting half: AUC x pairs."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    positives = float(y.sum())
    return float(ranks[y == 1].sum() - positives * (positives + 1) / 2)


def _best_f1_threshold(probs: np.ndarray, truth: np.ndarray) -> float:
    """The probability cut that maximises F1 for failures on (later, unseen) training runs."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    if len(np.unique(truth)) < 2:
        return 0.5
    precision, recall, cuts = precision_recall_curve(truth, probs)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    return float(cuts[int(np.argmax(f1))])


def _metrics(
    validation: dict[str, float],
    chosen: str,
    probs: np.ndarray,
    truth: np.ndarray,
    threshold: float,
    oot_runs: int,
    y_train: np.ndarray,
) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

    both = len(np.unique(truth)) == 2
    return {
        "chosen": chosen,
        "validation_auc": {k: None if np.isnan(v) else round(v, 4) for k, v in validation.items()},
        "calibrated_on": "later slices" if oot_runs else "training runs (no later slice had both outcomes)",
        "calibration_runs": int(oot_runs or len(truth)),
        "calibration_auc": round(float(roc_auc_score(truth, probs)), 4) if both else None,
        "calibration_brier": round(float(brier_score_loss(truth, probs)), 4),
        "threshold_f1": round(float(f1_score(truth, probs >= threshold, zero_division=0)), 4),
        "train_runs": len(y_train),
        "base_rate": round(float(np.mean(y_train)), 4),
    }
