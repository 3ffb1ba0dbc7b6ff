"""Level shifts ("the build got 30 % slower since Tuesday"): a two-sided CUSUM on robust z-scores.

Page's CUSUM accumulates each run's excess over ``k`` robust σ and alarms when the sum passes ``h``.
``k = 0.5`` is the textbook choice for detecting a shift of 1σ fastest (k = δ/2), and ``h = 5`` gives an
in-control average run length of about 465 runs per side for Gaussian noise with a shift of 1σ caught
after about 10 runs and one of 2σ after 4 (Montgomery, *Introduction to Statistical Quality Control*,
CUSUM tables). Each run's z is clipped at ±3 so a single spike adds at most 2.5: one outlier never
alarms, a sustained change does. The reference level is the median of the 30 runs before, its spread
the robust σ of up to 100 (see ``cusum_shifts``), both frozen while an excursion is under way so the
shifted runs do not drag their own baseline along. Scoring starts once a job has 30 runs.

On alarm the step is located by a two-level L1 fit around it (``refine_onset``) and that onset is what
gets reported. CI durations are autocorrelated (lag-1 correlation 0.1–0.6 on the LRTS and OpenShift
series: load comes in waves), so CUSUM also alarms on bursts of a few slow runs that then fade. An alarm
is therefore confirmed only if the median of the 15 runs *after* it (runs that played no part in raising
it) still differs from the level before the onset by 2.58 standard errors of the difference of the two
medians, that error widened for the serial correlation of the runs (AR(1)-like: n runs count as
n·(1−ρ)/(1+ρ) independent ones). Confirmed, the baseline restarts from the onset and the new level
becomes the norm; not confirmed, the sums reset and the old baseline stays. On Gaussian noise this gives
about one false shift per 7,500 runs. The verdict is causal: it is taken once those 15 runs exist and
uses nothing after them. A shift is reported only if its size (median from the onset to the verdict
against the median before) is at least 10 % (log-scaled metrics) and ``MIN_DELTA`` in the metric's units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cimedic.tools.anomaly.base import (
    MEDIAN_SE,
    MIN_DELTA,
    Z_THRESHOLD,
    Anomaly,
    MetricSeries,
    robust_center_scale,
)
from cimedic.tools.anomaly.robust import MIN_PERIODS, WINDOW

if TYPE_CHECKING:
    import pandas as pd

K = 0.5
H = 5.0
CLIP = 3.0
MIN_SHIFT = math.log(1.10)
# A level must hold for half the rolling window after the alarm, the point at which the robust z
# detector's own median would adopt it as the new normal; shorter excursions are bursts, which that
# detector reports as spikes.
CONFIRM_RUNS = WINDOW // 2
# The two medians must differ by z_0.995 ≈ 2.58 standard errors (a two-sided 1 % test; medians of 15
# and 30 runs are close enough to normal for it), the error widened for the serial correlation of the
# runs before the onset; spread and correlation are estimated from up to 100 of them.
CONFIRM_Z = 2.58
RHO_HISTORY = 100
RHO_MAX = 0.9


def lag1_correlation(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``x`` winsorised at ±3 robust σ (outliers would dominate it), in [0, 0.9]."""
    if x.size < MIN_PERIODS:
        return 0.0
    center, scale = robust_center_scale(x)
    w = np.clip(x, center - 3 * scale, center + 3 * scale)
    if float(np.std(w[1:])) == 0.0 or float(np.std(w[:-1])) == 0.0:
        return 0.0
    rho = float(np.corrcoef(w[1:], w[:-1])[0, 1])
    return min(RHO_MAX, max(0.0, rho)) if math.isfinite(rho) else 0.0


def median_difference_se(scale: float, n_before: int, n_after: int, rho: float) -> float:
    """Standard error of the difference of two medians of AR(1)-correlated runs with spread ``scale``.

    A median's error is 1.2533·σ/√n for independent values; serial correlation ρ shrinks the effective
    number of runs to n·(1−ρ)/(1+ρ).
    """
    return MEDIAN_SE * scale * math.sqrt((1.0 / n_before + 1.0 / n_after) * (1.0 + rho) / (1.0 - rho))


def refine_onset(y: np.ndarray, lo: int, first: int, last: int, hi: int) -> int:
    """The split τ in [first, last] of ``y[lo:hi]`` into two constant levels with the least absolute error.

    CUSUM's own onset (where the sum last left 0) is biased: noise before a shift often starts the
    excursion early, and unlucky first shifted runs start it late. An L1 two-segment fit over the runs
    around it locates the step itself, and is as robust to spikes as the medians it uses.
    """

    def cost(tau: int) -> float:
        a, b = y[lo:tau], y[tau:hi]
        return float(np.abs(a - np.median(a)).sum() + np.abs(b - np.median(b)).sum())

    return min(range(first, last + 1), key=cost)


@dataclass(frozen=True)
class Shift:
    onset: int
    # The run at which the shift is decided: the alarm plus the runs that confirm it.
    decided: int
    # Model-space level before the onset (center ± scale) and the median from the onset to the verdict.
    center: float
    scale: float
    after: float


