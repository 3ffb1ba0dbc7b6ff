"""What every anomaly detector shares: the ``Anomaly`` record, the ``Detector`` Protocol, and robust scales.

All detectors score in a *model space*: ``log1p`` of a metric that is never negative (durations, queue
times, test counts, memory), the raw value otherwise. CI timings are right-skewed and their noise is
multiplicative (a job that takes 2 h wobbles by minutes, one that takes 2 min by seconds): on the LRTS
build durations (../shared/data/lrts-build-history, MIT) the log brings the skewness of every project's
durations from 1.9–26 down to 0.45–0.63, so one threshold means "this many times the usual relative
spread" on every job. Scales are median/MAD based, because the history being scored holds the very
outliers we look for and a standard deviation would be inflated by them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, SupportsInt, cast

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["spike", "level-shift", "multivariate", "seasonal"]

# Iglewicz & Hoaglin (1993) recommend |modified z| > 3.5 as the outlier rule for median/MAD scores: it is
# the one threshold every detector here applies to its robust z-score, so their verdicts are comparable.
Z_THRESHOLD = 3.5
# Consistency constants: for Gaussian data these turn the MAD and the mean absolute deviation into σ.
MAD_TO_SIGMA = 1.4826
MEANAD_TO_SIGMA = 1.2533
# The standard error of a median of n Gaussian values is this times σ/√n (√(π/2)).
MEDIAN_SE = 1.2533
# The smallest spread ever assumed, in model space (≈1 % for log-scaled metrics): a window where every
# run took exactly the same time says the job is steady, not that a 0.1 % wobble is an outlier.
SCALE_FLOOR = 0.01
# Practical significance, in the metric's own units: a deviation smaller than this is never reported,
# however unusual. Below half a minute no one acts on a CI timing, and near zero (queue times that are
# usually 0 s) every second would otherwise be "infinitely" many MADs away.
MIN_DELTA: dict[str, float] = {"duration_s": 30.0, "queue_s": 30.0}


class Anomaly(BaseModel):
    """One unusual run (or the onset of a change) of one metric of one job.

    ``score`` is signed and in robust standard deviations of the model space (positive: higher than
    expected). ``expected_low``/``expected_high`` bound what the detector considered normal.
    """

    project: str
    job: str
    run_id: str
    # Set when the runs frame has an ``attempt`` column (a re-run of the same run id is its own run).
    attempt: int | None = None
    metric: str
    at: datetime
    observed: float
    expected: float
    expected_low: float
    expected_high: float
    score: float
    kind: Kind
    detector: str
    likely_causes: list[str] = Field(default_factory=list)
    # Other detectors that flagged the same run and metric (merged into this record by the orchestrator).
    confirmed_by: list[str] = Field(default_factory=list)


class Detector(Protocol):
    """One way of finding anomalies in the runs of one group (one project/job), oldest run first.

    ``runs`` follows the runs-frame contract (see :mod:`cimedic.tools.anomaly.orchestrate`): at least
    ``project``, ``job``, ``run_id``, ``started_at`` and the metric columns, sorted by ``started_at``.
    """

    name: str

    def suitable(self, runs: pd.DataFrame, metric: str) -> bool:
        """Whether this group holds enough usable history of ``metric`` for this detector."""
        ...

    def detect(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[Anomaly]: ...


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a σ-consistent robust spread of ``values`` (NaNs ignored).

    A MAD of 0 (more than half the values identical: queue times of 0 s, a fixed test count) falls back
    to the mean absolute deviation, which still sees the minority that differs, then to ``SCALE_FLOOR``.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    center = float(np.median(finite))
    dev = np.abs(finite - center)
    scale = MAD_TO_SIGMA * float(np.median(dev))
    if scale <= 0.0:
        scale = MEANAD_TO_SIGMA * float(np.mean(dev))
    return center, max(scale, SCALE_FLOOR)


@dataclass(frozen=True)
class MetricSeries:
    """The non-missing values of one metric of one group, oldest first, in raw and model space."""

    project: str
    job: str
    metric: str
    run_ids: list[str]
    attempts: list[int | None]
    at: list[datetime]
    raw: np.ndarray
    y: np.ndarray
    logged: bool
    # Position of each value in the group frame it came from (for linking back to runs).
    rows: np.ndarray

    @classmethod
    def from_runs(cls, runs: pd.DataFrame, metric: str) -> MetricSeries:
        if metric in runs.columns:
            raw_all = runs[metric].to_numpy(dtype=float, na_value=np.nan)
        else:
            raw_all = np.full(len(runs), np.nan)
        rows = np.flatnonzero(np.isfinite(raw_all))
        raw = raw_all[rows]
        logged = bool(raw.size == 0 or raw.min() >= 0.0)
        sub = runs.iloc[rows]
        attempts: list[int | None] = (
            [_attempt(a) for a in sub["attempt"]] if "attempt" in sub.columns else [None] * len(rows)
        )
        return cls(
            project=_label(runs, "project"),
            job=_label(runs, "job"),
            metric=metric,
            run_ids=[str(r) for r in sub["run_id"]],
            attempts=attempts,
            at=[t.to_pydatetime() for t in sub["started_at"]],
            raw=raw,
            y=np.log1p(raw) if logged else raw.copy(),
            logged=logged,
            rows=rows,
        )

    def __len__(self) -> int:
        return int(self.raw.size)

    def to_raw(self, y: float) -> float:
        """Model space back to the metric's units (a log-scaled metric is never negative)."""
        return max(0.0, math.expm1(y)) if self.logged else y

    def significant(self, observed: float, expected: float, min_delta: dict[str, float]) -> bool:
        return abs(observed - expected) >= min_delta.get(self.metric, 0.0)

    def anomaly(
        self,
        i: int,
        *,
        center: float,
        scale: float,
        score: float,
        kind: Kind,
        detector: str,
        observed: float | None = None,
        threshold: float = Z_THRESHOLD,
    ) -> Anomaly:
        """The record for value ``i`` scored against ``center ± threshold·scale`` (model space)."""
        return Anomaly(
            project=self.project,
            job=self.job,
            run_id=self.run_ids[i],
            attempt=self.attempts[i],
            metric=self.metric,
            at=self.at[i],
            observed=float(self.raw[i]) if observed is None else observed,
            expected=self.to_raw(center),
            expected_low=self.to_raw(center - threshold * scale),
            expected_high=self.to_raw(center + threshold * scale),
            score=score,
            kind=kind,
            detector=detector,
        )


def missing(value: object) -> bool:
    """None, NaN, NaT or pd.NA: what a runs frame holds for "unknown"."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except TypeError:  # pd.NA refuses to be a bool
        return True


def run_key(run_id: object, attempt: object) -> tuple[str, int | None]:
    """What identifies one run in a group: its id and, when the frame has one, its attempt."""
    return str(run_id), _attempt(attempt)


def positions(group: pd.DataFrame) -> dict[tuple[str, int | None], int]:
    """Row position of each run of ``group`` by :func:`run_key`."""
    attempts = group["attempt"] if "attempt" in group.columns else [None] * len(group)
    return {run_key(r, a): i for i, (r, a) in enumerate(zip(group["run_id"], attempts, strict=True))}


def anomaly_key(a: Anomaly) -> tuple[str, int | None]:
    return a.run_id, a.attempt


def _attempt(value: object) -> int | None:
    return None if missing(value) else int(cast(SupportsInt, value))


def _label(runs: pd.DataFrame, column: str) -> str:
    if column not in runs.columns or runs.empty:
        return ""
    value = runs[column].iloc[0]
    return "" if missing(value) else str(value)
