"""find_anomalies end to end on real LRTS PR-build histories (Kafka and Hive, MIT; tests/fixtures/anomaly)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cimedic.errors import InputError
from cimedic.tools.anomaly import Anomaly, find_anomalies
from cimedic.tools.anomaly.robust import RobustZ

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anomaly"


def load(name: str, *, keep_cancelled: bool = False) -> pd.DataFrame:
    runs = pd.read_csv(FIXTURES / f"lrts_{name}_runs.csv", parse_dates=["started_at"])
    return runs if keep_cancelled else runs[runs["status"] != "cancelled"].reset_index(drop=True)


def at_rows(runs: pd.DataFrame, anomalies: list[Anomaly], metric: str = "duration_s") -> dict[int, Anomaly]:
    position = {r: i for i, r in enumerate(runs["run_id"])}
    return {position[a.run_id]: a for a in anomalies if a.metric == metric}


def test_a_spike_and_a_slowdown_are_reported_once_each() -> None:
    runs = load("kafka")
    durations = runs["duration_s"].to_numpy().copy()
    durations[100] *= 3.0
    durations[150:] *= 1.45
    runs = runs.assign(duration_s=durations)
    found = at_rows(runs, find_anomalies(runs))
    assert found[100].kind == "spike"
    [(onset, shift)] = [(i, a) for i, a in found.items() if a.kind == "level-shift" and 140 <= i <= 160]
    assert 148 <= onset <= 155 and shift.observed / shift.expected == pytest.approx(1.45, abs=0.15)
    # The robust detector alone flags the new level run after run until its window has caught up; those
    # restate the shift and are folded into it.
    alone = at_rows(runs, RobustZ().detect(runs, ["duration_s"]))
    restating = [i for i in alone if onset < i <= onset + 30 and alone[i].score > 0]
    assert restating
    assert not any(i in found for i in restating)
    assert [a.at for a in find_anomalies(runs)] == sorted(a.at for a in find_anomalies(runs))


def test_cancelled_runs_and_failed_runs_that_stopped_early_are_not_duration_anomalies() -> None:
    runs = load("kafka", keep_cancelled=True)
    cancelled = int(runs.index[runs["status"] == "cancelled"][50])
    failed = int(runs.index[runs["status"] == "failure"][120])
    succeeded = int(runs.index[runs["status"] == "success"][15])
    runs.loc[cancelled, "duration_s"] *= 10
    runs.loc[[failed, succeeded], "duration_s"] /= 5
    found = at_rows(runs, find_anomalies(runs))
    assert cancelled not in found and failed not in found
    assert found[succeeded].kind == "spike" and found[succeeded].score < 0


def test_groups_stay_apart_and_labels_follow_them() -> None:
    kafka, hive = load("kafka"), load("hive")
    kafka.loc[100, "duration_s"] *= 3.0
    frame = pd.concat([hive, kafka], ignore_index=True)
    found = find_anomalies(frame)
    assert {(a.project, a.job) for a in found} <= {("kafka", "kafka"), ("hive", "hive")}
    hit = [a for a in found if a.run_id == kafka["run_id"][100]]
    assert hit and hit[0].project == "kafka" and hit[0].kind == "spike"
    # Each LRTS project is one job: grouping by project alone gives the same groups.
    assert find_anomalies(frame, per=("project",)) == found


def test_several_detectors_on_one_run_give_one_anomaly() -> None:
    runs = load("hive")
    runs.loc[350, "duration_s"] *= 4.0
    found = [a for a in find_anomalies(runs) if a.run_id == runs["run_id"][350]]
    assert len(found) == 1
    assert found[0].kind == "spike" and "stl" in found[0].confirmed_by


def test_reruns_of_one_run_id_are_separate_runs() -> None:
    runs = load("kafka")
    rerun = runs.iloc[[120]].assign(attempt=2, duration_s=runs["duration_s"][120] * 3.0)
    runs = pd.concat([runs.assign(attempt=1), rerun]).sort_values(["started_at", "attempt"], ignore_index=True)
    runs.loc[runs["attempt"] == 2, "started_at"] += pd.Timedelta(minutes=5)
    found = [a for a in find_anomalies(runs) if a.run_id == rerun["run_id"].iloc[0]]
    assert [(a.attempt, a.kind) for a in found] == [(2, "spike")]


def test_missing_columns_and_metrics_are_reported_or_skipped() -> None:
    runs = load("kafka")
    with pytest.raises(InputError, match=r"missing column.*started_at"):
        find_anomalies(runs.drop(columns=["started_at"]))
    # queue_s is not in LRTS: the default metrics still work (duration; the forest names test counts).
    assert "queue_s" not in runs.columns
    assert {a.metric for a in find_anomalies(runs)} <= {"duration_s", "tests_passed", "tests_failed", "tests_skipped"}
    # Naive timestamps are taken as UTC; the output is plain JSON.
    naive = runs.assign(started_at=runs["started_at"].dt.tz_localize(None))
    assert find_anomalies(naive) == find_anomalies(runs)
    json.loads(json.dumps([a.model_dump(mode="json") for a in find_anomalies(runs)]))
