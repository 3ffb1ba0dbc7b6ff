"""What a CSV export layout provides to the importer: parse one row, assemble one run from its rows.

A run may span several rows (LRTS: one per test stage), and those rows need not be adjacent, so the
importer hands a layout all of a run's rows at once. To add an export format, implement
``CsvLayout`` and register it in ``cimedic.history.csv_import.LAYOUTS``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cimedic.models import Platform
from cimedic.store.history_write import RunRecord


class ColumnError(ValueError):
    """A value a layout cannot use; the importer adds the file and line."""

    def __init__(self, column: str, problem: str) -> None:
        self.column = column
        self.problem = problem
        super().__init__(f"column {column}: {problem}")


@dataclass(frozen=True)
class ParsedRow:
    """One validated row: which run it belongs to, which part of the run it is, and its data."""

    project: str
    run_id: str
    part: str = ""  # e.g. the stage: two rows may not be the same part of one run
    # Run-level values every row of the run must agree on: (column, value) pairs.
    shared: tuple[tuple[str, Any], ...] = ()
    data: Any = None


class CsvLayout(Protocol):
    name: str
    platform: Platform
    required: tuple[str, ...]  # columns the header must have

    def parse(self, row: Mapping[str, str]) -> ParsedRow:
        """Validate and convert one row; raise ColumnError naming the offending column."""
        ...

    def assemble(self, rows: Sequence[ParsedRow]) -> RunRecord:
        """The run made of ``rows`` (all of its rows, in file order, agreeing on ``shared``)."""
        ...


def text(row: Mapping[str, str], column: str, *, required: bool = True) -> str | None:
    value = (row.get(column) or "").strip()
    if not value:
        if required:
            raise ColumnError(column, "is empty")
        return None
    return value


def number(row: Mapping[str, str], column: str, *, low: float = 0.0, high: float = math.inf) -> float:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise ColumnError(column, f"not a number: {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ColumnError(column, f"{raw!r} is outside {low:g}..{high:g}")
    return value


def count(row: Mapping[str, str], column: str) -> int:
    """A non-negative whole number; "12.0" is accepted (exports written through pandas floats)."""
    value = number(row, column)
    if value != int(value):
        raise ColumnError(column, f"not a whole number: {row.get(column)!r}")
    return int(value)
