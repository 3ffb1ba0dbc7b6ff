"""Retry: re-run the failed jobs of the run, or the one job the action names.

GitHub re-runs failed jobs (or one job) as a new attempt of the same run; GitLab retries the pipeline's
failed jobs (or one job) as new jobs of the same pipeline; Azure DevOps retries the build's failed jobs,
bumping their attempt; none of them re-runs a single job there. Jenkins cannot re-run part of a build:
the provider starts a new build of the job with the failed build's parameters.

Idempotency: before writing, the run is read again. A newer attempt, a failed job replaced by a new job,
or a run that is running again means the re-run already happened, and nothing is sent a second time.
Jenkins is the exception: its new build is not linked to the failed one, so only the audit log's key
stops a second execution there.
"""

from __future__ import annotations

from typing import ClassVar

from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.models import Action, ActionKind, Platform, RunInfo, Status
from cimedic.tools.ci.base import RunFilter, RunRef, RunSummary

# Platforms whose API re-runs one job of a run on its own.
_ONE_JOB = {Platform.GITHUB_ACTIONS, Platform.GITLAB}
_NEXT_BUILDS = 20  # at most this many Jenkins builds since the failed one are read to find the re-run


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class Retry:
    kind: ClassVar[ActionKind] = ActionKind.RETRY

    def _ref(self, ctx: HealContext, job_id: str | None) -> RunRef:
        if ctx.ref is None:
            raise ValueError("retry needs the run's CI platform: investigate it by URL")
        info = ctx.diagnosis.run
        # A GitLab job URL names no pipeline: the diagnosis knows which one it belongs to.
        run_id = ctx.ref.run_id or (info.id if info else "")
        return ctx.ref.model_copy(update={"run_id": run_id, "job_id": job_id})

    def plan(self, action: Action, ctx: HealContext) -> Step:
        info = ctx.diagnosis.run
        if info is not None and info.status == Status.SUCCESS:
            raise ValueError(f"run {info.id} succeeded: there is nothing to retry")
        wanted = _norm(action.target)
        job = next((j for j in info.jobs if wanted in (_norm(j.name), j.id)), None) if info else None
        one = job is not None and job.id is not None and ctx.provider.platform in _ONE_JOB
        ref = self._ref(ctx, job.id if one and job else None)
        write = ctx.provider.rerun_failed(ref, dry_run=True)
        request = write.model_dump(include={"method", "endpoint", "payload"})
        # What execute and verify act on, as approved: the job (id and name) or None for the whole run.
        request |= {"job_id": ref.job_id, "job": job.name if one and job else None}
        return Step(
            kind=self.kind,
            target=action.target,
            key=f"retry:{run_key(ctx)}:{action.target}"[:500],
            summary=_sentence(write.detail.removeprefix("would ")),
            request=request,
        )

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        ref = self._ref(ctx, step.request.get("job_id"))
        job = step.request.get("job")
        if ctx.provider.platform != Platform.JENKINS:
            now = ctx.provider.run(ref)
            if _rerun_seen(ctx.diagnosis.run, now, job):
                detail = f"already re-run: {_label(now)} is {now.status}"
                return Outcome(done=True, detail=detail, data={"attempt": now.attempt, "already": True})
        result = ctx.provider.rerun_failed(ref, dry_run=False)
        return Outcome(done=result.done, detail=result.detail, data={"endpoint": result.endpoint})

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        ref = self._ref(ctx, step.request.get("job_id"))
        job = step.request.get("job")
        if ctx.provider.platform == Platform.JENKINS:
            status = _next_jenkins_build(ctx, ref)
            if status is None:
                return Verdict.PENDING, "the new build has not started yet"
            return _verdict(status, "the new build")
        now = ctx.provider.run(ref)
        if not _rerun_seen(ctx.diagnosis.run, now, job):
            return Verdict.PENDING, "the re-run has not started yet"
        if job is None:
            return _verdict(Status(now.status), _label(now))
        found = next((j for j in now.jobs if j.name == job), None)
        return _verdict(found.status if found else Status.UNKNOWN, f"job {job}")


def _rerun_seen(before: RunInfo | None, now: RunInfo, job: str | None) -> bool:
    """Has the run (or the job) been re-run since the diagnosis read it?"""
    if now.status == Status.RUNNING:
        return True
    if before is None:
        return False
    if (now.attempt or 1) > (before.attempt or 1):  # GitHub, Azure DevOps: a new attempt
        return True
    # GitLab: a retried job is a new job (new id) under the same name.
    failed = {j.name: j.id for j in before.jobs if j.status == Status.FAILURE and job in (None, j.name)}
    current = {j.name: j.id for j in now.jobs}
    return any(name in current and current[name] != old for name, old in failed.items())


def _next_jenkins_build(ctx: HealContext, ref: RunRef) -> Status | None:
    """The status of the first build of the job after the failed one (the re-run), None before it exists."""
    if not ref.run_id.isdigit():
        return None
    newer: list[RunSummary] = []
    # Newest first: stop at the failed build, so only the builds since it are read.
    for build in ctx.provider.runs(ref.project, RunFilter(limit=_NEXT_BUILDS)):
        if not build.id.isdigit() or int(build.id) <= int(ref.run_id):
            break
        newer.append(build)
    return Status(newer[-1].status) if newer else None


def _verdict(status: Status, what: str) -> tuple[Verdict, str]:
    if status == Status.SUCCESS:
        return Verdict.FIXED, f"{what} passed"
    if status in (Status.FAILURE, Status.CANCELLED, Status.SKIPPED):
        return Verdict.NOT_FIXED, f"{what} ended {status}"
    # Running, or an outcome the platform has not settled (waiting for an approval): ask again later.
    return Verdict.PENDING, f"{what} is {'still running' if status == Status.RUNNING else status}"


def _label(run: RunInfo) -> str:
    # GitLab re-runs inside the same pipeline and counts no attempts.
    return f"run {run.id}" + (f" attempt {run.attempt}" if run.attempt else "")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
