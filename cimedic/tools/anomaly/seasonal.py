"""Anomalies against a daily or weekly pattern: STL on a regularised series, residuals scored robustly.

CI load follows the working day and the week: on the OpenShift periodic job (../shared/data/
ocp-ci-build-metadata) runs started 15–18 h UTC take ~20 % longer than at night; Hive's PR builds are a
third faster at weekends (../shared/data/lrts-build-history, MIT). A run that is slow *for its hour*
is what this detector finds; one that is merely as slow as every afternoon run is not an anomaly.

Regularising: runs arrive irregularly, STL needs a regular grid. The period (1 day or 1 week) is cut
into the finest number of bins of which at least half hold a run (24 hourly bins for a busy job, 4
six-hour bins for a sparse one); each bin holds the median of its runs and empty bins are interpolated.
STL (Cleveland et al. 1990) runs in its robust mode so outlying bins do not bend trend or season.

A period is used only with history spanning at least two of them and only if the runs' detrended values
really differ by phase of the period (Kruskal–Wallis, p < 0.01): most jobs have no seasonality, and STL
on them would be a slower copy of the robust z detector. Of two significant periods the stronger wins.
Each run's residual from trend + season is scored by the residuals' median/MAD (|z| > 3.5). The fit
uses the whole history, so this is a batch detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from cimedic.tools.anomaly.base import MIN_DELTA, Z_THRESHOLD, Anomaly, MetricSeries, robust_center_scale

if TYPE_CHECKING:
    import pandas as pd

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
# Bins per period tried, finest first; the coarsest still resolves night/day or the day of the week.
PERIODS: tuple[tuple[str, timedelta, tuple[int, ...]], ...] = (
    ("daily", DAY, (24, 12, 8, 6, 4)),
    ("weekly", WEEK, (168, 84, 56, 28, 14, 7)),
)
MIN_FILL = 0.5
ALPHA = 0.01
MIN_RUNS = 30


@dataclass(frozen=True)
class SeasonalFit:
    period: str
    bins_per_period: int
    p_value: float
    # Model-space trend + season at each value of the series.
    expected: np.ndarray


def _grid(seconds: np.ndarray, period: timedelta, options: Sequence[int]) -> tuple[int, np.ndarray] | None:
    for bins in options:
        width = period.total_seconds() / bins
        idx = np.floor(seconds / width).astype(int)
        if np.unique(idx).size / (int(idx[-1]) + 1) >= MIN_FILL:
            return bins, idx
    return None


def fit_seasonal(series: MetricSeries) -> SeasonalFit | None:
    """The significant daily or weekly STL fit of ``series`` with the smallest p-value, or None."""
    import pandas as pd
    from scipy.stats import kruskal
    from statsmodels.tsa.seasonal import STL

    if len(series) < MIN_RUNS:
        return None
    at = pd.DatetimeIndex(series.at)
    seconds = np.asarray((at - at[0]).total_seconds(), dtype=float)
    best: SeasonalFit | None = None
    for name, period, options in PERIODS:
        if seconds[-1] < 2 * period.total_seconds():
            continue
        grid = _grid(seconds, period, options)
        if grid is None:
            continue
        bins, idx = grid
        regular = pd.Series(series.y).groupby(idx).median().reindex(range(int(idx[-1]) + 1))
        regular = regular.interpolate(limit_direction="both")
        if regular.size < 2 * bins + 1:
            continue
        fit = STL(regular.to_numpy(), period=bins, robust=True).fit()
        trend = np.asarray(fit.trend)[idx]
        detrended = series.y - trend
        phase = idx % bins
        groups = [detrended[phase == p] for p in np.unique(phase)]
        groups = [g for g in groups if g.size >= 2]
        if len(groups) < 2:
            continue
        p_value = float(kruskal(*groups).pvalue)
        if p_value < ALPHA and (best is None or p_value < best.p_value):
            best = SeasonalFit(name, bins, p_value, trend + np.asarray(fit.seasonal)[idx])
    return best


def score_residuals(
    series: MetricSeries,
    expected: np.ndarray,
    *,
    detector: str,
    threshold: float,
    min_delta: dict[str, float],
) -> list[Anomaly]:
    """Runs whose residual from a fitted expectation (model space) is a robust outlier among all residuals."""
    resid = series.y - expected
    center, scale = robust_center_scale(resid)
    z = (resid - center) / scale
    found: list[Anomaly] = []
    for i in np.flatnonzero(np.abs(z) > threshold):
        mid = float(expected[i] + center)
        if not series.significant(float(series.raw[i]), series.to_raw(mid), min_delta):
            continue
        found.append(
            series.anomaly(
                int(i),
                center=mid,
                scale=scale,
                score=float(z[i]),
                kind="seasonal",
                detector=detector,
                threshold=threshold,
            )
        )
    return found


class SeasonalDetector:
    """What every seasonal model shares: its thresholds, and enough history (two days at least) to see
    a daily pattern at all."""

    def __init__(self, threshold: float = Z_THRESHOLD, min_delta: dict[str, float] | None = None) -> None:
        self.threshold = threshold
        self.min_delta = MIN_DELTA if min_delta is None else min_delta

    def suitable(self, runs: pd.DataFrame, metric: str) -> bool:
        if metric not in runs.columns:
            return False
        known = runs.loc[runs[metric].notna(), "started_at"]
        return len(known) >= MIN_RUNS and bool(known.iloc[-1] - known.iloc[0] >= 2 * DAY)


class STLSeasonal(SeasonalDetector):
    """Runs unusual for their time of day or day of week, on metrics that have such a pattern."""

    name = "stl"

    def detect(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[Anomaly]:
        found: list[Anomaly] = []
        for metric in metrics:
            series = MetricSeries.from_runs(runs, metric)
            fit = fit_seasonal(series)
            if fit is not None:
                found += score_residuals(
                    series, fit.expected, detector=self.name, threshold=self.threshold, min_delta=self.min_delta
                )
        return found
