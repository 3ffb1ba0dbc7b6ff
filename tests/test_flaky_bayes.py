"""The per-test likelihoods and the Jeffreys interval behind rank_flaky."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from cimedic.tools.flaky.bayes import (
    ChainCounts,
    jeffreys,
    log_flaky_marginal,
    log_runner_factor,
    log_stable_marginal,
)


def test_flaky_marginal_matches_direct_integration() -> None:
    eps = 1e-3
    half = math.log((1 - eps) / eps)

    def integrand(z: float, f: int, n: int) -> float:
        p = 1 / (1 + math.exp(-z))
        return p**f * (1 - p) ** (n - f) / (2 * half)

    got = log_flaky_marginal(np.array([0, 3, 40]), np.array([30, 30, 50]), eps)
    for value, (f, n) in zip(got, [(0, 30), (3, 30), (40, 50)], strict=True):
        want = quad(integrand, -half, half, args=(f, n), points=[math.log((f + 0.5) / (n - f + 0.5))], limit=200)[0]
        assert value == pytest.approx(math.log(want), abs=0.01)


def test_clean_runs_only_slowly_rule_out_flakiness() -> None:
    # Under a log-odds-uniform rate, n clean runs rule out rates above ~1/n: a fraction of the range.
    flaky = log_flaky_marginal(np.array([0, 0, 0]), np.array([10, 100, 1000]), 1e-4)
    stable = log_stable_marginal([ChainCounts(first_pass=1)] * 3, 1e-4)
    ratio = np.exp(flaky - stable)
    assert 0 < ratio[2] < ratio[1] < ratio[0] < 1


def test_chain_counts_and_inconsistency() -> None:
    c = ChainCounts.from_streams([[False, False, True, True, False], [True]])
    assert (c.first_pass, c.first_fail) == (1, 1)
    assert (c.pass_pass, c.pass_fail, c.fail_fail, c.fail_pass) == (1, 1, 1, 1)
    assert not c.inconsistent
    assert ChainCounts.from_streams([[False, None]]).inconsistent
    assert log_stable_marginal([ChainCounts.from_streams([[False, None]])], 1e-4)[0] == -math.inf


def test_stable_prefers_a_failure_streak_to_scattered_failures() -> None:
    block = ChainCounts.from_streams([[False] * 20 + [True] * 4 + [False] * 20])
    scattered = ChainCounts.from_streams(
        [[False] * 5 + [True] + [False] * 9 + [True] + [False] * 9 + [True] + [False] * 9 + [True] + [False] * 8]
    )
    lb, ls = log_stable_marginal([block, scattered], 1e-4)
    assert lb > ls + 2  # e^2: more than seven times as likely


def test_runner_factor() -> None:
    assert log_runner_factor([0, 0, 0], [10, 10, 10]) == 0.0  # no failure
    assert log_runner_factor([1, 0, 0], [10, 10, 10]) == 0.0  # one failure lands somewhere
    assert log_runner_factor([5], [20]) == 0.0  # one runner
    concentrated = log_runner_factor([9, 0, 0, 0], [10, 10, 10, 10])
    spread = log_runner_factor([2, 2, 3, 2], [10, 10, 10, 10])
    assert concentrated > math.log(5)
    assert math.log(0.5) <= spread < 0


def test_jeffreys_interval() -> None:
    mean, low, high = jeffreys(0, 30)
    assert low == 0.0 and 0 < mean < high < 0.1
    mean, low, high = jeffreys(30, 30)
    assert high == 1.0 and low > 0.9
    few = jeffreys(2, 20)
    many = jeffreys(20, 200)
    assert few[0] == pytest.approx(2.5 / 21) and many[0] == pytest.approx(20.5 / 201)
    assert many[2] - many[1] < few[2] - few[1]
