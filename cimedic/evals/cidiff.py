"""CiDiff layout adapter (labri-progress/cidiff, ``data/breakages``): one folder per breakage with
``fail.log``, ``pass.log`` and ``groundtruth``.

``groundtruth`` lists the lines of ``fail.log`` that hold the error messages, one interval (``34-45``) or
line (``56``) per line, optionally led by a letter: ``E`` (error) or ``C`` (context that helps read the
error just above). Lines are 1-based over a split on ``\\r\\n|\\r|\\n``; they are converted to cimedic's
``\\n`` numbering by character offset (as for LogChunks). Unlettered lines count as errors.

Each breakage is investigated with ``pass.log`` as the baseline; figures: excerpt hit (excerpt < 40
lines overlapping an error range), top evidence in an error range, evidence precision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from cimedic.errors import InputError
from cimedic.evals.cases import Range
from cimedic.evals.harness import percentile
from cimedic.evals.logchunks import chunk_in_newline_lines
from cimedic.evals.score import MAX_EXCERPT_LINES
from cimedic.models import Diagnosis

GROUNDTRUTH = "groundtruth"
_LINE = re.compile(r"^\s*(?:([EC])\s*)?(\d+)(?:\s*-\s*(\d+))?\s*$")

Investigate = Callable[[Path, Path], Diagnosis]


@dataclass
class GroundTruth:
    errors: list[Range] = field(default_factory=list)
    context: list[Range] = field(default_factory=list)


def parse_groundtruth(text: str, subject: str = GROUNDTRUTH) -> GroundTruth:
    """Error and context ranges, in the file's own (``\\r\\n|\\r|\\n``) numbering."""
    out = GroundTruth()
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        m = _LINE.match(raw)
        if not m:
            raise InputError(subject, f"line {number}: expected 'E a-b', 'C a-b', 'a-b' or 'a', got {raw.strip()!r}")
        lo = int(m.group(2))
        hi = int(m.group(3) or lo)
        if lo < 1 or hi < lo:
            raise InputError(subject, f"line {number}: bad range {lo}-{hi}")
        (out.context if m.group(1) == "C" else out.errors).append((lo, hi))
    return out


def to_newline_ranges(log_text: str, ranges: list[Range]) -> list[Range]:
    """Ranges over ``\\r\\n|\\r|\\n`` lines as ranges over ``\\n`` lines (clamped to the log's length)."""
    count = len(re.findall(r"\r\n|\r|\n", log_text)) + 1
    return [chunk_in_newline_lines(log_text, min(lo, count), min(hi, count)) for lo, hi in ranges]


class BreakageScore(BaseModel):
    id: str
    error: str | None = None
    excerpt_ok: bool = False
    top_evidence_ok: bool = False
    evidence_precision: float = 0.0
    latency_ms: int = 0


def _inside(ranges: list[Range], line: int) -> bool:
    return any(lo <= line <= hi for lo, hi in ranges)


def score_breakage(case_id: str, diag: Diagnosis, ranges: list[Range], latency_ms: int) -> BreakageScore:
    ex = diag.excerpt
    excerpt_ok = (
        ex is not None
        and ex.end_line - ex.start_line < MAX_EXCERPT_LINES
        and any(lo <= ex.end_line and hi >= ex.start_line for lo, hi in ranges)
    )
    hits = [_inside(ranges, e.line) for e in diag.evidence]
    return BreakageScore(
        id=case_id,
        excerpt_ok=excerpt_ok,
        top_evidence_ok=bool(hits) and hits[0],
        evidence_precision=round(sum(hits) / len(hits), 4) if hits else 0.0,
        latency_ms=latency_ms,
    )


def breakages(root: Path) -> list[Path]:
    """Folders under ``root`` (or ``root`` itself) holding fail.log, pass.log and groundtruth."""
    if not root.is_dir():
        raise InputError(str(root), "not a folder of CiDiff breakages")
    need = ("fail.log", "pass.log", GROUNDTRUTH)
    found = [d for d in [root, *sorted(root.rglob("*"))] if d.is_dir() and all((d / n).is_file() for n in need)]
    if not found:
        raise InputError(str(root), "no breakage folders (each needs fail.log, pass.log and groundtruth)")
    return found


def flow_investigate(*, offline: bool = True, model: str | None = None) -> Investigate:
    from cimedic.crew.flow import investigate

    def run(fail: Path, passing: Path) -> Diagnosis:
        return investigate(str(fail), baseline=str(passing), model=model, offline=offline, record=False)

    return run


def evaluate(root: Path, investigate: Investigate, *, limit: int = 0) -> list[BreakageScore]:
    scores: list[BreakageScore] = []
    folders = breakages(root)
    for folder in folders[:limit] if limit else folders:
        case_id = str(folder.relative_to(root)) if folder != root else folder.name
        fail = folder / "fail.log"
        text = fail.read_bytes().decode("utf-8", "replace")
        truth = parse_groundtruth((folder / GROUNDTRUTH).read_text(encoding="utf-8"), str(folder / GROUNDTRUTH))
        ranges = to_newline_ranges(text, truth.errors)
        started = time.perf_counter()
        try:
            diag = investigate(fail, folder / "pass.log")
        except Exception as exc:  # one broken breakage must not lose the others
            scores.append(BreakageScore(id=case_id, error=" ".join(str(exc).split()) or type(exc).__name__))
            continue
        scores.append(score_breakage(case_id, diag, ranges, int((time.perf_counter() - started) * 1000)))
    return scores


def figures(scores: list[BreakageScore]) -> dict[str, float]:
    n = len(scores) or 1
    return {
        "breakages": len(scores),
        "excerpt_hit": sum(s.excerpt_ok for s in scores) / n,
        "top_evidence": sum(s.top_evidence_ok for s in scores) / n,
        "evidence_precision": sum(s.evidence_precision for s in scores) / n,
        "errors": sum(s.error is not None for s in scores),
        "latency_p50_ms": percentile([s.latency_ms for s in scores], 50),
        "latency_p95_ms": percentile([s.latency_ms for s in scores], 95),
    }
