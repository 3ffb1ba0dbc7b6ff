"""``cimedic ci-report``: inside a failed CI job, explain the run the job belongs to, where people look.

1. investigate the current run by its URL (``PipelineEnv.run_url``), exactly as ``cimedic investigate URL``;
2. print the report to the job log, and append it to GitHub's job summary (``GITHUB_STEP_SUMMARY``);
3. keep ONE comment on the run's pull/merge request up to date: the first report posts it, every
   re-run (a new attempt, a new pipeline) edits it (``cimedic.pipeline.comments``).

cimedic never fails the job it reports on: whatever goes wrong (no CI variables, the API refused,
a bug) is one warning line and exit 0; ``strict`` makes any of those exit 1 instead. Everything
shown passes ``cimedic.redact.redact``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from cimedic.errors import one_line
from cimedic.models import Diagnosis, Platform
from cimedic.pipeline.comments import MARKER, Upserted, upsert
from cimedic.pipeline.env import PipelineEnv
from cimedic.redact import redact
from cimedic.report import to_markdown
from cimedic.settings import Settings

# GitHub refuses a comment over 65,536 characters and a step summary over 1 MiB; bytes bound both.
COMMENT_MAX_BYTES = 60_000
SUMMARY_MAX_BYTES = 1_000_000
EXIT_STRICT = 1
_COMMENTABLE = {Platform.GITHUB_ACTIONS, Platform.GITLAB}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


class Options(BaseModel):
    comment: bool = True
    model: str | None = None
    offline: bool = False
    # None: record only when a database outlives the job (CIMEDIC_DATABASE_URL is set).
    record: bool | None = None
    output: Path | None = None


@dataclass
class Outcome:
    diagnosis: Diagnosis | None = None
    comment: Upserted | None = None
    summary_written: bool = False
    notes: list[str] = field(default_factory=list)  # what happened, for the log
    problems: list[str] = field(default_factory=list)  # what went wrong: one warning line each

    def exit_code(self, strict: bool) -> int:
        return EXIT_STRICT if strict and self.problems else 0


def fit(text: str, max_bytes: int, *, where: str) -> str:
    """``text`` cut at a line boundary to at most ``max_bytes`` UTF-8 bytes, an open code fence closed."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    note = f"\n_(report cut to fit; the full report is in {where})_\n"
    budget = max_bytes - len(note.encode("utf-8")) - 8  # room for a closing fence
    kept: list[str] = []
    used = 0
    fence: str | None = None
    for line in text.split("\n"):
        size = len(line.encode("utf-8")) + 1
        if used + size > budget:
            break
        kept.append(line)
        used += size
        fence = _fence_after(line, fence)
    if fence:
        kept.append(fence)
    return "\n".join(kept) + note


def _fence_after(line: str, fence: str | None) -> str | None:
    """The fence open after ``line`` (CommonMark: closed by a run of the same character at least as long)."""
    m = _FENCE.match(line)
    if not m:
        return fence
    run = m.group(1)
    if fence is None:
        return run
    closes = run[0] == fence[0] and len(run) >= len(fence) and not line.strip()[len(run) :].strip()
    return None if closes else fence


