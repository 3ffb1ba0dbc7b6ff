"""The ``cimedic`` command line (typer + rich)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cimedic import __version__, sweep_cli
from cimedic import insights_cli as insights
from cimedic.chat_cli import chat
from cimedic.errors import CimedicError, error_record, one_line
from cimedic.eval_cli import eval_cmd
from cimedic.heal_cli import actions_app, heal, policy_app
from cimedic.history_cli import history_app, ingest
from cimedic.kb_cli import kb_app
from cimedic.memory.cli import incidents_app, learn
from cimedic.models import Diagnosis
from cimedic.models_cli import models_app
from cimedic.pipeline.cli import ci_report
from cimedic.redact import redact
from cimedic.report import render_rich, to_json, to_json_obj, to_markdown
from cimedic.runs_cli import runs_app
from cimedic.settings import get_settings, quiet_third_parties
from cimedic.train_cli import train_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CI/CD triage: explain why a CI run failed.")
app.add_typer(kb_app, name="kb")
app.add_typer(incidents_app, name="incidents")
app.add_typer(runs_app, name="runs")
app.add_typer(history_app, name="history")
app.add_typer(train_app, name="train")
train_app.command("predictor")(insights.train_predictor)
app.add_typer(models_app, name="models")
EXIT_BAD_INPUT = 2
BIG_FILE = 64 * 1024 * 1024


class Output(StrEnum):
    RICH = "rich"
    JSON = "json"
    JSONL = "jsonl"
    MARKDOWN = "markdown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cimedic {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """cimedic: CI failure triage, offline first."""


class Item(NamedTuple):
    target: str
    baseline: str | None
    record: bool
    full_logs: bool
    model: str | None
    offline: bool


def _one(item: Item) -> dict[str, Any]:
    """Investigate one input; failures come back as data so a batch never stops half-way."""
    try:
        # Imported here: CrewAI takes seconds to import, which `--help` and `kb list` need not pay.
        from cimedic.crew.flow import investigate as run_flow

        diag = run_flow(
            item.target,
            baseline=item.baseline,
            full_logs=item.full_logs,
            record=item.record,
            model=item.model,
            offline=item.offline,
        )
        return {"ok": to_json_obj(diag)}
    except Exception as exc:  # a bug must not lose the other inputs' results
        # Messages can quote archive member names, URLs or parser output: redact like everything shown.
        failure = error_record(item.target, exc)
        failure["error"] = redact(failure["error"])
        return failure


def _results(items: list[Item], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            yield from pool.map(_one, items, chunksize=2)
    else:
        for item in items:
            yield _one(item)


def _wants_progress(paths: list[str], fmt: Output, err: Console) -> bool:
    if not err.is_terminal:
        return False
    if len(paths) > 1:
        return True
    p = Path(paths[0])
    return p.is_file() and p.stat().st_size > BIG_FILE and fmt is Output.RICH


@app.command()
def investigate(
    paths: Annotated[
        list[str],
        typer.Argument(help="Run URLs (GitHub, GitLab, Jenkins, Azure DevOps), logs, run-log zips or folders."),
    ],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="A passing log of the same job: its lines are down-weighted.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (the versioned contract).")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per input, in order.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Markdown, e.g. for a PR comment.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per core).")] = 1,
    record: Annotated[
        bool, typer.Option(help="Count this run in the failure-fingerprint history (first seen, times seen).")
    ] = True,
    full_logs: Annotated[
        bool, typer.Option("--full-logs", help="For run URLs: fetch every job's log, not only the failed jobs'.")
    ] = False,
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="LLM (any litellm model name) for this run; default CIMEDIC_LLM_MODEL."),
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Deterministic path only, even with a model set.")] = False,
) -> None:
    """Explain why a CI run failed: category, the lines that show it, and the evidence."""
    chosen = [f for f, on in ((Output.JSON, as_json), (Output.JSONL, as_jsonl), (Output.MARKDOWN, as_markdown)) if on]
    if len(chosen) > 1:
        raise typer.BadParameter("choose one of --json, --jsonl, --markdown")
    if llm and offline:
        raise typer.BadParameter("choose one of --llm, --offline")
    fmt = chosen[0] if chosen else Output.RICH
    get_settings()  # fail early, once, on a bad settings file
    out = Console(highlight=False, soft_wrap=False)
    err = Console(stderr=True, highlight=False)
    workers = (os.cpu_count() or 1) if jobs == 0 else jobs
    items = [Item(p, str(baseline) if baseline else None, record, full_logs, llm, offline) for p in paths]
    failed = 0
    collected: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("investigating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not _wants_progress(paths, fmt, err),
    )
    with progress:
        task = progress.add_task("investigate", total=len(items))
        for result in _results(items, workers):
            progress.advance(task)
            if "error" in result:
                failed += 1
                if fmt is Output.JSONL:
                    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
                elif fmt is Output.JSON:
                    collected.append(result)
                else:
                    # soft_wrap: the error stays one line whatever the terminal width.
                    err.print(f"[red]error:[/red] {escape(result['input'])}: {escape(result['error'])}", soft_wrap=True)
                continue
            diag = Diagnosis.model_validate(result["ok"])
            if fmt is Output.JSONL:
                sys.stdout.write(to_json(diag, indent=None) + "\n")
                sys.stdout.flush()
            elif fmt is Output.JSON:
                collected.append(result["ok"])
            elif fmt is Output.MARKDOWN:
                sys.stdout.write(to_markdown(diag))
            else:
                render_rich(diag, out)
    if fmt is Output.JSON:
        payload: Any = collected[0] if len(collected) == 1 and len(items) == 1 else collected
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


# After `investigate`, so help lists the commands in the order people reach for them.
app.command("learn")(learn)
app.command("chat")(chat)
app.command("heal")(heal)
app.add_typer(actions_app, name="actions")
app.add_typer(policy_app, name="policy")
app.command("ingest")(ingest)
app.command("ci-report")(ci_report)
app.command("eval")(eval_cmd)
for _command in (insights.flaky, insights.anomalies, insights.predict, insights.stats, insights.report):
    app.command()(_command)
app.command("sweep")(sweep_cli.sweep)
app.command("serve")(sweep_cli.serve)


def run() -> None:
    """Console-script entry point: settings errors become one line, not a traceback."""
    try:
        quiet_third_parties(get_settings())
        app()
    except CimedicError as exc:
        Console(stderr=True).print(f"error: {one_line(exc)}", markup=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
