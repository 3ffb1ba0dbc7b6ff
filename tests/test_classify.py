from cimedic.models import Category
from cimedic.tools.logs.classify import classify


def test_evidence_votes_decide() -> None:
    category, confidence = classify({Category.COMPILE: 30.0, Category.TEST: 3.0}, "$ make", 0)
    assert category is Category.COMPILE
    assert 0.5 < confidence <= 0.95


def test_failing_command_is_a_prior() -> None:
    assert classify({}, "$ bundle exec rubocop", 0)[0] is Category.LINT
    assert classify({Category.CONFIG: 2.0}, "$ npm ci", 0)[0] is Category.DEPENDENCY


def test_failed_junit_tests_vote_for_test() -> None:
    assert classify({Category.OTHER: 1.0}, None, 3)[0] is Category.TEST


def test_nothing_known_is_other_with_low_confidence() -> None:
    category, confidence = classify({}, None, 0)
    assert category is Category.OTHER
    assert confidence < 0.3