def quiet_mentions(markdown: str) -> str:
    """@-mentions outside code do not notify anyone: log text and model prose are not ours to ping with.
    Inside code blocks and inline code nothing notifies, so copied commands stay exactly as they were."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        if fence is None and not _FENCE.match(line):
            parts = line.split("`")
            if len(parts) % 2 == 1:  # balanced inline code: even parts are prose
                parts[::2] = [p.replace("@", "@\u2060") for p in parts[::2]]
                line = "`".join(parts)
            else:
                line = line.replace("@", "@\u2060")
        out.append(line)
        fence = _fence_after(line, fence)
    return "\n".join(out)


def footer(env: PipelineEnv) -> str:
    run = f"run {env.run_id}" if env.run_id else "this run"
    attempt = f", attempt {env.attempt}" if env.attempt > 1 else ""
    return f"<sub>cimedic ci-report for [{run}]({env.run_url}){attempt}. Re-runs update this comment.</sub>"


def comment_body(markdown: str, env: PipelineEnv) -> str:
    where = "the job summary" if env.platform is Platform.GITHUB_ACTIONS else "the job log"
    text = fit(quiet_mentions(markdown), COMMENT_MAX_BYTES, where=where)
    return f"{MARKER}\n{text.rstrip()}\n\n{footer(env)}\n"


def report(
    env: PipelineEnv,
    settings: Settings,
    options: Options,
    *,
    echo: Callable[[str], None] = print,
) -> Outcome:
    """Investigate the current run and put the report where people look; never raises for a failure."""
    outcome = Outcome()
    if env.api_url and env.platform is Platform.GITHUB_ACTIONS and env.api_url != settings.effective_github_api_url:
        outcome.problems.append(
            f"this job's GitHub API is {env.api_url} but cimedic is set to {settings.effective_github_api_url}; "
            "set CIMEDIC_GITHUB_URL and CIMEDIC_GITHUB_API_URL (the cimedic action does)"
        )
    record = options.record if options.record is not None else settings.database_url is not None
    try:
        # Imported here: CrewAI takes seconds to import.
        from cimedic.crew.flow import investigate

        diag = investigate(env.run_url, record=record, model=options.model, offline=options.offline)
    except Exception as exc:  # a bug must not fail the job either
        # one_line names the run: the provider's errors start with its URL.
        outcome.problems.append(redact(f"could not investigate this run: {one_line(exc)}"))
        return outcome
    outcome.diagnosis = diag
    markdown = redact(to_markdown(diag))
    _to_log(env, markdown, echo)
    if options.output is not None:
        _write(outcome, options.output, markdown, append=False, what="the report file")
    if env.summary_path is not None:
        text = fit(markdown, SUMMARY_MAX_BYTES, where="the job log")
        outcome.summary_written = _write(outcome, env.summary_path, text + "\n", append=True, what="the job summary")
    if options.comment:
        _comment(env, settings, markdown, outcome)
    return outcome


def _to_log(env: PipelineEnv, markdown: str, echo: Callable[[str], None]) -> None:
    if env.platform is Platform.GITHUB_ACTIONS:
        # Log text can hold workflow commands ("::add-mask::", "::error::"): the runner ignores every
        # command between stop-commands and its one-off token, so the report is shown, never obeyed.
        token = secrets.token_hex(16)
        echo(f"::stop-commands::{token}\n{markdown.rstrip()}\n::{token}::")
    else:
        echo(markdown.rstrip())


def _write(outcome: Outcome, path: Path, text: str, *, append: bool, what: str) -> bool:
    try:
        with path.open("a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        outcome.problems.append(redact(f"could not write {what} {path}: {one_line(exc)}"))
        return False
    outcome.notes.append(f"wrote {what} {path}")
    return True


def _comment(env: PipelineEnv, settings: Settings, markdown: str, outcome: Outcome) -> None:
    if env.platform not in _COMMENTABLE:
        outcome.notes.append(
            f"no comment: cimedic keeps pull request comments on GitHub and GitLab, not {env.platform}"
        )
        return
    if env.pull_request is None:
        what = "pull request" if env.platform is Platform.GITHUB_ACTIONS else "merge request"
        outcome.notes.append(f"no comment: this run belongs to no {what}")
        return
    try:
        from cimedic.tools.ci.providers import provider_for
        from cimedic.tools.ci.urls import parse_run_url

        ref = parse_run_url(env.run_url, settings)
        provider = provider_for(ref.platform, ref.base_url, settings)
        outcome.comment = upsert(provider, ref.project, env.pull_request, comment_body(markdown, env))
    except Exception as exc:
        outcome.problems.append(redact(f"could not comment: {one_line(exc)}"))
        return
    outcome.notes.append(outcome.comment.describe())


def warning_line(platform: Platform | None, message: str) -> str:
    """One warning line for the job log: a GitHub annotation in Actions, plain text elsewhere."""
    flat = " ".join(message.split())
    if platform is Platform.GITHUB_ACTIONS:
        # Workflow command data escapes %, CR and LF; flattened above, only % remains.
        return f"::warning title=cimedic::{flat.replace('%', '%25')}"
    return f"cimedic: warning: {flat}"
