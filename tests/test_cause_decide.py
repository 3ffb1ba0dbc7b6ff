"""Mixing the rules, the classifier and similar incidents into one category and confidence."""

from __future__ import annotations

from cimedic.models import Category, SimilarIncident
from cimedic.tools.cause.decide import decide


def _incident(category: str, score: float) -> SimilarIncident:
    return SimilarIncident(id="inc-1", score=score, category=Category(category), cause="c", fix="f", title="t")


def test_rules_alone_decide_when_nothing_else_is_known() -> None:
    d = decide({Category.TEST: 30.0, Category.LINT: 5.0}, None)
    assert d.category is Category.TEST and 0.8 < d.confidence < 0.9
    assert set(d.parts) == {"rules"}


def test_agreement_raises_and_disagreement_lowers_confidence() -> None:
    votes = {Category.DEPENDENCY: 12.0}
    alone = decide(votes, None).confidence
    agree = decide(votes, {"dependency": 0.9, "infra": 0.1}).confidence
    disagree = decide(votes, {"infra": 0.9, "dependency": 0.1}).confidence
    assert disagree < alone < agree


def test_close_incidents_vote_and_distant_ones_do_not() -> None:
    votes = {Category.TEST: 4.0, Category.INFRA: 3.5}
    assert decide(votes, None, [_incident("infra", 0.95), _incident("infra", 0.9)]).category is Category.INFRA
    far = decide(votes, None, [_incident("infra", 0.3)])
    assert far.category is Category.TEST and "similar_incidents" not in far.parts


def test_no_signal_at_all_is_other_with_low_confidence() -> None:
    d = decide({}, None)
    assert d.category is Category.OTHER and d.confidence <= 0.2
