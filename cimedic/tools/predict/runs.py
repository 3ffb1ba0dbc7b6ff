"""The runs frame: the one table failure prediction reads, one row per CI run.

The history store produces it; :func:`cimedic.tools.predict.lrts.lrts_frame` builds it from the
LRTS CSVs. Columns (``REQUIRED`` must exist, ``OPTIONAL`` may):

- ``project``, ``run_id``, ``job`` (str): ``run_id`` is unique within a project (with
  ``attempt``, when the frame has that column, since a re-run keeps its run id).
- ``branch`` (str|None): the base branch of a pull-request build, else the branch built.
- ``pull_request``, ``commit``, ``author`` (str|None); the history store's ``actor`` (who
  triggered the run) stands in for a missing ``author``.
- ``status``: one of ``STATUSES``; only ``success``/``failure`` are outcomes (see ``outcome``).
- ``started_at`` (tz-aware UTC; NaT for a run that has not started: it gets no features and no
  prediction, see ``planned_run``), ``finished_at`` (tz-aware UTC or NaT).
- ``duration_s``, ``queue_s``, ``tests_passed``, ``tests_failed``, ``tests_skipped`` (float|NaN).
- change features when known: ``files_changed``, ``lines_added``, ``lines_deleted``, ``commits``,
  ``changed_complexity`` (float|NaN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cimedic.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("success", "failure", "cancelled", "skipped", "running", "unknown")
REQUIRED = ("project", "run_id", "job", "status", "started_at")
TEXT = ("branch", "pull_request", "commit", "author")
NUMBERS = ("duration_s", "queue_s", "tests_passed", "tests_failed", "tests_skipped")
CHANGE = ("files_changed", "lines_added", "lines_deleted", "commits", "changed_complexity")
OPTIONAL = ("finished_at", *TEXT, *NUMBERS, *CHANGE)


def normalize(frame: pd.DataFrame, subject: str = "runs") -> pd.DataFrame:
    """A checked copy of ``frame`` with every contract column present and typed; rows and index kept.

    Missing optional columns are added empty. ``finished_at`` is filled from ``started_at +
    duration_s`` where only the duration is known, because "finished before t" is what keeps
    prediction features free of the future (see ``features``). A run with neither stays NaT and is
    never used as history.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(subject, f"missing columns {missing}")
    out = frame.copy()
    if "author" not in out.columns and "actor" in out.columns:
        out["author"] = out["actor"]
    for col in OPTIONAL:
        if col not in out.columns:
            out[col] = pd.NaT if col == "finished_at" else (None if col in TEXT else np.nan)
    bad = sorted(set(out["status"].astype(str)) - set(STATUSES))
    if bad:
        raise InputError(subject, f"unknown status values {bad[:5]}; expected one of {list(STATUSES)}")
    for col in ("started_at", "finished_at"):
        out[col] = _utc(out[col], subject, col)
    for col in (*NUMBERS, *CHANGE):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    derived = out["started_at"] + pd.to_timedelta(out["duration_s"], unit="s")
    out["finished_at"] = out["finished_at"].fillna(derived)
    for col in ("project", "run_id", "job", "status"):
        out[col] = out[col].astype(object).where(out[col].notna(), "").astype(str)
    for col in TEXT:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    key = ["project", "run_id", *(["attempt"] if "attempt" in out.columns else [])]
    if out.duplicated(key).any():
        raise InputError(subject, f"{'/'.join(key[1:])} repeats within a project")
    order = [*REQUIRED, *OPTIONAL]
    return out[order + [c for c in out.columns if c not in order]]


def outcome(status: pd.Series) -> pd.Series:
    """1.0 for failure, 0.0 for success, NaN for anything that is not an outcome (cancelled, ...)."""
    return status.map({"failure": 1.0, "success": 0.0}).astype(float)


def _utc(values: pd.Series, subject: str, column: str) -> pd.Series:
    import pandas as pd

    try:
        parsed = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError(subject, f"{column} is not a timestamp column ({exc})") from exc
    return parsed.astype("datetime64[ns, UTC]")


def planned_run(
    history: pd.DataFrame,
    *,
    project: str,
    job: str,
    pull_request: str | None = None,
    branch: str | None = None,
    commit: str | None = None,
    author: str | None = None,
    at: pd.Timestamp | None = None,
    run_id: str = "planned",
) -> pd.DataFrame:
    """``history`` (normalized) plus one run that has not started yet, as its last row.

    For "what if this pull request were built now": the new row starts at ``at`` (default: now,
    UTC) with status ``unknown``. ``branch`` defaults to the pull request's latest base branch in
    the history, so branch-health features see the right branch.
    """
    import pandas as pd

    runs = normalize(history)
    when = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    if branch is None and pull_request is not None:
        same = runs[(runs["project"] == project) & (runs["pull_request"] == pull_request)]
        if len(same):
            branch = same.sort_values("started_at")["branch"].iloc[-1]
    row = {"project": project, "run_id": run_id, "job": job, "status": "unknown", "started_at": when}
    row |= {"pull_request": pull_request, "branch": branch, "commit": commit, "author": author}
    planned = normalize(pd.DataFrame([row]))
    return normalize(pd.concat([runs, planned], ignore_index=True))


def time_split(runs: pd.DataFrame, cut: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """(learn, score) masks for a time-ordered evaluation at ``cut``.

    ``learn``: outcomes that FINISHED before ``cut`` (their result was known then); ``score``: runs
    that started at or after it. A run started before the cut but finished after is in neither: it
    is history for later runs, but its label was not known at the cut and it was not predicted
    after it. Every run stays in the frame as history for the features.
    """
    import pandas as pd

    at = pd.Timestamp(cut)
    decided = runs["status"].isin(["success", "failure"])
    return decided & (runs["finished_at"] < at), runs["started_at"] >= at


def cut_at_share(runs: pd.DataFrame, test_share: float) -> pd.Timestamp:
    """The start time that leaves the last ``test_share`` of the runs (by start time) after it."""
    import pandas as pd

    if not 0 < test_share < 1 or runs.empty:
        raise InputError("runs", "need some runs and a test share between 0 and 1")
    starts = runs["started_at"].sort_values(kind="stable").reset_index(drop=True)
    return pd.Timestamp(starts.iloc[min(int(len(starts) * (1 - test_share)), len(starts) - 1)])
