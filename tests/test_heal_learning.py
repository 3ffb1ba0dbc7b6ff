"""The learner: posteriors from outcomes, category pooling, Thompson choice, policy suggestions."""

from __future__ import annotations

import numpy as np

from cimedic.heal.learning import Posteriors, choose, from_outcomes
from cimedic.heal.policy import load_policy
from cimedic.heal.suggest import suggestions
from cimedic.models import ActionKind

RETRY, QUARANTINE = ActionKind.RETRY, ActionKind.QUARANTINE


def test_a_fingerprint_borrows_its_category_at_half_weight_until_it_has_its_own_record() -> None:
    p = from_outcomes([(RETRY, "fp-a", "infra", True)] * 8 + [(RETRY, "fp-a", "infra", False)] * 2)
    assert p.beta(RETRY, "fp-new", "infra") == (1 + 4.0, 1 + 1.0)  # a new fingerprint: the category, halved
    assert p.beta(RETRY, "fp-a", "infra") == (1 + 4.0 + 8, 1 + 1.0 + 2)
    est = p.estimate(RETRY, "fp-a", "infra")
    assert 0.55 < est.low < est.mean == 13 / 17 < est.high < 0.95 and est.evidence == 15


def test_thompson_prefers_what_worked_and_gives_up_on_what_keeps_failing() -> None:
    p = Posteriors()
    for _ in range(30):
        p.learn(RETRY, "fp", "test", fixed=False)
        p.learn(QUARANTINE, "fp", "test", fixed=True)
    rng = np.random.default_rng(0)
    picks = [choose([RETRY, QUARANTINE], p, "fp", "test", rng) for _ in range(200)]
    assert picks.count(QUARANTINE) == 200
    assert all(choose([RETRY], p, "fp", "test", rng) is None for _ in range(50))  # under the floor: people


def test_uncertain_actions_still_get_tried() -> None:
    rng = np.random.default_rng(0)
    picks = [choose([RETRY, QUARANTINE], Posteriors(), "fp", "test", rng) for _ in range(400)]
    assert 120 < picks.count(RETRY) < 280


def test_suggests_auto_only_when_even_the_pessimistic_estimate_is_high() -> None:
    policy = load_policy()
    many = [(RETRY, f"fp{i}", "dependency", True) for i in range(40)]
    few = [(RETRY, "x", "compile", True)] * 3
    found = suggestions(policy, many + few, min_outcomes=5)
    assert len(found) == 1 and found[0].startswith("allow auto: retry fixed")
    assert "categories: [dependency], levels: {retry: auto}" in found[0]
    bad = [(RETRY, f"fp{i}", "infra", i % 4 == 0) for i in range(40)]  # infra retries are auto; they fix 25 %
    assert any(s.startswith("require approval: retry fixed") for s in suggestions(policy, bad, min_outcomes=5))
