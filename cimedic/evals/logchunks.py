"""LogChunks scoring: the one implementation behind ``cimedic eval --dataset logchunks`` and
bench/rca_logchunks.py.

Data layout (Brandt et al., "LogChunks", MSR 2020): ``labels.jsonl`` (log path, labeled chunk
``chunk_start_line``/``chunk_end_line``), ``categories.jsonl`` (same order: cause category, ``alt`` for
low-confidence labels) and ``logs/**.log.gz``.

LogChunks numbers its lines over a split on ``\\r\\n|\\r|\\n``; cimedic reports lines of the file split on
``\\n``. The labeled chunk is converted to ``\\n`` lines by character offset, so both sides are compared in
the same numbering.

Figures: excerpt hit (excerpt < 40 lines and overlaps the chunk), top evidence (first evidence line
inside the chunk), category accuracy strict and lenient (``alt`` also counts), and the simple baselines
(last 40 lines; first / last ``error|fail`` line).
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cimedic.errors import InputError
from cimedic.evals.score import MAX_EXCERPT_LINES
from cimedic.models import Diagnosis
from cimedic.tools.cause.corpus import Example
from cimedic.tools.cause.features import Signals

ERRORISH = re.compile(r"error|fail", re.IGNORECASE)

Diagnose = Callable[[Path], tuple[float, object, object]]


def chunk_in_newline_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """A chunk numbered over ``\\r\\n|\\r|\\n`` lines, as the 1-based ``\\n`` lines that hold it."""
    universal = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    newline = [0] + [m.end() for m in re.finditer(r"\n", text)]
    s_off = universal[start - 1]
    e_off = universal[end - 1]
    return bisect.bisect_right(newline, s_off), bisect.bisect_right(newline, e_off)


def baselines(lines: list[str], lo: int, hi: int) -> dict[str, bool]:
    n = len(lines)
    last40 = (max(1, n - 39), n)
    hits = [i + 1 for i, x in enumerate(lines) if ERRORISH.search(x)]
    first = hits[0] if hits else None
    last = hits[-1] if hits else None
    return {
        "last40_excerpt": last40[0] <= hi and last40[1] >= lo,
        "first_match_top": first is not None and lo <= first <= hi,
        "last_match_top": last is not None and lo <= last <= hi,
    }


def diagnose(path: Path) -> tuple[float, object, object]:
    """Seconds taken, the Diagnosis and its Signals (deterministic analysis, nothing recorded)."""
    from cimedic.investigate import analyse_path

    t = time.perf_counter()
    diag, signals = analyse_path(path, record=False)
    return time.perf_counter() - t, diag, signals


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot read JSON lines: {' '.join(str(exc).split())}") from exc


def load(data: Path, limit: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Labels (the first ``limit`` when given) and categories of a LogChunks folder."""
    if not (data / "labels.jsonl").is_file():
        raise InputError(str(data), "not a LogChunks folder (no labels.jsonl)")
    labels = _jsonl(data / "labels.jsonl")
    cats_path = data / "categories.jsonl"
    cats = _jsonl(cats_path) if cats_path.exists() else []
    return (labels[:limit] if limit else labels), cats


@dataclass
class LogchunksRun:
    tally: Counter[str] = field(default_factory=Counter)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[Example] = field(default_factory=list)
    shipped: list[Diagnosis] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    spent: float = 0.0
    wall: float = 0.0

    def figures(self) -> dict[str, float]:
        """The key figures (rates over labeled logs; category rates over logs with a category)."""
        t = self.tally
        n = t["logs"] or 1
        nc = t["cat_n"] or 1
        return {
            "logs": t["logs"],
            "excerpt_hit": t["excerpt_hit"] / n,
            "top_evidence": t["top_evidence"] / n,
            "baseline_last40": t["last40_excerpt"] / n,
            "baseline_first_match": t["first_match_top"] / n,
            "baseline_last_match": t["last_match_top"] / n,
            "category_n": t["cat_n"],
            "category_strict": t["cat_strict"] / nc,
            "category_lenient": t["cat_lenient"] / nc,
            "cimedic_s_per_log": self.spent / n,
        }


def evaluate(data: Path, *, limit: int = 0, jobs: int = 1, diagnose_fn: Diagnose = diagnose) -> LogchunksRun:
    """Diagnose every labeled log of a LogChunks folder and tally the figures."""
    labels, cats = load(data, limit)
    run = LogchunksRun()
    t0 = time.perf_counter()
    todo = [(i, lab) for i, lab in enumerate(labels) if lab.get("chunk_start_line") is not None]
    paths = [data / lab["log"] for _, lab in todo]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(diagnose_fn, paths, chunksize=4))
    else:
        results = [diagnose_fn(p) for p in paths]
    tally = run.tally
    for (i, lab), (took, diag_obj, sig_obj) in zip(todo, results, strict=True):
        diag = cast(Diagnosis, diag_obj)
        run.spent += took
        path = data / lab["log"]
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")
        lo, hi = chunk_in_newline_lines(text, lab["chunk_start_line"], lab["chunk_end_line"])
        tally["logs"] += 1
        for k, v in baselines(text.split("\n"), lo, hi).items():
            tally[k] += v
        ex = diag.excerpt
        ex_hit = (
            ex is not None
            and ex.end_line - ex.start_line < MAX_EXCERPT_LINES
            and ex.start_line <= hi
            and ex.end_line >= lo
        )
        top_hit = bool(diag.evidence) and lo <= diag.evidence[0].line <= hi
        tally["excerpt_hit"] += ex_hit
        tally["top_evidence"] += top_hit
        if i < len(cats):
            want = cats[i]
            run.examples.append(
                Example(
                    signals=cast(Signals, sig_obj),
                    category=want["category"],
                    alt=want.get("alt"),
                    group=str(want.get("repo") or lab.get("repo") or Path(lab["log"]).parent),
                )
            )
            run.shipped.append(diag)
            got = str(diag.category)
            tally["cat_strict"] += got == want["category"]
            tally["cat_lenient"] += got in (want["category"], want.get("alt"))
            tally["cat_n"] += 1
            run.confusion[(want["category"], got)] += 1
        if not (ex_hit and top_hit):
            top = diag.evidence[0] if diag.evidence else None
            run.misses.append(
                f"MISS {lab['log']} chunk={lo}-{hi} excerpt={ex and (ex.start_line, ex.end_line)} "
                f"top={top and top.line} {top and top.text[:100]!r}"
            )
    run.wall = time.perf_counter() - t0
    return run
