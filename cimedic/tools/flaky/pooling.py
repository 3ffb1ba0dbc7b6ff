"""Partial pooling of flakiness within a test class: siblings share their fixtures and resources.

Flaky tests cluster: tests of one class share set-up, ports, threads and external services, and a
cause of flakiness in those tends to touch several of them (Parry et al., "Systemic Flakiness",
2025; Lam et al., ISSRE 2020 report whole classes of network tests flaky together). So each test's
flaky indicator ``z`` is drawn with a rate ``theta`` of its group (by default its class), and the
groups' rates share one Beta with mean ``mu`` and concentration ``kappa``:

    theta_g ~ Beta(mu * kappa, (1 - mu) * kappa),   z_i ~ Bernoulli(theta_g),
    outcomes_i | z_i  ~  flaky / stable likelihoods (``bayes``).

``mu`` and ``kappa`` are not fixed: they get a hyperprior and are integrated out on a grid, so the
frame itself says how much siblings tell about each other. ``mu`` ~ Beta(1/2, 9/2): weakly
informative, worth five tests, saying only that flaky tests are a minority of a suite (every
empirical study finds so: Luo et al., FSE 2014; Micco, Google 2016, ~16% of tests ever flaked;
Lam et al., ICST 2019) — an agnostic Jeffreys prior would let a frame of two tests, one flaky, call
the other flaky too. ``kappa`` is log-uniform over [0.1, 1000] (scale-free). A suite whose flaky
tests are scattered ends with a large ``kappa`` (no class effect) and a small ``mu`` (flakiness
is rare), and one with flaky classes ends with a small ``kappa``. Every ``theta_g`` is integrated
exactly (Beta-binomial over the number of flaky tests in the group; the sum over configurations is
a polynomial product).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, logsumexp

# mu on a log-odds grid, so base rates of a fraction of a percent (large suites) are resolved.
_MU = 1.0 / (1.0 + np.exp(-np.linspace(-8.0, 4.0, 61)))
_MU_PRIOR = (0.5, 4.5)
_KAPPA = np.logspace(-1.0, 3.0, 13)


@dataclass(frozen=True)
class Pooled:
    """Posterior flaky probabilities, and what the frame said about the hyperparameters."""

    probability: np.ndarray
    base_rate: float  # posterior mean of mu: the share of flaky tests in the frame
    concentration: float  # posterior median of kappa: small = classes are flaky together


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu, kappa = np.meshgrid(_MU, _KAPPA, indexing="ij")
    a, b = (mu * kappa).ravel(), ((1.0 - mu) * kappa).ravel()
    # Beta density times the Jacobian mu (1 - mu) of the log-odds grid; kappa is flat in log.
    pa, pb = _MU_PRIOR
    log_prior = (pa * np.log(mu) + pb * np.log1p(-mu)).ravel()
    return a, b, log_prior - logsumexp(log_prior)


def _poly(factors: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients of prod_j (f0_j + f1_j x), rescaled to max 1, and the log of the scale."""
    coef, scale = np.array([1.0]), 0.0
    for f0, f1 in factors:
        nxt = np.zeros(coef.size + 1)
        nxt[:-1] += coef * f0
        nxt[1:] += coef * f1
        top = nxt.max()
        coef, scale = nxt / top, scale + float(np.log(top))
    return coef, scale


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(x), dtype=float)


def pool(
    log_flaky: np.ndarray,
    log_stable: np.ndarray,
    groups: Sequence[Hashable],
) -> Pooled:
    """Posterior P(flaky) of every test given every test's evidence (see module doc)."""
    a, b, log_prior = _grid()
    n_tests = len(groups)
    # Per test: log P(z=1 | data, grid) - and per group: log marginal on the grid.
    log_num = np.zeros((n_tests, a.size))
    log_den = np.zeros((n_tests, a.size))
    log_marg = np.zeros(a.size)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        l1, l0 = log_flaky[idx], log_stable[idx]
        top = np.maximum(l0, l1)
        factors = np.stack([np.exp(l0 - top), np.exp(l1 - top)], axis=1)
        n = len(idx)
        coef, scale = _poly(factors)
        m = np.arange(n + 1)
        log_marg += float(top.sum()) + scale
        log_marg += logsumexp(_log(coef)[None, :] + betaln(a[:, None] + m, b[:, None] + n - m), axis=1) - betaln(a, b)
        # Leave-one-out polynomials: tests with identical factors share them, so compute each once.
        seen: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
        for pos, i in enumerate(idx):
            key = (round(float(factors[pos, 0]), 12), round(float(factors[pos, 1]), 12))
            if key not in seen:
                others, _ = _poly(np.delete(factors, pos, axis=0))
                lq = _log(others)[None, :]
                k = np.arange(n)
                yes = logsumexp(lq + betaln(a[:, None] + k + 1, b[:, None] + n - 1 - k), axis=1)
                no = logsumexp(lq + betaln(a[:, None] + k, b[:, None] + n - k), axis=1)
                seen[key] = (yes + _log(np.array([factors[pos, 1]])), no + _log(np.array([factors[pos, 0]])))
            log_num[i], log_den[i] = seen[key]
    log_post = log_prior + log_marg
    log_post -= logsumexp(log_post)
    weight = np.exp(log_post)
    p_given_grid = np.exp(log_num - np.logaddexp(log_num, log_den))
    prob = np.clip(p_given_grid @ weight, 0.0, 1.0)
    mu = a / (a + b)
    kappa = a + b
    order = np.argsort(kappa)
    cdf = np.cumsum(weight[order])
    return Pooled(
        probability=prob,
        base_rate=float(mu @ weight),
        concentration=float(kappa[order][np.searchsorted(cdf, 0.5)]),
    )
