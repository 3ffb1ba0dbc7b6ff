"""Failure prediction on LRTS Jenkins PR builds: cimedic's model beside "same as the previous build".

Data: ../shared/data/lrts-build-history (github.com/lrtsuser/LRTS, artifact/evaluation/ml_data,
MIT): per project ``builds/<project>/{training,testing}_builds.csv``, LRTS's 75/25 split of its
builds in time. Per project the model is fitted on the training file and scored on the testing
file; the testing file's runs are predicted online (each from the runs that finished before it,
training runs included), with the model frozen.

Time order is checked, not assumed: LRTS split stage rows, so a few builds have stages in both
files (they are merged and count as test builds), and builds of the training file that were still
running when the first test build started are kept as history but not fitted on (their outcome
came after the cut). A project without a training file (Kafka in this snapshot) is split the same
way LRTS did: the first 75% of its builds by start time train, the rest test.

Baseline, measured in the same run: a build fails iff the previous finished build of the same PR
failed (else the previous finished build of the project); its AUC is that of a 0/1 score, and for
F1 a build with no history at all counts as predicted to fail. F1 is for failures; the model's
threshold is chosen on the training window's later part, never on the test file. Outcomes only:
cancelled builds are history but neither trained nor scored. A paired bootstrap (1,000 resamples
of the test builds, seed 0) gives how often the model's AUC beats the baseline's (p_beats). Ends
with one line of key=value figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

from cimedic.errors import InputError
from cimedic.tools.predict import FailurePredictor, PreviousResult, cut_at_share, lrts_frame, time_split

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lrts-build-history"
SEED = 0


def split(folder: Path) -> tuple[pd.DataFrame, np.ndarray, pd.Timestamp, str]:
    """All builds of a project, which of them are test builds, the cut time, and how it was split."""
    train_csv, test_csv = folder / "training_builds.csv", folder / "testing_builds.csv"
    if not train_csv.exists():
        runs = lrts_frame(test_csv)
        cut = cut_at_share(runs, 0.25)
        return runs, (runs["started_at"] >= cut).to_numpy(), cut, "no training file: first 75% by time"
    runs = lrts_frame([train_csv, test_csv])
    test_ids = set(lrts_frame(test_csv)["run_id"])
    test = runs["run_id"].isin(test_ids).to_numpy()
    cut = runs.loc[test, "started_at"].min()
    before = int((runs.loc[~test, "started_at"] >= cut).sum())
    shared = len(test_ids & set(lrts_frame(train_csv)["run_id"]))
    running = int((runs.loc[~test, "finished_at"] >= cut).sum())
    note = "time-ordered" if before == 0 else f"NOT time-ordered: {before} training builds start after the cut"
    return runs, test, cut, f"{note}; {shared} builds in both files; {running} still running at the cut"


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties counting half: roc_auc_score, fast enough to bootstrap."""
    ranks = rankdata(score)
    pos = float(y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def paired_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, rounds: int = 1000) -> float:
    """Share of resamples of the test builds in which ``a`` ranks better than ``b`` (ties: half)."""
    rng = np.random.default_rng(SEED)
    wins = total = 0.0
    for _ in range(rounds):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            total += 1
            da, db = auc(y[i], a[i]), auc(y[i], b[i])
            wins += 1.0 if da > db else 0.5 if da == db else 0.0
    return wins / total if total else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    folders = sorted(p for p in (args.data / "builds").glob("*") if (p / "testing_builds.csv").exists())
    if not folders:
        raise SystemExit(f"{args.data}: no builds/<project>/testing_builds.csv")
    rows = []
    for folder in folders:
        runs, test, cut, how = split(folder)
        try:
            model = FailurePredictor(seed=SEED).fit(runs, until=cut)
        except InputError as exc:
            print(f"{folder.name}: skipped, {exc.problem}")
            continue
        p = model.predict(runs)
        base = PreviousResult(model.config).predict(runs)
        y = runs["status"].map({"failure": 1.0, "success": 0.0}).to_numpy(dtype=float)
        learn, after = time_split(runs, cut)
        if (learn.to_numpy() & test).any() or not (after.to_numpy() == test).all():
            raise SystemExit(f"{folder.name}: the test builds are not all after the training builds")
        keep = test & ~np.isnan(y)
        yt, pt, bt = y[keep], p[keep], base[keep]
        if len(np.unique(yt)) < 2:
            print(f"{folder.name}: skipped, its test builds have a single outcome (AUC undefined)")
            continue
        rows.append(
            {
                "project": folder.name,
                "train": model.metrics["train_runs"],
                "test": int(keep.sum()),
                "fail_rate": yt.mean(),
                "model": model.metrics["chosen"],
                "auc": roc_auc_score(yt, pt),
                "base_auc": roc_auc_score(yt, bt),
                "p_beats": paired_bootstrap(yt, pt, bt),
                "f1": f1_score(yt, pt >= model.threshold),
                "base_f1": f1_score(yt, bt >= 0.5),
                "brier": brier_score_loss(yt, pt),
                "mean_p": pt.mean(),
            }
        )
        print(f"{folder.name}: {how}; cut {cut}; fitted on outcomes known by then")
        print(f"  validation AUC inside the training window: {model.metrics['validation_auc']}")
        top = model.explain(model.features_of(runs).loc[keep].iloc[-1], top=3)
        print(
            "  last test build, top features: "
            + ", ".join(f"{c.feature}={c.value:.3g} ({c.effect:+.3f} {c.unit})" for c in top)
        )
    if not rows:
        raise SystemExit("no project could be scored")
    table = pd.DataFrame(rows).set_index("project")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table)
    beaten = int((table["auc"] > table["base_auc"]).sum())
    print(
        f"auc={table['auc'].mean():.4f} baseline_auc={table['base_auc'].mean():.4f} "
        f"projects_beaten={beaten}/{len(table)} f1={table['f1'].mean():.4f} baseline_f1={table['base_f1'].mean():.4f} "
        f"brier={table['brier'].mean():.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
