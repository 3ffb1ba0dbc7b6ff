"""Commands over run history: ``flaky``, ``anomalies``, ``predict``, ``stats``, ``report`` and
``train predictor``. They read the history store (``cimedic ingest`` fills it); heavy libraries
(pandas, scikit-learn, matplotlib) load only inside the command that needs them."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cimedic.errors import InputError
from cimedic.registry import ModelRegistry
from cimedic.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

    from cimedic.store.history import HistoryStore
    from cimedic.tools.predict import FailurePredictor

ProjectArg = Annotated[str | None, typer.Argument(help="Project as stored (owner/repo, group/project…); all if one.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
NO_HISTORY = "no run history for {what}; fill it with `cimedic ingest REPO` or `cimedic ingest --from-csv FILE`"


def _store() -> HistoryStore:
    from cimedic.store.history import HistoryStore

    return HistoryStore.open(get_settings().effective_database_url)


def _project(store: HistoryStore, project: str | None) -> str | None:
    """The project asked for; without one, the only project in the store (else all of them)."""
    known = store.projects()
    if project is not None:
        if project not in known:
            raise InputError(
                project, NO_HISTORY.format(what="this project") + f" (stored: {', '.join(known) or 'none'})"
            )
        return project
    return known[0] if len(known) == 1 else None


def _history(project: str | None, since: datetime | None = None) -> tuple[HistoryStore, str | None, pd.DataFrame]:
    """The store, the project chosen, and its runs; no runs at all is an error saying how to add some."""
    store = _store()
    chosen = _project(store, project)
    runs = store.runs_frame(chosen, since)
    if runs.empty:
        raise InputError(chosen or "the store", NO_HISTORY.format(what="runs"))
    return store, chosen, runs


def _dump(rows: Sequence[Any]) -> None:
    typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))


def flaky(
    project: ProjectArg = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many tests.")] = 20,
    min_score: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability of flakiness to list.")] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Tests ranked by how likely they are flaky, with their flake rate, evidence and cost."""
    from cimedic.tools.flaky import rank_flaky

    store = _store()
    chosen = _project(store, project)
    tests = store.tests_frame(chosen)
    if tests.empty:
        raise InputError(chosen or "the store", NO_HISTORY.format(what="tests"))
    ranked = rank_flaky(tests, min_score=min_score)[:limit]
    if as_json:
        _dump(ranked)
        return
    table = Table(title=f"flaky tests ({len(ranked)} shown)")
    for column in ("test", "p(flaky)", "flake rate (95% CI)", "failed/runs", "same commit", "runs failed", "CI min"):
        table.add_column(column)
    for t in ranked:
        table.add_row(
            escape(t.test),
            f"{t.score:.2f}",
            f"{t.flake_rate:.1%} ({t.interval[0]:.1%}–{t.interval[1]:.1%})",
            f"{t.failures}/{t.runs}",
            "yes" if t.definitive else "",
            str(t.impact.runs_failed),
            f"{t.impact.ci_minutes_wasted:.0f}",
        )
    Console().print(table if ranked else "no test looks flaky")


