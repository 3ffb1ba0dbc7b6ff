"""Batch throughput: ``cimedic investigate --jsonl`` over every log of a LogChunks-layout folder.

Data: ../shared/data/logchunks (Brandt et al., MSR 2020). Baseline in the same run: ``zcat`` of
the same files (the cost of merely reading them). Target: the 397 dev logs in under 2 minutes on
2 cores. Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "logchunks"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (0: one per core)")
    args = ap.parse_args()
    logs = sorted(str(p) for p in (args.data / "logs").rglob("*.log*")) if (args.data / "logs").is_dir() else []
    if not logs:
        raise SystemExit(f"{args.data}: no logs under logs/")
    t = time.perf_counter()
    subprocess.run(["zcat", "-f", *logs], stdout=subprocess.DEVNULL, check=True)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cimedic", "investigate", "--jsonl", "-j", str(args.jobs), *logs],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    errors = sum(1 for r in rows if "error" in r)
    in_order = [r.get("source", {}).get("path", r.get("input")) for r in rows] == logs
    print(f"{'method':<32}{'seconds':>10}{'logs/s':>10}")
    print(f"{'zcat (read only, baseline)':<32}{read_s:>10.2f}{len(logs) / read_s:>10.0f}")
    print(f"{'cimedic investigate --jsonl':<32}{wall:>10.2f}{len(logs) / wall:>10.1f}")
    print(
        f"logs={len(logs)} rows={len(rows)} errors={errors} in_order={in_order} jobs={args.jobs or os.cpu_count()} "
        f"zcat_s={read_s:.2f} cimedic_s={wall:.2f} exit={proc.returncode}"
    )
    return 0 if len(rows) == len(logs) and in_order else 1


if __name__ == "__main__":
    sys.exit(main())
