"""Azure DevOps build, timeline, test-result and environment deployment objects (the SDK's msrest models)
as cimedic's models.

A run is a build; its jobs are the timeline's Job records (named after their stage when there are
several), and their steps the Task records under them. A deployment is an environment's deployment
execution record; the build that ran it (its owner) gives the commit and branch.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cimedic.models import Job, Platform, RunInfo, Status, Step, TestResult, TestStatus, seconds_between
from cimedic.tools.ci.base import Deployment, RunSummary

# Outcomes of a test that did not pass: what fetch asks for (the server filters on them).
FAILED_OUTCOMES = {"Failed": TestStatus.FAILED, "Error": TestStatus.ERROR, "Timeout": TestStatus.ERROR}
# Every outcome (TestOutcome): the rest never ran or gave no verdict (NotExecuted, Blocked, Inconclusive,
# InProgress...), which counts as skipped.
OUTCOMES = FAILED_OUTCOMES | {"Passed": TestStatus.PASSED, "Warning": TestStatus.PASSED, "Aborted": TestStatus.ERROR}
# TaskResult of a deployment record: skipped and canceled deployments did not deploy and did not fail.
_DEPLOY_RESULTS = {
    "succeeded": Status.SUCCESS,
    "succeededWithIssues": Status.SUCCESS,
    "failed": Status.FAILURE,
    "abandoned": Status.FAILURE,
    "canceled": Status.CANCELLED,
    "skipped": Status.CANCELLED,
}
_RESULTS = {
    "succeeded": Status.SUCCESS,
    "succeededWithIssues": Status.SUCCESS,
    # A task with continueOnError failed: the pipeline passed, as GitHub's continue-on-error or GitLab's allow_failure.
    "partiallySucceeded": Status.SUCCESS,
    "failed": Status.FAILURE,
    # The agent was lost mid-job: a failure of the run, not a user's cancellation.
    "abandoned": Status.FAILURE,
    "canceled": Status.CANCELLED,
    "skipped": Status.SKIPPED,
}
_ACTIVE = {"inProgress", "cancelling", "notStarted", "postponed", "pending"}
_EVENTS = {
    "individualCI": "push",
    "batchedCI": "push",
    "pullRequest": "pull_request",
    "schedule": "schedule",
    "manual": "manual",
}
_PULL = re.compile(r"^refs/pull/(\d+)/")


def status(state: str | None, result: str | None) -> Status:
    """Builds and timeline records both say ``status``/``state`` (lifecycle) and ``result`` (outcome)."""
    if result and result != "none":
        return _RESULTS.get(result, Status.UNKNOWN)
    return Status.RUNNING if state in _ACTIVE else Status.UNKNOWN


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def full_branch(name: str) -> str:
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def pull_request(build: Any) -> str | None:
    m = _PULL.match(build.source_branch or "")
    if m:
        return m.group(1)
    number = (build.trigger_info or {}).get("pr.number")
    return str(number) if number else None


def branch(build: Any) -> str | None:
    # A PR build checks out refs/pull/N/merge; the branch people know is the PR's source branch.
    source = (build.trigger_info or {}).get("pr.sourceBranch") or build.source_branch
    return source.removeprefix("refs/heads/") if source else None


def actor(build: Any) -> str | None:
    who = build.requested_for
    return (who.unique_name or who.display_name) if who is not None else None


def event(build: Any) -> str | None:
    reason: str | None = build.reason
    return _EVENTS.get(reason, reason) if reason else None


def _web(obj: Any) -> str | None:
    # msrest keeps the links it has no model field for in ReferenceLinks.additional_properties.
    links = getattr(getattr(obj, "_links", None), "additional_properties", None) or {}
    href = (links.get("web") or {}).get("href")
    return str(href) if href else None


def web_url(base_url: str, project: str, build: Any) -> str:
    return _web(build) or f"{base_url}/{quote(project)}/_build/results?buildId={build.id}"


def tasks(records: list[Any], job_id: str) -> list[Any]:
    return sorted((r for r in records if r.type == "Task" and r.parent_id == job_id), key=lambda r: r.order or 0)


def jobs(web: str, records: list[Any]) -> list[tuple[Job, Any]]:
    """Each Job record as a Job (with the record, for its log), in stage, phase and job order."""
    by_id = {r.id: r for r in records}
    stages = [r for r in records if r.type == "Stage" and r.identifier != "__default"]

    def stage_of(record: Any) -> Any:
        while record is not None and record.type != "Stage":
            record = by_id.get(record.parent_id)
        return record

    def position(record: Any) -> tuple[int, int, int]:
        phase, stage = by_id.get(record.parent_id), stage_of(record)
        return (stage.order or 0) if stage else 0, (phase.order or 0) if phase else 0, record.order or 0

    found: list[tuple[Job, Any]] = []
    for rec in sorted((r for r in records if r.type == "Job"), key=position):
        stage = stage_of(rec)
        steps = [
            Step(
                name=t.name,
                number=t.order,
                status=status(t.state, t.result),
                started_at=utc(t.start_time),
                finished_at=utc(t.finish_time),
            )
            for t in tasks(records, rec.id)
        ]
        job = Job(
            name=f"{stage.name} / {rec.name}" if len(stages) > 1 and stage is not None else rec.name,
            status=status(rec.state, rec.result),
            platform=Platform.AZURE_DEVOPS,
            runner=rec.worker_name or None,
            steps=steps,
            id=rec.id,
            url=f"{web}&view=logs&j={rec.id}",
            started_at=utc(rec.start_time),
            finished_at=utc(rec.finish_time),
        )
        found.append((job, rec))
    return found


def run_info(project: str, web: str, build: Any, found: list[tuple[Job, Any]]) -> RunInfo:
    # Retrying failed jobs keeps the build and bumps the attempt of the jobs it re-runs.
    attempts = [rec.attempt for _, rec in found if rec.attempt]
    return RunInfo(
        platform=Platform.AZURE_DEVOPS,
        id=str(build.id),
        url=web,
        project=project,
        name=build.definition.name if build.definition is not None else None,
        number=build.build_number,
        attempt=max(attempts) if attempts else None,
        status=status(build.status, build.result),
        commit=build.source_version,
        branch=branch(build),
        pull_request=pull_request(build),
        actor=actor(build),
        event=event(build),
        queued_at=utc(build.queue_time),
        started_at=utc(build.start_time),
        finished_at=utc(build.finish_time),
        jobs=[job for job, _ in found],
    )


def summary(project: str, web: str, build: Any) -> RunSummary:
    started, finished = utc(build.start_time), utc(build.finish_time)
    return RunSummary(
        platform=Platform.AZURE_DEVOPS,
        project=project,
        id=str(build.id),
        number=build.build_number,
        name=build.definition.name if build.definition is not None else None,
        status=status(build.status, build.result),
        branch=branch(build),
        commit=build.source_version,
        actor=actor(build),
        event=event(build),
        url=web,
        queued_at=utc(build.queue_time),
        started_at=started,
        finished_at=finished,
        duration_s=seconds_between(started, finished),
    )


def test_result(test_run: Any, r: Any) -> TestResult:
    status = OUTCOMES.get(r.outcome, TestStatus.SKIPPED)
    return TestResult(
        name=r.test_case_title or r.automated_test_name or str(r.id),
        classname=r.automated_test_storage,
        suite=test_run.name,
        status=status,
        message=r.error_message if status != TestStatus.PASSED else None,
        details=r.stack_trace if status in (TestStatus.FAILED, TestStatus.ERROR) else None,
        duration_s=r.duration_in_ms / 1000 if r.duration_in_ms is not None else None,
        report_path=f"azure test run {test_run.id}",
    )


def created(record: Any) -> datetime | None:
    """When a deployment record was queued (its start when the queue time is missing)."""
    return utc(record.queue_time or record.start_time)


def deployment(project: str, environment: str | None, record: Any, build: Any, base_url: str) -> Deployment:
    """An environment deployment record; ``build`` is its owner build (None when unknown or deleted)."""
    # No result yet: still deploying while it has no finish time.
    state = _DEPLOY_RESULTS.get(
        str(record.result or ""), Status.RUNNING if record.finish_time is None else Status.UNKNOWN
    )
    owner = record.owner if (record.plan_type or "Build") == "Build" else None
    run_id = str(owner.id) if owner is not None and owner.id is not None else None
    ref = build.source_branch if build is not None else None
    fallback = f"{base_url}/{quote(project)}/_build/results?buildId={run_id}" if run_id else None
    return Deployment(
        platform=Platform.AZURE_DEVOPS,
        project=project,
        id=str(record.id),
        environment=environment,
        commit=build.source_version if build is not None else None,
        ref=ref.removeprefix("refs/heads/").removeprefix("refs/tags/") if ref else None,
        status=state,
        created_at=created(record),
        finished_at=utc(record.finish_time) if state in (Status.SUCCESS, Status.FAILURE, Status.CANCELLED) else None,
        run_id=run_id,
        url=(_web(owner) if owner is not None else None) or fallback,
    )
