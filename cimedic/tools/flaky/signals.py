"""Per-test signals from its eligible executions (sorted by time): counts, same-commit
disagreements, the commit-level outcome chain per job, flips, runners, durations, evidence, cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cimedic.tools.flaky.bayes import ChainCounts
from cimedic.tools.flaky.models import FlakyEvidence, FlakyImpact, RunnerFailures

# A failure this many robust standard deviations (1.4826 MAD) from the passing log durations is not
# the test's usual run: 3 is the customary outlier cut for a normal scale.
TIMING_Z = 3.0
# Sarle's bimodality coefficient of a uniform distribution; above it, two modes are likely.
BIMODAL = 5.0 / 9.0
_EVIDENCE = 3
_MESSAGE_CHARS = 400


@dataclass
class Signals:
    runs: int
    failures: int
    commits_with_both: int
    flips: int
    flip_rate: float
    chain: ChainCounts
    failures_by_runner: dict[str, int]
    runs_by_runner: dict[str, int]
    evidence: list[FlakyEvidence] = field(default_factory=list)
    impact: FlakyImpact | None = None
    bimodality: float | None = None
    failure_z: float | None = None

    def failing_runners(self, top: int = 3) -> list[RunnerFailures]:
        ranked = sorted(
            ((r, f) for r, f in self.failures_by_runner.items() if f and r),
            key=lambda rf: (-rf[1] / self.runs_by_runner[rf[0]], -rf[1], rf[0]),
        )
        return [RunnerFailures(runner=r, failures=f, runs=self.runs_by_runner[r]) for r, f in ranked[:top]]


def _bimodality(x: np.ndarray) -> float | None:
    """Sarle's sample bimodality coefficient (needs 4+ values and some spread)."""
    n = x.size
    if n < 4 or float(np.std(x)) == 0.0:
        return None
    d = x - x.mean()
    m2 = float((d**2).mean())
    skew = float((d**3).mean()) / m2**1.5
    kurt = float((d**4).mean()) / m2**2 - 3.0
    return float((skew**2 + 1.0) / (kurt + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def _failure_z(log_d: np.ndarray, failed: np.ndarray) -> float | None:
    passing, failing = log_d[~failed], log_d[failed]
    if passing.size < 3 or failing.size == 0:
        return None
    med = float(np.median(passing))
    mad = float(np.median(np.abs(passing - med))) * 1.4826
    # A floor of 1% keeps a test whose passes all take the same time from giving infinite z.
    return float(np.median(failing - med)) / max(mad, 0.01)


def compute(cols: dict[str, np.ndarray], has_job_minutes: bool) -> Signals:
    """Signals of one test; ``cols`` are its eligible rows, sorted by finish time then attempt."""
    failed = cols["failed"].astype(bool)
    jobs, commits = cols["job"], cols["commit"]
    n = int(failed.size)
    # Commit-level outcome per (job, commit): True all failed, False all passed, None both.
    outcome: dict[tuple[Any, Any], bool | None] = {}
    order: dict[Any, list[Any]] = {}
    flips, steps = 0, 0
    last: dict[Any, bool] = {}
    for j, c, f in zip(jobs, commits, failed, strict=True):
        key = (j, c)
        if key not in outcome:
            outcome[key] = bool(f)
            order.setdefault(j, []).append(c)
        elif outcome[key] is not None and outcome[key] != bool(f):
            outcome[key] = None
        if j in last:
            steps += 1
            flips += int(last[j] != bool(f))
        last[j] = bool(f)
    mixed = {k for k, v in outcome.items() if v is None}
    chain = ChainCounts.from_streams([[outcome[(j, c)] for c in cs] for j, cs in order.items()])
    runners = cols["runner"]
    runs_by: dict[str, int] = {}
    fails_by: dict[str, int] = {}
    for r, f in zip(runners, failed, strict=True):
        runs_by[r] = runs_by.get(r, 0) + 1
        fails_by[r] = fails_by.get(r, 0) + int(f)
    durations = cols["duration_s"].astype(float)
    ok = np.isfinite(durations) & (durations >= 0)
    log_d = np.log(durations[ok] + 1e-3)  # a millisecond floor: zero-length tests exist
    sig = Signals(
        runs=n,
        failures=int(failed.sum()),
        commits_with_both=len(mixed),
        flips=flips,
        flip_rate=flips / steps if steps else 0.0,
        chain=chain,
        failures_by_runner=fails_by,
        runs_by_runner=runs_by,
        bimodality=_bimodality(log_d[~failed[ok]]),
        failure_z=_failure_z(log_d, failed[ok]),
    )
    sig.evidence = _evidence(cols, failed, mixed)
    sig.impact = _impact(cols, failed, durations, has_job_minutes)
    return sig


def _evidence(cols: dict[str, np.ndarray], failed: np.ndarray, mixed: set[tuple[Any, Any]]) -> list[FlakyEvidence]:
    """The most recent failures on commits that also passed, then the most recent other failures."""
    idx = np.flatnonzero(failed)[::-1]
    definitive = [i for i in idx if (cols["job"][i], cols["commit"][i]) in mixed]
    rest = [i for i in idx if (cols["job"][i], cols["commit"][i]) not in mixed]
    out = []
    for i in (definitive + rest)[:_EVIDENCE]:
        msg = cols["message"][i]
        out.append(
            FlakyEvidence(
                run_id=str(cols["run_id"][i]),
                attempt=int(cols["attempt"][i]),
                job=str(cols["job"][i]),
                commit=str(cols["commit"][i]),
                message=str(msg)[:_MESSAGE_CHARS] if isinstance(msg, str) and msg else None,
                same_commit_passed=(cols["job"][i], cols["commit"][i]) in mixed,
            )
        )
    return out


def _impact(cols: dict[str, np.ndarray], failed: np.ndarray, durations: np.ndarray, has_job: bool) -> FlakyImpact:
    idx = np.flatnonzero(failed)
    runs = {(cols["run_id"][i], cols["attempt"][i]) for i in idx}
    if has_job:
        # One failed job wastes its whole duration once, however many of its tests failed.
        per_job = {(cols["run_id"][i], cols["attempt"][i], cols["job"][i]): cols["job_duration_s"][i] for i in idx}
        secs = float(np.nansum(np.asarray(list(per_job.values()), dtype=float)))
        basis = "job_duration"
    else:
        secs = float(np.nansum(durations[idx]))
        basis = "test_duration"
    return FlakyImpact(runs_failed=len(runs), ci_minutes_wasted=round(secs / 60.0, 3), minutes_basis=basis)
