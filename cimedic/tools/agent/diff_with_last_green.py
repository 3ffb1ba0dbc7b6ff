"""diff_with_last_green: log templates of the failing job that its last passing run never printed.

The passing run is ``--baseline`` when given, else the newest stored run whose same job succeeded and
whose logs the archive kept. Both sides keep what ``investigate.baseline_index`` keeps of a log."""

from __future__ import annotations

from itertools import islice
from typing import Any, BinaryIO

from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from cimedic.archive import archive_for
from cimedic.redact import redact
from cimedic.settings import Limits
from cimedic.store import history_tables as t
from cimedic.store.db import transaction
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, Workspace, clip, fit
from cimedic.tools.ingest.base import LogFile
from cimedic.tools.logs.scanner import Scan, scan
from cimedic.tools.logs.templates import TemplateIndex

MAX_TEMPLATES = 25
TEXT_CHARS = 160
GREEN_CANDIDATES = 20  # passing runs looked at, newest first, for one with archived logs
BASELINE_LOGS_MAX = 50
BUDGET = OUTPUT_MAX_CHARS - 500


class Args(BaseModel):
    job: str = Field(min_length=1, description="the failing job's name, or one log path from list_failed_jobs")


class DiffWithLastGreen(AgentTool):
    name: str = "diff_with_last_green"
    description: str = (
        "Log lines (as templates) the failing job printed but its last passing run did not, in order of first "
        "appearance. The first new lines often show the real cause."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        ws = self.workspace
        logs = _failing_logs(ws, args.job)
        job = logs[0].job or args.job
        baseline, found = (ws.baseline, {"source": "--baseline"}) if ws.baseline is not None else _last_green(ws, job)
        if baseline is None:
            return {"job": job, "baseline": None, "note": found}
        new, total, compared = _new_templates(logs, baseline, ws.settings.limits)
        shown = fit(new, BUDGET)
        # Grouped by log: the path once per log, not once per template, leaves room for more of them.
        by_log: dict[str, list[dict[str, Any]]] = {}
        for item in shown:
            by_log.setdefault(item.pop("path"), []).append(item)
        out = {"job": job, "baseline": found, "lines_compared": compared, "new_total": total}
        out["new"] = [{"path": path, "templates": items} for path, items in by_log.items()]
        if len(shown) < total:
            out["note"] = f"{total - len(shown)} more new templates left out; search_log finds their lines"
        return out


def _failing_logs(ws: Workspace, name: str) -> list[LogFile]:
    found = [lg for lg in ws.logs if lg.path == name] or [lg for lg in ws.logs if lg.job == name]
    found = found or [lg for lg in [ws.log(name)] if lg is not None]  # a step name
    if not found:
        raise ValueError(f"no log or job named {name!r}; paths: {[lg.path for lg in ws.logs][:20]}")
    return found


def _scan(stream: BinaryIO, limits: Limits) -> Scan:
    with stream:
        return scan(stream, line_max_chars=limits.line_max_chars, candidates_max=limits.candidates_max)


def _last_green(ws: Workspace, job: str) -> tuple[TemplateIndex | None, Any]:
    info = ws.diagnosis.run
    if info is None:
        return None, "local material has no run history; pass a passing run's log with --baseline"
    R, J = t.RunRow, t.JobRow
    query = (
        select(R.run_id, R.attempt, R.started_at)
        .join(J, J.run_pk == R.id)
        .where(R.platform == str(info.platform), R.project == info.project, J.name == job, J.status == "success")
        .where(or_(R.run_id != info.id, R.attempt != (info.attempt or 1)))
        .order_by(R.started_at.desc().nulls_last(), R.id.desc())
        .limit(GREEN_CANDIDATES)
    )
    with transaction(ws.history.engine) as conn:
        green = conn.execute(query).all()
    if not green:
        return None, f"no passing run of job {job!r} in {info.project} is in the run history"
    s = ws.settings
    archive = archive_for(
        s.archive_url, s.archive_dir, s.aws_endpoint_url, s.aws_region, retries=s.ci.retries, timeout_s=s.ci.timeout_s
    )
    for run_id, run_attempt, started in green:
        prefix = (str(info.platform), info.project, run_id, run_attempt, job)
        keys = list(islice(archive.list(prefix), BASELINE_LOGS_MAX))
        if keys:
            index = TemplateIndex()
            for key in keys:
                # What investigate.baseline_index keeps of a passing log, so --baseline and the archive agree.
                result = _scan(archive.open(key), s.limits)
                for line in result.hits + result.tail:
                    if line.text.strip():
                        index.add(line.text)
            return index, dict(source="archive", run_id=run_id, attempt=run_attempt, started_at=started, logs=len(keys))
    return None, f"{len(green)} passing run(s) of job {job!r} are known but none has archived logs"


def _new_templates(
    logs: list[LogFile], baseline: TemplateIndex, limits: Limits
) -> tuple[list[dict[str, Any]], int, int]:
    """The first new templates as answer entries, how many are new in all, how many lines were compared."""
    fresh = TemplateIndex()
    found: dict[int, dict[str, Any]] = {}
    compared = 0
    for log in logs:
        result = _scan(log.open(), limits)
        # Candidates and tail overlap at the end of a log; each line is compared once, in log order.
        for line in sorted({ln.no: ln for ln in result.hits + result.tail}.values(), key=lambda ln: ln.no):
            text = line.text.strip()
            if not text:
                continue
            compared += 1
            if baseline.knows(text):
                continue
            entry = found.setdefault(fresh.add(text), {"path": log.path, "line": line.no, "count": 0, "text": text})
            entry["count"] += 1
    # Templates are read last: Drain generalises a cluster's template as more lines join it.
    out = []
    for cluster, entry in islice(found.items(), MAX_TEMPLATES):
        entry["text"] = clip(redact(entry["text"]), TEXT_CHARS)
        template = clip(redact(fresh.template(cluster)), TEXT_CHARS)
        if entry["count"] > 1 and template != entry["text"]:  # what the repeats have in common
            entry["template"] = template
        out.append(entry)
    return out, len(found), compared
