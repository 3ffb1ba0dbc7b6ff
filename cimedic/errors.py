"""Errors that reach a user, and the one helper that turns any failure into data.

Every message is a single line naming the input and what is wrong with it, so the CLI can print
it as-is and batch output can carry it in an ``"error"`` field without a traceback.
"""

from __future__ import annotations

from typing import Any


class CimedicError(Exception):
    """Base for errors cimedic reports to people."""


class InputError(CimedicError):
    """The input cannot be used: names the input and the problem in one line."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = subject
        self.problem = problem
        super().__init__(f"{subject}: {problem}")


def one_line(exc: BaseException) -> str:
    """A single-line description of ``exc`` suitable for a terminal or a JSON field."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, CimedicError):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def error_record(subject: str, exc: BaseException) -> dict[str, Any]:
    """The data shape of a failure at a boundary (batch output, tools): never a traceback."""
    message = one_line(exc)
    if isinstance(exc, InputError) and exc.subject == subject:
        message = exc.problem
    return {"input": subject, "error": message}
