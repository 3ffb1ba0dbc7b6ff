"""Raise the timeout of the job (or GitHub step) that ran out of time, as a PR/MR people review.

plan() reads the CI definition from the default branch and computes the one-line edit (``ci_config``);
execute() hands it to the change requester, which pushes ``cimedic/timeout-<job>`` and opens the PR/MR
(or finds the one already open). verify() follows the PR/MR: pending while it is open, then the first
finished runs of the job on the default branch after the merge say whether the job now fits its limit.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from typing import ClassVar

from cimedic.heal import ci_config
from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.heal.change_request import ListsFiles, Refreshes, TracksReviews, unified_diff
from cimedic.heal.durations import parse_duration
from cimedic.heal.reviews import Review
from cimedic.models import Action, ActionKind, Diagnosis, Job, Platform, Status, seconds_between
from cimedic.redact import redact
from cimedic.tools.ci.base import RunFilter, RunRef

# A run that failed after this share of the limit ran into the limit again.
HIT_LIMIT = 0.95


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:40] or "job"


def _captured_limit(diag: Diagnosis) -> tuple[str | None, float | None]:
    """The step and the limit the knowledge-base match read from the log ("timed out after 10 minutes")."""
    for match in diag.matched_rules:
        if match.action != ActionKind.TIMEOUT:
            continue
        said = match.captures.get("minutes") or match.captures.get("limit") or ""
        try:
            # "10" (gha-step-timeout's minutes), "360 minutes", "1h0m0s" (ci-job-time-limit's limit)
            limit = parse_duration(f"{said} minutes" if said.isdigit() else said) if said else None
        except ValueError:
            limit = None
        return match.captures.get("step"), limit
    return None, None


def _job_of(action: Action, jobs: list[Job]) -> str:
    """The job as the run names it: params.job, else the target when it is a job, else the one failed job."""
    if action.params.get("job"):
        return action.params["job"]
    target = action.target
    if any(j.name.casefold() == target.casefold() for j in jobs) or (target != "run" and not jobs):
        return target
    failed = [j.name for j in jobs if j.status == Status.FAILURE]
    if len(failed) == 1:
        return failed[0]
    raise ValueError(f"which job timed out? name it (params.job); failed jobs: {', '.join(failed) or 'none'}")


def _seconds(job: Job | None, step: str | None) -> float | None:
    """How long the step (when the limit is the step's) or the job ran."""
    if job is None:
        return None
    found = next((s for s in job.steps if step and s.name.casefold() == step.casefold()), None)
    return seconds_between(found.started_at, found.finished_at) if found else job.duration_s


def _same_job(job: Job, name: str) -> bool:
    return job.name == name or bool(ci_config.job_forms(job.name) & ci_config.job_forms(name))


class RaiseTimeout:
    kind: ClassVar[ActionKind] = ActionKind.TIMEOUT

    def __init__(self, *, cap_minutes: int = 120, factor: float = 1.5, round_to: int = 5, later_runs: int = 3):
        self.cap_minutes = cap_minutes
        self.factor = factor
        self.round_to = round_to
        self.later_runs = later_runs  # finished runs verify() reads at most: one listing plus one read each

    def _platform(self, ctx: HealContext) -> Platform:
        if ctx.ref is not None:
            return ctx.ref.platform
        if ctx.diagnosis.run is not None:
            return Platform(ctx.diagnosis.run.platform)
        raise ValueError("raising a timeout needs the run's CI platform: investigate it by URL")

    def _definition(self, action: Action, ctx: HealContext, platform: Platform) -> tuple[str, str]:
        """The CI file's path and text on the default branch."""
        path = action.params.get("path")
        if path is None and platform is Platform.GITHUB_ACTIONS:
            name = ctx.diagnosis.run.name if ctx.diagnosis.run else None
            changes = ctx.changes
            # Without a listing, the usual file names and the run's name as a file name are the candidates.
            listed = (
                changes.files(ci_config.WORKFLOWS)
                if isinstance(changes, ListsFiles)
                else [f"{ci_config.WORKFLOWS}/{n}" for n in ("ci.yml", "ci.yaml", f"{_slug(name or '')}.yml")]
            )
            texts = {p: t for p in listed if p.endswith((".yml", ".yaml")) and (t := changes.read(p)) is not None}
            path = ci_config.workflow_for(name, texts)
            if path is None:
                raise ValueError(f"no workflow named {name!r} in {ci_config.WORKFLOWS}: {', '.join(texts) or 'none'}")
            return path, texts[path]
        path = path or ci_config.definition_path(platform)
        text = ctx.changes.read(path)
        if text is None:
            raise ValueError(f"{path} is not on the default branch (name the definition: params.path)")
        return path, text

    def plan(self, action: Action, ctx: HealContext) -> Step:
        diag = ctx.diagnosis
        platform = self._platform(ctx)
        jobs = diag.run.jobs if diag.run else []
        run_job = _job_of(action, jobs)
        captured_step, captured_limit = _captured_limit(diag)
        step = action.params.get("step") or (captured_step if platform is Platform.GITHUB_ACTIONS else None)
        path, text = self._definition(action, ctx, platform)
        setting = ci_config.find_timeout(text, platform, run_job, step)
        observed = _seconds(next((j for j in jobs if _same_job(j, run_job)), None), step)
        limit = setting.minutes if setting.line is not None else captured_limit or setting.minutes
        minutes = ci_config.proposed_minutes(
            limit, observed, cap=self.cap_minutes, factor=self.factor, round_to=self.round_to
        )
        new_text = ci_config.set_timeout(text, platform, run_job, minutes, step)
        what = f"step {step!r} of job {setting.job!r}" if step else f"job {setting.job!r}"
        was = f"{limit:g} min" if limit is not None else "the platform default"
        title = f"ci: raise the timeout of {what} to {minutes} min"
        branch = f"cimedic/timeout-{_slug(setting.job)}" + (f"-{_slug(step)}" if step else "")
        body = self._body(diag, path, what, was, minutes, observed)
        job_limit = ci_config.find_timeout(text, platform, run_job).minutes if step else None
        if job_limit is not None and job_limit < minutes:
            # A step cannot run longer than its job: say so rather than propose a change that cannot work alone.
            body += f"\n\nNote: job {setting.job!r} itself stops after {job_limit:g} min; raise that too."
        return Step(
            kind=self.kind,
            target=f"{path} {what}",
            key=f"timeout:{run_key(ctx)}:{setting.job}:{step or ''}"[:500],
            summary=f"raise the timeout of {what} in {path} from {was} to {minutes} min (PR from {branch})",
            request={
                "platform": str(platform),
                "path": path,
                "job": setting.job,
                "run_job": run_job,
                "step": step,
                "from_minutes": limit,
                "to_minutes": minutes,
                "files": {path: new_text},
                "base_sha256": _digest(text),
                "diff": unified_diff(path, text, new_text),
                "branch": branch,
                "title": title,
                "body": body,
            },
        )

    def _body(self, diag: Diagnosis, path: str, what: str, was: str, minutes: int, observed: float | None) -> str:
        took = f"it ran {observed / 60:.1f} min; " if observed else ""
        lines = [
            f"cimedic diagnosed a timeout: {redact(diag.summary)}",
            "",
            *(f"Evidence: `{e.path}:{e.line}`: {redact(e.text.strip())[:300]}" for e in diag.evidence[:3]),
            "",
            f"This raises the timeout of {what} in `{path}` from {was} to {minutes} min ({took}"
            f"{self.factor:g}× that, rounded up to {self.round_to} min, at most {self.cap_minutes} min).",
            "",
            "Before merging, check the job is slow rather than hung: a hang needs a fix, not more time.",
        ]
        return "\n".join(lines)

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        req = step.request
        # The step carries the whole new file: written over a default branch that moved since the plan,
        # it would undo someone's change. Such a step is refused; planning again starts from the new file.
        if isinstance(ctx.changes, Refreshes):
            ctx.changes.refresh()
        current = ctx.changes.read(req["path"])
        if current is not None and _digest(current) != req["base_sha256"] and current != req["files"][req["path"]]:
            raise ValueError(f"{req['path']} changed on the default branch since this step was planned: plan again")
        return ctx.changes.propose(
            dict(req["files"]), branch=req["branch"], title=req["title"], body=req["body"], dry_run=ctx.dry_run
        )

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        number = outcome.data.get("number")
        if not outcome.done or number is None:
            return Verdict.UNKNOWN, f"no pull/merge request to follow ({outcome.detail})"
        changes = ctx.changes
        if not isinstance(changes, TracksReviews):
            return Verdict.UNKNOWN, "this change requester cannot read the pull/merge request's state"
        review = changes.review(int(number))
        if review.state == "open":
            return Verdict.PENDING, f"{review.url} is open: waiting for it to be merged"
        if review.state != "merged":
            return Verdict.NOT_FIXED, f"{review.url} was closed without merging"
        if ctx.ref is None:
            return Verdict.PENDING, f"{review.url} is merged; finding later runs needs the run's platform (its URL)"
        return self._later_runs(step, ctx, ctx.ref, review)

    def _later_runs(self, step: Step, ctx: HealContext, ref: RunRef, review: Review) -> tuple[Verdict, str]:
        """Finished runs on the merged-into branch since the merge, oldest first: did the job pass, or
        run into the new limit? One listing plus one run read each, for at most ``later_runs`` runs."""
        req = step.request
        workflow = PurePosixPath(req["path"]).name if ref.platform is Platform.GITHUB_ACTIONS else None
        filters = RunFilter(branch=review.base, since=review.merged_at, limit=self.later_runs * 3, workflow=workflow)
        done = [s for s in ctx.provider.runs(ref.project, filters) if s.status in (Status.SUCCESS, Status.FAILURE)]
        limit_s = float(req["to_minutes"]) * 60
        for summary in reversed(done[-self.later_runs :]):
            info = ctx.provider.run(ref.model_copy(update={"run_id": summary.id, "job_id": None, "url": ""}))
            job = next((j for j in info.jobs if _same_job(j, req["run_job"])), None)
            took = _seconds(job, req.get("step"))
            if job is None or job.status not in (Status.SUCCESS, Status.FAILURE):
                continue
            if job.status == Status.SUCCESS:
                spent = f" in {took / 60:.1f} min" if took else ""
                return (
                    Verdict.FIXED,
                    f"run {summary.id}: {job.name} passed{spent}, within the new {limit_s / 60:g} min limit",
                )
            if took is not None and took >= HIT_LIMIT * limit_s:
                return Verdict.NOT_FIXED, f"run {summary.id}: {job.name} ran into the new {limit_s / 60:g} min limit"
        return Verdict.PENDING, f"merged; no finished run of {req['run_job']} on {review.base} decides it yet"
