"""``cimedic heal``, ``cimedic actions ...`` and ``cimedic policy suggest``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cimedic.errors import InputError
from cimedic.settings import get_settings

if TYPE_CHECKING:
    from cimedic.heal.audit import AuditLog, Record
    from cimedic.heal.engine import HealReport
    from cimedic.heal.policy import Policy

actions_app = typer.Typer(no_args_is_help=True, help="The self-healing audit log: list, approve, reject, verify.")
policy_app = typer.Typer(no_args_is_help=True, help="The self-healing policy.")
out = Console(highlight=False)


def _policy() -> Policy:
    from cimedic.heal.policy import load_policy

    return load_policy(get_settings().policy_path)


def _audit() -> AuditLog:
    from cimedic.heal.audit import AuditLog

    return AuditLog(get_settings())


def heal(
    run: Annotated[str, typer.Argument(help="A run URL (or local material: then only notifications/proposals).")],
    execute: Annotated[
        bool, typer.Option("--execute/--dry-run", help="Execute what the policy allows (default: dry run).")
    ] = False,
    repo: Annotated[
        Path | None, typer.Option("--repo", help="A checkout of the run's repository, for timeout/quarantine PRs.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The heal report as JSON.")] = False,
    llm: Annotated[str | None, typer.Option("--llm", help="LLM for the investigation.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Deterministic investigation only.")] = False,
    action: Annotated[
        list[str] | None,
        typer.Option("--action", help="Ask for an action too, KIND or KIND:TARGET (e.g. retry:run); policy applies."),
    ] = None,
) -> None:
    """Diagnose a run, plan remediation, check it against policy, execute what is allowed, verify."""
    from cimedic.crew.flow import investigate
    from cimedic.heal.approvals import heal_context
    from cimedic.heal.engine import heal as run_heal
    from cimedic.models import Action, ActionKind, RemediationPlan

    asked = []
    for text in action or []:
        kind, _, target = text.partition(":")
        if kind not in set(ActionKind):
            raise typer.BadParameter(
                f"{text!r}: the kind must be one of {', '.join(ActionKind)}", param_hint="--action"
            )
        asked.append(
            Action(kind=ActionKind(kind), target=target or "run", reason="asked for by a person", source="human")
        )
    diag = investigate(run, model=llm, offline=offline)
    if asked:
        plan = diag.plan or RemediationPlan()
        diag.plan = plan.model_copy(update={"actions": asked + plan.actions})
    ctx = heal_context(run, diag, get_settings(), repo=repo, dry_run=not execute)
    report = run_heal(diag, ctx, _policy(), _audit())
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    out.print(f"[bold]{diag.category}[/bold] ({diag.confidence:.2f}) {escape(diag.summary)}")
    _print_report(report)


def _print_report(report: HealReport) -> None:
    mode = "dry run" if report.dry_run else "execute"
    flags = [f for f, on in (("HALTED", report.halted), ("OUTAGE", report.outage)) if on]
    out.print(f"heal of {escape(report.run)} ({mode}) {' '.join(flags)}".rstrip())
    if not report.steps:
        out.print("no remediation proposed")
    for s in report.steps:
        out.print(
            f"  #{s.action_id} {s.kind} {escape(s.target)} [{s.source}] policy={s.level} -> [bold]{s.state}[/bold]"
            + (f" ({escape(s.why)})" if s.why else "")
        )
        if s.summary:
            out.print(f"      {escape(s.summary)}")
        if s.verdict:
            out.print(f"      verified: {s.verdict}")


@actions_app.command("list")
def list_actions(
    state: Annotated[str | None, typer.Option("--state", help="Only actions in this state.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent actions, newest first."""
    records = _audit().recent(state=state, project=project, limit=limit)
    if as_json:
        sys.stdout.write(
            json.dumps([r.model_dump(mode="json", exclude={"diagnosis"}) for r in records], indent=2) + "\n"
        )
        return
    table = Table("id", "when", "project", "kind", "target", "source", "policy", "state", "verdict")
    for r in records:
        when = r.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(r.id), when, r.project, r.kind, r.target[:40], r.source, r.level or "", r.state, r.verdict or ""
        )
    out.print(table)


def _record(action_id: int) -> Record:
    record = _audit().get(action_id)
    if record is None:
        raise InputError(f"action {action_id}", "no such action in the audit log")
    return record


