"""Guarded self-healing on replayed real failures: cimedic's learned retry policy beside "never" and "always 3x".

Data (read in place under ``--data``, default ../shared/data):

- ``lrts-build-history`` (github.com/lrtsuser/LRTS, artifact/evaluation/ml_data, MIT): Jenkins PR
  builds of 5 Apache projects, 2020-2023, read with ``cimedic.tools.predict.lrts_frame`` (one run
  per build; SUCCESS passes, FAILURE/UNSTABLE fail, ABORTED/NOT_BUILT are no outcome and skipped).
  The builds of a PR on one head commit are reruns without a code change. A failed build that is not
  preceded on its commit by a failed build opens an *episode*; the episode's retries are the later
  builds on the same commit up to and including the first pass. Label: **transient** if one of them
  passed, **real** if at least one rebuild ran and all failed (green needed a new commit, or never
  came). A failure never rebuilt on its commit has no observed retry outcome and is left out (the
  count is printed): the sample is the failures somebody chose to rerun. Retry pass probability of a
  transient failure: per project, transient episodes / rebuilds inside them (each rebuild a trial,
  the chain stops at the first pass: the geometric maximum-likelihood rate); real failures: 0. One
  retry costs the failed build's own duration (build_duration, seconds). Fingerprint: the project's
  PR job (``lrts:<project>``); category ``lrts-build``.
- ``flaky-reruns`` (Lam, Winter, Stodden et al., ISSRE 2020; github.com/TestingResearchIllinois/
  rerunning-no-tests, no license file): Java tests each run 4,000 times in isolation on 40 VMs
  (``isolation_per_run.csv.gz``). The stream is the tests' real runs in the order (run_num,
  machine), i.e. round by round over the 40 machines, cut to the first ``--runs-per-test`` runs of
  each test; each failure/error run is an event. A test with any pass in its 4,000 runs is flaky:
  its failures are transient and a retry passes with the test's observed pass rate over all 4,000
  runs (isolated runs taken as independent draws). A test that never passed is a real failure:
  one event, since after the human fix its later runs would pass. One retry costs that run's
  time_s (the failed test rerun on its own, as Surefire's rerunFailingTestsCount does).
  Fingerprint ``test:<name>``; category ``isolated-test``.

Not used: ``ocp-ci-build-metadata`` (one periodic job with no commit per run, so a failure followed
by a pass cannot be told apart from a fix landing in the payload).

Simulator: per failure event, a policy retries (at most ``--max-retries``) or hands it to humans.
A retry costs its run's duration in CI minutes and passes with the event's probability (one uniform
draw per event and attempt, shared by all policies within a seed). MTTR = the retries' durations,
plus ``--human-minutes`` if the failure reaches a human. Human response time (assumed, printed):
by default the pooled median, over LRTS failed builds followed by another build of the same PR,
of the time from the failed build's end to the next build's start (the first human action the data
shows: a rerun or a new push); negative gaps (next build started before this one ended) excluded.

Policies, measured in the same run on the same events and draws: "never retry"; "always retry 3x"
(retry until a pass, at most 3 times); cimedic: before the k-th retry of a failure,
``choose([RETRY], posteriors, f"{fingerprint}#{k}", f"{category}#{k}", rng, floor)`` with ``floor``
the break-even chance (retry minutes / human minutes: a retry pays when its chance to pass times
the human wait it saves beats its own cost), learned per retry number because a failure that
survived one retry is less often transient; ``posteriors.learn`` from each outcome; at most 3
attempts; otherwise (or still failing) humans.
Also printed, as a reference ceiling and not a baseline: "oracle", which knows the labels and
retries only transient failures (at most 3 times). Posteriors start empty and learn online, event
by event in time order (the two sources interleaved by relative position, so ``--limit`` cuts
both). Figures are means over ``--seeds`` seeds from ``--seed``. Target: cimedic's retry minutes
< always-retry's AND cimedic's MTTR < never-retry's, on all events (the target) and per source
(printed, so that one source cannot hide the other). Ends with one key=value line.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cimedic.heal.learning import Posteriors, choose
from cimedic.models import ActionKind
from cimedic.tools.predict import lrts_frame

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
LRTS = "lrts-build-history"
RERUNS = "flaky-reruns"
POLICIES = ("never", "always3", "cimedic", "oracle")  # oracle: a reference ceiling, not a baseline


@dataclass
class Events:
    source: np.ndarray  # category per event
    fingerprint: np.ndarray
    transient: np.ndarray  # bool
    p_pass: np.ndarray  # chance that one retry passes (0 for real failures)
    minutes: np.ndarray  # one retry's duration
    order: np.ndarray  # position in the merged stream

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Events:
        return cls(*(frame[c].to_numpy() for c in ("source", "fingerprint", "transient", "p_pass", "minutes", "order")))


def lrts_project(folder: Path) -> tuple[pd.DataFrame, dict[str, float], pd.Series]:
    """Episodes of one LRTS project, its figures, and its human gaps (minutes)."""
    runs = lrts_frame(sorted(folder.glob("*_builds.csv")))
    runs = runs[runs["status"].isin(["success", "failure"])].reset_index(drop=True)
    rows = []
    for _, g in runs.groupby(["pull_request", "commit"], sort=False):
        status = g["status"].tolist()
        i = 0
        while i < len(status):
            if status[i] == "failure" and (i == 0 or status[i - 1] != "failure"):
                j = i + 1
                while j < len(status) and status[j] != "success":
                    j += 1
                rebuilds = min(j, len(status) - 1) - i
                rows.append(
                    {
                        "t": g["started_at"].iloc[i],
                        "minutes": float(g["duration_s"].iloc[i]) / 60.0,
                        "rebuilds": rebuilds,
                        "transient": j < len(status),
                    }
                )
                i = j
            i += 1
    ep = pd.DataFrame(rows, columns=["t", "minutes", "rebuilds", "transient"])
    observed = ep[ep["rebuilds"] > 0].sort_values("t").reset_index(drop=True)
    trans = observed[observed["transient"]]
    trials = int(trans["rebuilds"].sum())
    p = len(trans) / trials if trials else 0.0
    project = folder.name
    events = observed.assign(
        source="lrts-build",
        fingerprint=f"lrts:{project}",
        p_pass=np.where(observed["transient"], p, 0.0),
    )
    nxt = runs.groupby("pull_request")["started_at"].shift(-1)
    gap = ((nxt - runs["finished_at"]).dt.total_seconds() / 60.0)[(runs["status"] == "failure") & nxt.notna()]
    stats = {
        "failures": len(ep),
        "unobserved": int((ep["rebuilds"] == 0).sum()),
        "transient": len(trans),
        "real": len(observed) - len(trans),
        "p_pass": p,
        "trials": trials,
        "median_min": float(observed["minutes"].median()) if len(observed) else float("nan"),
    }
    return events, stats, gap[gap >= 0]


def load_lrts(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    parts, stats, gaps = [], {}, []
    for project in sorted(p for p in (folder / "builds").glob("*") if p.is_dir()):
        events, s, gap = lrts_project(project)
        parts.append(events)
        stats[project.name] = s
        gaps.append(gap)
    events = pd.concat(parts, ignore_index=True).sort_values("t", kind="stable").reset_index(drop=True)
    return events, pd.DataFrame(stats).T, float(pd.concat(gaps).median())


def load_reruns(folder: Path, runs_per_test: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.read_csv(
        folder / "isolation_per_run.csv.gz", usecols=["test_name", "run_num", "result", "time_s", "machine_id"]
    )
    runs["fail"] = runs["result"] != "pass"
    p = 1.0 - runs.groupby("test_name")["fail"].mean()
    runs = runs.sort_values(["test_name", "run_num", "machine_id"], kind="stable")
    runs["i"] = runs.groupby("test_name").cumcount()
    stream = runs[runs["i"] < runs_per_test]
    fails = stream[stream["fail"]].copy()
    fails["p_pass"] = fails["test_name"].map(p)
    fails["transient"] = fails["p_pass"] > 0
    # A test that never passes is a real failure: one event, fixed by the human who gets it.
    fails = fails[fails["transient"] | (fails.groupby("test_name").cumcount() == 0)]
    events = fails.sort_values(["i", "test_name"]).reset_index(drop=True)
    events = events.assign(
        source="isolated-test", fingerprint="test:" + events["test_name"], minutes=events["time_s"] / 60.0
    )
    stats = pd.DataFrame(
        {
            "tests": [p.size],
            "flaky": [int(((p > 0) & (p < 1)).sum())],
            "never_pass": [int((p == 0).sum())],
            "events": [len(events)],
            "transient": [int(events["transient"].sum())],
        }
    )
    return events, stats


def simulate(
    policy: str, ev: Events, u: np.ndarray, human: float, k: int, rng: np.random.Generator, floor: float
) -> dict[str, np.ndarray]:
    n = len(ev.transient)
    minutes = np.zeros(n)
    mttr = np.zeros(n)
    fixed = np.zeros(n, dtype=bool)
    retries = np.zeros(n, dtype=int)
    posteriors = Posteriors()
    for i in range(n):
        d, fp, cat = float(ev.minutes[i]), str(ev.fingerprint[i]), str(ev.source[i])
        p = float(ev.p_pass[i]) if ev.transient[i] else 0.0
        tries = 0 if policy == "never" or (policy == "oracle" and not ev.transient[i]) else k
        for a in range(tries):
            # Learned per retry number: after a failed retry, another one passes far less often.
            fp_a, cat_a = f"{fp}#{a}", f"{cat}#{a}"
            # A retry pays when its chance to pass times the human wait it saves beats its own minutes.
            worth = max(floor, d / human)
            if policy == "cimedic" and choose([ActionKind.RETRY], posteriors, fp_a, cat_a, rng, worth) is None:
                break
            retries[i] += 1
            minutes[i] += d
            passed = bool(u[i, a] < p)
            if policy == "cimedic":
                posteriors.learn(ActionKind.RETRY, fp_a, cat_a, passed)
            if passed:
                fixed[i] = True
                break
        mttr[i] = minutes[i] + (0.0 if fixed[i] else human)
    return {"minutes": minutes, "mttr": mttr, "fixed": fixed, "retries": retries}


def summary(runs: list[dict[str, np.ndarray]], mask: np.ndarray) -> dict[str, float]:
    def avg(f: str, how: str) -> float:
        return float(np.mean([getattr(r[f][mask], how)() for r in runs]))

    return {
        "minutes": avg("minutes", "sum"),
        "mttr": avg("mttr", "mean"),
        "humans": float(np.mean([(~r["fixed"][mask]).sum() for r in runs])),
        "fixed": avg("fixed", "sum"),
        "retries": avg("retries", "sum"),
    }


def table(title: str, rows: dict[str, dict[str, float]], n: int, transient: int) -> None:
    print(f"\n{title}: {n} failures, {transient} transient")
    heads = ("CI min on retries", "retries", "mean MTTR min", "to humans", "flaky fixed auto")
    widths = (17, 8, 13, 9, 16)
    print(f"  {'policy':<9} | " + " | ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for name, r in rows.items():
        print(
            f"  {name:<9} | {r['minutes']:>17,.0f} | {r['retries']:>8,.1f} | {r['mttr']:>13,.1f} | "
            f"{r['humans']:>9,.1f} | {r['fixed']:>10,.1f} / {transient}"
        )


def check(rows: dict[str, dict[str, float]], label: str) -> bool:
    """Print and return: cimedic spends fewer retry minutes than always3 AND has a lower MTTR than never."""
    c, a, nv = rows["cimedic"], rows["always3"], rows["never"]
    cheaper, faster = c["minutes"] < a["minutes"], c["mttr"] < nv["mttr"]
    print(
        f"  {label}: cimedic minutes {c['minutes']:,.1f} < always3 {a['minutes']:,.1f} ({'yes' if cheaper else 'no'}) "
        f"AND cimedic MTTR {c['mttr']:,.1f} < never {nv['mttr']:,.1f} ({'yes' if faster else 'no'}): "
        f"{'MET' if cheaper and faster else 'NOT MET'}"
    )
    return cheaper and faster


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT, help="folder holding lrts-build-history/ and flaky-reruns/")
    ap.add_argument("--sources", default="lrts,reruns", help="comma list of lrts, reruns (default both)")
    ap.add_argument("--runs-per-test", type=int, default=400, help="flaky-reruns: first N runs of each test (of 4,000)")
    ap.add_argument("--human-minutes", type=float, default=None, help="human response time; default: LRTS median gap")
    ap.add_argument("--max-retries", type=int, default=3, help="retries per failure for always-retry and cimedic")
    ap.add_argument(
        "--floor", type=float, default=0.0, help="least Thompson draw worth a retry, on top of the break-even"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds from --seed, averaged")
    ap.add_argument("--limit", type=int, default=None, help="first N events of the merged stream")
    args = ap.parse_args()
    sources = {s.strip() for s in args.sources.split(",") if s.strip()}
    if not sources <= {"lrts", "reruns"} or not sources:
        print(f"--sources: {args.sources!r}: use lrts, reruns or both", file=sys.stderr)
        return 2
    lrts_dir, reruns_dir = args.data / LRTS, args.data / RERUNS
    if not (lrts_dir / "builds").is_dir() or (
        "reruns" in sources and not (reruns_dir / "isolation_per_run.csv.gz").exists()
    ):
        print(f"no data at {args.data} (need {LRTS}/builds and {RERUNS}/isolation_per_run.csv.gz)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    lrts_events, lrts_stats, gap = load_lrts(lrts_dir)
    human = gap if args.human_minutes is None else args.human_minutes
    parts = []
    if "lrts" in sources:
        parts.append(lrts_events.assign(order=np.arange(len(lrts_events)) / max(len(lrts_events), 1)))
        print("LRTS PR builds: episodes opened by a failed build; transient = a rebuild on the same commit passed")
        shown = lrts_stats.astype({c: int for c in lrts_stats.columns if c not in ("p_pass", "median_min")})
        with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
            print(shown.to_string())
        print(
            "  (p_pass = transient episodes / rebuilds inside them; unobserved = never rebuilt on the commit, left out)"
        )
    if "reruns" in sources:
        rr, rstats = load_reruns(reruns_dir, args.runs_per_test)
        parts.append(rr.assign(order=np.arange(len(rr)) / max(len(rr), 1)))
        s = rstats.iloc[0]
        print(
            f"flaky-reruns: {s['tests']} tests ({s['flaky']} flaky, {s['never_pass']} never pass); first "
            f"{args.runs_per_test} runs each: {s['events']} failures, {s['transient']} transient"
        )
    cols = ["source", "fingerprint", "transient", "p_pass", "minutes", "order"]
    merged = pd.concat([p[cols] for p in parts], ignore_index=True).sort_values("order", kind="stable")
    if args.limit is not None:
        merged = merged.head(args.limit)
    merged = merged.reset_index(drop=True)
    ev = Events.of(merged)
    n, k = len(merged), args.max_retries
    seeds = list(range(args.seed, args.seed + args.seeds))
    print(
        f"\nassumptions: human response {human:.1f} min"
        + (" (LRTS pooled median: failed build end -> next build of the PR)" if args.human_minutes is None else "")
        + f"; retries <= {k}; choose() floor {args.floor}; seeds {seeds[0]}..{seeds[-1]}; {n} events"
    )
    results: dict[str, list[dict[str, np.ndarray]]] = {p: [] for p in POLICIES}
    for seed in seeds:
        u = np.random.default_rng([seed, 1]).random((n, max(k, 1)))
        for policy in POLICIES:
            rng = np.random.default_rng([seed, 2])
            results[policy].append(simulate(policy, ev, u, human, k, rng, args.floor))
    transient = ev.transient.astype(bool)
    everything = np.ones(n, dtype=bool)
    overall = {p: summary(results[p], everything) for p in POLICIES}
    table("all sources", overall, n, int(transient.sum()))
    per_source: dict[str, bool] = {}
    for source in sorted(set(ev.source)):
        mask = ev.source == source
        rows = {p: summary(results[p], mask) for p in POLICIES}
        table(source, rows, int(mask.sum()), int(transient[mask].sum()))
        per_source[source] = check(rows, f"{source} alone")
    real = ~transient
    wasted = {p: float(np.mean([r["minutes"][real].sum() for r in results[p]])) for p in POLICIES}
    print(
        f"\nCI minutes spent retrying real failures: always3 {wasted['always3']:,.0f}, cimedic {wasted['cimedic']:,.0f}"
    )
    spread_min = [float(r["minutes"].sum()) for r in results["cimedic"]]
    spread_mttr = [float(r["mttr"].mean()) for r in results["cimedic"]]
    print(
        f"cimedic across the {len(seeds)} seeds: minutes {min(spread_min):,.0f}..{max(spread_min):,.0f}, "
        f"MTTR {min(spread_mttr):,.1f}..{max(spread_mttr):,.1f}"
    )
    c, a, nv = overall["cimedic"], overall["always3"], overall["never"]
    met = check(overall, "TARGET (all events)")
    print(f"({time.perf_counter() - started:.1f} s)")
    figures = {
        "events": n,
        "transient": int(transient.sum()),
        "human_minutes": round(human, 1),
        "minutes_cimedic": round(c["minutes"]),
        "minutes_always3": round(a["minutes"]),
        "mttr_cimedic": round(c["mttr"], 1),
        "mttr_always3": round(a["mttr"], 1),
        "mttr_never": round(nv["mttr"], 1),
        "humans_cimedic": round(c["humans"], 1),
        "humans_always3": round(a["humans"], 1),
        "humans_never": round(nv["humans"], 1),
        "fixed_cimedic": round(c["fixed"], 1),
        "fixed_always3": round(a["fixed"], 1),
        "mttr_oracle": round(overall["oracle"]["mttr"], 1),
        "target_met": int(met),
    }
    figures.update({f"met_{source.split('-')[0]}": int(ok) for source, ok in per_source.items()})
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
