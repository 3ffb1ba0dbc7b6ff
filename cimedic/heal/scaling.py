"""When a runner pool should grow or shrink, decided from how long jobs wait for a runner.

The signal is the 75th percentile of recent queue times: the mean lets one job stuck behind a slow
image pull scale the pool, the maximum even more so, while p75 moves only when a good share of jobs
wait. Jobs still waiting may be given as their wait so far (a lower bound), so a backlog that nobody
has picked up yet still counts.

Growth is sized to the backlog when its length is known (one runner per ``jobs_per_runner`` queued
jobs), otherwise by target tracking as AWS does it (capacity in proportion to how far the queue
time is over target), and is bounded by the group's maximum and ``max_step_up``. Shrinking is one
``step_down`` at a time, bounded by the minimum.

Against flapping: nothing grows below ``target_queue_s`` and nothing shrinks above ``idle_queue_s``
(the band between is a dead zone); shrinking also needs utilisation known to be low, because an
empty queue also describes a pool that is exactly busy; nothing grows while runners from the last
change are still launching, nor when the queue is known to be empty now; and nothing changes within
``cooldown_s`` of the last change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScalePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_queue_s: float = Field(default=120.0, gt=0, description="grow when p75 queue time is above this")
    idle_queue_s: float = Field(default=15.0, ge=0, description="may shrink only when p75 queue time is at most this")
    quantile: float = Field(default=0.75, gt=0, le=1)
    max_step_up: int = Field(default=4, ge=1, description="runners added by one change, at most")
    step_down: int = Field(default=1, ge=1, description="runners removed by one change")
    idle_utilisation: float = Field(default=0.5, gt=0, le=1, description="may shrink only below this busy share")
    jobs_per_runner: int = Field(default=1, ge=1, description="jobs one runner takes at once")
    cooldown_s: float = Field(default=300.0, ge=0, description="no change this soon after the last one")

    @model_validator(mode="after")
    def _band(self) -> ScalePolicy:
        # Without a gap between the two thresholds the pool would grow and shrink on the same signal.
        if self.idle_queue_s >= self.target_queue_s:
            raise ValueError("idle_queue_s must be below target_queue_s")
        return self


@dataclass(frozen=True)
class Capacity:
    minimum: int
    maximum: int
    desired: int
    in_service: int | None = None  # runners up and healthy; None when unknown


@dataclass(frozen=True)
class QueueSignals:
    queue_s: Sequence[float] = ()  # queue times of recent jobs, seconds
    queue_length: int | None = None  # jobs waiting now, when known
    utilisation: float | None = None  # busy share of the runners (0..1), when known
    since_change_s: float | None = None  # seconds since the group's capacity last changed, when known


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    why: str

    @property
    def delta(self) -> int:
        return self.desired - self.current


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile with linear interpolation between order statistics; None without finite values."""
    data = sorted(v for v in values if math.isfinite(v))
    if not data:
        return None
    pos = (len(data) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def decide(capacity: Capacity, signals: QueueSignals, policy: ScalePolicy | None = None) -> Decision:
    """The desired capacity for ``capacity`` given the queue; ``desired == current`` means hold."""
    policy = policy or ScalePolicy()
    cur, lo, hi = capacity.desired, capacity.minimum, capacity.maximum

    def hold(why: str) -> Decision:
        return Decision(cur, cur, why)

    if signals.since_change_s is not None and signals.since_change_s < policy.cooldown_s:
        return hold(
            f"capacity changed {signals.since_change_s:.0f} s ago, within the {policy.cooldown_s:.0f} s cooldown"
        )
    p = percentile(signals.queue_s, policy.quantile)
    label = f"p{round(policy.quantile * 100)} queue time"
    waiting = signals.queue_length
    if p is not None and p > policy.target_queue_s:
        over = f"{label} {p:.0f} s is over the {policy.target_queue_s:.0f} s target"
        if waiting == 0:
            return hold(f"{over}, but no job is queued now")
        if capacity.in_service is not None and capacity.in_service < cur:
            return hold(f"{over}, but {cur - capacity.in_service} runner(s) are still starting")
        if waiting:
            need, how = math.ceil(waiting / policy.jobs_per_runner), f"{waiting} job(s) queued"
        else:
            need = max(1, math.ceil(max(cur, 1) * (p / policy.target_queue_s - 1)))
            how = "in proportion to the excess"
        add = min(need, policy.max_step_up, hi - cur)
        if add <= 0:
            return hold(f"{over}, but the group is at its maximum of {hi}")
        bound = "" if add == need else f" (wanted +{need}; bounded by step {policy.max_step_up} and maximum {hi})"
        return Decision(cur, cur + add, f"{over}: +{add} runner(s), {how}{bound}")
    if (p is None or p <= policy.idle_queue_s) and not waiting:
        quiet = "no job queued in the window" if p is None else f"{label} {p:.0f} s"
        if cur <= lo:
            return hold(f"idle ({quiet}), already at the minimum of {lo}")
        if signals.utilisation is None:
            return hold(f"idle queue ({quiet}), but utilisation is unknown: an empty queue may mean exactly busy")
        if signals.utilisation >= policy.idle_utilisation:
            return hold(f"idle queue ({quiet}), but {signals.utilisation:.0%} of runners are busy")
        remove = min(policy.step_down, cur - lo)
        return Decision(cur, cur - remove, f"idle ({quiet}, {signals.utilisation:.0%} busy): -{remove} runner(s)")
    if p is None:
        return hold(f"{waiting} job(s) queued but no queue times to judge by")
    return hold(f"{label} {p:.0f} s is between {policy.idle_queue_s:.0f} s and {policy.target_queue_s:.0f} s")
