"""Anomaly detectors against known injected anomalies on real CI duration series, next to a naive baseline.

Series: the build durations of the Jenkins PR builds of each LRTS project (training and testing files of
../shared/data/lrts-build-history/builds/<project>/ joined in time order; MIT, Apache projects
2020–2023) and of the OpenShift periodic e2e job in ../shared/data/ocp-ci-build-metadata (read in
place). Aborted and not-built runs are left out, as ``find_anomalies`` leaves out cancelled ones.

Injection (fixed seeds): *spike* trials multiply one run in a hundred (at least two, ≥10 runs apart,
none in the first 30) by ×2–×4; *shift* trials multiply every run from a random onset on by ×1.3–×1.5.
A spike counts as found when its run is flagged; a shift when any run in [onset−2, onset+5] is flagged
(the tolerance: a causal detector needs a few runs to tell a shift from noise, CUSUM's retrospective
onset estimate may land a run or two early). Flags in a shift's window count once (one event); flags in
the 30 runs after it are the shift seen again and count neither way; every other flag is a false
positive. The un-injected series have real anomalies of their own, so "precision" counts them as false
(a lower bound) and "precision_new" leaves out flags the detector also raises on the clean series.

Detectors: robust_z, cusum, stl, iforest alone (each on the duration series; the forest also sees the
test counts), "combined" = ``find_anomalies`` with all of them and de-duplication, and the naive
baseline: global mean ± 3σ of the whole series; ``--prophet`` adds the optional Prophet adapter. Ends
with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cimedic.tools.anomaly import find_anomalies
from cimedic.tools.anomaly.base import Detector
from cimedic.tools.anomaly.iforest import IsolationForestDetector
from cimedic.tools.anomaly.level_shift import CusumShift
from cimedic.tools.anomaly.orchestrate import EXCLUDED_STATUSES
from cimedic.tools.anomaly.robust import WINDOW, RobustZ
from cimedic.tools.anomaly.seasonal import STLSeasonal

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
STATUS = {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "failure", "ABORTED": "cancelled"}
STATUS_NOT_BUILT = "skipped"
SPIKE = (2.0, 4.0)
SHIFT = (1.3, 1.5)
EARLY, LATE = 2, 5
METRIC = "duration_s"


def lrts_frames(data: Path) -> list[pd.DataFrame]:
    """One runs frame per LRTS project: a PR build once (its test counts are the build's totals, repeated on
    every stage row of Kafka and Log4j builds, so they are taken once, not summed)."""
    frames = []
    for project_dir in sorted((data / "lrts-build-history" / "builds").iterdir()):
        parts = [pd.read_csv(f) for f in sorted(project_dir.glob("*_builds.csv"))]
        if not parts:
            continue
        rows = pd.concat(parts, ignore_index=True)
        builds = rows.groupby(["pr_name", "build_id"], as_index=False).agg(
            build_duration=("build_duration", "first"),
            build_timestamp=("build_timestamp", "first"),
            build_result=("build_result", "first"),
            passcount=("passcount", "first"),
            failcount=("failcount", "first"),
            skipcount=("skipcount", "first"),
        )
        frame = pd.DataFrame(
            {
                "project": project_dir.name,
                "job": "pr-build",
                "run_id": builds["pr_name"] + "#" + builds["build_id"].astype(str),
                "status": builds["build_result"].map(STATUS).fillna(STATUS_NOT_BUILT),
                "started_at": pd.to_datetime(builds["build_timestamp"], unit="s", utc=True),
                "duration_s": builds["build_duration"].astype(float),
                "tests_passed": builds["passcount"].astype(float),
                "tests_failed": builds["failcount"].astype(float),
                "tests_skipped": builds["skipcount"].astype(float),
            }
        )
        frames.append(frame)
    return frames


def ocp_frame(data: Path) -> pd.DataFrame | None:
    files = sorted((data / "ocp-ci-build-metadata").glob("*_builds.csv"))
    if not files:
        return None
    raw = pd.read_csv(files[0])
    return pd.DataFrame(
        {
            "project": "openshift",
            "job": files[0].name.removesuffix("_builds.csv"),
            "run_id": raw.iloc[:, 0].astype(str),
            "status": raw["result"].map(STATUS).fillna("unknown"),
            "started_at": pd.to_datetime(raw["start"], unit="s", utc=True),
            "duration_s": (raw["end"] - raw["start"]).astype(float),
        }
    )


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    kept = frame[~frame["status"].isin(EXCLUDED_STATUSES) & frame[METRIC].notna()]
    return kept.sort_values("started_at", kind="stable").reset_index(drop=True)


@dataclass
class Trial:
    frame: pd.DataFrame
    spikes: set[int] = field(default_factory=set)
    onset: int | None = None


def spike_trial(frame: pd.DataFrame, rng: np.random.Generator) -> Trial:
    n = len(frame)
    want = max(2, n // 100)
    chosen: list[int] = []
    for p in rng.permutation(np.arange(WINDOW, n)):
        if all(abs(int(p) - c) >= 10 for c in chosen):
            chosen.append(int(p))
        if len(chosen) == want:
            break
    values = frame[METRIC].to_numpy(dtype=float).copy()
    values[chosen] *= rng.uniform(*SPIKE, size=len(chosen))
    return Trial(frame.assign(**{METRIC: values}), spikes=set(chosen))


def shift_trial(frame: pd.DataFrame, rng: np.random.Generator) -> Trial:
    n = len(frame)
    onset = int(rng.integers(WINDOW + 10, n - 3 * WINDOW))
    values = frame[METRIC].to_numpy(dtype=float).copy()
    values[onset:] *= rng.uniform(*SHIFT)
    return Trial(frame.assign(**{METRIC: values}), onset=onset)


def baseline_flags(frame: pd.DataFrame) -> set[int]:
    x = frame[METRIC].to_numpy(dtype=float)
    return {int(i) for i in np.flatnonzero(np.abs(x - x.mean()) > 3 * x.std())}


def detector_flags(detector: Detector) -> Callable[[pd.DataFrame], set[int]]:
    def flags(frame: pd.DataFrame) -> set[int]:
        if not detector.suitable(frame, METRIC):
            return set()
        position = {r: i for i, r in enumerate(frame["run_id"])}
        return {position[a.run_id] for a in detector.detect(frame, [METRIC])}

    return flags


def combined_flags(frame: pd.DataFrame) -> set[int]:
    position = {r: i for i, r in enumerate(frame["run_id"])}
    return {position[a.run_id] for a in find_anomalies(frame, metrics=[METRIC])}


@dataclass
class Score:
    spikes: int = 0
    spikes_found: int = 0
    shifts: int = 0
    shifts_found: int = 0
    tp: int = 0
    fp: int = 0
    fp_new: int = 0
    clean_flags: int = 0
    clean_points: int = 0

    def add(self, trial: Trial, flags: set[int], clean: set[int]) -> None:
        matched: set[int] = set()
        ignored: set[int] = set()
        if trial.onset is None:
            self.spikes += len(trial.spikes)
            self.spikes_found += len(flags & trial.spikes)
            self.tp += len(flags & trial.spikes)
            matched = flags & trial.spikes
        else:
            self.shifts += 1
            window = set(range(trial.onset - EARLY, trial.onset + LATE + 1))
            matched = flags & window
            if matched:
                self.shifts_found += 1
                self.tp += 1
            ignored = set(range(trial.onset + LATE + 1, trial.onset + WINDOW + 1))
        false = flags - matched - ignored
        self.fp += len(false)
        self.fp_new += len(false - clean)

    def row(self) -> dict[str, float]:
        def ratio(a: float, b: float) -> float:
            return a / b if b else float("nan")

        return {
            "spike_recall": ratio(self.spikes_found, self.spikes),
            "shift_recall": ratio(self.shifts_found, self.shifts),
            "recall": ratio(self.spikes_found + self.shifts_found, self.spikes + self.shifts),
            "precision": ratio(self.tp, self.tp + self.fp),
            "precision_new": ratio(self.tp, self.tp + self.fp_new),
            "clean_flag_rate": ratio(self.clean_flags, self.clean_points),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT, help="the shared data folder (lrts-build-history, ocp-...)")
    ap.add_argument("--trials", type=int, default=10, help="spike trials and shift trials per series")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--prophet", action="store_true", help="also score the optional Prophet adapter (pip install prophet)"
    )
    args = ap.parse_args()
    series = [prepare(f) for f in lrts_frames(args.data)]
    ocp = ocp_frame(args.data)
    if ocp is not None:
        series.append(prepare(ocp))
    series = [s for s in series if len(s) >= 4 * WINDOW + 10]
    if not series:
        print(f"{args.data}: no series to inject into", file=sys.stderr)
        return 1
    methods: dict[str, Callable[[pd.DataFrame], set[int]]] = {
        "robust": detector_flags(RobustZ()),
        "cusum": detector_flags(CusumShift()),
        "stl": detector_flags(STLSeasonal()),
        "iforest": detector_flags(IsolationForestDetector()),
        "combined": combined_flags,
        "baseline": baseline_flags,
    }
    if args.prophet:
        from cimedic.tools.anomaly.prophet_adapter import ProphetSeasonal

        methods = {"prophet": detector_flags(ProphetSeasonal()), **methods}
    scores = {name: Score() for name in methods}
    per_series: dict[str, dict[str, Score]] = {}
    rng = np.random.default_rng(args.seed)
    for frame in series:
        label = f"{frame['project'].iloc[0]}/{frame['job'].iloc[0]}"[:40]
        print(f"{label}: {len(frame)} runs, median duration {frame[METRIC].median():.0f} s", flush=True)
        local = per_series[label] = {name: Score() for name in methods}
        clean = {name: flag(frame) for name, flag in methods.items()}
        for name, flagged in clean.items():
            for score in (scores[name], local[name]):
                score.clean_flags += len(flagged)
                score.clean_points += len(frame)
        trials = [spike_trial(frame, rng) for _ in range(args.trials)]
        trials += [shift_trial(frame, rng) for _ in range(args.trials)]
        for trial in trials:
            for name, flag in methods.items():
                flagged = flag(trial.frame)
                scores[name].add(trial, flagged, clean[name])
                local[name].add(trial, flagged, clean[name])
    print("\nrecall (spikes, shifts) and un-injected flag rate per series")
    print(f"{'series':<42}" + "".join(f"{name:>20}" for name in methods))
    for label, local in per_series.items():
        cells = [local[n].row() for n in methods]
        print(
            f"{label:<42}"
            + "".join(f"{c['spike_recall']:>7.2f}{c['shift_recall']:>6.2f}{c['clean_flag_rate']:>7.3f}" for c in cells)
        )
    print(
        f"\n{len(series)} series × {args.trials} spike + {args.trials} shift trials; shift tolerance "
        f"[onset−{EARLY}, onset+{LATE}] runs"
    )
    columns = ["spike_recall", "shift_recall", "recall", "precision", "precision_new", "clean_flag_rate"]
    print(f"{'detector':<10}" + "".join(f"{c:>16}" for c in columns))
    rows = {name: s.row() for name, s in scores.items()}
    for name, row in rows.items():
        print(f"{name:<10}" + "".join(f"{row[c]:>16.3f}" for c in columns))
    figures = []
    for name, row in rows.items():
        figures += [
            f"{name}_{c}={row[c]:.3f}" for c in ("precision", "precision_new", "recall", "spike_recall", "shift_recall")
        ]
        figures.append(f"{name}_fp_rate={row['clean_flag_rate']:.4f}")
    print(" ".join(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
