"""Rollback: put an environment back on its last successful deployment by re-running that deployment's job.

Starting a new pipeline at the old commit is not what these APIs offer: GitHub's workflow dispatch and
GitLab's pipeline creation take a branch or tag, whose head is the broken code. What both genuinely
support is re-running the job that made the earlier deployment, at its commit and with its inputs:

- GitHub: ``POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun`` on the earlier run's deploy job, a new
  attempt of that run (GitHub allows re-runs for 30 days). The job's ``environment`` records a new
  deployment of the old commit.
- GitLab: ``POST /projects/:id/jobs/:job_id/retry`` on the earlier deployment's job: what the environment
  page's rollback button does. Projects with "prevent outdated deployment jobs" must also allow job
  retries for rollback deployments.

Azure DevOps is refused: its provider can only retry a build's failed jobs or queue a branch, neither of
which redeploys an earlier commit. Jenkins keeps no deployments.

Which deployments: the first (newest) deployment that is to the environment the target names, or was made
by the diagnosed run, or deployed the branch the target names, is the failing one and gives the
environment; the rollback goes to the newest earlier successful deployment there of another commit.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.models import Action, ActionKind, Platform, Status
from cimedic.tools.ci.base import Deployment, RunRef

_SUPPORTED = {Platform.GITHUB_ACTIONS, Platform.GITLAB}
LOOKBACK = 50  # deployments read, newest first (GitHub reads each one's statuses: one request apiece)
# The deploy job in a deployment's URL: GitHub .../actions/runs/<run>/job/<job>, GitLab .../-/jobs/<job>.
_JOB = re.compile(r"/jobs?/(\d+)(?:[/?#]|$)")


def _ref(ctx: HealContext) -> RunRef:
    if ctx.ref is None:
        raise ValueError("rollback needs the project's CI platform: investigate the run by URL")
    return ctx.ref


def _find(ctx: HealContext, target: str) -> tuple[Deployment, Deployment]:
    """(the failing deployment, the one to go back to)."""
    project = _ref(ctx).project
    run = ctx.diagnosis.run
    failing: Deployment | None = None
    for found in ctx.provider.deployments(project, limit=LOOKBACK):
        if failing is None:
            mine = run is not None and found.run_id == run.id
            if found.environment and (mine or target in (found.environment, found.ref)):
                failing = found
            continue
        older = not (found.created_at and failing.created_at) or found.created_at < failing.created_at
        if (
            found.environment == failing.environment
            and found.status == Status.SUCCESS
            and found.commit
            and found.commit != failing.commit
            and older
        ):
            return failing, found
    if failing is None:
        raise ValueError(
            f"no deployment to {target!r}, of branch {target!r} or by this run among the {LOOKBACK} newest "
            f"of {project}: name the environment to roll back"
        )
    raise ValueError(
        f"no earlier successful deployment to {failing.environment} before deployment {failing.id} "
        f"(commit {(failing.commit or '?')[:12]}) among the {LOOKBACK} newest: nothing to roll back to"
    )


def _redeployment(ctx: HealContext, step: Step) -> Deployment | None:
    """The deployment our re-run made: to the environment, of the good commit, newer than the failing one."""
    req = step.request
    for found in ctx.provider.deployments(_ref(ctx).project, limit=LOOKBACK):
        if found.id in (req["failing"]["id"], req["deployment"]["id"]):
            return None  # newest first: everything after is older than the rollback
        if found.environment == req["environment"] and found.commit == req["deployment"]["commit"]:
            return found
    return None


class Rollback:
    kind: ClassVar[ActionKind] = ActionKind.ROLLBACK

    def plan(self, action: Action, ctx: HealContext) -> Step:
        ref = _ref(ctx)
        platform = ctx.provider.platform
        if platform not in _SUPPORTED:
            raise ValueError(f"rollback re-runs an earlier deploy job, which cimedic cannot do on {platform}")
        failing, good = _find(ctx, action.target)
        job = _JOB.search(good.url or "")
        if job is None:
            raise ValueError(f"deployment {good.id} to {good.environment} was not made by a CI job cimedic can re-run")
        deploy = ref.model_copy(update={"run_id": good.run_id or "", "job_id": job.group(1), "url": good.url or ""})
        write = ctx.provider.rerun_failed(deploy, dry_run=True)
        request: dict[str, Any] = write.model_dump(include={"method", "endpoint", "payload"})
        # What execute and verify act on, as approved: the job to re-run and the deployments it is judged by.
        request |= {
            "environment": good.environment,
            "run_id": deploy.run_id,
            "job_id": deploy.job_id,
            "failing": failing.model_dump(mode="json", include={"id", "commit", "ref", "status"}),
            "deployment": good.model_dump(mode="json", include={"id", "commit", "ref", "run_id", "url"}),
        }
        was, back = (failing.commit or "?")[:12], (good.commit or "?")[:12]
        return Step(
            kind=self.kind,
            target=action.target,
            key=f"rollback:{run_key(ctx)}:{action.target}"[:500],
            summary=f"Roll {good.environment} back from {was} to {back} (deployment {good.id}): re-run job {job[1]}",
            request=request,
        )

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        done = _redeployment(ctx, step)
        if done is not None:
            detail = f"already rolled back: deployment {done.id} of {(done.commit or '?')[:12]} is {done.status}"
            return Outcome(done=True, detail=detail, data={"deployment": done.id, "already": True})
        req = step.request
        url = req["deployment"]["url"] or ""
        deploy = _ref(ctx).model_copy(update={"run_id": req["run_id"], "job_id": req["job_id"], "url": url})
        result = ctx.provider.rerun_failed(deploy, dry_run=False)
        return Outcome(done=result.done, detail=result.detail, data={"endpoint": result.endpoint})

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        found = _redeployment(ctx, step)
        env = step.request["environment"]
        if found is None:
            return Verdict.PENDING, f"no new deployment to {env} yet"
        status, what = Status(found.status), f"deployment {found.id} to {env}"
        if status == Status.SUCCESS:
            return Verdict.FIXED, f"{what} succeeded"
        if status in (Status.FAILURE, Status.CANCELLED):
            return Verdict.NOT_FIXED, f"{what} ended {status}"
        return Verdict.PENDING, f"{what} is {status}"
