"""The scaling decision: grow on long queues (bounded), shrink when idle (bounded), never flap."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cimedic.heal.scaling import Capacity, QueueSignals, ScalePolicy, decide, percentile

LONG = [150.0, 200.0, 260.0, 300.0, 90.0]  # p75 260 s, over the 120 s target
IDLE = [2.0, 4.0, 1.0, 3.0]  # p75 3.25 s


def test_percentile_interpolates_and_ignores_non_finite() -> None:
    assert percentile([], 0.75) is None
    assert percentile([float("nan")], 0.75) is None
    assert percentile([42.0], 0.75) == 42.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.75) == pytest.approx(32.5)  # numpy's "linear"
    assert percentile(LONG, 0.75) == 260.0
    assert percentile([1.0, float("inf"), 3.0], 0.5) == 2.0


def test_long_queue_with_a_known_backlog_adds_a_runner_per_queued_job() -> None:
    d = decide(Capacity(1, 10, 2, in_service=2), QueueSignals(LONG, queue_length=3))
    assert (d.current, d.desired, d.delta) == (2, 5, 3)
    assert "p75 queue time 260 s is over the 120 s target" in d.why and "3 job(s) queued" in d.why
    two_per_runner = ScalePolicy(jobs_per_runner=2)
    assert decide(Capacity(1, 10, 2), QueueSignals(LONG, queue_length=3), two_per_runner).desired == 4


def test_long_queue_without_a_backlog_count_tracks_the_target() -> None:
    # 2 runners, p75 260 s against 120 s: 2 * (260/120 - 1) = 2.33 -> 3 more.
    assert decide(Capacity(1, 10, 2), QueueSignals(LONG)).desired == 5
    # An empty pool (scale to zero) still gets a runner.
    assert decide(Capacity(0, 10, 0), QueueSignals([121.0])).desired == 1


def test_growth_is_bounded_by_the_step_and_the_maximum() -> None:
    d = decide(Capacity(1, 20, 2), QueueSignals(LONG, queue_length=30))
    assert d.desired == 6 and "wanted +30; bounded by step 4 and maximum 20" in d.why
    assert decide(Capacity(1, 20, 2), QueueSignals(LONG, queue_length=30), ScalePolicy(max_step_up=10)).desired == 12
    assert decide(Capacity(1, 8, 7), QueueSignals(LONG, queue_length=30)).desired == 8
    at_max = decide(Capacity(1, 8, 8), QueueSignals(LONG, queue_length=30))
    assert at_max.delta == 0 and "at its maximum of 8" in at_max.why


def test_no_growth_when_the_queue_is_empty_now_or_runners_are_still_starting() -> None:
    drained = decide(Capacity(1, 10, 2), QueueSignals(LONG, queue_length=0))
    assert drained.delta == 0 and "no job is queued now" in drained.why
    starting = decide(Capacity(1, 10, 5, in_service=2), QueueSignals(LONG, queue_length=4))
    assert starting.delta == 0 and "3 runner(s) are still starting" in starting.why


def test_idle_pool_shrinks_one_step_bounded_by_the_minimum() -> None:
    d = decide(Capacity(2, 10, 5), QueueSignals(IDLE, queue_length=0, utilisation=0.2))
    assert (d.desired, d.delta) == (4, -1) and "20% busy" in d.why
    # Nothing ran at all in the window: the most idle there is.
    assert decide(Capacity(2, 10, 5), QueueSignals([], utilisation=0.0)).desired == 4
    assert decide(Capacity(2, 10, 5), QueueSignals(IDLE, utilisation=0.2), ScalePolicy(step_down=2)).desired == 3
    assert decide(Capacity(2, 10, 3), QueueSignals(IDLE, utilisation=0.2), ScalePolicy(step_down=5)).desired == 2
    at_min = decide(Capacity(2, 10, 2), QueueSignals(IDLE, utilisation=0.0))
    assert at_min.delta == 0 and "already at the minimum of 2" in at_min.why


def test_an_empty_queue_alone_does_not_shrink() -> None:
    # A pool that is exactly busy also has an empty queue: shrinking it would make jobs wait.
    unknown = decide(Capacity(1, 10, 5), QueueSignals(IDLE, queue_length=0))
    assert unknown.delta == 0 and "utilisation is unknown" in unknown.why
    busy = decide(Capacity(1, 10, 5), QueueSignals(IDLE, queue_length=0, utilisation=0.8))
    assert busy.delta == 0 and "80% of runners are busy" in busy.why
    queued = decide(Capacity(1, 10, 5), QueueSignals(IDLE, queue_length=2, utilisation=0.1))
    assert queued.delta == 0


def test_queue_times_between_the_thresholds_hold_either_way() -> None:
    for samples in ([60.0] * 4, [16.0] * 4, [120.0] * 4):
        d = decide(Capacity(1, 10, 5), QueueSignals(samples, utilisation=0.0))
        assert d.delta == 0 and "is between 15 s and 120 s" in d.why


def test_a_wavering_queue_does_not_flap() -> None:
    """A queue drifting around the target grows the pool on readings over it and never shrinks it in the band."""
    cap = Capacity(1, 10, 2)
    history: list[int] = []
    for p75 in (130.0, 110.0, 125.0, 100.0, 60.0, 20.0, 16.0):
        d = decide(cap, QueueSignals([p75], utilisation=0.3))
        cap = Capacity(cap.minimum, cap.maximum, d.desired)
        history.append(d.desired)
    assert history == [3, 3, 4, 4, 4, 4, 4]  # up over 120 s only; the 15-120 s band holds
    d = decide(cap, QueueSignals([5.0], utilisation=0.3))
    assert d.desired == 3  # down only once truly idle


def test_cooldown_holds_any_change() -> None:
    long_queue = QueueSignals(LONG, queue_length=3, since_change_s=100)
    d = decide(Capacity(1, 10, 2), long_queue)
    assert d.delta == 0 and "within the 300 s cooldown" in d.why
    assert decide(Capacity(1, 10, 2), QueueSignals(LONG, queue_length=3, since_change_s=301)).desired == 5
    idle = QueueSignals(IDLE, utilisation=0.0, since_change_s=10)
    assert decide(Capacity(1, 10, 4), idle).delta == 0
    assert decide(Capacity(1, 10, 4), idle, ScalePolicy(cooldown_s=0)).desired == 3


def test_queued_jobs_without_queue_times_hold() -> None:
    d = decide(Capacity(1, 10, 2), QueueSignals([], queue_length=4))
    assert d.delta == 0 and "no queue times" in d.why


def test_policy_defaults_and_validation() -> None:
    p = ScalePolicy()
    assert (p.target_queue_s, p.idle_queue_s, p.max_step_up, p.step_down, p.cooldown_s) == (120, 15, 4, 1, 300)
    with pytest.raises(ValidationError, match="idle_queue_s must be below target_queue_s"):
        ScalePolicy(target_queue_s=60, idle_queue_s=60)
    with pytest.raises(ValidationError):
        ScalePolicy.model_validate({"target_queue_s": 90, "step": 2})  # unknown keys are typos, not defaults
    with pytest.raises(ValidationError):
        ScalePolicy(max_step_up=0)
