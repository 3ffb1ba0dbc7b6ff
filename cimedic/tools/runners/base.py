"""How hard a CI runner worked during a job: CPU, memory and network over the job's window.

A failing job on a starved runner (CPU pinned at 100 %, memory full) points at infrastructure
rather than the change; these figures feed that judgement. Each metrics service is one adapter
behind ``RunnerMetrics``; a figure the service does not have is ``None``, never an error.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field

from cimedic.errors import InputError

# Periods CloudWatch-like services aggregate by, shortest first.
PERIODS = (60, 300, 900, 3600, 21600, 86400)
# More points than this per metric buys nothing for an average and a maximum.
MAX_POINTS = 1440
# CloudWatch keeps 1-minute data for 15 days, 5-minute data for 63 days, hourly data for 455 days.
RETENTION = ((timedelta(days=15), 60), (timedelta(days=63), 300), (timedelta(days=455), 3600))


class RunnerMetricsError(InputError):
    """The metrics service cannot be asked (credentials, permissions, reachability): one line."""


class RunnerUsage(BaseModel):
    """What a runner used between ``start`` and ``end`` (widened to whole periods)."""

    runner_id: str
    start: datetime
    end: datetime
    source: str = Field(description="which service measured it, e.g. aws-cloudwatch")
    period_s: int = Field(description="the aggregation period the figures were read at")
    cpu_pct_avg: float | None = None
    cpu_pct_max: float | None = None
    mem_used_pct_avg: float | None = None
    mem_used_pct_max: float | None = None
    mem_used_mib_avg: float | None = None
    mem_used_mib_max: float | None = None
    net_in_bytes: float | None = Field(default=None, description="received over the window")
    net_out_bytes: float | None = Field(default=None, description="sent over the window")
    samples: int = Field(default=0, description="CPU samples behind the averages")
    notes: list[str] = Field(default_factory=list, description="why a figure is missing, in plain words")


class RunnerMetrics(Protocol):
    def usage(self, runner_id: str, start: datetime, end: datetime) -> RunnerUsage: ...


def utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def choose_period(start: datetime, end: datetime, now: datetime) -> int:
    """The shortest period that keeps the window within MAX_POINTS and that the service still keeps."""
    window = (end - start).total_seconds()
    age = now - start
    floor = next((period for limit, period in RETENTION if age <= limit), RETENTION[-1][1])
    for period in PERIODS:
        if period >= floor and window / period <= MAX_POINTS:
            return period
    return PERIODS[-1]


def align(start: datetime, end: datetime, period: int) -> tuple[datetime, datetime]:
    """``start`` rounded down and ``end`` rounded up to whole periods (what the service answers for)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = math.floor((start - epoch).total_seconds()) // period * period
    last = -(-math.ceil((end - epoch).total_seconds()) // period) * period
    return epoch + timedelta(seconds=first), epoch + timedelta(seconds=max(last, first + period))
