"""predict_failure: the promoted failure predictor's P(fail) for a run, and the features behind it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import AgentTool, Workspace

if TYPE_CHECKING:
    import pandas as pd

NO_MODEL = "no failure predictor is trained and promoted; a person can make one with `cimedic train predictor`"
NO_HISTORY = "no run history{where}, so there is nothing to predict from; `cimedic ingest` fills it"


class Args(BaseModel):
    run: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a stored run id (as get_job_history lists them); default: the run under investigation",
    )


class PredictFailure(AgentTool):
    name: str = "predict_failure"
    description: str = (
        "The failure predictor's probability for a run (default: this one), with the features that moved it "
        "most. Tells whether this failure was expected from recent history."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        from cimedic.registry import ModelRegistry
        from cimedic.tools.predict import FailurePredictor

        ws = self.workspace
        known = ws.history.projects()
        # Local material names no project; a history of one project is still the obvious one.
        project = ws.project or (known[0] if len(known) == 1 else None)
        if project is None and len(known) > 1:
            return {"probability": None, "note": f"this run names no project and the history holds several: {known}"}
        if project is None or project not in known:
            return {"probability": None, "note": NO_HISTORY.format(where=f" for {project}" if project else "")}
        path = ModelRegistry(ws.settings.models_dir).champion_path("predictor")
        if path is None:
            return {"probability": None, "note": NO_MODEL}
        model = FailurePredictor.load(path)
        frame, row, subject = _subject(ws, ws.history.runs_frame(project), project, args.run)
        probability = float(model.predict(frame)[row])
        reasons = model.explain(model.features_of(frame).iloc[row])
        out: dict[str, Any] = {
            "subject": subject,
            "project": project,
            "probability": round(probability, 3),
            "threshold": round(model.threshold, 3),
            "verdict": "likely to fail" if probability >= model.threshold else "likely to pass",
            "model": f"predictor {path.parent.name}",
            "reasons": [
                {"feature": c.feature, "value": _num(c.value), "effect": _num(c.effect), "unit": c.unit}
                | {"why": c.description}
                for c in reasons
            ],
        }
        status = str(frame.loc[row, "status"])
        if status in ("success", "failure"):
            out["actual_status"] = status
        return out


def _subject(ws: Workspace, runs: pd.DataFrame, project: str, run: str | None) -> tuple[pd.DataFrame, int, str]:
    """The frame to predict from, the row of the run asked about, and how to name it."""
    from cimedic.tools.predict import normalize, planned_run

    info = ws.diagnosis.run if ws.diagnosis.run and ws.diagnosis.run.project == project else None
    wanted = run or (info.id if info else None)
    if wanted is not None:
        frame = normalize(runs).reset_index(drop=True)
        hits = frame.index[frame["run_id"].astype(str) == wanted].tolist()
        if hits:
            return frame, int(hits[-1]), f"run {wanted}"  # its newest attempt
        if run is not None:
            newest = runs["run_id"].astype(str).iloc[::-1].head(5).tolist()
            raise ValueError(f"no run {run!r} in the history of {project}; the newest are {newest}")
    jobs = runs["job"].dropna()
    job = str(jobs.mode().iloc[0]) if len(jobs) else ""
    if info is not None and info.name is not None and info.name in set(jobs):
        job = info.name
    # Not stored yet: predicted as its job's next run, from what the platform says about it.
    frame = planned_run(
        runs,
        project=project,
        job=job,
        pull_request=info.pull_request if info else None,
        branch=info.branch if info else None,
        commit=info.commit if info else None,
        author=info.actor if info else None,
        at=info.started_at if info else None,
    )
    return frame, len(frame) - 1, f"next run of job {job!r}" + (f" (run {info.id}, not stored yet)" if info else "")


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
