"""Render a Diagnosis for people (rich, markdown) and for programs (JSON, the versioned contract)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cimedic.models import Diagnosis, RunInfo

OFFLINE_NOTE = "offline: deterministic analysis, no LLM configured"


def to_json_obj(diag: Diagnosis) -> dict[str, Any]:
    return diag.model_dump(mode="json")


def to_json(diag: Diagnosis, indent: int | None = 2) -> str:
    return json.dumps(to_json_obj(diag), indent=indent, ensure_ascii=False)


def _code(text: str) -> str:
    """Inline code cannot hold a backtick; a quote reads the same."""
    return text.replace("`", "'")


def _backend_note(diag: Diagnosis) -> str:
    if diag.backend == "offline":
        # Why no model took part, when one was configured: the router's reason.
        why = {"confident": "LLM skipped: the verdict is confident", "budget": "LLM budget used up"}
        why["llm-failed"] = "the LLM gave no usable answer"
        return f"deterministic analysis ({why[diag.route]})" if diag.route in why else OFFLINE_NOTE
    cost = f", ${diag.llm.cost_usd:.4f}" if diag.llm and diag.llm.cost_usd is not None else ""
    tokens = f", {diag.llm.prompt_tokens + diag.llm.completion_tokens} tokens" if diag.llm else ""
    return f"backend: {diag.llm.model if diag.llm else diag.backend}{tokens}{cost}"


def plan_lines(diag: Diagnosis) -> list[str]:
    """The remediation proposals, one line each, with who proposed them and what the policy says."""
    if not diag.plan:
        return []
    lines = [
        f"{a.kind} {a.target} ({a.source}" + (f", policy: {a.policy})" if a.policy else ")") + f": {a.reason[:160]}"
        for a in diag.plan.actions
    ]
    lines += [f"refused: {r.action.kind} {r.action.target}: {r.why}" for r in diag.plan.rejected]
    return lines


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_line(run: RunInfo) -> str:
    """One line of platform metadata: which run, where in the repo, who, and how long it queued and ran."""
    parts = [f"{run.platform} {run.project}"]
    name = " ".join(p for p in (run.name, f"#{run.number or run.id}") if p)
    parts.append(name + (f" (attempt {run.attempt})" if run.attempt and run.attempt > 1 else ""))
    parts.append(str(run.status))
    if run.branch or run.commit:
        parts.append(" @ ".join(p for p in (run.branch, (run.commit or "")[:10]) if p))
    if run.pull_request:
        parts.append(f"PR/MR {run.pull_request}")
    if run.actor or run.event:
        parts.append(
            " ".join(p for p in (f"by {run.actor}" if run.actor else "", f"({run.event})" if run.event else "") if p)
        )
    if run.queue_s is not None or run.duration_s is not None:
        parts.append(f"queued {_span(run.queue_s)}, ran {_span(run.duration_s)}")
    return " · ".join(parts)


def cause_line(diag: Diagnosis) -> str | None:
    """ "Is this my change?" in one line: the likeliest cause, P(change) and what moved it."""
    verdict = diag.change_cause
    if verdict is None:
        return None
    why = "; ".join(verdict.evidence[:3]) or "no history evidence, prior only"
    return f"is this the change? P(change) {verdict.p_change:.0%}, likeliest: {verdict.likely} ({why})"


def to_markdown(diag: Diagnosis) -> str:
    out = [
        f"### cimedic: {diag.category} failure ({diag.confidence:.0%} confidence)",
        "",
        diag.summary,
        "",
        f"Source: `{diag.source.path}` ({diag.source.kind}). {_backend_note(diag).capitalize()}.",
    ]
    if diag.run:
        out += ["", f"Run: {_code(run_line(diag.run))}."]
    cause = cause_line(diag)
    if cause:
        out += ["", f"**{cause[0].upper()}{cause[1:]}**"]
    if diag.excerpt:
        ex = diag.excerpt
        out += ["", f"**Excerpt** `{ex.path}` lines {ex.start_line}-{ex.end_line}:", "", "```text"]
        width = len(str(ex.end_line))
        for i, line in enumerate(ex.text.split("\n")):
            out.append(f"{ex.start_line + i:>{width}} | {line}")
        out.append("```")
    if diag.evidence:
        out += ["", "**Evidence**", ""]
        out += [f"- `{e.path}:{e.line}` {e.why}: `{_code(e.text[:200])}`" for e in diag.evidence]
    if diag.matched_rules:
        out += ["", "**Known failure**", ""]
        out += [
            f"- `{m.id}` {m.description}. Suggested: {m.remediation} (action: {m.action})" for m in diag.matched_rules
        ]
    if diag.similar_incidents:
        out += ["", "**Similar past incidents**", ""]
        out += [
            f"- `{i.id}` ({i.score:.2f}, {i.category}) {i.title[:120]}. Cause: {i.cause}. Fix: {i.fix}"
            for i in diag.similar_incidents
        ]
    if diag.report:
        out += ["", diag.report]
    if diag.plan and (diag.plan.actions or diag.plan.rejected):
        out += ["", "**Proposed remediation** (nothing has been executed)", ""]
        out += [f"- {_code(line)}" for line in plan_lines(diag)]
    if diag.fingerprint and diag.fingerprint.seen:
        out += ["", f"Fingerprint `{diag.fingerprint.id}`: {diag.fingerprint.seen}."]
    if diag.sequence and diag.sequence.divergence:
        d = diag.sequence.divergence
        out += ["", f"**Departs from the passing run** at line {d.line}: `{_code(d.name)}`"]
    if diag.failed_tests:
        out += ["", f"**Failed tests** ({len(diag.failed_tests)})", ""]
        out += [f"- `{t.name}`" + (f": {t.message[:200]}" if t.message else "") for t in diag.failed_tests[:20]]
    if diag.warnings:
        out += ["", "**Warnings**", ""] + [f"- {w}" for w in diag.warnings]
    return "\n".join(out) + "\n"


def render_rich(diag: Diagnosis, console: Console) -> None:
    head = Text()
    head.append(f"{diag.category.upper()}", style="bold red")
    head.append(f"  confidence {diag.confidence:.2f}  ", style="dim")
    head.append(_backend_note(diag), style="dim italic")
    parts: list[Any] = [head, Text(diag.summary, style="bold")]
    if diag.run:
        parts.append(Text(run_line(diag.run), style="dim"))
    cause = cause_line(diag)
    if cause:
        parts.append(Text(cause, style="bold magenta"))
    if diag.excerpt:
        ex = diag.excerpt
        marked = {e.line for e in diag.evidence}
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="dim")
        table.add_column(overflow="fold")
        for i, line in enumerate(ex.text.split("\n")):
            no = ex.start_line + i
            table.add_row(str(no), Text(line, style="bold yellow" if no in marked else ""))
        parts.append(Panel(table, title=f"{ex.path}:{ex.start_line}-{ex.end_line}", title_align="left"))
    if diag.evidence:
        ev = Table(show_header=True, header_style="bold", box=None)
        ev.add_column("line", justify="right")
        ev.add_column("why")
        ev.add_column("text", overflow="fold")
        for e in diag.evidence:
            ev.add_row(f"{e.path}:{e.line}", e.why, e.text[:300])
        parts.append(ev)
    for m in diag.matched_rules[:3]:
        known = Text()
        known.append(f"known failure {m.id}: ", style="bold cyan")
        known.append(f"{m.description}. ")
        known.append(f"Suggested: {m.remediation} ", style="green")
        known.append(f"(action: {m.action})", style="dim")
        parts.append(known)
    for inc in diag.similar_incidents:
        seen = Text()
        seen.append(f"similar incident {inc.id} ({inc.score:.2f}, {inc.category}): ", style="bold magenta")
        seen.append(f"{inc.cause}. ")
        seen.append(f"Fix: {inc.fix}", style="green")
        parts.append(seen)
    if diag.sequence and diag.sequence.divergence:
        d = diag.sequence.divergence
        parts.append(Text(f"departs from the passing run at line {d.line}: {d.name}", style="bold"))
    if diag.fingerprint and diag.fingerprint.seen:
        parts.append(Text(f"fingerprint {diag.fingerprint.id}: {diag.fingerprint.seen}", style="dim"))
    if diag.failed_tests:
        ft = Table(show_header=True, header_style="bold", box=None, title="failed tests", title_justify="left")
        ft.add_column("test", overflow="fold")
        ft.add_column("message", overflow="fold")
        for t in diag.failed_tests[:20]:
            ft.add_row(t.name, t.message[:200])
        parts.append(ft)
    if diag.report:
        parts.append(Text(diag.report))
    for line in plan_lines(diag):
        parts.append(Text(f"proposed: {line}", style="green" if not line.startswith("refused") else "red"))
    for w in diag.warnings:
        parts.append(Text(f"warning: {w}", style="yellow"))
    console.print(Panel(Group(*parts), title=f"cimedic · {diag.source.path}", title_align="left"))
