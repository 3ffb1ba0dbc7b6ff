"""Likely causes of an anomaly, read from the runs around it: what else changed at that run.

Three signals, each a plain fact a reader can check in the run history:
- a failure fingerprint first seen (anywhere in the project) in this run or the few runs before it:
  a new way of failing that appears with a slowdown usually shares its cause (a hanging test, a mirror
  timing out);
- a runner change: the run went to a runner other than the one that ran most of the previous runs;
- a test-count jump: markedly more or fewer tests ran than usual (new suites, skipped modules), or tests
  failed where the previous runs had none (failures add retries and reruns).
A cause is offered, never asserted: the anomaly names it as *likely*.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from cimedic.tools.anomaly.base import Anomaly, anomaly_key, missing, positions

if TYPE_CHECKING:
    import pandas as pd

# How many runs before the anomalous one a new fingerprint may have appeared in (flaky-looking
# failures and the slowdown they come with do not always land on the very same run).
FINGERPRINT_LOOKBACK = 3
# The previous runs that define "usual" for runners and test counts, and how dominant the usual runner
# must be: in a pool where every run lands on a different machine, "a different runner" means nothing.
HISTORY = 10
RUNNER_MAJORITY = 0.5
# A test count that moved by at least 10 % (and at least one test) against the previous runs' median.
TEST_JUMP = 0.10


def first_seen(frame: pd.DataFrame) -> dict[tuple[str, str], datetime]:
    """When each (project, fingerprint) first appears in ``frame``."""
    if "fingerprint" not in frame.columns:
        return {}
    known = frame.loc[frame["fingerprint"].notna(), ["project", "fingerprint", "started_at"]]
    if known.empty:
        return {}
    firsts = known.groupby([known["project"].astype(str), known["fingerprint"].astype(str)])["started_at"].min()
    return {(str(p), str(f)): t.to_pydatetime() for (p, f), t in firsts.items()}


def _fingerprints(group: pd.DataFrame, pos: int, firsts: Mapping[tuple[str, str], datetime]) -> list[str]:
    if "fingerprint" not in group.columns:
        return []
    causes: list[str] = []
    for j in range(max(0, pos - FINGERPRINT_LOOKBACK), pos + 1):
        fp = group["fingerprint"].iloc[j]
        if missing(fp):
            continue
        at = group["started_at"].iloc[j].to_pydatetime()
        if firsts.get((str(group["project"].iloc[j]), str(fp))) == at:
            run = group["run_id"].iloc[j]
            causes.append(f"new failure fingerprint {fp} first seen in run {run} ({at:%Y-%m-%d %H:%M} UTC)")
    return causes


def _runner(group: pd.DataFrame, pos: int) -> list[str]:
    if "runner" not in group.columns or pos == 0:
        return []
    runner = group["runner"].iloc[pos]
    before = group["runner"].iloc[max(0, pos - HISTORY) : pos].dropna()
    if missing(runner) or before.empty:
        return []
    counts = before.astype(str).value_counts()
    usual, n = str(counts.index[0]), int(counts.iloc[0])
    if str(runner) == usual or n / len(before) < RUNNER_MAJORITY:
        return []
    return [f"runner changed: {runner} (the usual runner {usual} ran {n} of the previous {len(before)} runs)"]


def _tests(group: pd.DataFrame, pos: int) -> list[str]:
    columns = [c for c in ("tests_passed", "tests_failed", "tests_skipped") if c in group.columns]
    if not columns or pos == 0:
        return []
    counts = group[columns].astype("float64")
    total = counts.sum(axis=1, min_count=1).to_numpy(dtype=float)
    lo = max(0, pos - HISTORY)
    causes: list[str] = []
    usual = np.nanmedian(total[lo:pos]) if np.isfinite(total[lo:pos]).any() else math.nan
    now = total[pos]
    if math.isfinite(now) and math.isfinite(usual) and abs(now - usual) >= max(1.0, TEST_JUMP * usual):
        change = f" ({(now - usual) / usual:+.0%})" if usual > 0 else ""
        causes.append(f"test count jumped: {usual:,.0f} usually, {now:,.0f} in this run{change}")
    if "tests_failed" in columns:
        failed = counts["tests_failed"].to_numpy(dtype=float)
        before = failed[lo:pos]
        if math.isfinite(failed[pos]) and failed[pos] > 0 and np.isfinite(before).any() and np.nanmax(before) == 0:
            causes.append(f"{failed[pos]:,.0f} tests failed; none failed in the previous {before.size} runs")
    return causes


def link_causes(
    group: pd.DataFrame, anomalies: Sequence[Anomaly], firsts: Mapping[tuple[str, str], datetime]
) -> list[Anomaly]:
    """``anomalies`` of one group (sorted oldest first) with ``likely_causes`` filled in."""
    position = positions(group)
    linked: list[Anomaly] = []
    for a in anomalies:
        pos = position.get(anomaly_key(a))
        if pos is None:
            linked.append(a)
            continue
        causes = _fingerprints(group, pos, firsts) + _runner(group, pos) + _tests(group, pos)
        linked.append(a.model_copy(update={"likely_causes": [*a.likely_causes, *causes]}))
    return linked
