"""RCA accuracy on the LogChunks layout, cimedic beside simple baselines measured in the same run.

Data: ../shared/data/logchunks (Brandt et al., "LogChunks: A Data Set for Build Log Analysis",
MSR 2020; github.com/lacinoire/master-thesis). Layout: labels.jsonl + categories.jsonl + logs/.

LogChunks numbers its lines over a split on ``\\r\\n|\\r|\\n``; cimedic reports lines of the file
split on ``\\n``. The labeled chunk is converted to ``\\n`` lines by character offset, so both sides
are compared in the same numbering.

Figures: excerpt hit (excerpt <= 40 lines and overlaps the chunk), top evidence (first evidence
line inside the chunk), and category accuracy / macro-F1 (strict; lenient also accepts ``alt`` of
low-confidence labels) for: cimedic as shipped (rules + the shipped classifier, which never saw
this data), the rules alone, the classifier trained on this data cross-validated by repository
(never scored on a repository it trained on) mixed with the rules, and the majority class.
Reliability: accuracy per confidence bucket. Runs with an empty CIMEDIC_HOME unless --home is
given, so no local incident memory or user model changes the figures. Ends with one line of
key=value figures.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import cast

from cimedic.investigate import analyse_path
from cimedic.models import Diagnosis
from cimedic.settings import get_settings
from cimedic.tools.cause.corpus import Example, from_knowledge
from cimedic.tools.cause.features import Signals
from cimedic.tools.cause.train import (
    decision,
    expected_calibration_error,
    grouped_cv,
    majority,
    reliability,
    score,
)
from cimedic.tools.knowledge_base import load as load_kb

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "logchunks"
ERRORISH = re.compile(r"error|fail", re.IGNORECASE)


def chunk_in_newline_lines(text: str, start: int, end: int) -> tuple[int, int]:
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


def _diagnose(path: Path) -> tuple[float, object, object]:
    t = time.perf_counter()
    diag, signals = analyse_path(path, record=False)
    return time.perf_counter() - t, diag, signals


def _categories(examples: list[Example], shipped: list[Diagnosis], folds: int) -> dict[str, float]:
    """Category figures of each method, printed as a table; returns the key=value figures."""
    kb = from_knowledge(load_kb(get_settings().knowledge_search_dirs))
    held_out = grouped_cv(examples, kb, folds=folds)
    cv = [decision(e.signals, p or None) for e, p in zip(examples, held_out, strict=True)]
    rules = [decision(e.signals, None) for e in examples]
    methods = {
        "cimedic (shipped model)": ([str(d.category) for d in shipped], [d.confidence for d in shipped]),
        "rules + classifier CV by repo": ([str(d.category) for d in cv], [d.confidence for d in cv]),
        "rules alone": ([str(d.category) for d in rules], [d.confidence for d in rules]),
        "baseline: majority class": (majority(examples), [1.0] * len(examples)),
    }
    print(f"\n{'category':<34}{'accuracy':>10}{'lenient':>10}{'macro-F1':>10}{'ECE':>8}")
    figures: dict[str, float] = {}
    for name, (pred, conf) in methods.items():
        sc = score(examples, pred)
        correct = [p == str(e.category) for p, e in zip(pred, examples, strict=True)]
        ece = expected_calibration_error(conf, correct)
        print(f"{name:<34}{sc.accuracy:>10.3f}{sc.lenient:>10.3f}{sc.macro_f1:>10.3f}{ece:>8.3f}")
        key = {"cimedic (shipped model)": "shipped", "rules + classifier CV by repo": "cv", "rules alone": "rules"}.get(
            name, "majority"
        )
        figures |= {f"{key}_accuracy": sc.accuracy, f"{key}_macro_f1": sc.macro_f1, f"{key}_ece": ece}
    for name, (pred, conf) in list(methods.items())[:2]:
        correct = [p == str(e.category) for p, e in zip(pred, examples, strict=True)]
        print(
            f"reliability, {name}: "
            + "  ".join(
                f"[{r['low']:.2f},{r['high']:.2f}) n={r['n']:.0f} "
                f"conf={r['mean_confidence']:.2f} acc={r['accuracy']:.2f}"
                for r in reliability(conf, correct)
            )
        )
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=0, help="only the first N logs")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for cimedic")
    ap.add_argument("--misses", action="store_true", help="print the logs cimedic misses")
    ap.add_argument("--folds", type=int, default=10, help="cross-validation folds (split by repository)")
    ap.add_argument("--home", type=Path, help="use this CIMEDIC_HOME (default: a fresh empty one)")
    args = ap.parse_args()
    os.environ["CIMEDIC_HOME"] = str(args.home or tempfile.mkdtemp(prefix="cimedic-bench-"))
    get_settings.cache_clear()
    labels = [json.loads(x) for x in (args.data / "labels.jsonl").read_text().splitlines() if x.strip()]
    cats_path = args.data / "categories.jsonl"
    cats = [json.loads(x) for x in cats_path.read_text().splitlines() if x.strip()] if cats_path.exists() else []
    if args.limit:
        labels = labels[: args.limit]
    tally: Counter[str] = Counter()
    t0 = time.perf_counter()
    spent = 0.0
    confusion: Counter[tuple[str, str]] = Counter()
    todo = [(i, lab) for i, lab in enumerate(labels) if lab.get("chunk_start_line") is not None]
    paths = [args.data / lab["log"] for _, lab in todo]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_diagnose, paths, chunksize=4))
    else:
        results = [_diagnose(p) for p in paths]
    examples: list[Example] = []
    shipped: list[Diagnosis] = []
    for (i, lab), (took, diag_obj, sig_obj) in zip(todo, results, strict=True):
        diag = cast(Diagnosis, diag_obj)
        spent += took
        path = args.data / lab["log"]
        text = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        lo, hi = chunk_in_newline_lines(text, lab["chunk_start_line"], lab["chunk_end_line"])
        tally["logs"] += 1
        for k, v in baselines(text.split("\n"), lo, hi).items():
            tally[k] += v
        ex = diag.excerpt
        ex_hit = ex is not None and ex.end_line - ex.start_line < 40 and ex.start_line <= hi and ex.end_line >= lo
        top_hit = bool(diag.evidence) and lo <= diag.evidence[0].line <= hi
        tally["excerpt_hit"] += ex_hit
        tally["top_evidence"] += top_hit
        if i < len(cats):
            want = cats[i]
            examples.append(
                Example(
                    signals=cast(Signals, sig_obj),
                    category=want["category"],
                    alt=want.get("alt"),
                    group=str(want.get("repo") or lab.get("repo") or Path(lab["log"]).parent),
                )
            )
            shipped.append(diag)
            got = str(diag.category)
            tally["cat_strict"] += got == want["category"]
            tally["cat_lenient"] += got in (want["category"], want.get("alt"))
            tally["cat_n"] += 1
            confusion[(want["category"], got)] += 1
        if args.misses and not (ex_hit and top_hit):
            top = diag.evidence[0] if diag.evidence else None
            print(
                f"MISS {lab['log']} chunk={lo}-{hi} excerpt={ex and (ex.start_line, ex.end_line)} "
                f"top={top and top.line} {top and top.text[:100]!r}"
            )
    n = tally["logs"] or 1
    nc = tally["cat_n"] or 1
    wall = time.perf_counter() - t0
    print(f"{'method':<34}{'excerpt_hit':>12}{'top_evidence':>14}")
    print(f"{'cimedic':<34}{tally['excerpt_hit'] / n:>12.3f}{tally['top_evidence'] / n:>14.3f}")
    print(f"{'baseline: last 40 lines':<34}{tally['last40_excerpt'] / n:>12.3f}{'-':>14}")
    print(f"{'baseline: first error|fail line':<34}{'-':>12}{tally['first_match_top'] / n:>14.3f}")
    print(f"{'baseline: last error|fail line':<34}{'-':>12}{tally['last_match_top'] / n:>14.3f}")
    cat_figures = _categories(examples, shipped, args.folds) if examples else {}
    if tally["cat_n"] and args.misses:
        for (want, got), k in confusion.most_common(20):
            if want != got:
                print(f"  {want:>10} -> {got:<10} {k}")
    print(
        f"logs={tally['logs']} excerpt_hit={tally['excerpt_hit'] / n:.3f} top_evidence={tally['top_evidence'] / n:.3f} "
        f"baseline_last40={tally['last40_excerpt'] / n:.3f} baseline_first_match={tally['first_match_top'] / n:.3f} "
        f"baseline_last_match={tally['last_match_top'] / n:.3f} category_strict={tally['cat_strict'] / nc:.3f} "
        f"category_lenient={tally['cat_lenient'] / nc:.3f} "
        + "".join(f"{k}={v:.3f} " for k, v in cat_figures.items())
        + f"cimedic_s_per_log={spent / n:.4f} wall_s={wall:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