@actions_app.command("show")
def show(action_id: Annotated[int, typer.Argument(help="Action id.")]) -> None:
    """One action with its step (exact request) and its whole history."""
    record = _record(action_id)
    data = record.model_dump(mode="json", exclude={"diagnosis"})
    data["events"] = [{**e, "at": e["at"].isoformat()} for e in _audit().events(action_id)]
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@actions_app.command("approve")
def approve(
    action_id: Annotated[int, typer.Argument(help="Action id.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (kept in the audit log).")] = "cli",
    execute: Annotated[bool, typer.Option("--execute/--dry-run", help="Execute it now (default: dry run).")] = False,
    repo: Annotated[Path | None, typer.Option("--repo", help="Checkout for timeout/quarantine PRs.")] = None,
) -> None:
    """Approve an action awaiting a person, and execute it when --execute (policy and guards apply)."""
    from cimedic.heal.approvals import approve as approve_action
    from cimedic.heal.approvals import context_for

    settings = get_settings()
    state, why = approve_action(
        _audit(), _policy(), settings, action_id, by, execute=execute, context=lambda r: context_for(r, settings, repo)
    )
    if state == "approved":
        out.print(f"#{action_id} approved; run `cimedic actions approve` with --execute to run it")
        return
    out.print(f"#{action_id} {state}" + (f" ({escape(why)})" if why else ""))


@actions_app.command("verify")
def verify_pending(
    action_id: Annotated[
        int | None, typer.Argument(help="One action; default: every executed one still pending.")
    ] = None,
) -> None:
    """Check again whether executed actions worked (a re-run finishing, a PR merged); outcomes teach the planner."""
    from cimedic.heal.approvals import context_for
    from cimedic.heal.audit import State
    from cimedic.heal.base import Outcome, Step
    from cimedic.heal.engine import healer_for, verify
    from cimedic.models import ActionKind

    audit = _audit()
    records = [_record(action_id)] if action_id else audit.recent(state=State.EXECUTED, limit=200)
    for record in records:
        if record.state != State.EXECUTED or record.verdict not in (None, "pending") or record.step is None:
            continue
        ctx = context_for(record, get_settings())
        step, outcome = Step.model_validate(record.step), Outcome.model_validate(record.outcome or {"done": True})
        verdict = verify(audit, record.id, step, outcome, ctx, healer_for(ActionKind(record.kind)))
        out.print(f"#{record.id} {record.kind} {escape(record.target)}: {verdict}")


@actions_app.command("reject")
def reject(
    action_id: Annotated[int, typer.Argument(help="Action id.")],
    by: Annotated[str, typer.Option("--by")] = "cli",
    why: Annotated[str, typer.Option("--why", help="Kept in the audit log; counts as 'wrong' for learning.")] = "",
) -> None:
    """Reject an action awaiting a person; the learner counts it as a wrong proposal."""
    from cimedic.heal.approvals import reject as reject_action

    reject_action(_audit(), action_id, by, why)
    out.print(f"#{action_id} rejected")


@actions_app.command("feedback")
def feedback(
    action_id: Annotated[int, typer.Argument(help="Action id.")],
    right: Annotated[bool, typer.Option("--right/--wrong", help="Was this the right remediation?")],
    by: Annotated[str, typer.Option("--by")] = "cli",
) -> None:
    """Tell cimedic whether an action was the right fix; the planner learns from it."""
    from cimedic.heal.approvals import feedback as give_feedback

    give_feedback(_audit(), action_id, right, by)
    out.print(f"#{action_id}: noted as {'right' if right else 'wrong'}")


@actions_app.command("halt")
def halt() -> None:
    """Stop every self-healing execution now (the kill switch); proposals are still recorded."""
    from cimedic.heal.engine import halt_file

    path = halt_file(get_settings().home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("halted by `cimedic actions halt`\n")
    out.print(f"self-healing halted ({path})")


@actions_app.command("resume")
def resume() -> None:
    """Undo `halt` (the policy's `enabled` still applies)."""
    from cimedic.heal.engine import halt_file

    halt_file(get_settings().home).unlink(missing_ok=True)
    out.print("self-healing resumed")


@policy_app.command("suggest")
def suggest(min_outcomes: Annotated[int, typer.Option("--min-outcomes", min=1)] = 5) -> None:
    """Policy changes backed by what the actions achieved (verified outcomes and human feedback)."""
    from cimedic.heal.suggest import suggestions

    found = suggestions(_policy(), _audit().outcomes(), min_outcomes)
    if not found:
        out.print(f"no suggestion: no action has {min_outcomes}+ outcomes pointing away from its policy level")
    for line in found:
        out.print(escape(line))
