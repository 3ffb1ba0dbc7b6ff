"""From a tests frame to the executions that can speak about flakiness.

The frame is the history store's tests frame: one row per test execution with ``project``,
``run_id``, ``attempt``, ``job``, ``commit``, ``test``, ``status``, ``duration_s``, ``runner``,
``finished_at`` and ``message`` (an optional ``job_duration_s`` is used for impact when present).

Not eligible: skipped executions (no outcome), and every execution of a **broken build** — a
``(project, run_id, attempt, job)`` with at least ``broken_min_tests`` executions of which at
least ``broken_fraction`` failed. When half a suite fails the cause is the build (compile error,
dead service, full disk), not its tests, and counting those failures would make every test look
flaky; a small job cannot be judged that way, hence the minimum size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("project", "run_id", "attempt", "job", "commit", "test", "status", "finished_at")
_OUTCOMES = {"passed": False, "failed": True, "error": True}


@dataclass(frozen=True)
class Eligibility:
    broken_fraction: float = 0.5
    broken_min_tests: int = 10
    window: int | None = 500  # the most recent eligible executions per test; None: all history


def eligible(frame: pd.DataFrame, rules: Eligibility) -> tuple[pd.DataFrame, pd.Series]:
    """The eligible executions (with a boolean ``failed``), and per (project, test) how many broken-build
    executions were dropped."""
    import pandas as pd

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"tests frame lacks column(s): {', '.join(missing)}")
    df = frame.copy()
    df["status"] = df["status"].astype(str).str.lower()
    unknown = sorted(set(df["status"]) - set(_OUTCOMES) - {"skipped"})
    if unknown:
        raise ValueError(f"unknown test status(es): {', '.join(unknown)}")
    df = df[df["status"] != "skipped"]
    for col, default in (("duration_s", float("nan")), ("runner", None), ("message", None)):
        if col not in df.columns:
            df[col] = default
    df["failed"] = df["status"].map(_OUTCOMES).astype(bool)
    df["runner"] = df["runner"].astype(object).where(df["runner"].notna(), "")
    for col in ("project", "run_id", "job", "commit", "test"):
        df[col] = df[col].astype(str)
    df["attempt"] = df["attempt"].astype(int)
    df["finished_at"] = pd.to_datetime(df["finished_at"], utc=True)
    build = ["project", "run_id", "attempt", "job"]
    size = df.groupby(build)["failed"].transform("size")
    share = df.groupby(build)["failed"].transform("mean")
    broken = (size >= rules.broken_min_tests) & (share >= rules.broken_fraction)
    dropped = df[broken].groupby(["project", "test"]).size()
    df = df[~broken].sort_values(["project", "test", "finished_at", "attempt"], kind="stable")
    if rules.window is not None:
        df = df.groupby(["project", "test"], group_keys=False).tail(rules.window)
    return df.reset_index(drop=True), dropped
