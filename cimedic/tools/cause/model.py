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
from dataclasses import dataclass
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
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    signal_vec = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True)
    text_vec = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, max_features=TEXT_FEATURES, dtype=np.float64
    )
    return signal_vec, text_vec


@dataclass(frozen=True)
class _Vocabulary:
    """A fitted TF-IDF vocabulary, applied without importing scikit-learn (see ``_char_ngrams``)."""

    index: dict[str, int]
    idf: Any  # numpy array

    @classmethod
    def of(cls, vec: Any) -> _Vocabulary:
        import numpy as np

        return cls(dict(vec.vocabulary_), np.asarray(vec.idf_, dtype=float))

    def vector(self, terms: list[str]) -> Any:
        """sublinear tf x idf, L2-normalised: what TfidfVectorizer(sublinear_tf=True) computes."""
        import numpy as np

        out = np.zeros(len(self.index))
        for term, n in Counter(terms).items():
            i = self.index.get(term)
            if i is not None:
                out[i] = (1.0 + np.log(n)) * self.idf[i]
        norm = np.linalg.norm(out)
        return out / norm if norm else out


def _char_ngrams(text: str, low: int = 3, high: int = 5) -> list[str]:
    """scikit-learn's ``char_wb`` analyser (lowercased, n-grams inside space-padded words).

    Reproduced so that a cold ``cimedic investigate`` does not pay ~0.8 s importing scikit-learn
    and scipy to score one document; a test holds it equal to scikit-learn's output."""
    grams: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset : offset + n])
            while offset + n < size:
                offset += 1
                grams.append(padded[offset : offset + n])
            if offset == 0:  # the word is shorter than n: longer n-grams would repeat it
                break
    return grams


class CauseModel:
    """A fitted classifier and what is known about it (``meta``: data, metrics, version)."""

    def __init__(
        self,
        signal: _Vocabulary,
        text: _Vocabulary,
        classes: list[str],
        coef: Any,
        intercept: Any,
        meta: dict[str, Any],
    ) -> None:
        self._signal = signal
        self._text = text
        self.classes = classes
        self._coef = coef
        self._intercept = intercept
        self.meta = meta

    @classmethod
    def fit(cls, signals: Sequence[Signals], labels: Sequence[str], *, c: float = 10.0) -> CauseModel:
        import numpy as np
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
        coef, intercept = np.asarray(clf.coef_, dtype=float), np.asarray(clf.intercept_, dtype=float)
        if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row for the second class
            coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
        return cls(
            _Vocabulary.of(signal_vec), _Vocabulary.of(text_vec), [str(k) for k in clf.classes_], coef, intercept, meta
        )

    def features(self, s: Signals) -> Any:
        import numpy as np

        return np.concatenate(
            [self._signal.vector(signal_doc(s).split()), self._text.vector(_char_ngrams(text_doc(s)))]
        )

    def predict_proba(self, signals: Sequence[Signals]) -> list[dict[str, float]]:
        import numpy as np

        out = []
        for s in signals:
            logits = self._coef @ self.features(s) + self._intercept
            e = np.exp(logits - logits.max())
            out.append({c: float(p) for c, p in zip(self.classes, e / e.sum(), strict=True)})
        return out

    # -- the JSON artifact -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def vocab(v: _Vocabulary) -> dict[str, Any]:
            terms = sorted(v.index, key=lambda t: v.index[t])
            return {"vocabulary": terms, "idf": [round(float(x), 6) for x in v.idf]}

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "classes": self.classes,
            "signal": vocab(self._signal),
            "text": vocab(self._text),
            "coef": [[round(float(x), 6) for x in row] for row in self._coef],
            "intercept": [round(float(x), 6) for x in self._intercept],
        }

    def save(self, path: Path) -> None:
        """Atomically: a crash mid-write leaves the previous model, never half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.to_json(), out, separators=(",", ":"))
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is shared like any data file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CauseModel:
        import numpy as np

        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
        parts = []
        for part in (data["signal"], data["text"]):
            if len(part["vocabulary"]) != len(part["idf"]):
                raise ValueError("a vocabulary and its idf differ in length")
            parts.append(_Vocabulary({t: i for i, t in enumerate(part["vocabulary"])}, np.asarray(part["idf"], float)))
        classes = [str(c) for c in data["classes"]]
        coef = np.asarray(data["coef"], dtype=float)
        intercept = np.asarray(data["intercept"], dtype=float)
        width = len(parts[0].index) + len(parts[1].index)
        if coef.shape != (len(classes), width) or intercept.shape != (len(classes),):
            raise ValueError("coefficients do not fit the vocabularies")
        if set(classes) - set(CATEGORIES):
            raise ValueError(f"unknown classes {sorted(set(classes) - set(CATEGORIES))}")
        return cls(parts[0], parts[1], classes, coef, intercept, dict(data.get("meta", {})))

    @classmethod
    def load(cls, path: Path) -> CauseModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_json(data)
        except FileNotFoundError as exc:
            raise InputError(str(path), "no such model file") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(str(path), f"not a usable cause model ({exc})") from exc
