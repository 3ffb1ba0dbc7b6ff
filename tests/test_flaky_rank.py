"""rank_flaky on constructed histories: the definitive rule, broken builds, intervals, order, impact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from cimedic.tools.flaky import FlakyDetector, FlakyTest, class_of, naive_flaky, rank_flaky

T0 = datetime(2024, 3, 1, tzinfo=UTC)


class History:
    """Rows of a tests frame, one execution at a time, each a minute after the previous one."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        test: str,
        status: str,
        *,
        run: str,
        commit: str,
        attempt: int = 1,
        job: str = "unit",
        runner: str | None = "r1",
        duration: float = 1.0,
        message: str | None = None,
        project: str = "acme/app",
        **extra: Any,
    ) -> None:
        self.rows.append(
            {
                "project": project,
                "run_id": run,
                "attempt": attempt,
                "job": job,
                "commit": commit,
                "test": test,
                "status": status,
                "duration_s": duration,
                "runner": runner,
                "finished_at": T0 + timedelta(minutes=len(self.rows)),
                "message": message,
                **extra,
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def by_test(result: list[FlakyTest]) -> dict[str, FlakyTest]:
    return {t.test: t for t in result}


def test_pass_and_fail_on_one_commit_across_runs_is_definitive() -> None:
    h = History()
    for i in range(6):
        h.add("pkg.A.test_io", "failed" if i == 3 else "passed", run=f"r{i}", commit="c1", message="socket closed")
        h.add("pkg.B.test_ok", "passed", run=f"r{i}", commit="c1")
    got = by_test(rank_flaky(h.frame(), min_score=0.0))
    flaky = got["pkg.A.test_io"]
    assert flaky.definitive and flaky.score == 1.0 and flaky.commits_with_both == 1
    assert flaky.failures == 1 and flaky.runs == 6
    assert flaky.evidence[0].run_id == "r3" and flaky.evidence[0].same_commit_passed
    assert flaky.evidence[0].message == "socket closed"
    assert not got["pkg.B.test_ok"].definitive and got["pkg.B.test_ok"].score < 0.5


def test_fail_then_pass_on_rerun_attempt_is_definitive() -> None:
    h = History()
    for c in range(8):
        h.add("pkg.A.test_race", "passed", run=f"r{c}", commit=f"c{c}")
    h.add("pkg.A.test_race", "failed", run="r9", commit="c9", attempt=1)
    h.add("pkg.A.test_race", "passed", run="r9", commit="c9", attempt=2)
    (flaky,) = rank_flaky(h.frame())
    assert flaky.definitive and flaky.commits_with_both == 1 and flaky.flips == 2
    assert flaky.evidence[0].attempt == 1 and flaky.evidence[0].run_id == "r9"
    assert naive_flaky(h.frame())[0].test == "pkg.A.test_race"


def test_same_commit_on_different_jobs_is_not_definitive() -> None:
    # Failing on one platform and passing on another is a platform bug until the same job disagrees.
    h = History()
    for c in range(5):
        h.add("pkg.A.test_path", "passed", run=f"r{c}", commit=f"c{c}", job="linux")
        h.add("pkg.A.test_path", "failed", run=f"r{c}", commit=f"c{c}", job="windows")
    (t,) = rank_flaky(h.frame(), min_score=0.0)
    assert not t.definitive and t.commits_with_both == 0 and t.score < 0.5


def test_regression_streak_scores_below_scattered_failures() -> None:
    # Same counts (4 of 60 commits failed, one execution each): a block of 4 consecutive failing
    # commits is a regression and its fix; four isolated failures are what a flaky test does.
    h = History()
    for c in range(60):
        h.add("pkg.Block.test_a", "failed" if 30 <= c < 34 else "passed", run=f"r{c}", commit=f"c{c}")
        h.add("pkg.Scatter.test_b", "failed" if c in (7, 22, 38, 51) else "passed", run=f"r{c}", commit=f"c{c}")
    got = by_test(rank_flaky(h.frame(), min_score=0.0, pool_by="test"))
    block, scatter = got["pkg.Block.test_a"], got["pkg.Scatter.test_b"]
    assert block.failures == scatter.failures == 4 and not block.definitive and not scatter.definitive
    assert scatter.flips == 8 and block.flips == 2
    assert scatter.score > block.score


def test_consistent_reruns_of_a_failing_commit_point_to_a_real_failure() -> None:
    # Failing three attempts in a row on one commit is cheap for a broken test and costly for a flaky one.
    h = History()
    for c in range(20):
        h.add("pkg.Once.test_a", "failed" if c == 10 else "passed", run=f"r{c}", commit=f"c{c}")
        h.add("pkg.Thrice.test_b", "failed" if c == 10 else "passed", run=f"r{c}", commit=f"c{c}")
        if c == 10:
            for attempt in (2, 3):
                h.add("pkg.Thrice.test_b", "failed", run=f"r{c}", commit=f"c{c}", attempt=attempt)
    got = by_test(rank_flaky(h.frame(), min_score=0.0, pool_by="test"))
    assert got["pkg.Thrice.test_b"].score < got["pkg.Once.test_a"].score


def _suite_run(h: History, run: str, commit: str, failing: set[str], tests: list[str]) -> None:
    for t in tests:
        h.add(t, "failed" if t in failing else "passed", run=run, commit=commit, message="compile error")


def test_broken_build_is_left_out() -> None:
    tests = [f"pkg.S{i}.test_x" for i in range(20)]
    h = History()
    _suite_run(h, "good1", "c1", set(), tests)
    _suite_run(h, "broken", "c1", set(tests[:15]), tests)  # 75% of the suite failed: the build broke
    _suite_run(h, "good2", "c1", set(), tests)
    assert rank_flaky(h.frame(), min_runs=1) == []
    every = by_test(rank_flaky(h.frame(), min_runs=1, min_score=0.0))
    assert every["pkg.S0.test_x"].excluded_broken == 1 and every["pkg.S0.test_x"].runs == 2
    # With the exclusion off, each of the 15 would be "definitively" flaky.
    off = rank_flaky(h.frame(), min_runs=1, broken_fraction=1.01)
    assert {t.test for t in off if t.definitive} == set(tests[:15])


def test_interval_narrows_with_more_runs_at_the_same_rate() -> None:
    h = History()
    for i in range(200):
        if i < 20:
            h.add("pkg.Few.test_a", "failed" if i % 10 == 0 else "passed", run=f"f{i}", commit="c1")
        h.add("pkg.Many.test_b", "failed" if i % 10 == 0 else "passed", run=f"m{i}", commit="c1")
    got = by_test(rank_flaky(h.frame()))
    few, many = got["pkg.Few.test_a"], got["pkg.Many.test_b"]
    for t in (few, many):
        assert t.interval[0] < t.flake_rate < t.interval[1]
        assert t.interval[0] < 0.1 < t.interval[1]
    assert many.interval[1] - many.interval[0] < (few.interval[1] - few.interval[0]) / 2


def test_ranking_puts_definitive_first_then_the_costliest() -> None:
    h = History()
    for i in range(10):
        h.add("pkg.Cheap.test_a", "failed" if i == 2 else "passed", run=f"r{i}", commit="c1", duration=2.0)
        h.add("pkg.Dear.test_b", "failed" if i in (4, 6) else "passed", run=f"r{i}", commit="c1", duration=90.0)
        h.add("pkg.Stable.test_c", "passed", run=f"r{i}", commit="c1")
    ranked = rank_flaky(h.frame(), min_score=0.0, pool_by="test")
    assert [t.test for t in ranked] == ["pkg.Dear.test_b", "pkg.Cheap.test_a", "pkg.Stable.test_c"]
    assert ranked[0].score == ranked[1].score == 1.0 > ranked[2].score
    assert [t.test for t in rank_flaky(h.frame(), pool_by="test")] == ["pkg.Dear.test_b", "pkg.Cheap.test_a"]


def test_impact_from_failing_durations_or_job_durations() -> None:
    h = History()
    h.add("pkg.A.test_a", "failed", run="r1", commit="c1", duration=30.0, job_duration_s=600.0)
    h.add("pkg.A.test_a", "failed", run="r1", commit="c1", attempt=2, duration=42.0, job_duration_s=540.0)
    h.add("pkg.A.test_a", "passed", run="r1", commit="c1", attempt=3, duration=3.0, job_duration_s=480.0)
    h.add("pkg.A.test_a", "failed", run="r2", commit="c2", duration=18.0, job_duration_s=300.0)
    h.add("pkg.A.test_a", "skipped", run="r3", commit="c3", duration=0.0, job_duration_s=60.0)
    with_jobs = rank_flaky(h.frame(), min_runs=1)[0]
    assert with_jobs.runs == 4 and with_jobs.failures == 3
    assert with_jobs.impact.runs_failed == 3  # (r1, 1), (r1, 2), (r2, 1)
    assert with_jobs.impact.minutes_basis == "job_duration"
    assert with_jobs.impact.ci_minutes_wasted == pytest.approx((600 + 540 + 300) / 60)
    tests_only = rank_flaky(h.frame().drop(columns=["job_duration_s"]), min_runs=1)[0]
    assert tests_only.impact.minutes_basis == "test_duration"
    assert tests_only.impact.ci_minutes_wasted == pytest.approx((30 + 42 + 18) / 60)


def test_failures_on_one_runner_make_a_machine_dependent_test() -> None:
    h = History()
    for c in range(40):
        on_bad = c % 4 == 0
        h.add("pkg.Env.test_a", "failed" if on_bad else "passed", run=f"r{c}", commit=f"c{c}", runner=f"r{c % 4}")
        anywhere = c in (0, 9, 18, 27, 36, 5, 14, 23, 32, 3)
        h.add("pkg.Spread.test_b", "failed" if anywhere else "passed", run=f"r{c}", commit=f"c{c}", runner=f"r{c % 4}")
    got = by_test(rank_flaky(h.frame(), min_score=0.0, pool_by="test"))
    env, spread = got["pkg.Env.test_a"], got["pkg.Spread.test_b"]
    assert env.failures == spread.failures == 10
    assert env.signals.kind == "machine" and env.signals.failing_runners[0].runner == "r0"
    assert env.signals.failing_runners[0].failures == env.signals.failing_runners[0].runs == 10
    assert env.signals.runner_log_factor > 0 > spread.signals.runner_log_factor
    assert env.score > spread.score


def test_failures_at_a_timeout_are_tagged_timing() -> None:
    h = History()
    for i in range(30):
        slow = i in (5, 17, 26)
        h.add(
            "pkg.T.test_wait",
            "failed" if slow else "passed",
            run=f"r{i}",
            commit="c1",
            duration=60.0 if slow else 1.0 + 0.01 * (i % 7),
        )
    (t,) = rank_flaky(h.frame())
    assert t.signals.kind == "timing" and t.signals.failure_duration_z is not None
    assert t.signals.failure_duration_z > 3


def test_siblings_of_flaky_tests_inherit_suspicion() -> None:
    h = History()
    for i in range(12):
        for j in range(4):  # four tests of one class that flake, each seen to
            h.add(f"net.Reconnect.test_{j}", "failed" if i == j + 3 else "passed", run=f"r{i}", commit="c1")
        h.add("net.Reconnect.test_quiet", "passed", run=f"r{i}", commit="c1")
        for j in range(12):  # and a dozen quiet classes
            h.add(f"core.Math{j}.test_add", "passed", run=f"r{i}", commit="c1")
    pooled = by_test(rank_flaky(h.frame(), min_score=0.0))
    alone = by_test(rank_flaky(h.frame(), min_score=0.0, pool_by="test"))
    quiet = "net.Reconnect.test_quiet"
    assert pooled[quiet].score > alone[quiet].score
    assert pooled[quiet].score > pooled["core.Math0.test_add"].score
    assert pooled[quiet].failures == 0 and not pooled[quiet].definitive


def test_a_quiet_suite_learns_that_flakiness_is_rare() -> None:
    h = History()
    for i in range(10):
        h.add("pkg.Flaky.test_a", "failed" if i == 4 else "passed", run=f"r{i}", commit="c1")
        for j in range(60):
            h.add(f"pkg.C{j}.test_b", "passed", run=f"r{i}", commit="c1")
    ranked = rank_flaky(h.frame(), min_score=0.0)
    assert ranked[0].test == "pkg.Flaky.test_a" and ranked[0].score == 1.0
    assert max(t.score for t in ranked[1:]) < 0.2


def test_min_runs_window_and_skips() -> None:
    h = History()
    for i in range(8):
        h.add("pkg.A.test_a", "failed" if i == 1 else "passed", run=f"r{i}", commit="c1")
        h.add("pkg.A.test_a", "skipped", run=f"s{i}", commit="c1")
    assert rank_flaky(h.frame(), min_runs=9) == []
    assert rank_flaky(h.frame(), min_runs=8)[0].runs == 8
    # The window keeps the last 5 executions: the failure (the 2nd) falls out of it.
    recent = rank_flaky(h.frame(), min_runs=1, window=5, min_score=0.0)[0]
    assert recent.runs == 5 and recent.failures == 0 and not recent.definitive


def test_frame_contract_is_checked() -> None:
    h = History()
    h.add("pkg.A.test_a", "passed", run="r1", commit="c1")
    with pytest.raises(ValueError, match="unknown test status"):
        rank_flaky(h.frame().assign(status="flaky"))
    with pytest.raises(ValueError, match="lacks column"):
        rank_flaky(h.frame().drop(columns=["commit"]))
    assert rank_flaky(h.frame().iloc[0:0]) == []


def test_test_class() -> None:
    assert class_of("pkg.mod.Class.test_x") == "pkg.mod.Class"
    assert class_of("tests.test_io.test_read[a.b-1]") == "tests.test_io"
    assert class_of("standalone") == "standalone"


def test_both_detectors_fit_the_protocol() -> None:
    h = History()
    for i in range(6):
        h.add("pkg.A.test_a", "failed" if i == 2 else "passed", run=f"r{i}", commit="c1")
    detectors: list[FlakyDetector] = [rank_flaky, naive_flaky]
    assert [[t.test for t in d(h.frame(), min_runs=6)] for d in detectors] == [["pkg.A.test_a"]] * 2
    assert [d(h.frame(), min_runs=7) for d in detectors] == [[], []]
