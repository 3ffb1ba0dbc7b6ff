"""GitLab API JSON (pipelines, jobs, the pipeline test report, deployments) read into cimedic's models.

Pure functions over the dicts python-gitlab returns, so the mapping is testable without a server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from cimedic.models import Job, Platform, RunInfo, Status, TestResult, TestStatus
from cimedic.tools.ci.base import Deployment, RunSummary
from cimedic.tools.ingest.junit import DETAILS_MAX_CHARS, MESSAGE_MAX_CHARS

REPORT_LABEL = "gitlab test report"

# Pipeline and job statuses (the same vocabulary). "manual" waits for someone to press play; it never ran.
STATUS = {
    "success": Status.SUCCESS,
    "failed": Status.FAILURE,
    "canceled": Status.CANCELLED,
    "canceling": Status.CANCELLED,
    "skipped": Status.SKIPPED,
    "manual": Status.SKIPPED,
    "created": Status.RUNNING,
    "waiting_for_resource": Status.RUNNING,
    "waiting_for_callback": Status.RUNNING,
    "preparing": Status.RUNNING,
    "pending": Status.RUNNING,
    "running": Status.RUNNING,
    "scheduled": Status.RUNNING,
}
# The pipelines list filters on one GitLab status; RUNNING spans several, so it is filtered client-side.
STATUS_FILTER = {
    Status.SUCCESS: "success",
    Status.FAILURE: "failed",
    Status.CANCELLED: "canceled",
    Status.SKIPPED: "skipped",
}
# Deployment statuses. "created" waits for its job, "blocked" for an approval; "skipped" (an outdated
# deployment job GitLab prevented) never deployed and did not fail, as a cancelled one.
_DEPLOY_STATUS = {
    "success": Status.SUCCESS,
    "failed": Status.FAILURE,
    "canceled": Status.CANCELLED,
    "skipped": Status.CANCELLED,
    "created": Status.RUNNING,
    "running": Status.RUNNING,
    "blocked": Status.RUNNING,
}
_ENDED = {Status.SUCCESS, Status.FAILURE, Status.CANCELLED}
_TEST_STATUS = {
    "success": TestStatus.PASSED,
    "failed": TestStatus.FAILED,
    "error": TestStatus.ERROR,
    "skipped": TestStatus.SKIPPED,
}
# Merge request pipelines run on refs/merge-requests/<iid>/head (merged results: /merge, merge trains: /train).
_MR_REF = re.compile(r"^refs/merge-requests/(\d+)/(?:head|merge|train)$")
# GitLab names a job's test suite after the job's group: "rspec 1/3" and "pytest: [3.11]" report as
# "rspec" and "pytest" (the same suffixes Ci::Build#group_name strips).
_GROUP_SUFFIX = re.compile(r"(?:[\s:]+(?:\[.*\]|\d+[\s:/\\]+\d+))+\s*$")


def status_of(value: object) -> Status:
    return STATUS.get(str(value), Status.UNKNOWN)


def when(value: object) -> datetime | None:
    """GitLab timestamps (``2024-05-01T10:00:03.894Z``, or with an offset) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def queued_at(job: dict[str, Any]) -> datetime | None:
    """When a job entered the queue: ``started_at - queued_duration``.

    A job's ``created_at`` is its pipeline's creation, so for a later stage it would count the earlier
    stages as queue time; GitLab's ``queued_duration`` is the time the job spent pending. (A pipeline's
    ``queued_duration`` is only ``started_at - created_at`` in whole seconds, so pipelines use ``created_at``.)
    """
    started = when(job.get("started_at"))
    queued = job.get("queued_duration")
    if started is not None and isinstance(queued, int | float):
        return started - timedelta(seconds=float(queued))
    return when(job.get("created_at"))


def merge_request_iid(ref: object) -> str | None:
    m = _MR_REF.match(str(ref or ""))
    return m.group(1) if m else None


def group_name(job_name: str) -> str:
    return _GROUP_SUFFIX.sub("", job_name).strip()


def job_model(data: dict[str, Any]) -> Job:
    # Jobs belong to stages; the stage in the name keeps "test / pytest" apart from "deploy / pytest".
    stage = data.get("stage")
    name = str(data.get("name") or data.get("id"))
    runner = data.get("runner") or {}
    return Job(
        name=f"{stage} / {name}" if stage else name,
        status=status_of(data.get("status")),
        platform=Platform.GITLAB,
        runner=runner.get("description") or runner.get("name") or None,
        id=str(data["id"]),
        url=data.get("web_url"),
        queued_at=queued_at(data),
        started_at=when(data.get("started_at")),
        finished_at=when(data.get("finished_at")),
    )


