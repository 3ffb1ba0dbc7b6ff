"""The per-test evidence: how likely a test's outcomes are if it is flaky, and if it is stable.

Two hypotheses about one test, both scored on its *eligible* executions (not skipped, not in a
broken build, see ``prepare``):

* **flaky** — every execution fails independently with one rate ``p``. The prior on ``p`` is
  uniform in log-odds on ``[logit(eps), logit(1 - eps)]`` (a truncated Haldane prior). Flake rates
  span orders of magnitude (Lam et al., ISSRE 2020, measure per-test rates from 1 in 4,000 runs to
  over one in two), so the prior is scale-invariant rather than uniform in ``p``; ``eps``
  (``min_flake_rate``) is the definition we adopt: a test that fails less than once in ``1/eps``
  executions is not called flaky, because no CI history can tell it from a stable one.
* **stable** — the outcome is a function of the code: every execution of one ``(commit, job)``
  agrees, and along each job's commits (ordered by time) the outcome follows a *sticky* chain: with
  probability ``1 - tau`` a commit keeps the previous commit's outcome, otherwise it draws a fresh
  one that fails with rate ``r``. ``r`` has the same prior as the flaky ``p``, so that failure
  counts alone favour neither hypothesis; ``tau`` is uniform on (0, 1), which nests persistent
  regressions (small ``tau``) and commit-independent breakage (``tau = 1``, PR builds interleaved).

What separates the two is therefore structure only: disagreement on one commit is impossible
when stable (the definitive signal), repeated agreement on one commit is cheap when stable and
costs ``p^k`` when flaky, and persistent failure streaks favour stable while scattered single
failures (flips) mildly favour flaky.

Runners enter as a factor on the *allocation* of the failures over runners given their number:
stable tests fail independently of the runner (hypergeometric allocation); a flaky test is
runner-dependent with prior probability ``RUNNER_DEPENDENT_SHARE`` (per-runner rates, Jeffreys),
so the factor is ``(1 - s) + s * BF`` where BF compares the two allocations. With no or one
failure, or one runner, the factor is exactly 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.special import betaln, gammaln, logsumexp

# Quadrature on the log-odds axis; 2001 points keep the error of a 1,000-execution likelihood peak
# (width ~ 2/sqrt(n) in log-odds) below a percent.
_GRID = 2001
# Half of flaky tests are taken to depend on the machine: an agnostic split, stated, not fitted.
RUNNER_DEPENDENT_SHARE = 0.5


def _logit_grid(eps: float, size: int = _GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log p, log(1-p) and log quadrature weights of the truncated log-odds-uniform prior."""
    if not 0.0 < eps < 0.5:
        raise ValueError(f"min_flake_rate must be in (0, 0.5), got {eps}")
    half = np.log((1.0 - eps) / eps)
    z = np.linspace(-half, half, size)
    log_p = -np.logaddexp(0.0, -z)
    log_q = -np.logaddexp(0.0, z)
    log_w = np.full(size, -np.log(size))
    return log_p, log_q, log_w


def log_flaky_marginal(failures: np.ndarray, runs: np.ndarray, eps: float) -> np.ndarray:
    """log P(outcomes | flaky) for each test: ∫ p^f (1-p)^(n-f) dprior(p), order-specific."""
    log_p, log_q, log_w = _logit_grid(eps)
    f = np.asarray(failures, dtype=float)[:, None]
    s = np.asarray(runs, dtype=float)[:, None] - f
    return np.asarray(logsumexp(f * log_p + s * log_q + log_w, axis=1))


@dataclass(frozen=True)
class ChainCounts:
    """Commit-level outcome transitions of one test, summed over its jobs (see module doc)."""

    first_fail: int = 0  # streams whose first commit failed
    first_pass: int = 0
    pass_pass: int = 0
    fail_fail: int = 0
    pass_fail: int = 0
    fail_pass: int = 0
    inconsistent: bool = False  # some (commit, job) both passed and failed

    @classmethod
    def from_streams(cls, streams: Sequence[Sequence[bool | None]]) -> ChainCounts:
        """Count from per-job commit outcome sequences: True failed, False passed, None mixed."""
        c = dict.fromkeys(("first_fail", "first_pass", "pass_pass", "fail_fail", "pass_fail", "fail_pass"), 0)
        mixed = False
        for seq in streams:
            if any(o is None for o in seq):
                mixed = True
                continue
            if not seq:
                continue
            c["first_fail" if seq[0] else "first_pass"] += 1
            for a, b in pairwise(seq):
                key = ("fail" if a else "pass") + "_" + ("fail" if b else "pass")
                c[key] += 1
        return cls(**c, inconsistent=mixed)


