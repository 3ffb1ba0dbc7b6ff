"""The trained cause classifier: TF-IDF over signal tokens and masked log text, then a linear model.

Two vectorisers feed one multinomial logistic regression: whole-token TF-IDF over the signal
tokens (rules, knowledge-base hits, the failing command) and character n-grams over the masked
evidence and excerpt, which carry across languages and tools better than words in a corpus this
small. The artifact is plain JSON (vocabularies, idf, coefficients, metrics), never a pickle: a
model file from someone else can be read safely, diffed, and checked into a repository.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cimedic.errors import InputError
from cimedic.models import Category
from cimedic.tools.cause.features import Signals, signal_tokens
from cimedic.tools.logs.templates import mask

FORMAT = "cimedic-cause-model"
FORMAT_VERSION = 1
TEXT_FEATURES = 30000
CATEGORIES = [str(c) for c in Category]


def signal_doc(s: Signals) -> str:
    return " ".join(signal_tokens(s))


def text_doc(s: Signals) -> str:
    lines = [mask(line)[:300] for line in s.evidence[:4]] + [mask(line)[:300] for line in s.excerpt[-40:]]
    return "\n".join(lines)


def _vectorizers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    signal_vec = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True)
    text_vec = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, max_features=TEXT_FEATURES, dtype=float
    )
    return signal_vec, text_vec


class CauseModel:
    """A fitted classifier and what is known about it (``meta``: data, metrics, version)."""

    def __init__(self, signal_vec: Any, text_vec: Any, clf: Any, meta: dict[str, Any]) -> None:
        self._signal_vec = signal_vec
        self._text_vec = text_vec
        self._clf = clf
        self.meta = meta

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self._clf.classes_]

    @classmethod
    def fit(cls, signals: Sequence[Signals], labels: Sequence[str], *, c: float = 10.0) -> CauseModel:
        from scipy.sparse import hstack
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise InputError("training data", f"needs at least two categories, got {sorted(set(labels))}")
        signal_vec, text_vec = _vectorizers()
        x = hstack(
            [signal_vec.fit_transform([signal_doc(s) for s in signals]), text_vec.fit_transform(map(text_doc, signals))]
        ).tocsr()
        # Balanced weights: a rare category (timeout, resource) must not be swamped by "test".
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, list(labels))
        meta = {
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "examples": len(labels),
            "class_counts": dict(sorted(Counter(labels).items())),
            "c": c,
        }
        return cls(signal_vec, text_vec, clf, meta)

    def predict_proba(self, signals: Sequence[Signals]) -> list[dict[str, float]]:
        from scipy.sparse import hstack

        x = hstack(
            [
                self._signal_vec.transform([signal_doc(s) for s in signals]),
                self._text_vec.transform(map(text_doc, signals)),
            ]
        ).tocsr()
        rows = self._clf.predict_proba(x)
        return [{c: float(p) for c, p in zip(self.classes, row, strict=True)} for row in rows]

    # -- the JSON artifact -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def vec(v: Any) -> dict[str, Any]:
            vocab = sorted(v.vocabulary_.items(), key=lambda kv: kv[1])
            return {"vocabulary": [t for t, _ in vocab], "idf": [round(float(x), 6) for x in v.idf_]}

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "classes": self.classes,
            "signal": vec(self._signal_vec),
            "text": vec(self._text_vec),
            "coef": [[round(float(x), 6) for x in row] for row in self._clf.coef_],
            "intercept": [round(float(x), 6) for x in self._clf.intercept_],
        }

    def save(self, path: Path) -> None:
        """Atomically: a crash mid-write leaves the previous model, never half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.to_json(), out, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CauseModel:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
        signal_vec, text_vec = _vectorizers()
        for vec, part in ((signal_vec, data["signal"]), (text_vec, data["text"])):
            vec.vocabulary_ = {t: i for i, t in enumerate(part["vocabulary"])}
            vec.idf_ = np.asarray(part["idf"], dtype=float)
        clf = LogisticRegression()
        clf.classes_ = np.asarray(data["classes"])
        clf.coef_ = np.asarray(data["coef"], dtype=float)
        clf.intercept_ = np.asarray(data["intercept"], dtype=float)
        width = len(data["signal"]["vocabulary"]) + len(data["text"]["vocabulary"])
        if clf.coef_.shape != (len(clf.classes_), width) or set(data["classes"]) - set(CATEGORIES):
            raise ValueError("coefficients do not fit the vocabularies or classes are unknown")
        clf.n_features_in_ = width
        return cls(signal_vec, text_vec, clf, dict(data.get("meta", {})))

    @classmethod
    def load(cls, path: Path) -> CauseModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_json(data)
        except FileNotFoundError as exc:
            raise InputError(str(path), "no such model file") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(str(path), f"not a usable cause model ({exc})") from exc
