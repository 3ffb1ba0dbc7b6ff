"""Import a CSV export of build history (``cimedic ingest --from-csv``) in resumable, all-or-nothing batches.

Two passes over the file. The first validates every row (a bad row stops the import before anything
is written, with ``file:line: column X: problem``) and notes the line where each run's last row is,
because a run's rows may be anywhere in the file. The second assembles each run as soon as its last
row is read and commits runs in batches, each batch in one transaction together with the cursor:
"every run whose last row is at or before line N is stored". A killed import therefore leaves whole
runs only, and the next one resumes after line N; if the file changed since (its sha256 differs) it
starts over, which is safe because storing a run again is idempotent.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cimedic.errors import InputError
from cimedic.history.csv_layout import ColumnError, CsvLayout, ParsedRow
from cimedic.history.lrts import LrtsLayout
from cimedic.store import history_tables as t
from cimedic.store.history import HistoryStore
from cimedic.store.history_write import Cursor, RunRecord, UpsertOutcome

SOURCE = "csv"  # the runs' source column
CURSOR_PROJECT = "*"  # one file may hold several projects
BATCH_SIZE = 500

LAYOUTS: dict[str, CsvLayout] = {"lrts": LrtsLayout()}


def register_layout(layout: CsvLayout) -> None:
    """Make ``layout`` available to ``import_csv(layout=layout.name)`` and ``--layout``."""
    LAYOUTS[layout.name] = layout


class CsvImportReport(BaseModel):
    path: str
    layout: str
    rows: int = 0
    runs: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    already: int = 0  # runs an earlier, interrupted import of the same file committed
    resumed_after_line: int | None = None
    batches: int = 0
    committed_line: int = 0
    done: bool = False


@dataclass
class _Seen:
    first_line: int
    last_line: int
    shared: tuple[tuple[str, Any], ...]
    parts: dict[str, int] = field(default_factory=dict)


def import_csv(
    path: Path | str,
    store: HistoryStore,
    layout: str = "lrts",
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[CsvImportReport], None] | None = None,
) -> CsvImportReport:
    """Import (or resume importing) ``path``; see the module docstring. Raises InputError on a bad row."""
    if layout not in LAYOUTS:
        raise InputError("--layout", f"unknown layout {layout!r}; known: {', '.join(sorted(LAYOUTS))}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lay = LAYOUTS[layout]
    file = Path(path).resolve()
    try:
        with file.open("rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise InputError(str(path), exc.strerror or str(exc)) from exc
    report = CsvImportReport(path=str(file), layout=layout)
    cursor_key = (str(lay.platform), CURSOR_PROJECT, _source(layout, file))
    done_line = _resume_line(store.cursor(*cursor_key), sha)
    if done_line:
        report.resumed_after_line = done_line

    index = _first_pass(file, lay, report)
    report.runs = len(index)
    report.already = sum(seen.last_line <= done_line for seen in index.values())

    def commit(batch: list[RunRecord], line: int, done: bool) -> None:
        position = json.dumps({"sha256": sha, "line": line, "done": done})
        cursor = Cursor(platform=cursor_key[0], project=cursor_key[1], source=cursor_key[2], position=position)
        outcomes = store.upsert_runs(batch, source=SOURCE, cursor=cursor)
        report.added += outcomes.count(UpsertOutcome.ADDED)
        report.updated += outcomes.count(UpsertOutcome.UPDATED)
        report.unchanged += outcomes.count(UpsertOutcome.UNCHANGED)
        report.batches += 1
        report.committed_line = line
        if progress is not None:
            progress(report)

    pending: dict[tuple[str, str], list[ParsedRow]] = {}
    batch: list[RunRecord] = []
    last_line = 1
    for line, row in _rows(file, lay):
        last_line = line
        parsed = _parse(lay, row, file, line)
        seen = index.get((parsed.project, parsed.run_id))
        if seen is None or seen.shared != parsed.shared:
            raise InputError(str(file), "changed while being imported; run the import again")
        if seen.last_line <= done_line:
            continue  # committed by an earlier import of this same file
        pending.setdefault((parsed.project, parsed.run_id), []).append(parsed)
        if line == seen.last_line:
            batch.append(lay.assemble(pending.pop((parsed.project, parsed.run_id))))
            if len(batch) >= batch_size:
                commit(batch, line, done=False)
                batch = []
    if pending:
        raise InputError(str(file), "changed while being imported; run the import again")
    if batch or done_line < last_line:
        commit(batch, last_line, done=True)
    report.done = True
    return report


def _first_pass(file: Path, lay: CsvLayout, report: CsvImportReport) -> dict[tuple[str, str], _Seen]:
    """Validate every row and note where each run's rows are; raises on the first bad row."""
    index: dict[tuple[str, str], _Seen] = {}
    for line, row in _rows(file, lay):
        report.rows += 1
        parsed = _parse(lay, row, file, line)
        key = (parsed.project, parsed.run_id)
        seen = index.get(key)
        if seen is None:
            index[key] = _Seen(line, line, parsed.shared, {parsed.part: line})
            continue
        for (column, value), (_, before) in zip(parsed.shared, seen.shared, strict=True):
            if value != before:
                raise InputError(
                    f"{file}:{line}",
                    f"column {column}: run {parsed.run_id} has {value!r} here but {before!r} on line {seen.first_line}",
                )
        if parsed.part in seen.parts:
            raise InputError(
                f"{file}:{line}",
                f"run {parsed.run_id} already has a row for {parsed.part!r} on line {seen.parts[parsed.part]}",
            )
        seen.parts[parsed.part] = line
        seen.last_line = line
    return index


def _parse(lay: CsvLayout, row: dict[str, str], file: Path, line: int) -> ParsedRow:
    try:
        parsed = lay.parse(row)
    except ColumnError as exc:
        raise InputError(f"{file}:{line}", str(exc)) from None
    if len(parsed.project) > t.PROJECT_MAX or len(parsed.run_id) > t.RUN_ID_MAX:
        raise InputError(f"{file}:{line}", f"project or run id too long ({parsed.project}, {parsed.run_id})")
    return parsed


def _rows(file: Path, lay: CsvLayout) -> Iterator[tuple[int, dict[str, str]]]:
    """(first physical line, row) for every non-blank row; the header is line 1."""
    with file.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        end = 0
        try:
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in lay.required if name not in header]
            if missing:
                raise InputError(f"{file}:1", f"not a {lay.name} CSV: missing columns {', '.join(missing)}")
            end = reader.line_num
            for fields in reader:
                start, end = end + 1, reader.line_num
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise InputError(f"{file}:{start}", f"{len(fields)} fields where the header has {len(header)}")
                yield start, dict(zip(header, fields, strict=True))
        except UnicodeDecodeError:
            raise InputError(f"{file}:{end + 1}", "not UTF-8 text") from None
        except csv.Error as exc:
            raise InputError(f"{file}:{reader.line_num}", f"malformed CSV: {exc}") from None


def _resume_line(cursor: Cursor | None, sha: str) -> int:
    """The line an earlier import of this exact file committed up to; 0 to start from the top."""
    if cursor is None or not cursor.position:
        return 0
    try:
        position = json.loads(cursor.position)
        return int(position["line"]) if position.get("sha256") == sha else 0
    except (ValueError, KeyError, TypeError):
        return 0  # unreadable: starting over is always safe


def _source(layout: str, file: Path) -> str:
    source = f"csv:{layout}:{file}"
    if len(source) <= t.CURSOR_SOURCE_MAX:
        return source
    return f"csv:{layout}:sha256:{hashlib.sha256(str(file).encode()).hexdigest()}"
