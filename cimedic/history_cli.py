"""``cimedic ingest`` (a CI project's runs, or a CSV export, into the run history) and ``cimedic history``.

The history store and SQLAlchemy are imported inside the commands, so the rest of the CLI does not
pay for them at start-up.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cimedic.errors import CimedicError, InputError, one_line
from cimedic.runs_cli import parse_since
from cimedic.settings import get_settings

if TYPE_CHECKING:
    from cimedic.history.csv_import import CsvImportReport
    from cimedic.history.ingest import IngestReport
    from cimedic.store.history import HistoryStats

history_app = typer.Typer(no_args_is_help=True, help="The run history that `cimedic ingest` builds.")


def ingest(
    repo: Annotated[
        str | None,
        typer.Argument(
            help="OWNER/REPO, a repo/project/job URL, or gitlab:GROUP/PROJECT, jenkins:JOB, azure:ORG/PROJECT."
        ),
    ] = None,
    from_csv: Annotated[
        Path | None, typer.Option("--from-csv", help="Import a CSV export of build history instead.")
    ] = None,
    layout: Annotated[str, typer.Option(help="The CSV's layout (lrts: the LRTS build-history dataset).")] = "lrts",
    since: Annotated[str, typer.Option(help="Runs since: 30d, 12h, 2w or an ISO date (later if ingested before).")] = (
        "30d"
    ),
    limit: Annotated[
        int | None, typer.Option(min=1, help="List at most this many runs (default: ci.list_max).")
    ] = None,
    tests: Annotated[bool, typer.Option("--tests/--no-tests", help="Also fetch each run's test results.")] = True,
    deployments: Annotated[
        bool, typer.Option("--deployments/--no-deployments", help="Also store the project's deployments (DORA).")
    ] = True,
) -> None:
    """Store a CI project's recent runs (jobs, steps, tests) or a CSV export in the run history.

    Incremental and resumable: runs already stored complete are skipped, and an interrupted ingest
    continues where it stopped.
    """
    from cimedic.store.history import HistoryStore

    if (repo is None) == (from_csv is None):
        raise InputError("ingest", "give either a REPO or --from-csv PATH")
    settings = get_settings()
    store = HistoryStore.open(settings.effective_database_url)
    console = Console(highlight=False)
    if from_csv is not None:
        from cimedic.history.csv_import import import_csv

        console.print(_csv_summary(import_csv(from_csv, store, layout)), soft_wrap=True)
        return
    assert repo is not None
    from cimedic.history.ingest import ingest_deployments, ingest_provider
    from cimedic.tools.ci.providers import provider_for
    from cimedic.tools.ci.urls import parse_project

    platform, base_url, name = parse_project(repo, settings)
    provider = provider_for(platform, base_url, settings)
    start = parse_since(since)
    report = ingest_provider(
        provider, name, start, store, with_tests=tests, limit=limit or settings.ci.list_max, base_url=base_url
    )
    console.print(_provider_summary(report), soft_wrap=True)
    if deployments:
        try:
            count = ingest_deployments(provider, name, start, store, limit=limit or settings.ci.list_max)
        except CimedicError as exc:  # the runs are stored; say what is missing instead of failing the command
            console.print(f"[red]deployments not stored[/]: {escape(one_line(exc))}", soft_wrap=True)
        else:
            console.print(f"{count} deployments stored" if count else "no deployments listed")


def _provider_summary(report: IngestReport) -> str:
    since = f" since {_day(report.listed_since)}" if report.listed_since else ""
    lines = [
        f"{escape(report.project)}: listed {report.listed} runs{since}: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.skipped} already stored"
        + (f", {report.incomplete} still running (fetched again next time)" if report.incomplete else "")
    ]
    lines += [f"[red]failed[/] run {escape(f.run_id)}: {escape(f.error)}" for f in report.failed]
    if report.truncated:
        lines.append(
            f"[yellow]stopped at --limit {report.listed}[/]: older runs{since} were not read; "
            "raise --limit to fill the gap (the cursor stays put until then)"
        )
    if report.cursor_at:
        lines.append(f"next ingest starts from {_day(report.cursor_at)}")
    return "\n".join(lines)


def _csv_summary(report: CsvImportReport) -> str:
    text = (
        f"{escape(report.path)} ({report.layout}): {report.rows} rows, {report.runs} runs: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged"
    )
    if report.resumed_after_line is not None:
        text += f"; {report.already} already imported (resumed after line {report.resumed_after_line})"
    return text


@history_app.command("stats")
def stats(
    project: Annotated[str | None, typer.Argument(help="One project (as stored); default: every project.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one project each.")] = False,
) -> None:
    """How many runs the history holds, over which dates, and how often they failed."""
    from cimedic.store.history import HistoryStore

    store = HistoryStore.open(get_settings().effective_database_url)
    names = [project] if project is not None else store.projects()
    rows = [store.stats(name) for name in names]
    if project is None and len(rows) > 1:
        rows.append(store.stats(None))
    if as_json:
        for row in rows:
            typer.echo(row.model_dump_json())
        return
    console = Console(highlight=False)
    if not rows or rows[0].runs == 0:
        console.print(f"no runs stored{f' for {escape(project)}' if project else ''}; see `cimedic ingest`")
        return
    console.print(_stats_table(rows))


def _stats_table(rows: list[HistoryStats]) -> Table:
    table = Table()
    for column in ("project", "runs", "first", "last", "failed", "failure rate", "test results"):
        table.add_column(column, justify="left" if column in ("project", "first", "last") else "right")
    for row in rows:
        rate = row.failure_rate
        table.add_row(
            escape(row.project) if row.project is not None else "[bold]all[/]",
            str(row.runs),
            _date(row.first_started),
            _date(row.last_started),
            str(row.by_status.get("failure", 0)),
            # Over runs with an outcome: cancelled and running ones are neither.
            f"{rate:.1%}" if rate is not None else "",
            str(row.test_results),
        )
    return table


def _date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else ""


def _day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when else ""
