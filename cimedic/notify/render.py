"""Turn what cimedic found or did into a ``Notice``: a glance (title, a few lines, short facts) plus the
full report as an attachment for the channels that can carry one (Jira, email).

Everything passes ``redact`` here even when its maker redacted it already: a notice leaves the building.
"""

from __future__ import annotations

from pathlib import PurePath

from cimedic.heal.audit import Record, State
from cimedic.models import ActionKind, Diagnosis
from cimedic.notify.base import Notice, Severity
from cimedic.notify.safe import clip
from cimedic.redact import redact
from cimedic.report import to_markdown

TITLE_MAX = 300  # Notice.title's bound
LINE_MAX = 300  # one evidence line or reason; the attachment has the rest
MAX_ACTIONS = 5


def _code(text: str) -> str:
    # An inline code span cannot hold a backtick; a quote reads the same.
    return "`" + clip(" ".join(text.split()), LINE_MAX).replace("`", "'") + "`"


def _where(project: str | None, branch: str | None) -> str:
    return " ".join(p for p in (project, branch) if p)


def notice_for(diag: Diagnosis, *, severity: Severity | None = None) -> Notice:
    """The notice for a failure. Default WARNING: a CI failure is news, not a page; callers escalate."""
    run = diag.run
    project = run.project if run else PurePath(diag.source.path).name
    where = _where(project, run.branch if run else None)
    lines = [f"**{diag.category} failure** in {where}: {clip(diag.summary, LINE_MAX)}"]
    lines[-1] += f" (confidence {diag.confidence:.0%})"
    if diag.evidence:
        top = diag.evidence[0]
        lines += ["", f"**Evidence** `{top.path}:{top.line}` ({top.why}): {_code(top.text)}"]
    actions = diag.plan.actions[:MAX_ACTIONS] if diag.plan else []
    if actions:
        lines += ["", "**Proposed actions** (nothing has run yet)"]
        lines += [
            f"- {a.kind} {_code(a.target)} (policy: {a.policy or 'undecided'}): {clip(a.reason, LINE_MAX)}"
            for a in actions
        ]
    if diag.similar_incidents:
        best = diag.similar_incidents[0]
        lines += ["", f"**Similar incident** `{best.id}` ({best.score:.2f}): {best.title}. Fix: {best.fix}"]
    fingerprint = diag.fingerprint
    if fingerprint and fingerprint.seen:
        lines += ["", f"Fingerprint `{fingerprint.id}`: {fingerprint.seen}."]
    fields = {"category": str(diag.category), "confidence": f"{diag.confidence:.0%}", "project": project}
    if run and run.branch:
        fields["branch"] = run.branch
    if fingerprint:
        fields["fingerprint"] = fingerprint.id
    return Notice(
        title=clip(redact(f"[cimedic] {diag.category} failure in {where}"), TITLE_MAX),
        text=redact("\n".join(lines)),
        severity=severity or Severity.WARNING,
        # The same failure (fingerprint) updates a thread, ticket or alert instead of repeating itself.
        dedup_key=fingerprint.id if fingerprint else None,
        url=run.url if run else None,
        fields={k: redact(v) for k, v in fields.items()},
        attachment=redact(to_markdown(diag)),
    )


def _action_severity(record: Record) -> Severity:
    if record.state == State.FAILED:
        # A rollback that failed leaves production in an unknown state: someone must be woken.
        return Severity.CRITICAL if record.kind == ActionKind.ROLLBACK else Severity.ERROR
    if record.state in (State.AWAITING, State.REJECTED, State.SKIPPED):
        return Severity.WARNING  # a person should look (approve, or learn why it did not run)
    return Severity.INFO


def notice_for_action(record: Record) -> Notice:
    """The notice for an action's state: executed, failed, awaiting approval..."""
    outcome = record.outcome or {}
    verdict = f", verdict {record.verdict}" if record.verdict else ""
    lines = [f"**{record.kind}** {_code(record.target)}: {record.state}{verdict} (policy: {record.level or 'none'})"]
    lines += ["", f"Why proposed: {clip(record.reason, LINE_MAX)}"]
    detail = str(outcome.get("detail") or record.why or "")
    if detail:
        lines += ["", f"Detail: {clip(detail, LINE_MAX)}"]
    fields = {"action": record.kind, "state": record.state, "project": record.project, "category": record.category}
    if record.branch:
        fields["branch"] = record.branch
    if record.fingerprint:
        fields["fingerprint"] = record.fingerprint
    title = f"[cimedic] {record.kind} {record.state} in {_where(record.project, record.branch)}"
    return Notice(
        title=clip(redact(title), TITLE_MAX),
        text=redact("\n".join(lines)),
        severity=_action_severity(record),
        # The action's idempotency key: its later states update the same thread, ticket or alert.
        dedup_key=f"action:{record.key}",
        # The change request an action opened (timeout, quarantine) says more than the run it came from.
        url=str((outcome.get("data") or {}).get("url") or record.run_url or "") or None,
        fields={k: redact(v) for k, v in fields.items()},
    )
