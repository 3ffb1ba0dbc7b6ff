"""``find_anomalies``: a runs frame in, de-duplicated anomalies with likely causes out.

The runs frame (from the run-history store) has one row per run with the columns ``project``, ``run_id``,
``job``, ``status``, ``started_at`` (tz-aware UTC; naive values are taken as UTC), ``finished_at``,
``duration_s``, ``queue_s``, ``tests_passed``, ``tests_failed``, ``tests_skipped``, ``runner`` and
optionally ``cpu_pct``, ``mem_mb`` and ``fingerprint`` (failure fingerprint id); unknown values are
NaN/None. Only the ``per`` columns, ``run_id`` and ``started_at`` are required; a metric whose column is
absent or empty is skipped.

Per group (by default one project's job), oldest run first, every detector that finds the group
suitable runs on each metric: robust z (spikes, online), CUSUM (level shifts, online), STL (only when
the history spans two periods and has a daily or weekly pattern) and an IsolationForest over all metrics
of a run. Then:
- a failed run's short duration is dropped: it stopped early, which the failure itself explains;
- a spike in the same direction within the 30 runs after a level shift's onset, and no further from the
  new level than its own band allows, is the shift seen run by run (the rolling baseline has not caught
  up yet): it is dropped in favour of the shift;
- several detectors flagging the same run and metric give one anomaly: the most specific kind
  (level-shift, spike, seasonal, multivariate) and, within it, the highest score; the others are listed
  in ``confirmed_by``; so is the forest's verdict on a run another detector already reports under
  another metric;
- likely causes are linked (:mod:`cimedic.tools.anomaly.link`).

Usage::

    from cimedic.tools.anomaly import find_anomalies
    for a in find_anomalies(runs_frame, metrics=("duration_s", "queue_s")):
        print(a.at, a.project, a.job, a.metric, a.kind, a.observed, a.expected, a.likely_causes)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from cimedic.errors import InputError
from cimedic.tools.anomaly.base import Anomaly, Detector, anomaly_key, positions
from cimedic.tools.anomaly.iforest import IsolationForestDetector
from cimedic.tools.anomaly.level_shift import CusumShift
from cimedic.tools.anomaly.link import first_seen, link_causes
from cimedic.tools.anomaly.robust import WINDOW, RobustZ
from cimedic.tools.anomaly.seasonal import STLSeasonal

if TYPE_CHECKING:
    import pandas as pd

# A cancelled run's duration is when someone pressed cancel, a skipped one has none, a running one is
# not finished: none of them measures the job, so none enters the series.
EXCLUDED_STATUSES = frozenset({"cancelled", "skipped", "running"})
# A failed run that took much less time than usual stopped early: its duration says where it failed, not
# how fast the job is, and the failure itself is what triage explains.
STOPS_EARLY = frozenset({"duration_s"})
# Which verdict names a run flagged several ways: a shift says most, then a spike against the recent runs;
# "seasonal" is kept for what only the seasonal model sees (unusual for the hour or weekday alone).
KIND_RANK = {"level-shift": 0, "spike": 1, "seasonal": 2, "multivariate": 3}
# After a shift the rolling baseline keeps flagging the new level as spikes until its median has moved,
# which takes at most its window of runs.
ABSORB_RUNS = WINDOW


def default_detectors() -> list[Detector]:
    return [RobustZ(), CusumShift(), STLSeasonal(), IsolationForestDetector()]


def find_anomalies(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("duration_s", "queue_s"),
    per: Sequence[str] = ("project", "job"),
    detectors: Sequence[Detector] | None = None,
    exclude_statuses: Collection[str] = EXCLUDED_STATUSES,
) -> list[Anomaly]:
    """Anomalies of ``metrics`` in every ``per`` group of the runs ``frame``, oldest first."""
    import pandas as pd

    missing = [c for c in (*per, "run_id", "started_at") if c not in frame.columns]
    if missing:
        raise InputError("runs frame", f"missing column(s): {', '.join(missing)}")
    runs = frame.copy()
    runs["started_at"] = pd.to_datetime(runs["started_at"], utc=True)
    runs = runs[runs["started_at"].notna()]
    for column in ("project", "job"):
        if column not in runs.columns:
            runs[column] = ""
    # Fingerprints count as new from their first appearance in any run, cancelled ones included.
    firsts = first_seen(runs)
    if "status" in runs.columns and exclude_statuses:
        runs = runs[~runs["status"].astype(str).str.lower().isin(set(exclude_statuses))]
    chosen = default_detectors() if detectors is None else list(detectors)
    found: list[Anomaly] = []
    for _, group in runs.groupby(list(per), sort=True, dropna=False):
        ordered = group.sort_values("started_at", kind="stable").reset_index(drop=True)
        raw: list[Anomaly] = []
        for detector in chosen:
            usable = [m for m in metrics if detector.suitable(ordered, m)]
            if usable:
                raw += detector.detect(ordered, usable)
        position = positions(ordered)
        raw = [a for a in raw if not _stopped_early(a, ordered, position)]
        found += link_causes(ordered, deduplicate(ordered, raw), firsts)
    found.sort(key=lambda a: (a.at, a.project, a.job, a.metric))
    return found


def _stopped_early(a: Anomaly, group: pd.DataFrame, position: dict[tuple[str, int | None], int]) -> bool:
    if a.metric not in STOPS_EARLY or a.kind == "level-shift" or a.observed >= a.expected:
        return False
    if "status" not in group.columns:
        return False
    return str(group["status"].iloc[position[anomaly_key(a)]]).lower() == "failure"


def _explained_by_shift(a: Anomaly, shift: Anomaly, position: dict[tuple[str, int | None], int]) -> bool:
    if a.kind not in ("spike", "seasonal") or a.metric != shift.metric:
        return False
    onset, here = position[anomaly_key(shift)], position[anomaly_key(a)]
    up = shift.observed >= shift.expected
    if not onset <= here <= onset + ABSORB_RUNS or (a.observed >= a.expected) != up:
        return False
    # The spike's own band, moved to the new level: multiplicative for positive metrics (log-scaled).
    if a.expected > 0:
        ratio = (a.expected_high / a.expected) if up else (a.expected / max(a.expected_low, 1e-12))
        return shift.observed / ratio <= a.observed <= shift.observed * ratio
    width = (a.expected_high - a.expected) if up else (a.expected - a.expected_low)
    return abs(a.observed - shift.observed) <= width


def deduplicate(group: pd.DataFrame, anomalies: Sequence[Anomaly]) -> list[Anomaly]:
    """One anomaly per run and metric; spikes that only restate a level shift dropped."""
    position = positions(group)
    shifts = [a for a in anomalies if a.kind == "level-shift"]
    kept = [a for a in anomalies if not any(_explained_by_shift(a, s, position) for s in shifts)]
    by_key: dict[tuple[str, int | None, str], list[Anomaly]] = {}
    for a in kept:
        by_key.setdefault((*anomaly_key(a), a.metric), []).append(a)
    merged: list[Anomaly] = []
    for same in by_key.values():
        same.sort(key=lambda a: (KIND_RANK[a.kind], -abs(a.score)))
        best = same[0]
        others = sorted({a.detector for a in same[1:]} - {best.detector})
        merged.append(best.model_copy(update={"confirmed_by": others}) if others else best)
    # A run the forest finds odd as a whole and another detector already reports is one finding: the
    # forest's verdict confirms it instead of standing beside it under some other metric's name.
    specific = {anomaly_key(a) for a in merged if a.kind != "multivariate"}
    folded = [a for a in merged if a.kind == "multivariate" and anomaly_key(a) in specific]
    merged = [a for a in merged if not (a.kind == "multivariate" and anomaly_key(a) in specific)]
    for f in folded:
        host = min(
            (i for i, a in enumerate(merged) if anomaly_key(a) == anomaly_key(f)),
            key=lambda i: (KIND_RANK[merged[i].kind], -abs(merged[i].score)),
        )
        extra = sorted({*merged[host].confirmed_by, f.detector} - {merged[host].detector})
        merged[host] = merged[host].model_copy(update={"confirmed_by": extra})
    merged.sort(key=lambda a: position[anomaly_key(a)])
    return merged
