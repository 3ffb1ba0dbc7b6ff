"""``cimedic train classifier``: fit the cause classifier on labeled data and register a versioned artifact.

Data: dataset folders (LogChunks layout, or a ``categories.jsonl`` naming its logs), the knowledge
base's examples and the incident memory. Before the final fit it cross-validates by group
(repository) and stores those held-out scores in the artifact, next to the rules-only and
majority-class baselines, so a model file always says how good it is.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from cimedic.errors import InputError
from cimedic.investigate import signals_of_path
from cimedic.models import Category
from cimedic.registry import ModelRegistry
from cimedic.settings import get_settings
from cimedic.tools.cause.corpus import Example, from_dataset, from_incidents, from_knowledge
from cimedic.tools.cause.model import CauseModel
from cimedic.tools.cause.train import decision, grouped_cv, majority, score
from cimedic.tools.knowledge_base import load


def _incident_examples() -> list[Example]:
    from cimedic.memory.store import IncidentStore

    store = IncidentStore(get_settings())
    if not store.journal_path.exists():
        return []
    rows = [(i.id, i.category, i.signals, i.excerpt) for i in store.list(limit=1_000_000)]
    return from_incidents(rows, load(get_settings().knowledge_search_dirs))


def _top(probs: dict[str, float]) -> str:
    return max(probs, key=lambda c: probs[c]) if probs else str(Category.OTHER)


def train(
    dataset: Annotated[
        list[Path] | None, typer.Option("--dataset", help="A labeled dataset folder (repeatable).")
    ] = None,
    knowledge: Annotated[bool, typer.Option(help="Also learn from the knowledge base's example lines.")] = True,
    incidents: Annotated[bool, typer.Option(help="Also learn from the incident memory.")] = True,
    out: Annotated[
        Path | None, typer.Option(help="Write the model here instead of registering it in $CIMEDIC_HOME/models.")
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="Make the new version the one investigations use (else: `cimedic models promote`).")
    ] = True,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds, split by repository.")] = 10,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per core).")] = 0,
) -> None:
    """Train the cause classifier on labeled logs, the knowledge base and the incident memory."""
    console = Console(stderr=True)
    settings = get_settings()
    workers = (os.cpu_count() or 1) if jobs == 0 else jobs
    labeled: list[Example] = []
    with Progress(console=console, transient=True) as progress:
        for root in dataset or []:
            task = progress.add_task(f"analysing {root}", total=None)

            def advance(n: int, task: TaskID = task) -> None:
                progress.update(task, completed=n)

            labeled += from_dataset(root, signals_of_path, jobs=workers, progress=advance)
            progress.remove_task(task)
    base = from_knowledge(load(settings.knowledge_search_dirs)) if knowledge else []
    memory = _incident_examples() if incidents else []
    labeled += memory
    everything = labeled + base
    if len({e.category for e in everything}) < 2:
        raise InputError("training data", "needs labeled examples of at least two categories (see --dataset)")
    metrics: dict[str, object] = {}
    if len({e.group for e in labeled}) >= 2:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("cross-validating", total=folds)
            held_out = grouped_cv(
                labeled, base, folds=folds, progress=lambda k, n: progress.update(task, completed=k, total=n)
            )
        decisions = [decision(e.signals, p or None) for e, p in zip(labeled, held_out, strict=True)]
        metrics = {
            "cross_validation": f"grouped by repository, {min(folds, len({e.group for e in labeled}))} folds",
            "combined": score(labeled, [str(d.category) for d in decisions]).as_dict(),
            "classifier_alone": score(
                labeled, [max(p, key=lambda c: p[c]) if p else "other" for p in held_out]
            ).as_dict(),
            "rules_alone": score(labeled, [str(decision(e.signals, None).category) for e in labeled]).as_dict(),
            "majority_baseline": score(labeled, majority(labeled)).as_dict(),
        }
    model = CauseModel.fit([e.signals for e in everything], [str(e.category) for e in everything])
    model.meta |= {
        "data": {
            "datasets": [str(p) for p in dataset or []],
            "knowledge_examples": len(base),
            "incidents": len(memory),
            "labeled_logs": len(labeled) - len(memory),
        },
        "metrics": metrics,
    }
    counts = ", ".join(f"{k} {v}" for k, v in model.meta["class_counts"].items())
    if out is not None:
        model.save(out)
        typer.echo(f"trained on {len(everything)} examples ({counts}); wrote {out}")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            artifact = Path(scratch) / "classifier.json"
            model.save(artifact)
            version = ModelRegistry(settings.models_dir).register(
                "classifier",
                artifact,
                metrics=metrics,
                data_window={"examples": len(everything), **model.meta["data"]},
                promote=promote,
            )
        state = "promoted" if promote else "registered (not promoted)"
        typer.echo(f"trained on {len(everything)} examples ({counts}); classifier {version.version} {state}")
    for name, m in metrics.items():
        if isinstance(m, dict):
            typer.echo(
                f"  {name:<18} accuracy {m['accuracy']:.3f}  lenient {m['lenient']:.3f}  macro-F1 {m['macro_f1']:.3f}"
            )
        else:
            typer.echo(f"  {m}")
    missing = sorted(set(str(c) for c in Category) - set(model.classes))
    if missing:
        typer.echo(f"  no examples of: {', '.join(missing)} (the rules still cover them)")


train_app = typer.Typer(no_args_is_help=True, help="Train models; each run registers a new version.")
train_app.command("classifier")(train)
