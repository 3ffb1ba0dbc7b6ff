"""get_run: the run's metadata, its jobs and the deterministic verdict, in one compact answer."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from cimedic.models import Job, Status
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, clip, fit


class Args(BaseModel):
    """No arguments: there is one run per investigation."""


class GetRun(AgentTool):
    name: str = "get_run"
    description: str = (
        "The run's metadata (platform, ids, branch, commit, PR, trigger, timings), its jobs with status, and "
        "the deterministic verdict. Call first: it names the jobs other tools accept."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        diag = self.workspace.diagnosis
        out: dict[str, Any] = {"source": {"kind": diag.source.kind, "path": diag.source.path}}
        info = diag.run
        run = self.workspace.material.run if self.workspace.material else None
        if info is not None:
            fields = [*("platform", "id", "url", "project", "name", "number", "attempt", "status", "commit")]
            fields += ("branch", "pull_request", "actor", "event", "queue_s", "duration_s")
            out.update({f: getattr(info, f) for f in fields})
            jobs = info.jobs
        elif run is not None:
            # Local material: no platform metadata, only what ingest read from the files.
            out.update({"platform": run.platform, "id": run.id, "url": run.url, "status": run.status})
            jobs = run.jobs
        else:
            jobs = []
        out = {k: v for k, v in out.items() if v is not None}
        out["verdict"] = {"category": diag.category, "confidence": diag.confidence, "summary": diag.summary}
        # A big matrix must not push the verdict out of the bounded answer: jobs get what is left,
        # failed ones first when they do not all fit.
        room = OUTPUT_MAX_CHARS - len(json.dumps(out, ensure_ascii=False, default=str)) - 100
        listed = [_job(j) for j in jobs]
        if len(json.dumps(listed, ensure_ascii=False, default=str)) > room:
            listed.sort(key=lambda j: j["status"] != Status.FAILURE)
            listed = fit(listed, room - 30)
            out["jobs_omitted"] = len(jobs) - len(listed)
        out["jobs"] = listed
        return out


def _job(job: Job) -> dict[str, Any]:
    # None fields are dropped: every key costs the model tokens and says nothing.
    fields = {"name": clip(job.name, 120), "status": job.status, "runner": job.runner, "duration_s": job.duration_s}
    return {k: v for k, v in fields.items() if v is not None}
