"""``cimedic chat RUN``: ask follow-up questions about an investigation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from cimedic.settings import get_settings


def _stdin_questions(err: Console) -> Iterator[str]:
    """Questions one line at a time, answered as they come (interactive use)."""
    if sys.stdin.isatty():
        err.print("Ask about the run; an empty line or Ctrl-D ends.", style="dim")
    for line in sys.stdin:
        text = line.strip()
        if not text or text.casefold() in ("exit", "quit"):
            return
        yield text


def chat(
    run: Annotated[str, typer.Argument(help="A run URL, log, run-log zip or folder (as for investigate).")],
    question: Annotated[
        str | None, typer.Option("--question", "-q", help="One question; default: read questions from stdin.")
    ] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="LLM for this session; default CIMEDIC_LLM_MODEL.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Answer from the tools only, without a model.")] = False,
) -> None:
    """Ask follow-up questions about an investigated run, answered with the same read-only tools."""
    from cimedic.crew.budget import LOCAL_PROJECT, Budget
    from cimedic.crew.chat import ask, offline_answer
    from cimedic.crew.crews import CrewFailed
    from cimedic.crew.flow import opened
    from cimedic.crew.llm import build_llm
    from cimedic.crew.policy import load_policy

    if llm and offline:
        raise typer.BadParameter("choose one of --llm, --offline")
    settings = get_settings()
    model = None if offline else (llm or settings.llm_model)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    history: list[tuple[str, str]] = []
    with opened(run) as flow:
        ws = flow.workspace
        budget = Budget(settings) if model else None
        project = ws.project or LOCAL_PROJECT
        for asked in [question] if question else _stdin_questions(err):
            why = budget.exhausted(project) if budget else None
            if model and budget and not why:
                try:
                    answer, spent = ask(ws, asked, history, build_llm(settings, model), model, load_policy())
                    budget.record(project, spent)
                except CrewFailed as exc:
                    budget.record(project, exc.spent)
                    err.print("[yellow]the model gave no usable answer; answering offline[/yellow]")
                    answer = offline_answer(ws, asked)
            else:
                if why:
                    err.print(f"[yellow]{why}; answering offline[/yellow]")
                answer = offline_answer(ws, asked)
            history.append((asked, answer))
            out.print(Markdown(answer))
