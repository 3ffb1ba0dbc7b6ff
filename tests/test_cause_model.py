"""The cause classifier: it learns from real-shaped examples, round-trips through its JSON
artifact, and its scikit-learn-free inference equals scikit-learn's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cimedic.errors import InputError
from cimedic.tools.cause.corpus import from_knowledge, signals_from_lines
from cimedic.tools.cause.model import CauseModel, _char_ngrams, _vectorizers, signal_doc, text_doc
from cimedic.tools.knowledge_base import load


@pytest.fixture(scope="module")
def kb_examples() -> list:  # type: ignore[type-arg]
    return from_knowledge(load([]))


@pytest.fixture(scope="module")
def model(kb_examples: list) -> CauseModel:  # type: ignore[type-arg]
    return CauseModel.fit([e.signals for e in kb_examples], [str(e.category) for e in kb_examples])


def test_classifies_unseen_lines_by_their_wording(model: CauseModel) -> None:
    kb = load([])
    cases = {
        (
            "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found",
            "npm ERR! 404  'left-padd@^1.3.0' is not in this registry.",
        ): "dependency",
        ("src/app.c:41:7: error: 'counter' undeclared (first use in this function)",): "compile",
        ("FAILED tests/test_cart.py::test_total - AssertionError: assert 3 == 4",): "test",
    }
    for lines, want in cases.items():
        probs = model.predict_proba([signals_from_lines(lines, kb)])[0]
        assert max(probs, key=lambda c: probs[c]) == want, (lines, probs)
        assert abs(sum(probs.values()) - 1.0) < 1e-9


def test_inference_equals_scikit_learn(model: CauseModel, kb_examples: list) -> None:  # type: ignore[type-arg]
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    signals = [e.signals for e in kb_examples]
    labels = [str(e.category) for e in kb_examples]
    signal_vec, text_vec = _vectorizers()
    x = hstack([signal_vec.fit_transform(map(signal_doc, signals)), text_vec.fit_transform(map(text_doc, signals))])
    clf = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced").fit(x.tocsr(), labels)
    probe = signals[::7]
    ref = clf.predict_proba(
        hstack([signal_vec.transform(map(signal_doc, probe)), text_vec.transform(map(text_doc, probe))]).tocsr()
    )
    got = model.predict_proba(probe)
    for row, mine in zip(ref, got, strict=True):
        for cls, p in zip(clf.classes_, row, strict=True):
            assert mine[str(cls)] == pytest.approx(p, abs=1e-9)
    analyzer = text_vec.build_analyzer()
    assert all(analyzer(text_doc(s)) == _char_ngrams(text_doc(s)) for s in probe)


def test_artifact_round_trip_and_bad_files(model: CauseModel, kb_examples: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    path = tmp_path / "m.json"
    model.save(path)
    again = CauseModel.load(path)
    probe = [e.signals for e in kb_examples[:10]]
    for a, b in zip(model.predict_proba(probe), again.predict_proba(probe), strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    data = json.loads(path.read_text())
    assert data["format"] == "cimedic-cause-model" and data["meta"]["examples"] == len(kb_examples)
    data["coef"] = data["coef"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="not a usable cause model"):
        CauseModel.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match=str(path)):
        CauseModel.load(path)
    with pytest.raises(InputError, match="no such model file"):
        CauseModel.load(tmp_path / "missing.json")


def test_needs_two_categories(kb_examples: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError, match="at least two categories"):
        CauseModel.fit([kb_examples[0].signals], ["dependency"])
