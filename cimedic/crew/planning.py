"""The deterministic remediation proposals: what the matched knowledge-base entries suggest, and
what the verdict itself suggests when no entry did.

Each known failure names the action that usually fixes it (retry, quarantine, timeout...). Here
that kind is aimed at something in this run, so the plan is concrete with or without a model.
Proposals only: the policy engine decides what, if anything, runs.
"""

from __future__ import annotations

from cimedic.models import Action, ActionKind, Cause
from cimedic.tools.agent.base import Workspace

QUARANTINE_MAX = 5


def _failing_job(ws: Workspace) -> str | None:
    evidence = ws.diagnosis.evidence
    log = ws.log(evidence[0].path) if evidence else None
    return log.job if log is not None and log.job else None


def _aim(kind: ActionKind, ws: Workspace) -> list[str]:
    diag = ws.diagnosis
    if kind == ActionKind.QUARANTINE:
        return [t.name for t in diag.failed_tests[:QUARANTINE_MAX]]
    if kind in (ActionKind.TIMEOUT, ActionKind.SCALE):
        return [_failing_job(ws) or "run"]
    if kind == ActionKind.ROLLBACK:
        return [diag.run.branch] if diag.run and diag.run.branch else []
    return ["run"]


def rule_actions(ws: Workspace) -> list[Action]:
    """Proposals from the verdict itself, when no known failure named one: transient-looking
    failures are retried; tests the change-cause estimate calls flaky are retried and quarantined."""
    diag = ws.diagnosis
    out: list[Action] = []
    if diag.category == "infra":
        out.append(Action(kind=ActionKind.RETRY, target="run", reason="infrastructure failure", source="rule"))
    cause = diag.change_cause
    if cause is not None and cause.likely == "flaky":
        why = f"the change-cause estimate says flaky ({cause.probabilities.get(Cause.FLAKY, 0.0):.0%})"
        out.append(Action(kind=ActionKind.RETRY, target="run", reason=why, source="rule"))
        out += [
            Action(kind=ActionKind.QUARANTINE, target=t.name, reason=why, source="rule")
            for t in diag.failed_tests[:QUARANTINE_MAX]
        ]
    return out


def knowledge_base_actions(ws: Workspace) -> list[Action]:
    actions: list[Action] = []
    seen: set[tuple[str, str]] = set()
    for match in ws.diagnosis.matched_rules:
        kind = ActionKind(match.action)
        if kind == ActionKind.NONE:
            continue
        for target in _aim(kind, ws):
            if (kind, target) in seen:
                continue
            seen.add((kind, target))
            reason = f"{match.title} ({match.id}): {match.remediation}"
            actions.append(Action(kind=kind, target=target, reason=reason[:500], source="knowledge-base"))
    return actions
