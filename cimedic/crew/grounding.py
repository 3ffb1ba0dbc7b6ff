"""Checks that keep a model honest: cited lines must exist, proposed targets must be in the run.

A model that invents a log line, or proposes rolling back something this run never touched (say,
because a log told it to), is caught here, deterministically, before anything reaches a person.
"""

from __future__ import annotations

import re
from collections import defaultdict

from pydantic import BaseModel, Field

from cimedic.models import Action, RejectedAction
from cimedic.tools.agent.base import Workspace

# A quote shorter than this could match almost any line; it proves nothing.
MIN_QUOTE = 8
_LINE_PREFIX = re.compile(r"^\d+:\s*")


class Citation(BaseModel):
    path: str = Field(max_length=500)
    line: int = Field(ge=1)
    text: str = Field(min_length=1, max_length=2000)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _supports(quote: str, line: str) -> bool:
    # The excerpt shows lines as "571: text"; a model may copy that prefix along with the text.
    q, ln = _LINE_PREFIX.sub("", _norm(quote)).strip("…. "), _norm(line)
    if not q or not ln:
        return False
    # Models trim long lines with an ellipsis or quote a telling part: a long enough substring counts.
    # The reverse (the quote holding the line plus more) does not: the "more" would be unproven.
    return q in ln and (len(q) >= MIN_QUOTE or q == ln.strip("…. "))


def unsupported_citations(citations: list[Citation], ws: Workspace) -> list[str]:
    """One problem per citation that the log does not bear out; an empty list means all are real."""
    problems: list[str] = []
    known = {(e.path, e.line): e.text for e in ws.diagnosis.evidence}
    wanted: dict[str, dict[int, list[Citation]]] = defaultdict(lambda: defaultdict(list))
    for c in citations:
        if (c.path, c.line) in known and _supports(c.text, known[(c.path, c.line)]):
            continue  # e.g. a failed JUnit case: evidence with a report path, not a log line
        log = ws.log(c.path)
        if log is None:
            problems.append(f"{c.path}:{c.line}: no such log in this run")
            continue
        wanted[log.path][c.line].append(c)
    for path, by_line in wanted.items():
        log = ws.log(path)
        assert log is not None
        seen: set[int] = set()
        last = max(by_line)
        for no, text in ws.lines(log):
            if no in by_line:
                seen.add(no)
                problems += [
                    f"{path}:{no}: the log line there does not say {c.text[:80]!r}"
                    for c in by_line[no]
                    if not _supports(c.text, text)
                ]
            if no >= last:
                break
        problems += [f"{path}:{no}: the log has no line {no}" for no in by_line if no not in seen]
    return problems


def targets(ws: Workspace) -> list[str]:
    """What an action may be aimed at: the run, its jobs, steps, failed tests and branch."""
    diag, found = ws.diagnosis, ["run"]
    info = diag.run
    if info is not None:
        found += [info.id, *(x for x in (info.number, info.branch) if x)]
        found += [job.name for job in info.jobs]
    if ws.material is not None:
        found += [job.name for job in ws.material.run.jobs]
        found += [step.name for job in ws.material.run.jobs for step in job.steps]
        found += [t.name for t in ws.material.run.test_results if t.status in ("failed", "error")]
        found += [x for log in ws.material.logs for x in (log.job, log.step) if x]
    found += [t.name for t in diag.failed_tests]
    return list(dict.fromkeys(x for x in found if x))


def grounded(actions: list[Action], ws: Workspace) -> tuple[list[Action], list[RejectedAction]]:
    """Split proposals into those aimed at this run and those that are not (with why)."""
    allowed = {_norm(t) for t in targets(ws)}
    kept: list[Action] = []
    rejected: list[RejectedAction] = []
    for action in actions:
        if _norm(action.target) in allowed:
            kept.append(action)
        else:
            why = f"target {action.target[:80]!r} is not a job, step, test, branch or id of this run"
            rejected.append(RejectedAction(action=action, why=why))
    return kept, rejected
