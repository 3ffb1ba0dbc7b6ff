"""``cimedic models``: the versions of each trained model, which one serves, promote and roll back."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cimedic.registry import KINDS, ModelRegistry
from cimedic.settings import get_settings

models_app = typer.Typer(no_args_is_help=True, help="Trained model versions: list, promote, roll back.")


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


def _headline(metrics: dict[str, object]) -> str:
    """The one figure people compare versions by: the combined or overall score, when there is one."""
    for key in ("combined", "overall", "test"):
        value = metrics.get(key)
        if isinstance(value, dict):
            parts = [f"{k} {v:.3f}" for k, v in value.items() if isinstance(v, float)][:3]
            return ", ".join(parts)
    return ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))[:80]


@models_app.command("list")
def list_models(
    kind: Annotated[str | None, typer.Argument(help=f"One of {', '.join(KINDS)}; all when left out.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every registered version, newest first; the champion is marked."""
    registry = _registry()
    versions = registry.versions(kind)
    champions = {k: (c.version if (c := registry.champion(k)) else None) for k in KINDS}
    if as_json:
        rows = [v.model_dump(mode="json") | {"champion": champions[v.kind] == v.version} for v in versions]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not versions:
        typer.echo("no trained models yet; investigations use the shipped classifier (`cimedic train classifier`)")
        return
    table = Table()
    for column in ("kind", "version", "", "created", "data", "metrics"):
        table.add_column(column)
    for v in versions:
        data = ", ".join(f"{k} {val}" for k, val in v.data_window.items() if isinstance(val, int | str))[:60]
        table.add_row(
            v.kind,
            v.version,
            "champion" if champions[v.kind] == v.version else "",
            f"{v.created_at:%Y-%m-%d %H:%M}",
            data,
            _headline(v.metrics),
        )
    Console().print(table)


@models_app.command("promote")
def promote(
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")],
    version: Annotated[str, typer.Argument(help="A version from `cimedic models list`.")],
) -> None:
    """Make a version the one cimedic uses."""
    meta = _registry().promote(kind, version)
    typer.echo(f"{kind} {meta.version} is now the champion")


@models_app.command("rollback")
def rollback(kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")]) -> None:
    """Go back to the champion before the current one."""
    meta = _registry().rollback(kind)
    typer.echo(f"{kind} rolled back to {meta.version}")