def cusum_shifts(
    y: np.ndarray,
    window: int = WINDOW,
    min_periods: int = MIN_PERIODS,
    k: float = K,
    h: float = H,
    clip: float = CLIP,
    confirm: int = CONFIRM_RUNS,
) -> list[Shift]:
    """Every confirmed alarm of a two-sided robust CUSUM over ``y`` (model space), oldest first."""
    shifts: list[Shift] = []
    seg_start = 0
    # Spread and serial correlation carried over a confirmed shift until the new level has a window of
    # its own: a shift moves the level, rarely the noise around it, and a spread estimated from the
    # first 10 runs of a new level is unreliable enough to "confirm" a shift straight back.
    carried: tuple[float, float] | None = None
    s_hi = s_lo = 0.0
    start_hi: int | None = None
    start_lo: int | None = None
    for i in range(y.size):
        ref_end = min(i, start_hi if start_hi is not None else i, start_lo if start_lo is not None else i)
        past = y[max(seg_start, ref_end - window) : ref_end]
        if past.size < (window if carried is None else min_periods):
            continue
        # Level from the last 30 runs, spread from up to 100: a spread estimated from 30 runs is often
        # too small by chance, and each such stretch would raise a false alarm (with 30 the in-control
        # run length on Gaussian noise fell from ~230 runs to ~70).
        center, _ = robust_center_scale(past)
        own = y[max(seg_start, ref_end - RHO_HISTORY) : ref_end]
        scale = carried[0] if carried is not None and own.size < window else robust_center_scale(own)[1]
        z = min(clip, max(-clip, (y[i] - center) / scale))
        s_hi = max(0.0, s_hi + z - k)
        s_lo = max(0.0, s_lo - z - k)
        start_hi = (i if start_hi is None else start_hi) if s_hi > 0.0 else None
        start_lo = (i if start_lo is None else start_lo) if s_lo > 0.0 else None
        if s_hi <= h and s_lo <= h:
            continue
        # An alarming side always has a running excursion; `i` only satisfies the type checker.
        up = s_hi > h
        start = start_hi if up and start_hi is not None else (start_lo if start_lo is not None else i)
        if i + confirm >= y.size:
            break  # not enough runs after the alarm yet: a sweep decides once they exist
        lo = max(seg_start, start - window)
        end = i + 1 + confirm
        onset = refine_onset(y, lo, max(lo + min_periods // 2, start - window // 2), i, end)
        before = y[max(seg_start, onset - window) : onset]
        if before.size < min_periods:
            before = past
        c0, _ = robust_center_scale(before)
        s_hi = s_lo = 0.0
        start_hi = start_lo = None
        history = y[max(seg_start, onset - RHO_HISTORY) : onset]
        if history.size < before.size:
            history = before
        c_long, sc0 = robust_center_scale(history)
        rho = lag1_correlation(history)
        if carried is not None and history.size < window:
            sc0, rho = carried
        se = median_difference_se(sc0, history.size, confirm, rho)
        # Sustained: the runs *after* the alarm, which played no part in raising it, still sit away from
        # the level of the runs before the onset (the longer history: the split point was chosen to make
        # the last few look different). A burst that faded is no new level: the baseline stays.
        later = float(np.median(y[i + 1 : end]))
        if ((later - c_long) if up else (c_long - later)) >= CONFIRM_Z * se:
            shifts.append(Shift(onset, end - 1, c0, sc0, float(np.median(y[onset:end]))))
            seg_start = onset
            carried = (sc0, rho)
    return shifts


class CusumShift:
    """Sustained changes of level of each metric, reported at their onset."""

    name = "cusum"

    def __init__(
        self,
        window: int = WINDOW,
        min_periods: int = MIN_PERIODS,
        k: float = K,
        h: float = H,
        min_shift: float = MIN_SHIFT,
        min_delta: dict[str, float] | None = None,
    ) -> None:
        self.window = window
        self.min_periods = min_periods
        self.k = k
        self.h = h
        self.min_shift = min_shift
        self.min_delta = MIN_DELTA if min_delta is None else min_delta

    def suitable(self, runs: pd.DataFrame, metric: str) -> bool:
        # A first level of `window` runs, and the runs that confirm a shift after it.
        return metric in runs.columns and int(runs[metric].notna().sum()) > self.window + CONFIRM_RUNS

    def detect(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[Anomaly]:
        found: list[Anomaly] = []
        for metric in metrics:
            series = MetricSeries.from_runs(runs, metric)
            for shift in cusum_shifts(series.y, self.window, self.min_periods, self.k, self.h):
                effect = shift.after - shift.center
                if series.logged and abs(effect) < self.min_shift:
                    continue
                observed, expected = series.to_raw(shift.after), series.to_raw(shift.center)
                if not series.significant(observed, expected, self.min_delta):
                    continue
                found.append(
                    series.anomaly(
                        shift.onset,
                        center=shift.center,
                        scale=shift.scale,
                        score=effect / shift.scale,
                        kind="level-shift",
                        detector=self.name,
                        observed=observed,
                        threshold=Z_THRESHOLD,
                    )
                )
        return found
