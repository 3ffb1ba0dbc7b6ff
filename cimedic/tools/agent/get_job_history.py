"""get_job_history: how a job (workflow, pipeline) has been doing: outcomes, durations, latest runs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, clip, fit

if TYPE_CHECKING:
    import pandas as pd

MAX_LIMIT = 50
BUDGET = OUTPUT_MAX_CHARS - 800  # what the counts and statistics leave for the run list
NO_RUNS = "no runs are stored{where}; `cimedic ingest` fills the run history"


class Args(BaseModel):
    job: str = Field(
        min_length=1, max_length=300, description="the workflow, pipeline or job name runs are stored under"
    )
    limit: int = Field(default=20, ge=1, description=f"how many of its newest runs to list; at most {MAX_LIMIT}")


class GetJobHistory(AgentTool):
    name: str = "get_job_history"
    description: str = (
        "One job's stored history: runs by status, failure rate overall and recently, median/p90 duration and "
        "queue time, the newest runs."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        ws = self.workspace
        runs = ws.history.runs_frame(ws.project)
        where = f" for {ws.project}" if ws.project else ""
        if runs.empty:
            return {"job": args.job, "runs": 0, "note": NO_RUNS.format(where=where)}
        mine = runs[runs["job"] == args.job]
        if mine.empty:  # a model may not copy the case of a name exactly
            mine = runs[runs["job"].str.casefold() == args.job.casefold()]
        if mine.empty:
            known = runs["job"].dropna().value_counts().index.tolist()
            raise ValueError(f"no runs of job {args.job!r} are stored{where}; stored jobs: {known[:20]}")
        limit = min(args.limit, MAX_LIMIT)
        newest = mine.iloc[::-1].head(limit)
        listed = [_run(row, len(mine["project"].unique()) > 1) for _, row in newest.iterrows()]
        shown = fit(listed, BUDGET)
        out: dict[str, Any] = {
            "job": str(mine["job"].iloc[0]),
            "runs": len(mine),
            "by_status": {str(k): int(v) for k, v in mine["status"].value_counts().items()},
            "failure_rate": _failure_rate(mine["status"]),
            "recent_failure_rate": _failure_rate(newest["status"]),
            "first_started": _when(mine["started_at"].min()),
            "last_started": _when(mine["started_at"].max()),
            "duration_s": _spread(mine["duration_s"]),
            "queue_s": _spread(mine["queue_s"]),
            "latest": shown,
        }
        notes = [f"limit capped at {MAX_LIMIT}"] if limit < args.limit else []
        if len(shown) < len(listed):
            notes.append(f"{len(listed) - len(shown)} more runs left out to fit the answer")
        if notes:
            out["note"] = "; ".join(notes)
        return out


def _failure_rate(status: pd.Series) -> float | None:
    # Over runs with an outcome: a cancelled run neither passed nor failed (as HistoryStats counts it).
    failed, passed = int((status == "failure").sum()), int((status == "success").sum())
    return round(failed / (failed + passed), 4) if failed + passed else None


def _spread(values: pd.Series) -> dict[str, float] | None:
    known = values.dropna()
    if known.empty:
        return None
    return {"median": round(float(known.median()), 1), "p90": round(float(known.quantile(0.9)), 1)}


def _when(value: Any) -> str | None:
    return None if value is None or value != value else f"{value:%Y-%m-%dT%H:%MZ}"


def _run(row: pd.Series, with_project: bool) -> dict[str, Any]:
    duration = row["duration_s"]
    fields = {
        "project": row["project"] if with_project else None,
        "run_id": clip(str(row["run_id"]), 80),
        "attempt": int(row["attempt"]),
        "status": row["status"],
        "commit": str(row["commit"])[:12] if row["commit"] else None,
        "started_at": _when(row["started_at"]),
        "duration_s": None if duration is None or math.isnan(duration) else round(float(duration)),
    }
    return {k: v for k, v in fields.items() if v is not None}
