"""GitHub Actions API objects (PyGithub's) as cimedic's models: runs, jobs, steps and their timings."""

from __future__ import annotations

from github.WorkflowJob import WorkflowJob
from github.WorkflowRun import WorkflowRun

from cimedic.models import Job, Platform, RunInfo, Status, Step, seconds_between
from cimedic.tools.ci.base import RunSummary

_CONCLUSIONS = {
    "success": Status.SUCCESS,
    "neutral": Status.SUCCESS,
    "failure": Status.FAILURE,
    "timed_out": Status.FAILURE,
    "startup_failure": Status.FAILURE,
    "cancelled": Status.CANCELLED,
    "skipped": Status.SKIPPED,
}


def status_of(status: str | None, conclusion: str | None) -> Status:
    """A run's, job's or step's lifecycle ``status`` and outcome ``conclusion`` as one Status."""
    if status and status != "completed":
        return Status.RUNNING
    return _CONCLUSIONS.get(conclusion or "", Status.UNKNOWN)


def job_of(job: WorkflowJob) -> Job:
    return Job(
        name=job.name,
        status=status_of(job.status, job.conclusion),
        platform=Platform.GITHUB_ACTIONS,
        runner=job.runner_name or None,
        steps=[
            Step(
                name=step.name,
                number=step.number,
                status=status_of(step.status, step.conclusion),
                started_at=step.started_at,
                finished_at=step.completed_at,
            )
            for step in job.steps or []
        ],
        id=str(job.id),
        url=job.html_url,
        queued_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.completed_at,
    )


def summary_of(project: str, run: WorkflowRun) -> RunSummary:
    started = run.run_started_at
    finished = run.updated_at if run.status == "completed" else None
    return RunSummary(
        platform=Platform.GITHUB_ACTIONS,
        project=project,
        id=str(run.id),
        number=str(run.run_number),
        name=run.name,
        status=status_of(run.status, run.conclusion),
        branch=run.head_branch,
        commit=run.head_sha,
        actor=run.actor.login if run.actor else None,
        event=run.event,
        url=run.html_url,
        queued_at=run.created_at,
        started_at=started,
        finished_at=finished,
        duration_s=seconds_between(started, finished),
    )


def run_info(project: str, run: WorkflowRun, jobs: list[Job]) -> RunInfo:
    # The run's own timestamps say when the event created it; when runners actually picked its jobs
    # up and when the last one ended is what queue time and duration mean to people.
    ran = [j for j in jobs if j.status != Status.SKIPPED]
    starts = [j.started_at for j in ran if j.started_at]
    ends = [j.finished_at for j in ran if j.finished_at]
    attempt = run.run_attempt
    # A re-run attempt is created when someone asks for it, long after the run's created_at.
    queued = run.run_started_at if attempt and attempt > 1 else run.created_at
    completed = run.status == "completed"
    prs = run.pull_requests or []
    return RunInfo(
        platform=Platform.GITHUB_ACTIONS,
        id=str(run.id),
        url=run.html_url,
        project=project,
        name=run.name,
        number=str(run.run_number),
        attempt=attempt,
        status=status_of(run.status, run.conclusion),
        commit=run.head_sha,
        branch=run.head_branch,
        pull_request=str(prs[0].number) if prs else None,
        actor=run.actor.login if run.actor else None,
        event=run.event,
        queued_at=queued,
        started_at=min(starts, default=run.run_started_at),
        finished_at=max(ends, default=run.updated_at) if completed else None,
        jobs=jobs,
    )
