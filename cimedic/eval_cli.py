"""``cimedic eval``: score cimedic on its recorded cases, or on a public dataset (LogChunks, CiDiff).

Exit codes: 0 done; 1 ``--gate`` and a case failed, or ``--fail-on-regression`` and a metric got worse
than ``--compare``; 2 bad input (a broken case, a missing dataset, an unreadable baseline).

Offline runs use a fresh, empty CIMEDIC_HOME (as bench/rca_logchunks.py does) so no local incident memory
or user model changes the figures; ``--llm`` keeps the configured home, where the model settings live.
"""

from __future__ import annotations

import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cimedic.errors import InputError
from cimedic.models import Category
from cimedic.settings import get_settings

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class Dataset(StrEnum):
    LOGCHUNKS = "logchunks"
    CIDIFF = "cidiff"


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _isolate_home() -> None:
    os.environ["CIMEDIC_HOME"] = tempfile.mkdtemp(prefix="cimedic-eval-")
    get_settings.cache_clear()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("[green]yes[/]" if value else "[red]no[/]")


def eval_cmd(
    path: Annotated[
        Path | None,
        typer.Argument(help="Folder of cases (default: the shipped ones), or the dataset folder with --dataset."),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tags", help="Only cases carrying all these tags (repeat or comma-separate).")
    ] = None,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="Only this case id (or id prefix); repeatable.")
    ] = None,
    llm: Annotated[
        bool, typer.Option("--llm", help="Use the configured model (or --model) instead of offline.")
    ] = False,
    model: Annotated[str | None, typer.Option("--model", help="The model for --llm (litellm name).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Deterministic path, no model (the default).")] = False,
    dataset: Annotated[
        Dataset | None, typer.Option("--dataset", help="Score a public dataset in PATH instead of the cases.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Datasets: only the first N logs.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="LogChunks: worker processes.")] = 1,
    compare_to: Annotated[
        Path | None, typer.Option("--compare", help="A previous eval-report.json: list what got better or worse.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where eval-report.json and eval-report.md go.")] = Path("."),
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when a metric of a case is worse than --compare.")
    ] = False,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 when any selected case fails (for CI).")] = False,
) -> None:
    """Score cimedic on recorded CI failures: category, culprit lines, evidence, actions, cost and latency."""
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if llm and offline:
        err.print("error: --llm and --offline exclude each other", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    chosen_model = (model or get_settings().llm_model) if llm else None
    if llm and not chosen_model:
        err.print("error: --llm needs a model: pass --model or configure llm_model", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if not llm:
        _isolate_home()
    try:
        if dataset is Dataset.LOGCHUNKS:
            _logchunks(console, path, limit, jobs)
        elif dataset is Dataset.CIDIFF:
            _cidiff(console, path, limit, chosen_model)
        else:
            code = _cases(console, path, _split(tags), _split(case), chosen_model, compare_to, out)
            if (gate and code & 1) or (fail_on_regression and code & 2):
                raise typer.Exit(EXIT_FAILED)
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc


def _need(path: Path | None, what: str) -> Path:
    if path is None:
        raise InputError(what, "give the dataset folder as PATH")
    return path


def _logchunks(console: Console, path: Path | None, limit: int, jobs: int) -> None:
    from cimedic.evals.logchunks import evaluate

    run = evaluate(_need(path, "--dataset logchunks"), limit=limit, jobs=jobs)
    f = run.figures()
    table = Table(title=f"LogChunks: {f['logs']:.0f} logs ({f['category_n']:.0f} with a category)")
    for col in ("method", "excerpt hit", "top evidence", "category", "category lenient"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row(
        "cimedic",
        f"{f['excerpt_hit']:.3f}",
        f"{f['top_evidence']:.3f}",
        f"{f['category_strict']:.3f}",
        f"{f['category_lenient']:.3f}",
    )
    table.add_row("baseline: last 40 lines", f"{f['baseline_last40']:.3f}", "-", "-", "-")
    table.add_row("baseline: first error|fail line", "-", f"{f['baseline_first_match']:.3f}", "-", "-")
    table.add_row("baseline: last error|fail line", "-", f"{f['baseline_last_match']:.3f}", "-", "-")
    console.print(table)
    console.print(
        f"logs={f['logs']:.0f} excerpt_hit={f['excerpt_hit']:.3f} top_evidence={f['top_evidence']:.3f} "
        f"category_strict={f['category_strict']:.3f} category_lenient={f['category_lenient']:.3f} "
        f"cimedic_s_per_log={f['cimedic_s_per_log']:.4f}",
        markup=False,
        soft_wrap=True,
    )


def _cidiff(console: Console, path: Path | None, limit: int, model: str | None) -> None:
    from cimedic.evals.cidiff import evaluate, figures, flow_investigate

    scores = evaluate(
        _need(path, "--dataset cidiff"), flow_investigate(offline=model is None, model=model), limit=limit
    )
    f = figures(scores)
    console.print(
        f"breakages={f['breakages']:.0f} excerpt_hit={f['excerpt_hit']:.3f} top_evidence={f['top_evidence']:.3f} "
        f"evidence_precision={f['evidence_precision']:.3f} errors={f['errors']:.0f} "
        f"p50_ms={f['latency_p50_ms']:.0f} p95_ms={f['latency_p95_ms']:.0f}",
        markup=False,
        soft_wrap=True,
    )


def _cases(
    console: Console,
    path: Path | None,
    tags: list[str],
    ids: list[str],
    model: str | None,
    compare_to: Path | None,
    out: Path,
) -> int:
    """Runs the cases; returns bit 1 when a case failed, bit 2 when a metric regressed."""
    from cimedic.evals.cases import CASES_DIR, DIFFICULTIES, load_cases, select
    from cimedic.evals.harness import compare, flow_investigator, load_report, run_cases, write_report

    everything = load_cases(path or CASES_DIR)
    chosen = select(everything, tags=tags, ids=ids)
    if not chosen:
        raise InputError(str(path or CASES_DIR), "no case matches the --tags / --case filter")
    baseline = load_report(compare_to) if compare_to else None
    report = run_cases(
        chosen,
        flow_investigator(offline=model is None, model=model),
        mode="llm" if model else "offline",
        model=model,
        all_cases=everything,
    )
    comparison = compare(report, baseline) if baseline else None
    json_path, md_path = write_report(report, out, comparison)

    table = Table(title=f"cimedic eval ({report.mode}{', ' + model if model else ''})")
    for col in ("case", "pass", "category", "excerpt", "precision", "keyword", "actions", "fingerprint", "ms"):
        table.add_column(col, justify="right" if col in ("precision", "ms") else "left")
    for s in report.cases:
        category = (
            escape(s.error or "")
            if s.error
            else f"{s.category}" + ("" if s.category_ok else f" [dim](want {s.expected_category})[/]")
        )
        actions = ", ".join(s.actions) or "-"
        if s.forbidden_actions:
            actions = f"[red]{actions} (forbidden)[/]"
        table.add_row(
            escape(s.id),
            _mark(s.passed),
            category,
            _mark(s.excerpt_ok),
            _pct(s.evidence_precision),
            _mark(s.keyword_ok),
            actions,
            _mark(s.fingerprint_ok),
            str(s.latency_ms),
        )
    console.print(table)
    # The terminal shows difficulty and category tags; the reports hold every tag.
    headline = {*DIFFICULTIES, *(str(c) for c in Category)}
    tag_table = Table(title="by tag (all tags: eval-report.md)")
    for col in ("tag", "cases", "passed", "category", "excerpt", "precision", "keyword", "p50 ms", "p95 ms"):
        tag_table.add_column(col, justify="left" if col == "tag" else "right")
    for name, a in [("all", report.overall), *((t, a) for t, a in report.by_tag.items() if t in headline)]:
        tag_table.add_row(
            escape(name),
            str(a.n),
            f"{a.passed} ({_pct(a.pass_rate)})",
            _pct(a.category_accuracy),
            _pct(a.excerpt_hit),
            _pct(a.evidence_precision),
            _pct(a.keyword_hit),
            str(a.latency_p50_ms),
            str(a.latency_p95_ms),
        )
    console.print(tag_table)
    o = report.overall
    console.print(
        f"passed {o.passed}/{o.n}; tokens {o.tokens}, cost ${o.cost_usd:.4f}; wrote {json_path} and {md_path}",
        markup=False,
        soft_wrap=True,
    )
    if comparison is not None:
        for change in comparison.worse:
            console.print(f"[red]worse[/] {escape(change.case)} {change.metric}: {change.before} -> {change.after}")
        for change in comparison.better:
            console.print(f"[green]better[/] {escape(change.case)} {change.metric}: {change.before} -> {change.after}")
        console.print(f"vs baseline: {len(comparison.better)} better, {len(comparison.worse)} worse", markup=False)
    failed = o.passed < o.n
    return (1 if failed else 0) | (2 if comparison is not None and comparison.regressed else 0)
