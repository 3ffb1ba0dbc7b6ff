"""Which fix works for which failure: Beta posteriors per (failure kind, action), Thompson sampling.

Each verified outcome (did the retry pass? did the quarantine stop the failures?) and each human
verdict ("that was right" / "that was wrong") is a success or a failure for the pair (scope, action).
A scope is a failure fingerprint (the same failure seen again) or, more coarsely, a category: a new
fingerprint borrows its category's record at half weight, so learning carries over to failures
that look alike without drowning the fingerprint's own record once it has one.

Thompson sampling draws one plausible success rate per allowed action and takes the best draw: the
planner mostly picks what has worked, still tries what is uncertain, and stops trying what keeps
failing (an action whose draw falls under ``floor`` is not worth its CI minutes; people get it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cimedic.models import ActionKind

CATEGORY_WEIGHT = 0.5


@dataclass
class Tally:
    fixed: float = 0.0
    failed: float = 0.0


@dataclass(frozen=True)
class Estimate:
    kind: ActionKind
    mean: float
    low: float  # 5th percentile of the posterior
    high: float  # 95th percentile
    evidence: float  # outcomes behind it (category outcomes count half)


class Posteriors:
    def __init__(self, prior: tuple[float, float] = (1.0, 1.0)) -> None:
        self.prior = prior
        self.tallies: dict[tuple[str, ActionKind], Tally] = defaultdict(Tally)

    def record(self, scope: str, kind: ActionKind, fixed: bool, weight: float = 1.0) -> None:
        tally = self.tallies[(scope, kind)]
        if fixed:
            tally.fixed += weight
        else:
            tally.failed += weight

    def beta(self, kind: ActionKind, fingerprint: str | None, category: str | None) -> tuple[float, float]:
        """Beta parameters for ``kind`` on this failure: the fingerprint's record plus half its category's."""
        a, b = self.prior
        if category:
            t = self.tallies.get((f"category:{category}", kind), Tally())
            a, b = a + CATEGORY_WEIGHT * t.fixed, b + CATEGORY_WEIGHT * t.failed
        if fingerprint:
            t = self.tallies.get((f"fingerprint:{fingerprint}", kind), Tally())
            a, b = a + t.fixed, b + t.failed
        return a, b

    def learn(self, kind: ActionKind, fingerprint: str | None, category: str | None, fixed: bool) -> None:
        """One outcome, counted for its fingerprint and its category."""
        if fingerprint:
            self.record(f"fingerprint:{fingerprint}", kind, fixed)
        if category:
            self.record(f"category:{category}", kind, fixed)

    def estimate(self, kind: ActionKind, fingerprint: str | None, category: str | None) -> Estimate:
        from scipy.stats import beta as beta_dist

        a, b = self.beta(kind, fingerprint, category)
        low, high = beta_dist.ppf([0.05, 0.95], a, b)
        return Estimate(kind, a / (a + b), float(low), float(high), a + b - sum(self.prior))


def choose(
    candidates: Sequence[ActionKind],
    posteriors: Posteriors,
    fingerprint: str | None,
    category: str | None,
    rng: np.random.Generator,
    floor: float = 0.2,
) -> ActionKind | None:
    """The candidate with the best Thompson draw, or None when even the best draw is under ``floor``."""
    best: tuple[float, ActionKind] | None = None
    for kind in candidates:
        a, b = posteriors.beta(kind, fingerprint, category)
        draw = float(rng.beta(a, b))
        if best is None or draw > best[0]:
            best = (draw, kind)
    return best[1] if best is not None and best[0] >= floor else None


def from_outcomes(outcomes: Iterable[tuple[ActionKind, str | None, str | None, bool]]) -> Posteriors:
    """Posteriors from recorded (action, fingerprint, category, fixed) outcomes."""
    posteriors = Posteriors()
    for kind, fingerprint, category, fixed in outcomes:
        posteriors.learn(kind, fingerprint, category, fixed)
    return posteriors
