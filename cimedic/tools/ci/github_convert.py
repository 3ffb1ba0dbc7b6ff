"""GitHub API objects (PyGithub's) as cimedic's models: runs, jobs, steps and their timings; deployments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from github.Deployment import Deployment as GitHubDeployment
from github.DeploymentStatus import DeploymentStatus
from github.WorkflowJob import WorkflowJob
from github.WorkflowRun import WorkflowRun

from cimedic.models import Job, Platform, RunInfo, Status, Step, seconds_between
from cimedic.tools.ci.base import Deployment, RunSummary

_CONCLUSIONS = {
    "success": Status.SUCCESS,
    "neutral": Status.SUCCESS,
    "failure": Status.FAILURE,
    "timed_out": Status.FAILURE,
    "startup_failure": Status.FAILURE,
    "cancelled": Status.CANCELLED,
    "skipped": Status.SKIPPED,
}

# Deployment status states. "inactive" is no outcome: GitHub marks a successful deployment inactive when a
# later one to the same environment succeeds (or the deployer says so); the outcome is the state before it.
_DEPLOY_STATES = {
    "success": Status.SUCCESS,
    "failure": Status.FAILURE,
    "error": Status.FAILURE,
    "queued": Status.RUNNING,
    "pending": Status.RUNNING,
    "in_progress": Status.RUNNING,
}
_ENDED = {Status.SUCCESS, Status.FAILURE}
# Deployments made by GitHub Actions jobs point their statuses at the job: .../actions/runs/<run>/job/<job>.
_ACTIONS_RUN = re.compile(r"/actions/runs/(\d+)")


@dataclass(frozen=True)
class DeployRecord:
    id: int
    sha: str | None
    ref: str | None
    environment: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class DeployState:
    state: str
    created_at: datetime | None
    url: str | None


def deploy_record(deployment: GitHubDeployment) -> DeployRecord:
    return DeployRecord(deployment.id, deployment.sha, deployment.ref, deployment.environment, deployment.created_at)


def deploy_state(status: DeploymentStatus) -> DeployState:
    return DeployState(status.state, status.created_at, status.log_url or status.target_url or None)


def deployment_of(project: str, record: DeployRecord, states: list[DeployState]) -> Deployment:
    """A deployment with its statuses, newest first (as GitHub lists them): the newest that is an outcome
    or progress gives the status, the time it was set the end; no status yet is unknown."""
    current = next((s for s in states if s.state in _DEPLOY_STATES), None)
    status = _DEPLOY_STATES[current.state] if current else Status.UNKNOWN
    links = [s.url for s in states if s.url]
    runs = [m.group(1) for m in (_ACTIONS_RUN.search(url) for url in links) if m]
    return Deployment(
        platform=Platform.GITHUB_ACTIONS,
        project=project,
        id=str(record.id),
        environment=record.environment,
        commit=record.sha,
        ref=record.ref,
        status=status,
        created_at=record.created_at,
        finished_at=current.created_at if current and status in _ENDED else None,
        run_id=runs[0] if runs else None,
        url=links[0] if links else None,
    )


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
        attempt=run.run_attempt,
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