def run_info(project: str, pipeline: dict[str, Any], jobs: list[dict[str, Any]], *, branch: str | None) -> RunInfo:
    user = pipeline.get("user") or {}
    iid = pipeline.get("iid")
    return RunInfo(
        platform=Platform.GITLAB,
        id=str(pipeline["id"]),
        url=pipeline.get("web_url"),
        project=project,
        name=pipeline.get("name"),
        number=str(iid) if iid is not None else None,
        status=status_of(pipeline.get("status")),
        commit=pipeline.get("sha"),
        branch=branch,
        pull_request=merge_request_iid(pipeline.get("ref")),
        actor=user.get("username"),
        event=pipeline.get("source"),
        queued_at=when(pipeline.get("created_at")),
        started_at=when(pipeline.get("started_at")),
        finished_at=when(pipeline.get("finished_at")),
        jobs=[job_model(j) for j in sorted(jobs, key=lambda j: int(j["id"]))],
    )


def summary(project: str, item: dict[str, Any]) -> RunSummary:
    """A pipelines-list entry: GitLab lists no user or start/finish times, only created/updated."""
    ref = item.get("ref")
    iid = item.get("iid")
    return RunSummary(
        platform=Platform.GITLAB,
        project=project,
        id=str(item["id"]),
        number=str(iid) if iid is not None else None,
        name=item.get("name"),
        status=status_of(item.get("status")),
        branch=None if merge_request_iid(ref) else ref,
        commit=item.get("sha"),
        event=item.get("source"),
        url=item.get("web_url"),
        queued_at=when(item.get("created_at")),
    )


def _clip(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(output: str) -> str | None:
    """The line that says what failed: pytest's first ``E`` line, else the first line (Java, Go, JS)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E ") and len(line) > 2:
            return line[2:].strip()
    return lines[0] if lines else None


def report_results(report: dict[str, Any], *, job_name: str | None = None) -> tuple[list[TestResult], list[str]]:
    """Every case of the pipeline's test report; with ``job_name`` only that job's suite."""
    results: list[TestResult] = []
    warnings: list[str] = []
    wanted = group_name(job_name) if job_name else None
    for suite in report.get("test_suites") or []:
        suite_name = suite.get("name")
        if wanted is not None and suite_name != wanted:
            continue
        if suite.get("suite_error"):
            warnings.append(f"{REPORT_LABEL}, suite {suite_name}: {suite['suite_error']}")
        for case in suite.get("test_cases") or []:
            state = _TEST_STATUS.get(str(case.get("status")), TestStatus.ERROR)
            output = "\n".join(str(case[k]) for k in ("system_output", "stack_trace") if case.get(k))
            failed = state in (TestStatus.FAILED, TestStatus.ERROR)
            seconds = case.get("execution_time")
            results.append(
                TestResult(
                    name=str(case.get("name") or "(unnamed)"),
                    classname=case.get("classname"),
                    suite=suite_name,
                    status=state,
                    message=_clip(_message(output), MESSAGE_MAX_CHARS) if state != TestStatus.PASSED else None,
                    details=_clip(output, DETAILS_MAX_CHARS) if failed else None,
                    duration_s=float(seconds) if isinstance(seconds, int | float) else None,
                    report_path=REPORT_LABEL,
                )
            )
    return results, warnings


def deployment(project: str, item: dict[str, Any], server: str) -> Deployment:
    """A deployments-list entry. Its job (``deployable``) says when it ended and which pipeline ran it;
    a deployment created through the API has no job."""
    job = item.get("deployable") or {}
    pipeline = job.get("pipeline") or {}
    environment = item.get("environment") or {}
    status = _DEPLOY_STATUS.get(str(item.get("status")), Status.UNKNOWN)
    finished = (when(item.get("finished_at")) or when(job.get("finished_at"))) if status in _ENDED else None
    page = f"{server}/{project}/-/environments/{environment['id']}" if environment.get("id") else None
    return Deployment(
        platform=Platform.GITLAB,
        project=project,
        id=str(item["id"]),
        environment=environment.get("name"),
        commit=item.get("sha"),
        ref=item.get("ref"),
        status=status,
        created_at=when(item.get("created_at")),
        finished_at=finished,
        run_id=str(pipeline["id"]) if pipeline.get("id") else None,
        url=job.get("web_url") or page,
    )
