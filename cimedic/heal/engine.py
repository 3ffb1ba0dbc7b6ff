"""diagnosis -> plan -> policy -> (execute) -> verify, every step in the audit log first.

The plan's proposals (knowledge base, rules, the crew's planner) are ordered by the learner: a
Thompson draw per action kind from what fixed this fingerprint/category before. Only the best
automatic remediation runs per heal (plus notifications); the others wait as alternatives, so a
heal never fires a retry, a timeout PR and a rollback at the same failure at once.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from cimedic.errors import one_line
from cimedic.heal.audit import AuditLog, State, budget_check
from cimedic.heal.base import HealContext, Healer, Outcome, Step, Verdict
from cimedic.heal.learning import Posteriors, from_outcomes
from cimedic.heal.policy import Decision, Level, Policy, Subject, decide
from cimedic.models import Action, ActionKind, Diagnosis, Status
from cimedic.redact import redact

HEALERS = {
    ActionKind.RETRY: ("retry", "Retry"),
    ActionKind.QUARANTINE: ("quarantine", "Quarantine"),
    ActionKind.TIMEOUT: ("timeout", "RaiseTimeout"),
    ActionKind.SCALE: ("scale", "ScaleRunners"),
    ActionKind.ROLLBACK: ("rollback", "Rollback"),
    ActionKind.NOTIFY: ("notify", "Notify"),
}


class StepReport(BaseModel):
    action_id: int
    kind: str
    target: str
    source: str
    level: str | None
    rules: list[str] = Field(default_factory=list)
    state: str
    why: str | None = None
    summary: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    verdict: str | None = None


class HealReport(BaseModel):
    run: str
    dry_run: bool
    halted: bool = False
    outage: bool = False
    steps: list[StepReport] = Field(default_factory=list)


def healer_for(kind: ActionKind) -> Healer:
    module, cls = HEALERS[kind]
    healer: Healer = getattr(import_module(f"cimedic.heal.actions.{module}"), cls)()
    return healer


def halt_file(home: Path) -> Path:
    """Its presence stops every execution at once (``cimedic actions halt``), whatever the policy says."""
    return home / "heal.halted"


def failed_jobs(diag: Diagnosis) -> int:
    return sum(1 for job in (diag.run.jobs if diag.run else []) if job.status == Status.FAILURE)


def ordered(actions: list[Action], posteriors: Posteriors, diag: Diagnosis, rng: np.random.Generator) -> list[Action]:
    """Notifications first, then remediations by a Thompson draw of their chance to fix this failure."""
    fp = diag.fingerprint.id if diag.fingerprint else None
    draws = {kind: float(rng.beta(*posteriors.beta(kind, fp, str(diag.category)))) for kind in ActionKind}
    return sorted(actions, key=lambda a: (a.kind != ActionKind.NOTIFY, -draws[a.kind]))


def _job(diag: Diagnosis) -> str | None:
    failed = [j.name for j in (diag.run.jobs if diag.run else []) if j.status == Status.FAILURE]
    return failed[0] if len(failed) == 1 else None


def heal(
    diag: Diagnosis,
    ctx: HealContext,
    policy: Policy,
    audit: AuditLog,
    *,
    rng: np.random.Generator | None = None,
    healers: Callable[[ActionKind], Healer] = healer_for,
) -> HealReport:
    rng = rng or np.random.default_rng()
    report = HealReport(run=diag.run.url or diag.run.id if diag.run else diag.source.path, dry_run=ctx.dry_run)
    report.halted = not policy.enabled or halt_file(ctx.settings.home).exists()
    report.outage = failed_jobs(diag) > policy.outage.max_failed_jobs
    posteriors = from_outcomes(audit.outcomes())
    remediated: int | None = None
    for action in ordered(list(diag.plan.actions if diag.plan else []), posteriors, diag, rng):
        if action.kind == ActionKind.NONE:
            continue
        decision = decide(policy, action.kind, Subject.of(diag, action))
        step, problem = _plan(healers, action, ctx)
        action_id = audit.propose(diag, action, step, decision, dry_run=ctx.dry_run, job=_job(diag))
        state, why = _gate(decision, report, action, ctx, problem, remediated)
        if state in (None, State.DRY_RUN):
            learned = _learned(policy, posteriors, action, diag)
            state, why = learned if learned[0] else (state, why)
        if state is None and step is not None:
            state, why = run_step(audit, policy, action_id, step, ctx, diag, healers)
            # A remediation that ran (or is running elsewhere) makes the others alternatives; one a
            # budget or cooldown refused does not: the next best may still run.
            underway = state != State.SKIPPED or (why or "").startswith("already executed")
            if action.kind != ActionKind.NOTIFY and underway:
                remediated = action_id
        else:
            audit.move(action_id, state or State.SKIPPED, "policy", why or "", why=why)
        record = audit.get(action_id)
        assert record is not None
        report.steps.append(
            StepReport(
                action_id=action_id,
                kind=action.kind,
                target=action.target,
                source=action.source,
                level=decision.level,
                rules=decision.rules,
                state=record.state,
                why=record.why,
                summary=step.summary if step else None,
                request=step.request if step else {},
                outcome=record.outcome,
                verdict=record.verdict,
            )
        )
    return report


def _plan(healers: Callable[[ActionKind], Healer], action: Action, ctx: HealContext) -> tuple[Step | None, str | None]:
    try:
        return healers(action.kind).plan(action, ctx), None
    except Exception as exc:  # an action that cannot apply here is recorded as such, never raised
        return None, redact(one_line(exc))


def _gate(
    decision: Decision,
    report: HealReport,
    action: Action,
    ctx: HealContext,
    problem: str | None,
    remediated: int | None,
) -> tuple[str | None, str | None]:
    """(state, why) when the action stops here; (None, None) when it may execute now."""
    if decision.level == Level.NEVER:
        return State.REJECTED, f"policy: never ({', '.join(decision.rules)})"
    if problem is not None:
        return State.SKIPPED, f"cannot apply: {problem}"
    if report.halted:
        return State.SKIPPED, "halted: self-healing is switched off (policy `enabled: false` or `cimedic actions halt`)"
    if report.outage and action.kind != ActionKind.NOTIFY:
        return State.SKIPPED, "outage: too many jobs failed to be a flake; only notifications go out"
    if decision.level == Level.APPROVE:
        return State.AWAITING, f"policy: a person approves ({', '.join(decision.rules)})"
    if remediated is not None and action.kind != ActionKind.NOTIFY:
        return State.AWAITING, f"alternative to action {remediated}, which the learner ranked higher"
    if ctx.dry_run:
        return State.DRY_RUN, "dry run: nothing executed"
    return None, None


def _learned(policy: Policy, posteriors: Posteriors, action: Action, diag: Diagnosis) -> tuple[str | None, str | None]:
    """An automatic action that outcomes show rarely fixes this failure goes to a person instead."""
    if action.kind == ActionKind.NOTIFY:
        return None, None
    fp = diag.fingerprint.id if diag.fingerprint else None
    est = posteriors.estimate(action.kind, fp, str(diag.category))
    minutes = (diag.run.duration_s or 600.0) / 60 if diag.run else 10.0
    break_even = min(minutes / policy.learning.human_minutes, 1.0)
    if est.evidence >= policy.learning.min_outcomes and est.high < break_even:
        why = f"learned: {action.kind} fixed {est.mean:.0%} of {est.evidence:g} similar failures (< {break_even:.0%})"
        return State.AWAITING, why
    return None, None


def run_step(
    audit: AuditLog,
    policy: Policy,
    action_id: int,
    step: Step,
    ctx: HealContext,
    diag: Diagnosis,
    healers: Callable[[ActionKind], Healer] = healer_for,
) -> tuple[str, str | None]:
    """Claim, execute, verify one approved step; the claim re-checks budgets and cooldowns."""
    run = diag.run
    project, run_id = (run.project, run.id) if run else ("local", diag.source.path)
    why = audit.claim(action_id, step, project, budget_check(policy, step, project, run_id, _job(diag)))
    if why:
        return State.SKIPPED, why
    healer = healers(step.kind)
    try:
        outcome = healer.execute(step, ctx)
    except Exception as exc:  # a failed write is a recorded outcome, not a crash of the heal
        outcome = Outcome(done=False, detail=redact(one_line(exc)))
    audit.executed(action_id, outcome)
    if not outcome.done:
        return State.FAILED, outcome.detail
    verify(audit, action_id, step, outcome, ctx, healer)
    return State.EXECUTED, None


def verify(audit: AuditLog, action_id: int, step: Step, outcome: Outcome, ctx: HealContext, healer: Healer) -> Verdict:
    try:
        verdict, detail = healer.verify(step, outcome, ctx)
    except Exception as exc:  # the platform may be unreachable now: verify again later
        verdict, detail = Verdict.PENDING, redact(one_line(exc))
    audit.move(action_id, State.EXECUTED, "verify", f"{verdict}: {detail}", verdict=str(verdict))
    return verdict
