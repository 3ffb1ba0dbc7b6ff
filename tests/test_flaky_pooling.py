"""Partial pooling of flakiness over a test's class, with the base rate learned from the frame."""

from __future__ import annotations

import numpy as np

from cimedic.tools.flaky.pooling import pool

DEFINITIVE = (0.0, -np.inf)  # (log flaky, log stable): a test that disagreed with itself on a commit
AMBIGUOUS = (np.log(0.6), np.log(1.0))  # clean runs: a little more likely stable than flaky


def _pool(tests: list[tuple[str, tuple[float, float]]]) -> np.ndarray:
    lf = np.array([t[1][0] for t in tests])
    ls = np.array([t[1][1] for t in tests])
    return pool(lf, ls, [t[0] for t in tests]).probability


def test_definitive_tests_are_certain_and_siblings_share_suspicion() -> None:
    tests = [("Net", DEFINITIVE)] * 4 + [("Net", AMBIGUOUS)]
    tests += [(f"Core{i}", AMBIGUOUS) for i in range(10)] + [("Solo", DEFINITIVE)]
    p = _pool(tests)
    assert np.allclose(p[:4], 1.0) and p[-1] == 1.0
    assert p[4] > 0.5 > p[5]  # the quiet sibling of four flaky tests, against a quiet test elsewhere


def test_scattered_flaky_tests_give_no_class_effect() -> None:
    # One flaky test per class among many quiet siblings: a sibling's flakiness says little.
    tests = []
    for c in range(8):
        tests.append((f"C{c}", DEFINITIVE))
        tests += [(f"C{c}", AMBIGUOUS)] * 9
    pooled = pool(np.array([t[1][0] for t in tests]), np.array([t[1][1] for t in tests]), [t[0] for t in tests])
    quiet = pooled.probability[1]
    assert quiet < 0.2
    assert 0.05 < pooled.base_rate < 0.25


def test_a_quiet_frame_has_a_low_base_rate() -> None:
    pooled = pool(np.full(500, np.log(0.3)), np.zeros(500), [f"C{i}" for i in range(500)])
    assert pooled.base_rate < 0.02
    assert pooled.probability.max() < 0.02
