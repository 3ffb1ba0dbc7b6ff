"""A person's decisions on proposed actions, shared by the CLI and the Slack bot.

Approval re-checks the policy (it may have changed since the proposal), moves the action from
awaiting to approved atomically (two clicks on Approve: one wins), and executes through the same
claim as every other execution, so an approved action runs at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cimedic.errors import InputError
from cimedic.heal.audit import AuditLog, Record, State
from cimedic.heal.base import HealContext, Step
from cimedic.heal.engine import halt_file, run_step
from cimedic.heal.policy import Level, Policy, Subject, decide
from cimedic.models import Action, Diagnosis
from cimedic.settings import Settings


def heal_context(
    run: str, diag: Diagnosis, settings: Settings, *, repo: Path | None = None, dry_run: bool = False
) -> HealContext:
    """What actions may use: the run's platform (when ``run`` is a URL), a checkout for PRs."""
    from cimedic.remote import is_url
    from cimedic.tools.ci.urls import parse_run_url

    ref = parse_run_url(run, settings) if is_url(run) else None
    changes = None
    if repo is not None:
        from cimedic.heal.change_request import GitChangeRequest

        changes = GitChangeRequest(repo, settings, ref)
    return HealContext(diag, settings, ref=ref, dry_run=dry_run, changes=changes)


def context_for(record: Record, settings: Settings, repo: Path | None = None, dry_run: bool = False) -> HealContext:
    """The context of an audited action: its run and diagnosis as they were recorded."""
    diag = Diagnosis.model_validate_json(record.diagnosis)
    return heal_context(record.run_url or "", diag, settings, repo=repo, dry_run=dry_run)


def _awaiting(audit: AuditLog, action_id: int) -> Record:
    record = audit.get(action_id)
    if record is None:
        raise InputError(f"action {action_id}", "no such action in the audit log")
    if record.state != State.AWAITING:
        raise InputError(f"action {action_id}", f"is {record.state}, not awaiting approval")
    return record


def approve(
    audit: AuditLog,
    policy: Policy,
    settings: Settings,
    action_id: int,
    by: str,
    *,
    execute: bool,
    context: Callable[[Record], HealContext] | None = None,
) -> tuple[str, str | None]:
    """Approve (and with ``execute`` run) one action; (state, why). Raises InputError when it cannot."""
    record = _awaiting(audit, action_id)
    diag = Diagnosis.model_validate_json(record.diagnosis)
    action = Action(kind=record.kind, target=record.target, reason=record.reason, source=record.source)
    decision = decide(policy, action.kind, Subject.of(diag, action))
    if decision.level == Level.NEVER:  # the policy may have changed since it was proposed
        audit.move_from(
            action_id, State.AWAITING, State.REJECTED, "policy", f"policy now says never ({decision.rules})"
        )
        raise InputError(f"action {action_id}", "the policy now forbids it; rejected")
    if record.step is None:
        raise InputError(f"action {action_id}", "has no executable step")
    if not audit.move_from(action_id, State.AWAITING, State.APPROVED, f"human:{by}", "approved"):
        raise InputError(f"action {action_id}", "was decided by someone else meanwhile")
    if not execute:
        return State.APPROVED, None
    if not policy.enabled or halt_file(settings.home).exists():
        audit.move(action_id, State.SKIPPED, "guard", "halted", why="halted")
        raise InputError(f"action {action_id}", "self-healing is halted; nothing executed")
    ctx = (context or (lambda r: context_for(r, settings)))(record)
    return run_step(audit, policy, action_id, Step.model_validate(record.step), ctx, diag)


def reject(audit: AuditLog, action_id: int, by: str, why: str = "") -> None:
    """Reject an action awaiting a person; the learner counts it as a wrong proposal."""
    _awaiting(audit, action_id)
    reason = why or "rejected by a person"
    if not audit.move_from(action_id, State.AWAITING, State.REJECTED, f"human:{by}", reason, why=reason):
        raise InputError(f"action {action_id}", "was decided by someone else meanwhile")
    audit.note(action_id, "feedback-wrong", f"human:{by}", reason)


def feedback(audit: AuditLog, action_id: int, right: bool, by: str) -> None:
    record = audit.get(action_id)
    if record is None:
        raise InputError(f"action {action_id}", "no such action in the audit log")
    audit.note(action_id, "feedback-right" if right else "feedback-wrong", f"human:{by}", record.kind)
