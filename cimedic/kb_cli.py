"""``cimedic kb``: list, test and add knowledge-base entries."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

from cimedic.errors import InputError
from cimedic.models import ActionKind, Category
from cimedic.settings import get_settings
from cimedic.tools.knowledge_base import Entry, Indication, KnowledgeBase, load, load_file

kb_app = typer.Typer(no_args_is_help=True, help="The known-failure knowledge base.")


def _kb(extra: list[Path] | None = None) -> KnowledgeBase:
    return load([*get_settings().knowledge_search_dirs, *(extra or [])])


@kb_app.command("list")
def list_entries(
    category: Annotated[Category | None, typer.Option(help="Only this category.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Show the entries cimedic matches failures against."""
    entries = [e for e in _kb().entries if category is None or e.category == category]
    if as_json:
        for e in entries:
            typer.echo(json.dumps(e.model_dump(mode="json"), ensure_ascii=False))
        return
    table = Table(title=f"{len(entries)} knowledge-base entries", title_justify="left")
    for column in ("id", "category", "action", "title"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e.id, e.category, e.action, e.title)
    Console().print(table)


@kb_app.command("test")
def test_entries(
    paths: Annotated[list[Path] | None, typer.Argument(help="Extra folders of YAML entries to include.")] = None,
) -> None:
    """Replay every entry against its stored examples; exit 1 when a regex no longer matches."""
    kb = _kb(paths)
    failures = kb.failing_examples()
    for entry, example in failures:
        typer.echo(f"FAIL {entry.id}: no indication matches example {example!r}", err=True)
    examples = sum(len(e.examples) for e in kb.entries)
    typer.echo(f"{examples - len(failures)} passed, {len(failures)} failed ({len(kb.entries)} entries)")
    if failures:
        raise typer.Exit(1)


@kb_app.command("add")
def add_entry(
    entry_id: Annotated[str, typer.Option("--id", help="Unique id: lower case, digits, dashes.")],
    title: Annotated[str, typer.Option(help="One line naming the failure.")],
    category: Annotated[Category, typer.Option(help="Root-cause category.")],
    pattern: Annotated[list[str], typer.Option("--pattern", help="Regex (named captures allowed); repeatable.")],
    example: Annotated[list[str], typer.Option("--example", help="A log line the pattern must match; repeatable.")],
    description: Annotated[str, typer.Option(help="What happened; may use {capture} names.")],
    remediation: Annotated[str, typer.Option(help="What to do about it.")],
    action: Annotated[ActionKind, typer.Option(help="Action it suggests.")] = ActionKind.NONE,
    file: Annotated[
        Path | None, typer.Option(help="YAML file to add to (default: $CIMEDIC_HOME/knowledge/local.yaml).")
    ] = None,
) -> None:
    """Add an entry after checking it: valid regexes, examples matched, id not taken."""
    target = file or get_settings().user_knowledge_dir / "local.yaml"
    try:
        entry = Entry(
            id=entry_id,
            title=title,
            category=category,
            description=description,
            remediation=remediation,
            action=action,
            examples=example,
            indications=[Indication(pattern=p) for p in pattern],
        )
    except ValueError as exc:
        raise InputError(f"entry {entry_id}", " ".join(str(exc).split())) from exc
    failing = KnowledgeBase([entry]).failing_examples()
    if failing:
        raise InputError(f"entry {entry_id}", f"no pattern matches the example {failing[0][1]!r}")
    # Refuse to append to a file that is already invalid, or to reuse an id anywhere.
    in_target = load_file(target) if target.exists() else []
    if any(e.id == entry.id for e in [*_kb().entries, *in_target]):
        raise InputError(f"entry {entry_id}", "id already in the knowledge base")
    _append(target, entry)
    typer.echo(f"added {entry.id} to {target}")


def _append(target: Path, entry: Entry) -> None:
    """Round-trip the file (comments and order kept) and replace it atomically: never half-written."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(target.read_text(encoding="utf-8")) if target.exists() else None
    if data is None:
        data = []
    data.append(entry.model_dump(mode="json", exclude_none=True))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".kb-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.dump(data, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