def log_stable_marginal(counts: Sequence[ChainCounts], eps: float) -> np.ndarray:
    """log P(outcomes | stable) per test; minus infinity when a commit disagreed with itself."""
    # Commit-level counts are far smaller than execution counts, so coarser grids suffice here.
    log_r, log_1r, log_wr = _logit_grid(eps, 801)
    tau = (np.arange(120) + 0.5) / 120
    log_wt = np.full(tau.size, -np.log(tau.size))
    lr, l1r = log_r[:, None], log_1r[:, None]
    lt, l1t = np.log(tau)[None, :], np.log1p(-tau)[None, :]
    stay_pass = np.logaddexp(l1t, lt + l1r)
    stay_fail = np.logaddexp(l1t, lt + lr)
    out = np.empty(len(counts))
    cache: dict[ChainCounts, float] = {}  # many tests share their counts (all passed, same commits)
    for i, c in enumerate(counts):
        if c.inconsistent:
            out[i] = -np.inf
            continue
        if c in cache:
            out[i] = cache[c]
            continue
        ll = (
            c.first_fail * lr
            + c.first_pass * l1r
            + c.pass_pass * stay_pass
            + c.fail_fail * stay_fail
            + c.pass_fail * (lt + lr)
            + c.fail_pass * (lt + l1r)
        )
        out[i] = cache[c] = float(logsumexp(ll + log_wr[:, None] + log_wt[None, :]))
    return out


def log_runner_factor(failures_by_runner: Sequence[int], runs_by_runner: Sequence[int]) -> float:
    """log[(1 - s) + s * BF]: does the way failures fall on runners say 'machine-dependent'?

    BF = P(allocation | per-runner rates ~ Beta(1/2, 1/2)) / P(allocation | runner-independent),
    both conditional on the total number of failures, so the count itself is not used twice.
    """
    x = np.asarray(failures_by_runner, dtype=int)
    n = np.asarray(runs_by_runner, dtype=int)
    f = int(x.sum())
    if f <= 1 or (n > 0).sum() <= 1 or f >= int(n.sum()):
        return 0.0
    log_choose = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
    log_indep = float(log_choose.sum() - (gammaln(n.sum() + 1) - gammaln(f + 1) - gammaln(n.sum() - f + 1)))
    # Dependent: weight of x_r failures on runner r, then normalise over all allocations with sum f
    # by multiplying the runners' generating polynomials (truncated at degree f).
    poly = np.array([0.0])
    for nr in n:
        k = np.arange(min(nr, f) + 1)
        w = gammaln(nr + 1) - gammaln(k + 1) - gammaln(nr - k + 1) + betaln(0.5 + k, 0.5 + nr - k) - betaln(0.5, 0.5)
        nxt = np.full(min(poly.size + k.size - 1, f + 1), -np.inf)
        for j, wj in enumerate(w):
            span = min(poly.size, nxt.size - j)
            if span > 0:
                nxt[j : j + span] = np.logaddexp(nxt[j : j + span], poly[:span] + wj)
        poly = nxt
    w_obs = log_choose + betaln(0.5 + x, 0.5 + n - x) - betaln(0.5, 0.5)
    log_dep = float(w_obs.sum() - poly[f])
    bf = log_dep - log_indep
    s = RUNNER_DEPENDENT_SHARE
    return float(np.logaddexp(np.log1p(-s), np.log(s) + bf))


def jeffreys(failures: int, runs: int, level: float = 0.95) -> tuple[float, float, float]:
    """Posterior mean and equal-tailed interval of a failure rate under the Jeffreys Beta(1/2, 1/2).

    Jeffreys because it is invariant to reparametrisation and its interval keeps close to nominal
    frequentist coverage even at 0 or n failures, where Wald and Laplace intervals do not
    (Brown, Cai & DasGupta, Statistical Science 2001).
    """
    from scipy.stats import beta

    a, b = failures + 0.5, runs - failures + 0.5
    tail = (1.0 - level) / 2.0
    low = 0.0 if failures == 0 else float(beta.ppf(tail, a, b))
    high = 1.0 if failures == runs else float(beta.ppf(1.0 - tail, a, b))
    return a / (a + b), low, high
