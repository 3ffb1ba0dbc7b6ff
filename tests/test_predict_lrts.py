"""The LRTS adapter maps real LRTS build rows (tests/fixtures/lrts, MIT) onto the runs frame."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from cimedic.errors import InputError
from cimedic.tools.predict.lrts import lrts_frame
from cimedic.tools.predict.runs import REQUIRED, normalize

LRTS = Path(__file__).resolve().parent / "fixtures" / "lrts"


def _raw_builds(path: Path) -> dict[str, list[dict[str, str]]]:
    builds: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            builds[f"{row['pr_name']}#{row['build_id']}"].append(row)
    return builds


def test_one_run_per_build_with_ids_branch_and_commit() -> None:
    runs = lrts_frame(LRTS / "kafka_testing.csv")
    raw = _raw_builds(LRTS / "kafka_testing.csv")
    assert sorted(runs["run_id"]) == sorted(raw)
    assert set(runs["project"]) == {"kafka"} and set(runs["job"]) == {"kafka"}
    for run in runs.itertuples():
        first = raw[run.run_id][0]
        assert run.pull_request == first["pr_name"] and run.branch == first["pr_base_branch"]
        assert run.commit == first["build_head_sha"]


@pytest.mark.parametrize("name", ["kafka_testing.csv", "log4j_training.csv", "hive_training.csv"])
def test_statuses_times_and_build_level_test_counts(name: str) -> None:
    runs = lrts_frame(LRTS / name).set_index("run_id")
    expected = {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "failure", "ABORTED": "cancelled"}
    expected["NOT_BUILT"] = "cancelled"
    for run_id, rows in _raw_builds(LRTS / name).items():
        run = runs.loc[run_id]
        assert run["status"] == expected[rows[0]["build_result"]]
        start = pd.Timestamp(float(rows[0]["build_timestamp"]), unit="s", tz="UTC")
        assert run["started_at"] == start
        assert run["duration_s"] == float(rows[0]["build_duration"])
        assert run["finished_at"] == start + pd.Timedelta(seconds=float(rows[0]["build_duration"]))
        # LRTS repeats the build's totals on each stage row: taken once, not summed.
        for column, field in (
            ("tests_failed", "failcount"),
            ("tests_passed", "passcount"),
            ("tests_skipped", "skipcount"),
        ):
            assert {float(r[field]) for r in rows} == {run[column]}
    assert str(runs["started_at"].dtype) == "datetime64[ns, UTC]"
    assert runs["started_at"].is_monotonic_increasing


def test_every_lrts_status_is_seen_in_the_fixtures() -> None:
    seen = set()
    for name in ("kafka_testing.csv", "log4j_training.csv", "hive_training.csv"):
        seen |= set(lrts_frame(LRTS / name)["status"])
    assert seen == {"success", "failure", "cancelled"}


def test_a_build_split_across_files_is_one_run() -> None:
    train, test = LRTS / "log4j_training.csv", LRTS / "log4j_testing.csv"
    both = lrts_frame([train, test]).set_index("run_id")
    alone = lrts_frame(train).set_index("run_id")
    shared = sorted(set(alone.index) & set(lrts_frame(test)["run_id"]))
    assert shared == ["PR-704#2", "PR-704#3"]
    raw = _raw_builds(train)["PR-704#2"] + _raw_builds(test)["PR-704#2"]
    assert {r["stage_id"] for r in raw} == {"Ubuntu_Test", "Windows_Test"}
    assert both.loc["PR-704#2", "tests_passed"] == alone.loc["PR-704#2", "tests_passed"] == float(raw[0]["passcount"])
    assert both.index.is_unique and len(both) == len(alone) + len(lrts_frame(test)) - len(shared)


def test_the_frame_meets_the_contract() -> None:
    runs = lrts_frame(LRTS / "hive_training.csv")
    assert set(REQUIRED) <= set(runs.columns)
    pd.testing.assert_frame_equal(normalize(runs), runs)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        lrts_frame(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("project,pr_name\nkafka,PR-1\n")
    with pytest.raises(InputError, match="not an LRTS builds CSV"):
        lrts_frame(bad)


def test_the_contract_derives_finish_times_and_rejects_what_it_cannot_use() -> None:
    runs = lrts_frame(LRTS / "hive_training.csv").drop(columns=["finished_at"])
    runs["started_at"] = runs["started_at"].dt.tz_localize(None)  # naive times are read as UTC
    checked = normalize(runs)
    assert (checked["finished_at"] == checked["started_at"] + pd.to_timedelta(runs["duration_s"], unit="s")).all()
    assert str(checked["finished_at"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(InputError, match="unknown status"):
        normalize(runs.assign(status="FAILURE"))
    with pytest.raises(InputError, match="repeats"):
        normalize(pd.concat([runs, runs.iloc[:1]]))
    with pytest.raises(InputError, match="missing columns"):
        normalize(runs.drop(columns=["job"]))
