"""``cimedic sweep`` and ``cimedic serve``; everything heavy is imported inside the command."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from cimedic.errors import InputError
from cimedic.settings import get_settings


def sweep(
    repos: Annotated[
        list[str] | None,
        typer.Argument(
            help="OWNER/REPO, gitlab:GROUP/PROJECT, jenkins:JOB, azure:ORG/PROJECT or a project URL; "
            "default: sweep.repos of serve.yaml."
        ),
    ] = None,
    execute: Annotated[
        bool | None,
        typer.Option("--execute/--dry-run", help="Execute what the policy allows (default: serve.yaml's, dry run)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The digest as JSON.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="List failed runs since: 7d, 12h, 2w or an ISO date (default: since the last sweep)."),
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Deterministic investigations only.")] = False,
    post: Annotated[
        bool, typer.Option("--post/--no-post", help="Also send the digest to the notification channels.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="A serve.yaml (default: $CIMEDIC_HOME/serve.yaml, if any).")
    ] = None,
) -> None:
    """Investigate every new failed run once, heal within policy, notify, and print a digest."""
    from cimedic.runs_cli import parse_since
    from cimedic.serve_config import load_serve_config
    from cimedic.sweep import sweep as run_sweep

    settings = get_settings()
    conf = load_serve_config(settings, config)
    chosen = list(repos or conf.sweep.repos)
    if not chosen:
        raise InputError("sweep", "name the repositories to sweep, or list them under sweep.repos in serve.yaml")
    digest = run_sweep(
        chosen,
        settings=settings,
        execute=conf.execute if execute is None else execute,
        since=parse_since(since) if since else None,
        offline=offline or conf.offline,
        limit=conf.sweep.limit,
        lookback=timedelta(hours=conf.sweep.lookback_hours),
        post_digest=post,
    )
    if as_json:
        sys.stdout.write(digest.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(digest.to_markdown())
    if any(repo.error for repo in digest.repos):
        raise typer.Exit(1)  # some repositories could not be swept (the digest says why)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    config: Annotated[
        Path | None, typer.Option("--config", help="A serve.yaml (default: $CIMEDIC_HOME/serve.yaml, if any).")
    ] = None,
) -> None:
    """Receive CI webhooks, sweep on a schedule, retrain nightly; /healthz and /metrics."""
    from cimedic.serve import run_server

    run_server(get_settings(), host=host, port=port, config_path=config)
