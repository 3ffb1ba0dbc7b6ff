"""``cimedic runs``: recent runs of a repository, project or job, and the platform write operations
(rerun failed jobs, cancel, trigger, comment), each dry-run unless ``--apply`` is given."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cimedic.errors import InputError
from cimedic.models import Status
from cimedic.settings import get_settings
from cimedic.tools.ci.base import CIProvider, RunFilter, RunRef, RunSummary, WriteResult
from cimedic.tools.ci.providers import provider_for
from cimedic.tools.ci.urls import parse_project, parse_run_url

runs_app = typer.Typer(no_args_is_help=True, help="Runs on GitHub Actions, GitLab CI, Jenkins and Azure DevOps.")
_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w``, or an ISO date/time (UTC when it has no zone)."""
    now = now or datetime.now(UTC)
    m = _SPAN.match(value.strip().lower())
    if m:
        return now - timedelta(**{_UNITS[m[2]]: int(m[1])})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError("--since", f"{value!r} is neither a span like 7d/12h/30m/2w nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _provider_for_url(url: str) -> tuple[CIProvider, RunRef]:
    settings = get_settings()
    ref = parse_run_url(url, settings)
    return provider_for(ref.platform, ref.base_url, settings), ref


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _table(rows: list[RunSummary]) -> Table:
    table = Table(show_lines=False)
    for column in ("run", "status", "branch", "commit", "event", "actor", "started", "duration", "name"):
        table.add_column(column)
    colours = {"failure": "red", "success": "green", "cancelled": "yellow"}
    for row in rows:
        status = str(row.status)
        started = row.started_at or row.queued_at or row.finished_at
        table.add_row(
            escape(row.number or row.id),
            f"[{colours.get(status, 'white')}]{status}[/]",
            escape(row.branch or ""),
            (row.commit or "")[:8],
            escape(row.event or ""),
            escape(row.actor or ""),
            started.strftime("%Y-%m-%d %H:%M") if started else "",
            _duration(row.duration_s),
            escape(row.name or ""),
        )
    return table


@runs_app.command("list")
def list_runs(
    project: Annotated[
        str,
        typer.Argument(
            help="OWNER/REPO, a repo/project/job URL, or gitlab:GROUP/PROJECT, jenkins:JOB, azure:ORG/PROJECT."
        ),
    ],
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = False,
    status: Annotated[Status | None, typer.Option(help="Only runs that ended this way.")] = None,
    branch: Annotated[str | None, typer.Option(help="Only runs of this branch.")] = None,
    since: Annotated[str | None, typer.Option(help="Only runs since: 7d, 12h, 30m, 2w or an ISO date.")] = None,
    workflow: Annotated[str | None, typer.Option(help="GitHub workflow file/id, Azure definition.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one run each.")] = False,
) -> None:
    """Recent runs, newest first: for history, sweeps, or picking a run to investigate."""
    settings = get_settings()
    if failed and status not in (None, Status.FAILURE):
        raise InputError("--failed", f"contradicts --status {status}")
    filters = RunFilter(
        branch=branch,
        status=Status.FAILURE if failed else status,
        since=parse_since(since) if since else None,
        workflow=workflow,
        limit=min(limit, settings.ci.list_max),
    )
    platform, base_url, name = parse_project(project, settings)
    provider = provider_for(platform, base_url, settings)
    rows = []
    for row in provider.runs(name, filters):
        if as_json:
            typer.echo(row.model_dump_json())
        rows.append(row)
    if not as_json:
        Console(highlight=False).print(_table(rows) if rows else "no runs match")


def _show(result: WriteResult, as_json: bool) -> None:
    if as_json:
        typer.echo(result.model_dump_json())
        return
    mode = "dry run, nothing sent" if result.dry_run else "done"
    body = json.dumps(result.payload) if result.payload else ""
    Console(highlight=False).print(
        f"{escape(str(result.kind))} {escape(result.target)}: {result.method} {escape(result.endpoint)} {escape(body)}"
        f" ({mode}){': ' + escape(result.detail) if result.detail else ''}",
        soft_wrap=True,
    )


ApplyOpt = Annotated[bool, typer.Option("--apply", help="Really do it; without it nothing is sent (dry run).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="The result as JSON.")]


@runs_app.command("rerun")
def rerun(
    url: Annotated[str, typer.Argument(help="The run (or job) URL.")], apply: ApplyOpt = False, as_json: JsonOpt = False
) -> None:
    """Rerun the failed jobs of a run (a job URL: that job)."""
    provider, ref = _provider_for_url(url)
    _show(provider.rerun_failed(ref, dry_run=not apply), as_json)


@runs_app.command("cancel")
def cancel(
    url: Annotated[str, typer.Argument(help="The run URL.")], apply: ApplyOpt = False, as_json: JsonOpt = False
) -> None:
    """Cancel a running run."""
    provider, ref = _provider_for_url(url)
    _show(provider.cancel(ref, dry_run=not apply), as_json)


@runs_app.command("comment")
def comment(
    url: Annotated[str, typer.Argument(help="The run URL: the comment goes to its PR/MR, else its commit.")],
    body: Annotated[str, typer.Option(help="The comment text (markdown).")],
    apply: ApplyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Comment on the pull/merge request (or commit) a run belongs to."""
    if not body.strip():
        raise InputError("--body", "is empty")
    provider, ref = _provider_for_url(url)
    _show(provider.comment(ref, body, dry_run=not apply), as_json)


def _inputs(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError("--input", f"{pair!r} is not KEY=VALUE")
        found[key.strip()] = value
    return found


@runs_app.command("trigger")
def trigger(
    project: Annotated[str, typer.Argument(help="As for `runs list`.")],
    ref_name: Annotated[str, typer.Option("--ref", help="Branch or tag to run on.")],
    workflow: Annotated[str | None, typer.Option(help="GitHub workflow file/id; Azure definition id/name.")] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="KEY=VALUE; repeatable.")] = None,
    apply: ApplyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a workflow, pipeline or job with inputs."""
    settings = get_settings()
    platform, base_url, name = parse_project(project, settings)
    provider = provider_for(platform, base_url, settings)
    _show(provider.trigger(name, ref_name, _inputs(inputs or []), workflow=workflow, dry_run=not apply), as_json)
