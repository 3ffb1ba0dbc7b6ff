"""Rank the tests of a history by how likely they are flaky: ``rank_flaky``.

How the signals combine (all in one probability, no weights to tune):

1. **Definitive** — a test that passed and failed on one ``(commit, job)`` (across runs, or failed
   then passed on a rerun attempt) cannot be stable: its stable likelihood is zero and its score 1.
2. **Outcome structure** — otherwise the score is the posterior probability of the flaky
   hypothesis against the stable one (``bayes``): repeated agreement on a commit favours stable,
   persistent failure streaks favour stable (a regression), scattered single failures and flips
   mildly favour flaky. The runner factor multiplies the flaky likelihood when failures pile up on
   some machines.
3. **Siblings** — the prior probability comes from the test's class, pooled with every other
   class of the frame (``pooling``): no fixed base rate, the frame estimates it.

The decision rule is fixed from first principles: a test is reported when that posterior is at
least ``min_score`` (0.5: more likely flaky than not).

Durations are reported, not scored. The duration of a failing execution says *how* a test flakes
(a failure far slower than the passes, at a timeout, points to timing; failing fast is what any
assertion does), so it names ``kind``; but no labelled history tells how much more likely it makes
flakiness than a regression, and on the Lam et al. reruns (``bench/flaky_reruns.py``) the passing
durations of flaky and stable tests that had not failed were indistinguishable (leave-one-project-
out AUC 0.37 at 10 runs, 0.53 at 30).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from cimedic.tools.flaky.bayes import jeffreys, log_flaky_marginal, log_runner_factor, log_stable_marginal
from cimedic.tools.flaky.models import FlakySignals, FlakyTest
from cimedic.tools.flaky.pooling import pool
from cimedic.tools.flaky.prepare import Eligibility, eligible
from cimedic.tools.flaky.signals import TIMING_Z, Signals, compute

if TYPE_CHECKING:
    import pandas as pd

# A Bayes factor of 10 is "strong" on Jeffreys' scale: only then do we name the machine the mechanism.
_MACHINE_BF = 10.0
_PARAMS = re.compile(r"\[.*\]$")


class FlakyDetector(Protocol):
    """A ranking of flaky tests from a tests frame (``rank_flaky``, or the ``naive_flaky`` baseline)."""

    def __call__(self, frame: pd.DataFrame, /, *, min_runs: int = ...) -> list[FlakyTest]: ...


def class_of(test: str) -> str:
    """``pkg.Class.test_x[param.1]`` -> ``pkg.Class``; a name without a dot is its own class."""
    base = _PARAMS.sub("", test)
    return base.rsplit(".", 1)[0] if "." in base else test


def _signals(frame: pd.DataFrame, rules: Eligibility) -> tuple[list[tuple[str, str]], list[Signals], pd.Series]:
    df, dropped = eligible(frame, rules)
    has_job = "job_duration_s" in df.columns
    names = ["failed", "job", "commit", "run_id", "attempt", "runner", "duration_s", "message"]
    if has_job:
        names.append("job_duration_s")
    arrays = {c: df[c].to_numpy() for c in names}
    keys: list[tuple[str, str]] = []
    sigs: list[Signals] = []
    for key, idx in df.groupby(["project", "test"], sort=True).indices.items():
        keys.append((str(key[0]), str(key[1])))
        sigs.append(compute({c: a[idx] for c, a in arrays.items()}, has_job))
    return keys, sigs, dropped


def _result(key: tuple[str, str], s: Signals, score: float, runner_lf: float, dropped: int) -> FlakyTest:
    mean, low, high = jeffreys(s.failures, s.runs)
    if runner_lf >= float(np.log(0.5 + 0.5 * _MACHINE_BF)):
        kind: Literal["timing", "machine", "unknown"] = "machine"
    elif s.failure_z is not None and s.failure_z >= TIMING_Z:
        kind = "timing"
    else:
        kind = "unknown"
    assert s.impact is not None
    return FlakyTest(
        test=key[1],
        project=key[0],
        score=round(min(max(score, 0.0), 1.0), 6),
        flake_rate=mean,
        interval=(low, high),
        runs=s.runs,
        failures=s.failures,
        commits_with_both=s.commits_with_both,
        flips=s.flips,
        definitive=s.commits_with_both > 0,
        excluded_broken=dropped,
        evidence=s.evidence,
        impact=s.impact,
        signals=FlakySignals(
            flip_rate=round(s.flip_rate, 6),
            runner_log_factor=round(runner_lf, 6),
            failing_runners=s.failing_runners(),
            duration_bimodality=s.bimodality,
            failure_duration_z=s.failure_z,
            kind=kind,
        ),
    )


def _order(t: FlakyTest) -> tuple[float, float, float, str, str]:
    # Most likely flaky first; among equals (every definitive test scores 1) the costliest first.
    return (-t.score, -t.impact.ci_minutes_wasted, -t.flake_rate, t.project, t.test)


def rank_flaky(
    frame: pd.DataFrame,
    *,
    min_runs: int = 5,
    min_score: float = 0.5,
    min_flake_rate: float = 1e-4,
    pool_by: Literal["class", "test"] = "class",
    window: int | None = 500,
    broken_fraction: float = 0.5,
    broken_min_tests: int = 10,
) -> list[FlakyTest]:
    """Flaky tests of a tests frame, most likely (then costliest) first.

    Args:
        frame: the history store's tests frame (columns in ``prepare``); an optional
            ``job_duration_s`` column makes ``ci_minutes_wasted`` count whole failed jobs.
        min_runs: report only tests with at least this many eligible executions (all tests still
            inform the pooled prior).
        min_score: report only tests whose posterior probability of being flaky is at least this;
            0.5 is the decision "more likely flaky than not", 0 lists every test.
        min_flake_rate: the smallest failure rate we call flaky (the prior's lower bound, ``bayes``).
        pool_by: ``"class"`` shares evidence between tests of one class; ``"test"`` only through
            the frame-wide base rate.
        window: the most recent eligible executions per test that count (None: all).
        broken_fraction, broken_min_tests: a job execution with at least ``broken_min_tests``
            tests of which at least ``broken_fraction`` failed is a broken build; its executions
            are left out.
    """
    rules = Eligibility(broken_fraction=broken_fraction, broken_min_tests=broken_min_tests, window=window)
    keys, sigs, dropped = _signals(frame, rules)
    if not keys:
        return []
    runner_lf = np.array(
        [
            log_runner_factor(list(s.failures_by_runner.values()), list(s.runs_by_runner.values()))
            if len([r for r in s.runs_by_runner if r]) > 1
            else 0.0
            for s in sigs
        ]
    )
    log_flaky = log_flaky_marginal(
        np.array([s.failures for s in sigs]), np.array([s.runs for s in sigs]), min_flake_rate
    )
    log_stable = log_stable_marginal([s.chain for s in sigs], min_flake_rate)
    groups: list[Hashable] = [(p, class_of(t) if pool_by == "class" else t) for p, t in keys]
    prob = pool(log_flaky + runner_lf, log_stable, groups).probability
    out = [
        _result(k, s, float(p), float(lf), int(dropped.get(k, 0)))
        for k, s, p, lf in zip(keys, sigs, prob, runner_lf, strict=True)
        if s.runs >= min_runs and p >= min_score
    ]
    return sorted(out, key=_order)


def naive_flaky(frame: pd.DataFrame, /, *, min_runs: int = 1) -> list[FlakyTest]:
    """The baseline: flaky iff it both passed and failed on one (commit, job); score 1 or absent."""
    keys, sigs, dropped = _signals(frame, Eligibility(window=None))
    out = [
        _result(k, s, 1.0, 0.0, int(dropped.get(k, 0)))
        for k, s in zip(keys, sigs, strict=True)
        if s.runs >= min_runs and s.commits_with_both > 0
    ]
    return sorted(out, key=_order)
