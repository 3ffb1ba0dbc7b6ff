"""The ``cimedic ci-report`` command: run it as the last thing a failed CI job (or pipeline) does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cimedic.errors import one_line
from cimedic.models import Platform
from cimedic.pipeline.env import PipelineEnv
from cimedic.pipeline.report import EXIT_STRICT, Options, report, warning_line
from cimedic.redact import redact
from cimedic.settings import get_settings


def ci_report(
    comment: Annotated[
        bool,
        typer.Option(help="Keep one comment with the report on the run's pull/merge request (GitHub, GitLab)."),
    ] = True,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when anything fails; by default cimedic never fails the job.")
    ] = False,
    llm: Annotated[
        str | None, typer.Option("--llm", help="LLM (any litellm model name); default CIMEDIC_LLM_MODEL.")
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Deterministic path only, even with a model set.")] = False,
    record: Annotated[
        bool | None,
        typer.Option(
            help="Count the run in the failure history; default: only when CIMEDIC_DATABASE_URL is set "
            "(a job's own $CIMEDIC_HOME goes with the job)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the markdown report to this file.")
    ] = None,
) -> None:
    """Inside a failed CI job: explain the current run in the job log, GitHub's job summary and one PR/MR comment.

    The run comes from the platform's own variables (GitHub Actions, GitLab CI, Jenkins). A re-run
    updates the comment rather than adding one. Exit 0 even when cimedic fails (a warning says why),
    unless --strict.
    """
    if llm and offline:
        raise typer.BadParameter("choose one of --llm, --offline")
    try:
        settings = get_settings()
        env = PipelineEnv.from_mapping(settings.ci_env)
    except Exception as exc:  # no CI variables, or a bad settings file: still not the job's failure
        typer.echo(warning_line(None, redact(one_line(exc))), err=True)
        raise typer.Exit(EXIT_STRICT if strict else 0) from None
    options = Options(comment=comment, model=llm, offline=offline, record=record, output=output)
    outcome = report(env, settings, options, echo=typer.echo)
    for note in outcome.notes:
        typer.echo(f"cimedic: {note}", err=True)
    for problem in outcome.problems:
        # In GitHub Actions the warning is an annotation: a workflow command, read from stdout.
        typer.echo(warning_line(env.platform, problem), err=env.platform is not Platform.GITHUB_ACTIONS)
    raise typer.Exit(outcome.exit_code(strict))
