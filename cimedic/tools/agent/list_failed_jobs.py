"""list_failed_jobs: the jobs that failed, their failed steps, and the log path of each."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cimedic.models import Job, Status
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, Workspace, clip, fit

MAX_JOBS = 100
BUDGET = OUTPUT_MAX_CHARS - 300
MAX_LOGS = 10


class Args(BaseModel):
    """No arguments: the failed jobs of the run under investigation."""


class ListFailedJobs(AgentTool):
    name: str = "list_failed_jobs"
    description: str = (
        "The failed jobs and their failed steps, each with the log path to pass to get_log_excerpt, "
        "search_log or diff_with_last_green."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        ws = self.workspace
        info = ws.diagnosis.run
        jobs = info.jobs if info is not None else ws.material.run.jobs if ws.material else []
        failed: list[tuple[Job, str | None]] = [(j, None) for j in jobs if j.status == Status.FAILURE]
        if not failed:
            # Local logs carry no job status: the diagnosis's failing log is the best account of one.
            blamed = {e.path for e in ws.diagnosis.evidence}
            blamed |= {ws.diagnosis.excerpt.path} if ws.diagnosis.excerpt else set()
            failed = [(j, "its log holds the diagnosis evidence") for j in jobs if blamed & set(_log_paths(ws, j))]
        # A failed matrix can list hundreds of jobs: as many as fit the bounded answer, whole.
        entries = [_job(ws, job, why) for job, why in failed[:MAX_JOBS]]
        out: dict[str, Any] = {"failed_jobs": fit(entries, BUDGET)}
        if len(out["failed_jobs"]) < len(failed):
            out["jobs_omitted"] = len(failed) - len(out["failed_jobs"])
        if not failed:
            out["note"] = "no job is marked failed and no log holds error evidence"
            out["logs"] = [log.path for log in ws.logs[:MAX_LOGS]]
        return out


def _log_paths(ws: Workspace, job: Job) -> list[str]:
    """The logs of ``job``: by the job name ingest gave them, else the step logs the job names."""
    paths = [log.path for log in ws.logs if log.job == job.name]
    steps = {s.log_path for s in job.steps if s.log_path}
    return paths or [log.path for log in ws.logs if log.path in steps]


def _step_log(ws: Workspace, job: Job, step: str, log_path: str | None) -> str | None:
    for log in ws.logs:
        if log.path == log_path or (log.job == job.name and log.step == step):
            return log.path
    return None


def _job(ws: Workspace, job: Job, why: str | None) -> dict[str, Any]:
    logs = _log_paths(ws, job)
    # A platform that gives one log per job (GitHub's job logs, GitLab) holds the step's lines in it.
    whole = logs[0] if len(logs) == 1 else None
    steps = [
        {"name": clip(s.name, 120), "number": s.number, "log": _step_log(ws, job, s.name, s.log_path) or whole}
        for s in job.steps
        if s.status == Status.FAILURE
    ]
    # The job's own log: its failed step's when known, else the one whole-job log or first step log.
    log = next((s["log"] for s in steps if s["log"]), logs[0] if logs else None)
    out: dict[str, Any] = {"job": clip(job.name, 120), "status": job.status, "log": log, "failed_steps": steps}
    if why:
        out["why"] = why
    if job.runner:
        out["runner"] = job.runner
    if len(logs) > 1:
        out["logs"] = logs[:MAX_LOGS]
    return out
