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
import os
import sys
import tempfile
from pathlib import Path

from cimedic.evals.logchunks import LogchunksRun, evaluate
from cimedic.models import Diagnosis
from cimedic.settings import get_settings
from cimedic.tools.cause.corpus import Example, from_knowledge
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


def rca_figures(data: Path, *, limit: int = 0, jobs: int = 1) -> LogchunksRun:
    """The excerpt / evidence / category tallies: cimedic.evals.logchunks, the one implementation."""
    return evaluate(data, limit=limit, jobs=jobs)


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
    run = rca_figures(args.data, limit=args.limit, jobs=args.jobs)
    if args.misses:
        print("\n".join(run.misses))
    f = run.figures()
    print(f"{'method':<34}{'excerpt_hit':>12}{'top_evidence':>14}")
    print(f"{'cimedic':<34}{f['excerpt_hit']:>12.3f}{f['top_evidence']:>14.3f}")
    print(f"{'baseline: last 40 lines':<34}{f['baseline_last40']:>12.3f}{'-':>14}")
    print(f"{'baseline: first error|fail line':<34}{'-':>12}{f['baseline_first_match']:>14.3f}")
    print(f"{'baseline: last error|fail line':<34}{'-':>12}{f['baseline_last_match']:>14.3f}")
    cat_figures = _categories(run.examples, run.shipped, args.folds) if run.examples else {}
    if run.tally["cat_n"] and args.misses:
        for (want, got), k in run.confusion.most_common(20):
            if want != got:
                print(f"  {want:>10} -> {got:<10} {k}")
    print(
        f"logs={f['logs']} excerpt_hit={f['excerpt_hit']:.3f} top_evidence={f['top_evidence']:.3f} "
        f"baseline_last40={f['baseline_last40']:.3f} baseline_first_match={f['baseline_first_match']:.3f} "
        f"baseline_last_match={f['baseline_last_match']:.3f} category_strict={f['category_strict']:.3f} "
        f"category_lenient={f['category_lenient']:.3f} "
        + "".join(f"{k}={v:.3f} " for k, v in cat_figures.items())
        + f"cimedic_s_per_log={f['cimedic_s_per_log']:.4f} wall_s={run.wall:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
