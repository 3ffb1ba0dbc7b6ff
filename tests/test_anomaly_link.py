"""Likely causes linked to anomalies found in a real Kafka PR-build history (LRTS, MIT; tests/fixtures/anomaly).

LRTS records no runners or failure fingerprints, so the tests add those columns to the real runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cimedic.tools.anomaly import Anomaly, find_anomalies
from cimedic.tools.anomaly.link import first_seen, link_causes

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anomaly"
SPIKE = 180


def kafka_with_spike() -> pd.DataFrame:
    runs = pd.read_csv(FIXTURES / "lrts_kafka_runs.csv", parse_dates=["started_at"])
    runs = runs[runs["status"] != "cancelled"].reset_index(drop=True)
    runs.loc[SPIKE, "duration_s"] *= 3.0
    # The excerpt's test counts swing with the PR's modules; a steady count keeps the test-count signal
    # out of the runner and fingerprint tests.
    runs["tests_passed"] = 65000
    runs["tests_failed"] = 0
    runs["tests_skipped"] = 80
    return runs


def spike(anomalies: list[Anomaly], runs: pd.DataFrame) -> Anomaly:
    [hit] = [a for a in anomalies if a.run_id == runs["run_id"][SPIKE] and a.metric == "duration_s"]
    return hit


def test_a_run_on_an_unusual_runner_names_the_runner_change() -> None:
    runs = kafka_with_spike()
    runs["runner"] = "builds-ubuntu-a"
    runs.loc[SPIKE, "runner"] = "builds-windows-2"
    causes = spike(find_anomalies(runs), runs).likely_causes
    assert any(
        "runner changed: builds-windows-2" in c and "builds-ubuntu-a ran 10 of the previous 10" in c for c in causes
    )


def test_a_pool_where_every_run_lands_elsewhere_names_no_runner() -> None:
    runs = kafka_with_spike()
    runs["runner"] = [f"pool-{i % 7}" for i in range(len(runs))]
    assert not any("runner" in c for c in spike(find_anomalies(runs), runs).likely_causes)


def test_a_fingerprint_first_seen_just_before_is_named_and_an_old_one_is_not() -> None:
    runs = kafka_with_spike()
    runs["fingerprint"] = None
    runs.loc[SPIKE - 1, "fingerprint"] = "fp-new-timeout"
    runs.loc[[40, SPIKE], "fingerprint"] = "fp-old-npe"
    causes = spike(find_anomalies(runs), runs).likely_causes
    assert any(c.startswith("new failure fingerprint fp-new-timeout") for c in causes)
    assert not any("fp-old-npe" in c for c in causes)


def test_a_fingerprint_first_seen_in_another_job_is_not_new() -> None:
    runs = kafka_with_spike()
    runs["fingerprint"] = None
    runs.loc[SPIKE, "fingerprint"] = "fp-shared"
    other = runs.iloc[:5].assign(job="nightly", run_id=lambda f: "n" + f["run_id"], fingerprint="fp-shared")
    frame = pd.concat([runs, other], ignore_index=True)
    assert not any("fp-shared" in c for c in spike(find_anomalies(frame), runs).likely_causes)


def test_test_count_jump_and_new_failures() -> None:
    runs = kafka_with_spike()
    runs.loc[SPIKE, ["tests_passed", "tests_failed"]] = [80000, 12]
    causes = spike(find_anomalies(runs), runs).likely_causes
    assert any(c.startswith("test count jumped: 65,080 usually, 80,092 in this run (+23%)") for c in causes)
    assert any(c == "12 tests failed; none failed in the previous 10 runs" for c in causes)


def test_link_causes_leaves_runs_it_cannot_place_alone() -> None:
    runs = kafka_with_spike()
    stray = spike(find_anomalies(runs), runs).model_copy(update={"run_id": "not-in-this-group", "likely_causes": []})
    assert link_causes(runs, [stray], first_seen(runs)) == [stray]
