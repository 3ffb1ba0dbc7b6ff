"""Pre-run features of a CI run: what was known when it started, nothing later.

The history of a run that starts at ``t`` is the set of runs of the same frame that FINISHED
strictly before ``t`` (a run still going at ``t`` has no result yet, and its own row is never its
history). Rates count outcomes only (``success``/``failure``); cancelled runs count as builds but
never as results. No feature reads the run's own status, duration, queue time or test counts.

Scopes: the job is ``(project, job)``; a pull request's history is ``(project, job,
pull_request)``; the base branch is ``(project, job, branch)``; an author's is ``(project,
author)``. Windows: the last ``last_n`` outcomes (default 10) and the last ``window_days`` days
(default 7, one weekly cycle). These are fixed by principle, not tuned on any data set.

Counts and waiting times are log1p-scaled: their tails are long, and a linear model should not
let one idle week outweigh everything else. Every feature is named and documented in
``FEATURES``. Change features (``CHANGE_FEATURES``), the author's history and the per-test flake
hook (``FlakeRates``) appear only when the frame carries that data; the model records which
features it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cimedic.tools.predict.runs import CHANGE, normalize, outcome

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FEATURES: dict[str, str] = {
    "job_fail_rate_last_n": "share of the job's last N outcomes that failed",
    "job_fail_rate_last_d": "share of the job's outcomes in the last D days that failed",
    "job_runs_last_d": "log1p of the outcomes of the job in the last D days (activity)",
    "job_last_failed": "the job's most recent outcome was a failure (1/0)",
    "job_runs_since_failure": "log1p of the job outcomes since its last failure (0: the last one failed)",
    "job_hours_since_failure": "log1p of the hours since the job's last failure finished",
    "prev_failed": "the previous outcome of the pull request failed, else the job's previous outcome (1/0)",
    "pr_builds_before": "log1p of the finished builds of this pull request before this one (any status)",
    "pr_prev_failed": "the pull request's previous outcome was a failure (1/0)",
    "pr_prev_tests_failed": "log1p of the failing-test count of the pull request's previous outcome",
    "pr_fail_rate": "share of the pull request's earlier outcomes that failed",
    "pr_hours_since_prev": "log1p of the hours since the pull request's previous build finished",
    "pr_same_commit": "the previous build of the pull request built the same commit: a rerun (1/0)",
    "branch_fail_rate_last_n": "share of the last N outcomes on the same base branch that failed",
    "branch_other_fail_rate_last_d": "share of outcomes of OTHER pull requests on the base branch, last D days, failed",
    "ambient_test_fail_share_d": "share of other pull requests' runs in the last D days with >= 1 failing test",
    "ambient_tests_failed_d": "mean log1p failing-test count of other pull requests' failing runs, last D days",
    "pr_prev_excess_tests_failed": "pr_prev_tests_failed minus ambient_tests_failed_d: failures beyond the usual noise",
    "pr_prev_failure_seen_elsewhere": "log1p of other PRs' failing runs, last D days, with the same failing-test count "
    "as the PR's previous outcome (a count-only flaky signature)",
    "hour_sin": "time of day (UTC), sine",
    "hour_cos": "time of day (UTC), cosine",
    "dow_sin": "day of week (UTC), sine",
    "dow_cos": "day of week (UTC), cosine",
}
CHANGE_FEATURES: dict[str, str] = {f"change_{c}": f"log1p of {c} of the change under build" for c in CHANGE}
AUTHOR_FEATURES: dict[str, str] = {
    "author_fail_rate": "share of the author's earlier outcomes (any job of the project) that failed",
    "author_runs_before": "log1p of the earlier outcomes of the author in the project",
}
FLAKE_FEATURES: dict[str, str] = {
    "pr_prev_flaky_share": "mean flake rate (as of this run) of the tests that failed in the PR's previous outcome",
}
ALL_FEATURES: dict[str, str] = {**FEATURES, **CHANGE_FEATURES, **AUTHOR_FEATURES, **FLAKE_FEATURES}


class FlakeRates(Protocol):
    """Per-test flake rates, the hook for histories that carry per-test results.

    ``rate`` must only use evidence from before ``before`` (the run's start), or the feature leaks.
    A frame that carries a ``failed_tests`` column (a sequence of test ids per run) plus a
    ``FlakeRates`` adds ``pr_prev_flaky_share``. LRTS has counts only, so it never does.
    """

    def rate(self, test_id: str, before: datetime) -> float | None: ...


@dataclass(frozen=True)
class FeatureConfig:
    last_n: int = 10
    window_days: float = 7.0


@dataclass(frozen=True)
class _Lookup:
    """Per query row: where its history ends in one scope, sorted by (group, finish time)."""

    order: np.ndarray  # frame positions of history rows, sorted by (group, finish)
    sorted_group: np.ndarray  # the group of each sorted history row
    pos: np.ndarray  # exclusive end: history of the query's group that finished before its start
    start: np.ndarray  # first sorted index of the query's group
    since: np.ndarray  # first sorted index that finished inside the window

    def total(self, values: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over sorted history [lo, pos) of each query's group.

        Running sums restart at every group, so a sum depends on nothing but that group's earlier
        runs, to the last bit: a global running sum would let other groups' LATER runs change
        the rounding of an earlier run's features.
        """
        import numpy as np
        import pandas as pd

        running = pd.Series(values[self.order]).groupby(self.sorted_group, sort=False).cumsum().to_numpy(dtype=float)

        def before(i: np.ndarray) -> np.ndarray:
            return np.where(i > self.start, running[np.clip(i - 1, 0, None)] if len(running) else 0.0, 0.0)

        return np.asarray(before(self.pos) - before(lo), dtype=float)

    def last(self, n: int) -> np.ndarray:
        import numpy as np

        return np.asarray(np.maximum(self.pos - n, self.start))

    def prev(self) -> np.ndarray:
        """Frame position of the most recent history row of each query's group, -1 if none."""
        import numpy as np

        idx = self.pos - 1
        has = idx >= self.start
        return np.where(has, self.order[np.clip(idx, 0, None)] if len(self.order) else -1, -1)


def _groups(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    return _codes(frame[list(cols)], frame[list(cols)])[0]


def _codes(hist_keys: pd.DataFrame, query_keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Integer group codes of history keys and query keys (row-aligned frames), one coding for both."""
    import numpy as np
    import pandas as pd

    both = pd.concat([hist_keys, query_keys.set_axis(hist_keys.columns, axis=1)], ignore_index=True)
    both = both.astype(object).where(both.notna(), "\x00none")
    codes = np.asarray(both.groupby(list(both.columns), sort=False).ngroup().to_numpy(), dtype=np.int64)
    return codes[: len(hist_keys)], codes[len(hist_keys) :]


def _lookup(
    group: np.ndarray,
    hist: np.ndarray,
    fin: np.ndarray,
    start: np.ndarray,
    window_ns: int,
    query_group: np.ndarray | None = None,
) -> _Lookup:
    """History rows ``hist`` (a mask) finishing at ``fin``; queries are all rows, starting at ``start``.

    A query looks in its own group unless ``query_group`` says otherwise (same coding as ``group``).
    Times are ranked together so that ``group * stride + rank`` sorts by group then time, and one
    ``searchsorted`` per query finds "same group, finished strictly before t" (and "since t - D").
    """
    import numpy as np

    h = np.flatnonzero(hist)
    lo_time = start - window_ns
    uniq = np.unique(np.concatenate([fin[h], start, lo_time]))
    stride = np.int64(len(uniq) + 1)
    hk = group[h] * stride + np.searchsorted(uniq, fin[h])
    order = np.argsort(hk, kind="stable")
    hk = hk[order]
    base = (group if query_group is None else query_group) * stride
    return _Lookup(
        order=h[order],
        sorted_group=group[h][order],
        pos=np.searchsorted(hk, base + np.searchsorted(uniq, start), "left"),
        start=np.searchsorted(hk, base, "left"),
        since=np.searchsorted(hk, base + np.searchsorted(uniq, lo_time), "left"),
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)


def build_features(
    frame: pd.DataFrame, config: FeatureConfig | None = None, flake_rates: FlakeRates | None = None
) -> pd.DataFrame:
    """One row of features per run of ``frame`` (same index), from the runs of ``frame`` only.

    A run that has not started (no ``started_at``) has no "before" yet: its row is all NaN.
    """
    import numpy as np
    import pandas as pd

    cfg = config or FeatureConfig()
    every = normalize(frame).reset_index(drop=True)
    runs = every[every["started_at"].notna()]
    n = len(runs)
    start = runs["started_at"].to_numpy("datetime64[ns]").astype(np.int64)
    fin_ts = runs["finished_at"]
    finished = (fin_ts.notna() & (runs["status"] != "running")).to_numpy()
    fin = np.where(finished, fin_ts.to_numpy("datetime64[ns]").astype(np.int64), np.iinfo(np.int64).max)
    y = outcome(runs["status"]).to_numpy()
    decided = finished & ~np.isnan(y)
    fail = np.nan_to_num(y)
    one = np.ones(n)
    window = int(cfg.window_days * 86400e9)
    hours = 3600e9
    has_pr = runs["pull_request"].notna().to_numpy()
    out: dict[str, np.ndarray] = {}

    job = _lookup(_groups(runs, ["project", "job"]), decided, fin, start, window)
    lo_n = job.last(cfg.last_n)
    out["job_fail_rate_last_n"] = _ratio(job.total(fail, lo_n), job.total(one, lo_n))
    out["job_fail_rate_last_d"] = _ratio(job.total(fail, job.since), job.total(one, job.since))
    out["job_runs_last_d"] = np.log1p(job.total(one, job.since))
    prev = job.prev()
    out["job_last_failed"] = _at(y, prev)
    # Sorted position of the latest failure at or before each sorted history index.
    sorted_fail = fail[job.order] > 0
    last_fail = np.maximum.accumulate(np.where(sorted_fail, np.arange(len(job.order)), -1)).astype(np.int64)
    idx = job.pos - 1
    lf = np.where(idx >= job.start, last_fail[np.clip(idx, 0, None)] if len(last_fail) else -1, -1)
    lf = np.where(lf >= job.start, lf, -1)
    out["job_runs_since_failure"] = np.where(lf >= 0, np.log1p(np.maximum(idx - lf, 0)), np.nan)
    lf_time = np.where(lf >= 0, fin[job.order[np.clip(lf, 0, None)]] if len(job.order) else 0, 0)
    out["job_hours_since_failure"] = np.where(lf >= 0, np.log1p(np.maximum(start - lf_time, 0) / hours), np.nan)

    pr_group = _groups(runs, ["project", "job", "pull_request"])
    pr_all = _lookup(pr_group, finished, fin, start, window)
    pr = _lookup(pr_group, decided, fin, start, window)
    tests_failed = runs["tests_failed"].to_numpy()
    prev_any, prev_dec = pr_all.prev(), pr.prev()
    out["pr_builds_before"] = np.where(has_pr, np.log1p(pr_all.pos - pr_all.start), np.nan)
    out["pr_prev_failed"] = np.where(has_pr, _at(y, prev_dec), np.nan)
    out["prev_failed"] = np.where(has_pr & (prev_dec >= 0), _at(y, prev_dec), out["job_last_failed"])
    out["pr_prev_tests_failed"] = np.where(has_pr, np.log1p(_at(tests_failed, prev_dec)), np.nan)
    out["pr_fail_rate"] = np.where(has_pr, _ratio(pr.total(fail, pr.start), pr.total(one, pr.start)), np.nan)
    prev_fin = np.where(prev_any >= 0, fin[np.clip(prev_any, 0, None)], 0)
    out["pr_hours_since_prev"] = np.where(
        has_pr & (prev_any >= 0), np.log1p(np.maximum(start - prev_fin, 0) / hours), np.nan
    )
    commit = runs["commit"].to_numpy(dtype=object)
    prev_commit = np.where(prev_any >= 0, commit[np.clip(prev_any, 0, None)], None)
    known = has_pr & (prev_any >= 0) & pd.notna(commit) & pd.notna(prev_commit)
    out["pr_same_commit"] = np.where(known, (commit == prev_commit).astype(float), np.nan)

    branch = _lookup(_groups(runs, ["project", "job", "branch"]), decided, fin, start, window)
    branch_pr = _lookup(_groups(runs, ["project", "job", "branch", "pull_request"]), decided, fin, start, window)
    lo_n = branch.last(cfg.last_n)
    out["branch_fail_rate_last_n"] = _ratio(branch.total(fail, lo_n), branch.total(one, lo_n))
    own = has_pr.astype(float)  # a push build has no pull request of its own to leave out
    out["branch_other_fail_rate_last_d"] = _ratio(
        branch.total(fail, branch.since) - own * branch_pr.total(fail, branch_pr.since),
        branch.total(one, branch.since) - own * branch_pr.total(one, branch_pr.since),
    )

    # Flaky pressure from counts: how often, and how many, tests fail on everyone else's runs now.
    counted = decided & ~np.isnan(tests_failed)
    tf = np.nan_to_num(tests_failed)
    with_fail = (tf > 0).astype(float)
    log_tf = np.log1p(tf) * with_fail
    amb = _lookup(_groups(runs, ["project", "job"]), counted, fin, start, window)
    amb_pr = _lookup(pr_group, counted, fin, start, window)

    def other(values: np.ndarray) -> np.ndarray:
        return np.asarray(amb.total(values, amb.since) - own * amb_pr.total(values, amb_pr.since))

    counted_f = counted.astype(float)
    out["ambient_test_fail_share_d"] = _ratio(other(with_fail * counted_f), other(counted_f))
    out["ambient_tests_failed_d"] = _ratio(other(log_tf * counted_f), other(with_fail * counted_f))
    out["pr_prev_excess_tests_failed"] = out["pr_prev_tests_failed"] - np.nan_to_num(out["ambient_tests_failed_d"])
    out["pr_prev_failure_seen_elsewhere"] = _seen_elsewhere(runs, counted & (tf > 0), prev_dec, fin, start, window)

    started = runs["started_at"]
    hour = (started.dt.hour + started.dt.minute / 60.0).to_numpy(dtype=float)
    dow = started.dt.day_of_week.to_numpy(dtype=float) + hour / 24.0
    out["hour_sin"], out["hour_cos"] = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    out["dow_sin"], out["dow_cos"] = np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)

    for col in CHANGE:
        if runs[col].notna().any():
            out[f"change_{col}"] = np.log1p(runs[col].clip(lower=0).to_numpy(dtype=float))
    if runs["author"].notna().any():
        has_author = runs["author"].notna().to_numpy()
        author = _lookup(_groups(runs, ["project", "author"]), decided, fin, start, window)
        count = author.total(one, author.start)
        out["author_fail_rate"] = np.where(has_author, _ratio(author.total(fail, author.start), count), np.nan)
        out["author_runs_before"] = np.where(has_author, np.log1p(count), np.nan)
    if flake_rates is not None and "failed_tests" in runs.columns:
        out["pr_prev_flaky_share"] = _flaky_share(runs, prev_dec, flake_rates)
    feats = pd.DataFrame({k: out[k] for k in ALL_FEATURES if k in out}, index=runs.index)
    return feats.reindex(range(len(every))).set_axis(frame.index)


def _seen_elsewhere(
    runs: pd.DataFrame, failing: np.ndarray, prev: np.ndarray, fin: np.ndarray, start: np.ndarray, window: int
) -> np.ndarray:
    """log1p of other PRs' failing runs (last D days) that failed exactly as many tests as this PR's last.

    With counts only, an identical failing-test count on unrelated pull requests is the closest
    stand-in for "the same tests failed there too": the signature of a flaky test, not of the change.
    """
    import numpy as np

    prev_count = np.where(prev >= 0, runs["tests_failed"].to_numpy()[np.clip(prev, 0, None)], np.nan)
    own_keys = ["project", "job", "tests_failed"]
    query = runs[["project", "job"]].assign(tests_failed=prev_count)
    gh, gq = _codes(runs[own_keys], query)
    everyone = _lookup(gh, failing, fin, start, window, gq)
    gh, gq = _codes(runs[[*own_keys, "pull_request"]], query.assign(pull_request=runs["pull_request"]))
    own = _lookup(gh, failing, fin, start, window, gq)
    other = everyone.total(np.ones(len(runs)), everyone.since) - own.total(np.ones(len(runs)), own.since)
    has_pr = runs["pull_request"].notna().to_numpy()
    return np.where(has_pr & (prev_count > 0), np.log1p(np.maximum(other, 0)), np.nan)


def _flaky_share(runs: pd.DataFrame, prev: np.ndarray, rates: FlakeRates) -> np.ndarray:
    import numpy as np

    tests = runs["failed_tests"].to_numpy(dtype=object)
    starts = runs["started_at"].to_list()
    share = np.full(len(runs), np.nan)
    for i, p in enumerate(prev):
        failed: Any = tests[p] if p >= 0 else None
        if not isinstance(failed, (list, tuple, np.ndarray)) or len(failed) == 0:
            continue
        known = [r for t in failed if (r := rates.rate(str(t), starts[i].to_pydatetime())) is not None]
        if known:
            share[i] = float(np.mean(known))
    return share
