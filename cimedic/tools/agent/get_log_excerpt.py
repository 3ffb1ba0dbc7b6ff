"""get_log_excerpt: numbered lines around one line of one log, read in a single streamed pass."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from cimedic.redact import redact
from cimedic.tools.agent.base import LINE_MAX_CHARS, OUTPUT_MAX_CHARS, AgentTool, Workspace
from cimedic.tools.ingest.base import LogFile
from cimedic.tools.logs.scanner import Line, read_range

MAX_N = 60
# Room for the lines inside the bounded answer; the rest is path, notes and JSON punctuation.
TEXT_BUDGET = OUTPUT_MAX_CHARS - 400
_COUNT_CHUNK = 1 << 20


class Args(BaseModel):
    job: str = Field(min_length=1, description="a log path (from list_failed_jobs or the evidence) or a job name")
    around_line: int = Field(ge=1, description="the 1-based line number to centre on, e.g. an evidence line")
    n: int = Field(default=20, ge=0, description=f"lines before and after around_line; at most {MAX_N}")


class GetLogExcerpt(AgentTool):
    name: str = "get_log_excerpt"
    description: str = (
        "Lines around_line-n..around_line+n of one log (n at most 60), numbered. Use it to read before and "
        "after an evidence line or search hit."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        log, notes = _resolve(self.workspace, args.job)
        n = min(args.n, MAX_N)
        first, last = max(1, args.around_line - n), args.around_line + n
        # One line past the range says whether the log goes on, without reading the rest of it.
        lines = read_range(log.open, first, last + 1, line_max_chars=LINE_MAX_CHARS)
        at_end = len(lines) <= last - first + 1
        shown = _fit(lines[: last - first + 1], args.around_line)
        notes += [f"n capped at {MAX_N}"] if n < args.n else []
        if len(shown) < min(len(lines), last - first + 1):
            notes.append("range narrowed to fit the answer; ask again around another line for the rest")
        out: dict[str, Any] = {"path": log.path, "job": log.job, "step": log.step}
        out = {k: v for k, v in out.items() if v is not None}
        out["lines"] = [{"line": ln.no, "text": ln.text} for ln in shown]
        if at_end and (not shown or shown[-1].no == lines[-1].no):
            out["total_lines"] = total = lines[-1].no if lines else _count_lines(log)
            if args.around_line > total:
                notes.append(f"line {args.around_line} is past the end: the log has {total} lines")
        else:
            out["more_after"] = True
        if notes:
            out["note"] = "; ".join(notes)
        return out


def _resolve(ws: Workspace, name: str) -> tuple[LogFile, list[str]]:
    """The log ``name`` names; for a job with several logs, the one the diagnosis quotes, with a note."""
    of_job = [lg for lg in ws.logs if lg.job == name and lg.path != name]
    if len(of_job) < 2 or any(lg.path == name for lg in ws.logs):
        log = ws.log(name)
        if log is None:
            raise ValueError(f"no log or job named {name!r}; paths: {[lg.path for lg in ws.logs][:20]}")
        return log, []
    # Line numbers count within one log, so the job's log the evidence comes from is the useful one.
    quoted = {e.path for e in ws.diagnosis.evidence} | ({ws.diagnosis.excerpt.path} if ws.diagnosis.excerpt else set())
    log = next((lg for lg in of_job if lg.path in quoted), of_job[0])
    return log, [f"job {name!r} has {len(of_job)} logs; this is {log.path!r}, pass a path for another"]


def _fit(lines: list[Line], centre: int) -> list[Line]:
    """The lines nearest ``centre`` that fit the answer, redacted, in log order."""
    kept: list[Line] = []
    used = 0
    for line in sorted(lines, key=lambda ln: (abs(ln.no - centre), ln.no)):
        text = redact(line.text)
        used += len(json.dumps(text, ensure_ascii=False)) + 22  # {"line": N, "text": ...},
        if used > TEXT_BUDGET:
            break
        kept.append(Line(line.no, text))
    return sorted(kept, key=lambda ln: ln.no)


def _count_lines(log: LogFile) -> int:
    """Lines as read_range numbers them (split on "\\n"), counted in fixed-size chunks."""
    count, last = 0, b"\n"
    with log.open() as stream:
        while chunk := stream.read(_COUNT_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