def anomalies(
    project: ProjectArg = None,
    since: Annotated[str | None, typer.Option(help="Only runs since: 7d, 12h, 2w or an ISO date.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Unusual durations and queue times (spikes, level shifts, seasonal and multi-metric outliers)."""
    from cimedic.runs_cli import parse_since
    from cimedic.tools.anomaly import find_anomalies

    _, _, runs = _history(project, parse_since(since) if since else None)
    found = find_anomalies(runs)
    if as_json:
        _dump(found)
        return
    table = Table(title=f"anomalies ({len(found)})")
    for column in ("when", "job", "run", "metric", "observed", "expected", "kind", "likely causes"):
        table.add_column(column)
    for a in found:
        table.add_row(
            f"{a.at:%Y-%m-%d %H:%M}",
            escape(a.job),
            escape(a.run_id),
            a.metric,
            f"{a.observed:.0f}",
            f"{a.expected_low:.0f}–{a.expected_high:.0f}",
            f"{a.kind} ({a.detector})",
            escape("; ".join(a.likely_causes)),
        )
    Console().print(table if found else "no anomalies")


def _predictor(runs: pd.DataFrame) -> tuple[FailurePredictor, str]:
    from cimedic.tools.predict import FailurePredictor

    path = ModelRegistry(get_settings().models_dir).champion_path("predictor")
    if path is not None:
        return FailurePredictor.load(path), f"predictor {path.parent.name}"
    return FailurePredictor().fit(runs), "a predictor fitted just now (none promoted: `cimedic train predictor`)"


def predict(
    run: Annotated[str | None, typer.Argument(help="A run id in the history.")] = None,
    pr: Annotated[str | None, typer.Option("--pr", help="The next run of this pull/merge request.")] = None,
    project: Annotated[str | None, typer.Option(help="Project as stored; needed when several are.")] = None,
    job: Annotated[str | None, typer.Option(help="Job/workflow for --pr (default: the project's commonest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The probability that a run fails, from what is known before it starts, and why."""
    from cimedic.tools.predict import normalize, planned_run

    if (run is None) == (pr is None):
        raise InputError("predict", "give a run id or --pr N (one of them)")
    store = _store()
    chosen = _project(store, project)
    if chosen is None:
        raise InputError("--project", f"several projects are stored: {', '.join(store.projects())}")
    runs = store.runs_frame(chosen)
    if runs.empty:
        raise InputError(chosen, NO_HISTORY.format(what="this project"))
    model, source = _predictor(runs)
    if pr is not None:
        name = job or str(runs["job"].mode().iloc[0])
        frame = planned_run(runs, project=chosen, job=name, pull_request=pr)
        row = len(frame) - 1
        subject = f"next run of {name} on PR/MR {pr}"
    else:
        frame = normalize(runs).reset_index(drop=True)
        matches = frame.index[frame["run_id"].astype(str) == run].tolist()
        if not matches:
            raise InputError(str(run), f"no such run in the history of {chosen}")
        row = matches[-1]
        subject = f"run {run}"
    probability = float(model.predict(frame)[row])
    reasons = model.explain(model.features_of(frame).iloc[row])
    if as_json:
        payload = {
            "subject": subject,
            "probability": round(probability, 4),
            "threshold": model.threshold,
            "model": source,
            "reasons": [
                {"feature": c.feature, "value": c.value, "effect": c.effect, "unit": c.unit, "why": c.description}
                for c in reasons
            ],
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    verdict = "likely to fail" if probability >= model.threshold else "likely to pass"
    console = Console(highlight=False)
    console.print(f"{escape(subject)}: P(fail) = {probability:.2f} ({verdict}; cut {model.threshold:.2f}; {source})")
    for c in reasons:
        console.print(f"  {'+' if c.effect > 0 else '-'} {c.feature} = {c.value:g}: {escape(c.description)}")


def stats(
    project: ProjectArg = None,
    days: Annotated[int, typer.Option(min=1, help="DORA window in days.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """History counts and failure rate, and DORA's four keys over the last --days."""
    from cimedic.history.extra_frames import deployments_frame
    from cimedic.tools.delivery.dora import dora

    store = _store()
    chosen = _project(store, project)
    summary = store.stats(chosen)
    runs = store.runs_frame(chosen)
    report = dora(runs, deployments_frame(store, chosen), project=chosen, days=days)
    if as_json:
        typer.echo(
            json.dumps({"history": summary.model_dump(mode="json"), "dora": report.model_dump(mode="json")}, indent=2)
        )
        return
    console = Console(highlight=False)
    rate = f"{summary.failure_rate:.1%}" if summary.failure_rate is not None else "n/a"
    console.print(
        f"{escape(chosen or 'all projects')}: {summary.runs} runs, failure rate {rate}, "
        f"{summary.test_results} test results, {summary.diagnoses} diagnoses"
    )
    table = Table(title=f"DORA, last {days} days ({report.deployments} deployments; {report.source})")
    for column in ("key", "value", "unit", "band", "based on"):
        table.add_column(column)
    for name, key in (
        ("deployment frequency", report.deployment_frequency),
        ("lead time for changes", report.lead_time),
        ("change failure rate", report.change_failure_rate),
        ("time to restore", report.time_to_restore),
    ):
        table.add_row(name, "n/a" if key.value is None else f"{key.value:g}", key.unit, key.band or "", str(key.basis))
    console.print(table)


def report(
    project: ProjectArg = None,
    html: Annotated[Path, typer.Option("--html", help="Write the page here.")] = Path("cimedic-report.html"),
    png: Annotated[Path | None, typer.Option("--png", help="Also write the charts as PNGs into this folder.")] = None,
    days: Annotated[int, typer.Option(min=1, help="DORA window in days.")] = 30,
) -> None:
    """An HTML page with pictures: durations and anomalies, flaky tests, failure categories, DORA."""
    from cimedic.history.extra_frames import categories_frame, deployments_frame
    from cimedic.report_html import write_report
    from cimedic.tools.anomaly import find_anomalies
    from cimedic.tools.delivery.dora import dora
    from cimedic.tools.flaky import rank_flaky

    store, chosen, runs = _history(project)
    tests = store.tests_frame(chosen)
    written = write_report(
        chosen or "all projects",
        runs,
        flaky=rank_flaky(tests) if not tests.empty else [],
        anomalies=find_anomalies(runs),
        dora=dora(runs, deployments_frame(store, chosen), project=chosen, days=days),
        categories=categories_frame(store, chosen),
        out=html,
        png_dir=png,
    )
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def train_predictor(
    project: ProjectArg = None,
    promote: Annotated[bool, typer.Option(help="Make it the predictor `cimedic predict` uses.")] = True,
) -> None:
    """Fit the failure predictor on the stored history and register a version with its metrics."""
    from cimedic.tools.predict import FailurePredictor

    _, chosen, runs = _history(project)
    model = FailurePredictor().fit(runs)
    with tempfile.TemporaryDirectory() as scratch:
        artifact = Path(scratch) / "predictor.json"
        model.save(artifact)
        version = ModelRegistry(get_settings().models_dir).register(
            "predictor",
            artifact,
            metrics=model.metrics,
            data_window={**model.window, "project": chosen or "all"},
            promote=promote,
        )
    state = "promoted" if promote else "registered (not promoted)"
    typer.echo(f"predictor {version.version} {state}; validation: {json.dumps(model.metrics, default=str)[:300]}")
