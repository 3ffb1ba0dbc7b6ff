"""``cimedic learn`` and ``cimedic incidents``: teach the memory a resolved failure, and query it.

``cimedic.cli`` registers these: ``app.command("learn")(learn)`` and
``app.add_typer(incidents_app, name="incidents")``. Errors are raised as :class:`CimedicError`, which
the console-script wrapper prints as one line with exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cimedic.errors import InputError
from cimedic.memory.store import Incident, IncidentStore
from cimedic.models import Category
from cimedic.recall import failure_text
from cimedic.settings import get_settings

incidents_app = typer.Typer(no_args_is_help=True, help="The memory of past resolved CI incidents.")


def _category(value: str) -> Category:
    try:
        return Category(value.strip().lower())
    except ValueError:
        choices = ", ".join(c.value for c in Category)
        raise InputError("--category", f"unknown category {value!r}; one of {choices}") from None


def learn(
    path: Annotated[Path, typer.Argument(help="The failed run: a log, a run-logs zip or a folder.")],
    category: Annotated[str, typer.Option(help="Root-cause category (test, compile, dependency, ...).")],
    cause: Annotated[str, typer.Option(help="What actually caused the failure.")],
    fix: Annotated[str, typer.Option(help="What fixed it.")],
    outcome: Annotated[str, typer.Option(help="How it ended.")] = "resolved",
    link: Annotated[list[str] | None, typer.Option("--link", help="A PR, issue or run URL; repeatable.")] = None,
) -> None:
    """Remember how a failure was resolved, so investigations of similar failures can show it."""
    # Imported here: the whole log pipeline is needed to learn, not to search or list.
    from cimedic.investigate import analyse_path

    chosen = _category(category)
    if not cause.strip() or not fix.strip():
        raise InputError("--cause/--fix", "both must say something")
    if not path.exists():
        raise InputError(str(path), "no such file or directory")
    diag, signals = analyse_path(path)
    if diag.excerpt is None and not diag.evidence:
        raise InputError(str(path), "no failure found in it; nothing to learn")
    incident = Incident(
        category=chosen,
        cause=cause,
        fix=fix,
        outcome=outcome,
        title=diag.summary,
        excerpt=failure_text(diag),
        fingerprint=diag.fingerprint.id if diag.fingerprint else None,
        links=list(link or []),
        source=str(path),
        signals=signals,
    )
    store = IncidentStore(get_settings())
    warning = store.ensure_fast_path()
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    stored = store.add(incident)  # redacts cause, fix, links and excerpt again: nothing unmasked is stored
    typer.echo(f"learned {stored.id} ({stored.category.value}): {stored.title}")
    typer.echo(f"the incident memory now holds {store.count()} incident(s)")


@incidents_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Log lines, an error message or a description of the failure.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many incidents to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Past incidents most similar to TEXT, best first."""
    found = IncidentStore(get_settings()).search(text, k)
    rows = [[f"{hit.score:.3f}", hit.id, hit.category.value, hit.title, hit.cause, hit.fix] for hit in found]
    columns = ("score", "id", "category", "title", "cause", "fix")
    _show([h.model_dump(mode="json") for h in found], rows, columns, f"{len(found)} similar incident(s)", as_json)


@incidents_app.command("list")
def list_incidents(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """The incidents the memory holds, newest first."""
    incidents = IncidentStore(get_settings()).list(limit)
    rows = [[i.id, f"{i.created_at:%Y-%m-%d}", i.category.value, i.title, i.cause, i.fix] for i in incidents]
    columns = ("id", "learned", "category", "title", "cause", "fix")
    # The classifier's signals are for `cimedic train`, not for reading.
    records = [i.model_dump(mode="json", exclude={"signals"}) for i in incidents]
    _show(records, rows, columns, f"{len(incidents)} incident(s)", as_json)


def _show(
    records: list[dict[str, Any]], rows: list[list[str]], columns: tuple[str, ...], title: str, as_json: bool
) -> None:
    """JSON lines (like `kb list --json`) or one table."""
    if as_json:
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@incidents_app.command("reindex")
def reindex() -> None:
    """Rebuild the search index from the journal (after damage, or a change of embedding model)."""
    store = IncidentStore(get_settings())
    warning = store.ensure_fast_path()
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    count = store.reindex()
    typer.echo(f"reindexed {count} incident(s) into {store.index_location}")
