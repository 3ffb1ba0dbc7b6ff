"""Training and honest evaluation of the cause classifier.

Evaluation holds out whole groups (repositories): a model is never scored on a repository it saw
in training, because logs of one repository share wording that makes in-repo scores flattering.
The knowledge base's examples are always available to every fold (they are ours, not the test's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from cimedic.models import Category
from cimedic.tools.cause.corpus import Example
from cimedic.tools.cause.decide import Decision, decide
from cimedic.tools.cause.features import Signals
from cimedic.tools.cause.model import CauseModel
from cimedic.tools.logs.classify import tally

RELIABILITY_EDGES = (0.0, 0.3, 0.5, 0.7, 0.85, 1.0001)


def rules_tally(s: Signals) -> dict[Category, float]:
    return tally({Category(k): v for k, v in s.votes.items()}, s.command, s.failed_tests)


def decision(s: Signals, proba: dict[str, float] | None) -> Decision:
    return decide(rules_tally(s), proba)


def grouped_cv(
    examples: Sequence[Example],
    always: Sequence[Example] = (),
    *,
    folds: int = 10,
    c: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, float]]:
    """Out-of-fold class probabilities for each example, folds split by ``group``."""
    from sklearn.model_selection import GroupKFold

    groups = [e.group for e in examples]
    n_folds = min(folds, len(set(groups)))
    out: list[dict[str, float]] = [{} for _ in examples]
    if n_folds < 2:
        return out
    splitter = GroupKFold(n_splits=n_folds)
    for k, (train_idx, test_idx) in enumerate(splitter.split(examples, groups=groups), 1):
        train = [examples[i] for i in train_idx] + list(always)
        model = CauseModel.fit([e.signals for e in train], [str(e.category) for e in train], c=c)
        for i, probs in zip(test_idx, model.predict_proba([examples[i].signals for i in test_idx]), strict=True):
            out[i] = probs
        if progress:
            progress(k, n_folds)
    return out


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    lenient: float
    macro_f1: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "accuracy": self.accuracy, "lenient": self.lenient, "macro_f1": self.macro_f1}


def score(examples: Sequence[Example], predicted: Sequence[str]) -> Scores:
    """Accuracy, lenient accuracy (a labeler's ``alt`` also counts) and macro-F1 over the true classes."""
    from sklearn.metrics import f1_score

    truth = [str(e.category) for e in examples]
    n = len(truth) or 1
    strict = sum(p == t for p, t in zip(predicted, truth, strict=True)) / n
    lenient = sum(p in (str(e.category), str(e.alt)) for p, e in zip(predicted, examples, strict=True)) / n
    labels = sorted(set(truth))
    f1 = float(f1_score(truth, list(predicted), labels=labels, average="macro", zero_division=0)) if truth else 0.0
    return Scores(len(truth), round(strict, 3), round(lenient, 3), round(f1, 3))


def majority(examples: Sequence[Example], train: Sequence[Example] | None = None) -> list[str]:
    top = Counter(str(e.category) for e in (train or examples)).most_common(1)[0][0]
    return [top] * len(examples)


def reliability(confidences: Sequence[float], correct: Sequence[bool]) -> list[dict[str, float]]:
    """Accuracy per confidence bucket: a calibrated 0.8 is right about 80% of the time."""
    rows = []
    for lo, hi in pairwise(RELIABILITY_EDGES):
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi]
        if idx:
            rows.append(
                {
                    "low": lo,
                    "high": min(hi, 1.0),
                    "n": len(idx),
                    "mean_confidence": round(sum(confidences[i] for i in idx) / len(idx), 3),
                    "accuracy": round(sum(correct[i] for i in idx) / len(idx), 3),
                }
            )
    return rows


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    n = len(confidences) or 1
    return round(
        sum(r["n"] * abs(r["accuracy"] - r["mean_confidence"]) for r in reliability(confidences, correct)) / n, 3
    )
