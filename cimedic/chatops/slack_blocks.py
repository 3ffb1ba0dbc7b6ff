"""Slack messages of the bot (Block Kit), rendered from a diagnosis and the audit log's truth.

Everything shown is log-derived or person-derived text, so every string goes through
:func:`cimedic.redact.redact` and then Slack's mrkdwn escaping (``&``, ``<``, ``>``): a log line can
neither leak a secret nor become a mention (``<!channel>``), a link or a fake button. Buttons carry
only ids cimedic made (the post key, the audit action id); what they do is decided on the click.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from cimedic.chatops.slack_state import CauseVerdict, Post
from cimedic.heal.audit import AuditLog, State
from cimedic.redact import redact

APPROVE = "cimedic_approve"
REJECT = "cimedic_reject"
CAUSE_RIGHT = "cimedic_cause_right"
CAUSE_WRONG = "cimedic_cause_wrong"

SECTION_MAX = 3000  # Slack's limit for a section's text
EXCERPT_BUDGET = 2000
LINE_MAX = 200
EVIDENCE_SHOWN = 3
ACTIONS_SHOWN = 10
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")


class ActionView(BaseModel):
    """One proposed action as the message shows it, read from the audit log at render time."""

    id: int
    kind: str
    target: str
    level: str | None
    state: str
    why: str | None = None
    summary: str | None = None
    verdict: str | None = None
    decided_by: str | None = None


def action_views(audit: AuditLog, ids: list[int]) -> list[ActionView]:
    views = []
    for action_id in ids[:ACTIONS_SHOWN]:
        record = audit.get(action_id)
        if record is None:
            continue
        humans = [e["actor"] for e in audit.events(action_id) if str(e["actor"]).startswith("human:")]
        summary = (record.step or {}).get("summary")
        views.append(
            ActionView(
                id=record.id,
                kind=record.kind,
                target=record.target,
                level=record.level,
                state=record.state,
                why=record.why,
                summary=str(summary) if summary else None,
                verdict=record.verdict,
                decided_by=humans[-1] if humans else None,
            )
        )
    return views


def escape(text: str) -> str:
    """Redacted, then escaped for mrkdwn: no mention, link or channel ping can come out of it."""
    return redact(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code(text: str) -> str:
    return "`" + escape(clip(text, LINE_MAX)).replace("`", "ˋ") + "`"


def code_block(text: str) -> str:
    kept: list[str] = []
    used = 0
    for line in text.splitlines():
        line = clip(line, LINE_MAX)
        if used + len(line) > EXCERPT_BUDGET:
            kept.append("…")
            break
        kept.append(line)
        used += len(line) + 1
    body = escape("\n".join(kept)).replace("```", "`\u200b`\u200b`")
    return f"```{body}```"


def person(actor: str) -> str:
    """``human:slack:U123`` -> a mention of that Slack user; anyone else by (escaped) name."""
    name = actor.removeprefix("human:")
    user = name.removeprefix("slack:")
    return f"<@{user}>" if name.startswith("slack:") and _SLACK_USER.fullmatch(user) else escape(name)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_MAX)}]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _confirm(view: ActionView) -> dict[str, Any]:
    what = view.summary or f"{view.kind} {view.target}"
    return {
        "title": {"type": "plain_text", "text": "Approve and run this action?"},
        "text": {"type": "mrkdwn", "text": clip(f"#{view.id}: {escape(clip(what, 200))}", 300)},
        "confirm": {"type": "plain_text", "text": "Approve and run"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def _action_blocks(post: Post, view: ActionView) -> list[dict[str, Any]]:
    line = f"`#{view.id}` *{escape(view.kind)}* {code(view.target)} · policy: *{escape(view.level or 'none')}*"
    line += f" · _{escape(view.state)}_"
    if view.decided_by:
        line += f" by {person(view.decided_by)}"
    if view.verdict:
        line += f" · verified: {escape(view.verdict)}"
    if view.why:
        line += f"\n{escape(clip(view.why, 300))}"
    if view.summary:
        line += f"\n{escape(clip(view.summary, 300))}"
    blocks = [_section(line)]
    if view.state == State.AWAITING:
        value = f"{post.key}:{view.id}"
        approve = _button("Approve", APPROVE, value, "primary") | {"confirm": _confirm(view)}
        reject = _button("Reject", REJECT, value, "danger")
        blocks.append({"type": "actions", "block_id": f"action-{view.id}", "elements": [approve, reject]})
    return blocks


def diagnosis_message(
    post: Post, views: list[ActionView], verdict: CauseVerdict | None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a posted diagnosis in its current state."""
    diag = post.diagnosis
    header = clip(redact(f"CI failure: {diag.category}"), 150)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    about = f"*{escape(clip(diag.summary, 500))}*\n{escape(clip(post.label, 300))} · confidence {diag.confidence:.2f}"
    if diag.fingerprint and diag.fingerprint.seen:
        about += f" · {escape(diag.fingerprint.seen)}"
    blocks.append(_section(about))
    if diag.excerpt is not None:
        where = f"{diag.excerpt.path}:{diag.excerpt.start_line}-{diag.excerpt.end_line}"
        blocks.append(_section(f"*Excerpt* {code(where)}\n{code_block(diag.excerpt.text)}"))
    if diag.evidence:
        lines = [
            f"• {code(f'{e.path}:{e.line}')} {escape(clip(e.text, LINE_MAX))} _({escape(e.why)})_"
            for e in diag.evidence[:EVIDENCE_SHOWN]
        ]
        blocks.append(_section("*Top evidence*\n" + "\n".join(lines)))
    if diag.similar_incidents:
        lines = [
            f"• {escape(clip(i.title, 150))} ({i.score:.2f}) — cause: {escape(clip(i.cause, 200))};"
            f" fix: {escape(clip(i.fix, 200))}"
            for i in diag.similar_incidents
        ]
        blocks.append(_section("*Similar incidents*\n" + "\n".join(lines)))
    blocks.append(_section("*Proposed actions*" if views else "*Proposed actions*: none"))
    for view in views:
        blocks.extend(_action_blocks(post, view))
    if verdict is None:
        cause = [_button("Right cause", CAUSE_RIGHT, post.key), _button("Wrong cause", CAUSE_WRONG, post.key)]
        blocks.append({"type": "actions", "block_id": "cause", "elements": cause})
    else:
        said = "confirmed as right" if verdict.right else "marked wrong"
        blocks.append(_context(f"Cause {said} by {person(verdict.by)}"))
    blocks.append(_context("Nothing runs until an approver clicks Approve; the policy still applies."))
    text = clip(escape(f"{diag.category}: {diag.summary}"), 1000)
    return text, blocks
