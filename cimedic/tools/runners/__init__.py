"""CI runner resource use (CPU, memory, network) from the cloud's metrics service."""

from cimedic.tools.runners.base import RunnerMetrics, RunnerMetricsError, RunnerUsage, choose_period
from cimedic.tools.runners.cloudwatch import CloudWatchMetrics, cloudwatch_client

__all__ = [
    "CloudWatchMetrics",
    "RunnerMetrics",
    "RunnerMetricsError",
    "RunnerUsage",
    "choose_period",
    "cloudwatch_client",
]
