"""Runs that are unusual as a whole: an IsolationForest over each run's metrics together.

A run can be normal in each metric alone and still odd in combination (a normal duration with half the
tests missing; a long queue and a short build), which the per-metric detectors cannot see. Features:
the metrics asked for plus test counts and runner CPU/memory when the history records them for most
runs; each is log-scaled if never negative and standardised by its median and robust σ, so no metric
dominates by its units. Missing values become the median (a neutral 0 after standardising).

Threshold ("contamination"): 1 % of a job's runs at most, and only runs whose isolation score is above
0.5, Liu, Ting & Zhou's (2008) boundary below which a point is not isolated faster than an average one
(scikit-learn's ``contamination="auto"``). The multivariate view is there to surface the few runs that
are odd as a whole for a person to look at, so it works to a budget: on real histories the score
distribution has a long tail (PR builds that run a fraction of the suites, runs that die early), and
a rule relative to the bulk flagged 3–18 % of the LRTS and OpenShift runs. The 0.5 boundary keeps a
homogeneous job from having its quota filled with ordinary runs. The forest is fixed-seeded, so a
history always gives the same verdicts. It is fitted on the whole history (not causal), so it is a
batch view for ``cimedic anomalies``; the online verdicts come from the robust z and CUSUM detectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cimedic.tools.anomaly.base import MIN_DELTA, Z_THRESHOLD, Anomaly, MetricSeries, robust_center_scale

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ("duration_s", "queue_s", "tests_passed", "tests_failed", "tests_skipped", "cpu_pct", "mem_mb")
# A feature recorded for fewer runs than this share would mostly be imputed medians: left out.
MIN_COVERAGE = 0.8
# Below ~50 runs the forest's path lengths, and the spread of its scores, are mostly noise.
MIN_RUNS = 50
# The isolation-score boundary of Liu et al. (2008); scikit-learn's score_samples is its negative.
SCORE_BOUNDARY = 0.5
CONTAMINATION = 0.01
SEED = 0
TREES = 200


class IsolationForestDetector:
    """Runs whose combination of metrics is isolated quickly by random splits."""

    name = "iforest"

    def __init__(
        self,
        features: Sequence[str] = FEATURES,
        min_runs: int = MIN_RUNS,
        contamination: float = CONTAMINATION,
        threshold: float = Z_THRESHOLD,
        seed: int = SEED,
        min_delta: dict[str, float] | None = None,
    ) -> None:
        self.features = tuple(features)
        self.min_runs = min_runs
        self.contamination = contamination
        self.threshold = threshold
        self.seed = seed
        self.min_delta = MIN_DELTA if min_delta is None else min_delta

    def suitable(self, runs: pd.DataFrame, metric: str) -> bool:
        return len(runs) >= self.min_runs and metric in self._usable(runs, [metric])

    def _usable(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
        names = list(dict.fromkeys([*metrics, *self.features]))
        return [c for c in names if c in runs.columns and runs[c].notna().mean() >= MIN_COVERAGE]

    def detect(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[Anomaly]:
        from sklearn.ensemble import IsolationForest

        names = self._usable(runs, metrics)
        if len(runs) < self.min_runs or not names:
            return []
        series = [MetricSeries.from_runs(runs, c) for c in names]
        z = np.zeros((len(runs), len(names)))
        stats: list[tuple[float, float]] = []
        for j, s in enumerate(series):
            center, scale = robust_center_scale(s.y)
            stats.append((center, scale))
            z[s.rows, j] = (s.y - center) / scale
        forest = IsolationForest(n_estimators=TREES, random_state=self.seed)
        forest.fit(z)
        score = -forest.score_samples(z)
        cut = max(SCORE_BOUNDARY, float(np.quantile(score, 1.0 - self.contamination)))
        # Reported score: how far the run's isolation score sits above the bulk, in robust σ.
        s_center, s_scale = robust_center_scale(score)
        score_z = (score - s_center) / s_scale
        found: list[Anomaly] = []
        for row in np.flatnonzero(score > cut):
            # Name the metric the run deviates most in; that is what a reader checks first.
            j = int(np.argmax(np.abs(z[row])))
            s = series[j]
            pos = np.flatnonzero(s.rows == row)
            if pos.size == 0:
                continue  # the most deviating value was imputed: nothing observed to report
            i = int(pos[0])
            center, scale = stats[j]
            if not s.significant(float(s.raw[i]), s.to_raw(center), self.min_delta):
                continue
            sign = 1.0 if z[row, j] >= 0 else -1.0
            found.append(
                s.anomaly(
                    i,
                    center=center,
                    scale=scale,
                    score=sign * float(score_z[row]),
                    kind="multivariate",
                    detector=self.name,
                    threshold=self.threshold,
                )
            )
        return found
