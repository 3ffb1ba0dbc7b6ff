"""The fitted failure models in plain numpy form: what gets saved, loaded and run at predict time.

scikit-learn fits them (``model``); these classes copy out the numbers (imputation medians, scaler,
coefficients; or the gradient-boosted trees' nodes) so an artifact is plain JSON, never a pickle,
and predicting needs numpy only. Each scorer returns a raw score (log-odds before calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class Scorer(Protocol):
    kind: str

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds of failure, one per row of ``x`` (NaN = missing)."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LinearScorer:
    """Median imputation with missing indicators, standardisation, then a logistic regression."""

    medians: np.ndarray
    indicator_of: np.ndarray  # feature index of each missing-indicator column
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    kind: str = "logistic"

    @classmethod
    def from_sklearn(cls, pipeline: Any) -> LinearScorer:
        import numpy as np

        imputer, scaler, lr = (pipeline.named_steps[k] for k in ("impute", "scale", "model"))
        indicator = imputer.indicator_.features_ if imputer.indicator_ is not None else np.zeros(0, int)
        return cls(
            medians=np.asarray(imputer.statistics_, float),
            indicator_of=np.asarray(indicator, np.int64),
            mean=np.asarray(scaler.mean_, float),
            scale=np.asarray(scaler.scale_, float),
            coef=np.asarray(lr.coef_[0], float),
            intercept=float(lr.intercept_[0]),
        )

    def standardized(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        missing = np.isnan(x)
        filled = np.where(missing, self.medians, x)
        z = np.hstack([filled, missing[:, self.indicator_of].astype(float)])
        return np.asarray((z - self.mean) / self.scale)

    def raw(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.asarray(self.standardized(x) @ self.coef + self.intercept)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per feature: coefficient x standardized value, its missing indicator's term added in.

        In log-odds relative to a run at the training mean (standardized value 0).
        """
        import numpy as np

        terms = self.standardized(x.reshape(1, -1))[0] * self.coef
        width = len(self.medians)
        out = terms[:width].copy()
        np.add.at(out, self.indicator_of, terms[width:])
        return np.asarray(out, dtype=float)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "medians": self.medians.tolist(),
            "indicator_of": self.indicator_of.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearScorer:
        import numpy as np

        out = cls(
            medians=np.asarray(data["medians"], float),
            indicator_of=np.asarray(data["indicator_of"], np.int64),
            mean=np.asarray(data["mean"], float),
            scale=np.asarray(data["scale"], float),
            coef=np.asarray(data["coef"], float),
            intercept=float(data["intercept"]),
        )
        width = len(out.medians) + len(out.indicator_of)
        if not (len(out.mean) == len(out.scale) == len(out.coef) == width):
            raise ValueError("logistic parameters differ in length")
        return out


_NODE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


@dataclass(frozen=True)
class TreeScorer:
    """Gradient-boosted trees (binary log-loss) read out of HistGradientBoostingClassifier.

    A row goes left when its value is <= the node's threshold, or when it is missing and the node
    sends missing values left: the same rule as scikit-learn's own predictor on numeric features.
    """

    baseline: float
    trees: tuple[dict[str, np.ndarray], ...]
    kind: str = "gbm"

    @classmethod
    def from_sklearn(cls, model: Any) -> TreeScorer:
        import numpy as np

        trees = []
        for (tree,) in model._predictors:  # one tree per iteration for a binary target
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            trees.append({f: np.asarray(nodes[f]) for f in _NODE_FIELDS})
        return cls(float(np.ravel(model._baseline_prediction)[0]), tuple(trees))

    def raw(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        rows = np.arange(len(x))
        out = np.full(len(x), self.baseline)
        for t in self.trees:
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = ~t["is_leaf"][node].astype(bool)
                if not inner.any():
                    break
                v = x[rows, t["feature_idx"][node]]
                left = np.where(np.isnan(v), t["missing_go_to_left"][node].astype(bool), v <= t["num_threshold"][node])
                step = np.where(left, t["left"][node], t["right"][node])
                node = np.where(inner, step, node)
            out += t["value"][node]
        return out

    def to_json(self) -> dict[str, Any]:
        import numpy as np

        def plain(a: np.ndarray) -> list[Any]:
            # JSON has no NaN/inf; an unbounded threshold is written as a string and read back.
            return [x if np.isfinite(x) else str(x) for x in a.tolist()] if a.dtype.kind == "f" else a.tolist()

        return {
            "kind": self.kind,
            "baseline": self.baseline,
            "trees": [{f: plain(t[f]) for f in t} for t in self.trees],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeScorer:
        import numpy as np

        kinds = {"feature_idx": np.int64, "left": np.int64, "right": np.int64, "missing_go_to_left": np.uint8}
        trees = []
        for t in data["trees"]:
            tree = {
                f: np.asarray([float(v) for v in t[f]] if f not in kinds else t[f], kinds.get(f, float))
                for f in _NODE_FIELDS
            }
            tree["is_leaf"] = tree["is_leaf"].astype(np.uint8)
            n = len(tree["value"])
            if any(len(a) != n for a in tree.values()) or (n and (tree["left"].max() >= n or tree["right"].max() >= n)):
                raise ValueError("a tree's node arrays are inconsistent")
            trees.append(tree)
        return cls(float(data["baseline"]), tuple(trees))


def scorer_from_json(data: dict[str, Any]) -> LinearScorer | TreeScorer:
    kind = data.get("kind")
    if kind == "logistic":
        return LinearScorer.from_json(data)
    if kind == "gbm":
        return TreeScorer.from_json(data)
    raise ValueError(f"unknown scorer kind {kind!r}")


@dataclass(frozen=True)
class Platt:
    """Sigmoid calibration p = 1 / (1 + exp(-(a * raw + b))), fitted on later, unseen runs.

    Sigmoid rather than isotonic: it is strictly increasing, so it keeps the model's ranking (and
    its AUC) exactly, and two parameters are safe to fit on the few hundred runs a slice holds.
    """

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> Platt:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(y)) < 2:
            return cls()
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a <= 0:
            # The scores did not rank the later slice at all; keep their order, move them to the base rate.
            rate = float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
            return cls(1.0, float(np.log(rate / (1 - rate)) - np.median(raw)))
        return cls(a, b)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.asarray(1.0 / (1.0 + np.exp(-(self.a * raw + self.b))))
