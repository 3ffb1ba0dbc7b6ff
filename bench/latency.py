"""Cold-process latency of ``cimedic investigate`` on 10,000-line logs, retrieval included.

Data: ../shared/data/logchunks (Brandt et al., MSR 2020). For each of --logs real failed logs, a
10,000-line log is made by repeating the log's own head (build output before the failure) and
keeping its last 200 lines, so the failure stays at the end as in a real long build. An incident
memory is first filled with --incidents incidents learned from other logs of the same data, so
every investigation embeds its excerpt and searches the store. Each run is a new process
(``python -m cimedic``), as a user or a CI step would start it.

Baselines measured in the same run: ``grep -n -E 'error|fail'`` over the same file (the cost of
looking at all), and cimedic with retrieval off (CIMEDIC_SIMILAR_INCIDENTS=0). Target: p50 <= 3 s
with retrieval. Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "logchunks"
LINES = 10_000
TAIL = 200
CATEGORIES = ("test", "compile", "dependency", "lint", "infra", "config")


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")


def make_long(src: Path, dst: Path) -> None:
    lines = _text(src).split("\n")
    head, tail = lines[:-TAIL] or lines[:1], lines[-TAIL:]
    body: list[str] = []
    while len(body) + len(tail) < LINES:
        body.extend(head)
    dst.write_text("\n".join(body[: LINES - len(tail)] + tail), encoding="utf-8")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--logs", type=int, default=10, help="how many 10k-line logs to investigate")
    ap.add_argument("--incidents", type=int, default=20, help="incidents learned into the memory first")
    args = ap.parse_args()
    logs = sorted((args.data / "logs").rglob("*.log*")) if (args.data / "logs").is_dir() else []
    if len(logs) < args.logs + args.incidents:
        raise SystemExit(f"{args.data}: needs {args.logs + args.incidents} logs under logs/, found {len(logs)}")
    # Spread picks over the whole (sorted by language/repo) list rather than one repository.
    step = max(1, len(logs) // (args.logs + args.incidents))
    picked = logs[::step][: args.logs + args.incidents]
    learn_from, probe = picked[: args.incidents], picked[args.incidents :]
    work = Path(tempfile.mkdtemp(prefix="cimedic-latency-"))
    env = dict(os.environ, CIMEDIC_HOME=str(work / "home"), HF_HUB_OFFLINE="1")
    cimedic = [sys.executable, "-m", "cimedic"]
    t = time.perf_counter()
    for n, log in enumerate(learn_from):
        cmd = [*cimedic, "learn", str(log), "--category", CATEGORIES[n % len(CATEGORIES)]]
        subprocess.run(
            [*cmd, "--cause", f"bench incident {n}", "--fix", "n/a"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    learn_s = time.perf_counter() - t
    with_retrieval, without, grep = [], [], []
    for n, src in enumerate(probe):
        long_log = work / f"long-{n}.log"
        make_long(src, long_log)
        grep.append(timed(["grep", "-n", "-E", "error|fail", str(long_log)], env))
        with_retrieval.append(timed([*cimedic, "investigate", "--json", "--no-record", str(long_log)], env))
        without.append(
            timed(
                [*cimedic, "investigate", "--json", "--no-record", str(long_log)],
                dict(env, CIMEDIC_SIMILAR_INCIDENTS="0"),
            )
        )
    print(f"{'10k-line log, cold process':<40}{'p50 s':>8}{'p95 s':>8}")
    for name, values in (
        ("cimedic investigate (with retrieval)", with_retrieval),
        ("cimedic, retrieval off", without),
        ("baseline: grep -n -E 'error|fail'", grep),
    ):
        print(f"{name:<40}{statistics.median(values):>8.2f}{pct(values, 0.95):>8.2f}")
    print(
        f"logs={len(probe)} lines={LINES} incidents={len(learn_from)} "
        f"learn_s_per_incident={learn_s / len(learn_from):.2f} "
        f"p50_s={statistics.median(with_retrieval):.2f} p95_s={pct(with_retrieval, 0.95):.2f} "
        f"p50_no_retrieval_s={statistics.median(without):.2f} grep_p50_s={statistics.median(grep):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
