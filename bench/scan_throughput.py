"""Scan throughput on a large generated log: cimedic vs ``grep -n -i error`` on the same file.

The log is built from real CI logs (default: the LogChunks Travis logs in ../shared/data/logchunks,
Brandt et al., MSR 2020) concatenated until it reaches --size, so its line shapes and error density
are realistic; the last log appended is a failed build whose failure cimedic must still find.
Prints cimedic's wall time as a multiple of grep's, and cimedic's peak RSS.
Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "logchunks"
OUT = Path(__file__).resolve().parent / "out"


def build(data: Path, target: Path, size: int) -> None:
    logs = sorted((data / "logs").rglob("*.log.gz")) if (data / "logs").is_dir() else sorted(data.rglob("*.log*"))
    if not logs:
        raise SystemExit(f"{data}: no logs to build from")
    seeds = [(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()) for p in logs[:200]]
    seeds = [s if s.endswith(b"\n") else s + b"\n" for s in seeds]
    tmp = target.with_suffix(".part")
    written = 0
    with open(tmp, "wb") as fh:
        i = 0
        while written < size - len(seeds[-1]):
            chunk = seeds[i % (len(seeds) - 1)]
            fh.write(chunk)
            written += len(chunk)
            i += 1
        fh.write(seeds[-1])
    tmp.replace(target)


def timed(cmd: list[str], stdout_path: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit code of one child process."""
    with open(stdout_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT, help="folder of real logs to build the big log from")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", action="store_true", help="keep the generated log for the next run")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    big = OUT / f"big-{args.size_mb}mb.log"
    if not big.exists():
        t = time.perf_counter()
        build(args.data, big, args.size_mb * 1024 * 1024)
        print(f"built {big} in {time.perf_counter() - t:.1f}s")
    size = big.stat().st_size
    # Warm the page cache once so neither side pays for the first read.
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)
    grep_s, _, _ = timed(["grep", "-n", "-i", "error", str(big)], OUT / "grep.out")
    cimedic = [sys.executable, "-m", "cimedic", "investigate", "--json", str(big)]
    ours_s, rss_kib, code = timed(cimedic, OUT / "cimedic.json")
    print(f"{'method':<28}{'seconds':>10}{'MB/s':>10}{'peak RSS MB':>14}")
    print(f"{'grep -n -i error (baseline)':<28}{grep_s:>10.2f}{size / 1e6 / grep_s:>10.0f}{'-':>14}")
    print(f"{'cimedic investigate':<28}{ours_s:>10.2f}{size / 1e6 / ours_s:>10.0f}{rss_kib / 1024:>14.0f}")
    if code != 0:
        print(f"cimedic exited with {code}", file=sys.stderr)
    if not args.keep:
        big.unlink()
    print(
        f"size_mb={size / 2**20:.0f} grep_s={grep_s:.2f} cimedic_s={ours_s:.2f} ratio_vs_grep={ours_s / grep_s:.1f} "
        f"peak_rss_mb={rss_kib / 1024:.0f} exit={code}"
    )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
