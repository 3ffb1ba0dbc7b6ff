"""Runner usage from AWS CloudWatch, for self-hosted runners on EC2 (runner id = instance id).

CPU and network come from the ``AWS/EC2`` namespace every instance publishes (every 5 minutes, or
every minute with detailed monitoring). Memory is not an EC2 metric: it exists only when the
CloudWatch agent publishes ``mem_used_percent`` / ``mem_used`` to ``CWAgent``. The agent adds
dimensions of its own choosing (ImageId, InstanceType, AutoScalingGroupName), so the dimension set
is discovered with ListMetrics rather than assumed.

Averages are exact over the raw samples (sum of Sums over sum of SampleCounts), not means of
per-period means. Throttling and transient errors are retried by botocore's standard retry mode
(exponential backoff with jitter); the client ``cloudwatch_client`` builds is configured for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cimedic.tools.runners.base import RunnerMetricsError, RunnerUsage, align, choose_period, utc

SOURCE = "aws-cloudwatch"
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_MIB = 1024.0 * 1024.0
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId"}
# (query id, namespace, metric, statistics): one GetMetricData call answers all of them.
EC2_METRICS = (
    ("cpu", "AWS/EC2", "CPUUtilization", ("SampleCount", "Sum", "Maximum")),
    ("netin", "AWS/EC2", "NetworkIn", ("Sum",)),
    ("netout", "AWS/EC2", "NetworkOut", ("Sum",)),
)
AGENT_METRICS = (
    ("mempct", "CWAgent", "mem_used_percent", ("SampleCount", "Sum", "Maximum")),
    ("membytes", "CWAgent", "mem_used", ("SampleCount", "Sum", "Maximum")),
)


def cloudwatch_client(
    region: str | None, endpoint_url: str | None, *, retries: int = 5, timeout_s: float = 30.0
) -> Any:
    """A boto3 CloudWatch client retrying throttling with backoff; credentials from boto3's usual chain."""
    try:
        import boto3
    except ModuleNotFoundError as exc:
        raise RunnerMetricsError(
            "CloudWatch", "the CloudWatch runner metrics need boto3: pip install 'cimedic[aws]'"
        ) from exc
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "standard", "total_max_attempts": retries + 1},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
    )
    try:
        return boto3.session.Session(region_name=region).client("cloudwatch", endpoint_url=endpoint_url, config=config)
    except NoRegionError as exc:
        raise RunnerMetricsError("CloudWatch", "no AWS region: set aws_region") from exc


@dataclass
class _Series:
    values: dict[str, list[float]] = field(default_factory=dict)

    def total(self, stat: str) -> float | None:
        vals = self.values.get(stat)
        return sum(vals) if vals else None

    def mean(self) -> float | None:
        count, total = self.total("SampleCount"), self.total("Sum")
        return total / count if count and total is not None else None

    def maximum(self) -> float | None:
        vals = self.values.get("Maximum")
        return max(vals) if vals else None


class CloudWatchMetrics:
    """``RunnerMetrics`` over CloudWatch; ``client`` is a boto3 CloudWatch client."""

    def __init__(
        self,
        client: Any,
        *,
        agent_namespace: str = "CWAgent",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.agent_namespace = agent_namespace  # the agent's "namespace" setting, when changed from its default
        self.now = now

    def usage(self, runner_id: str, start: datetime, end: datetime) -> RunnerUsage:
        start, end = utc(start, "start"), utc(end, "end")
        if not _INSTANCE_ID.match(runner_id):
            raise RunnerMetricsError(runner_id, "not an EC2 instance id (i-…); CloudWatch knows runners by instance id")
        if end <= start:
            raise RunnerMetricsError(runner_id, f"the window ends ({end.isoformat()}) before it starts")
        period = choose_period(start, end, self.now())
        first, last = align(start, end, period)
        notes: list[str] = []
        instance = [{"Name": "InstanceId", "Value": runner_id}]
        with _errors(runner_id):
            agent_dims = self._agent_dimensions(instance)
            queries = list(_queries(EC2_METRICS, instance, period))
            for qid, _, metric, stats in AGENT_METRICS:
                if metric in agent_dims:
                    queries += _queries(((qid, self.agent_namespace, metric, stats),), agent_dims[metric], period)
            series = self._fetch(queries, first, last)

        cpu, mempct, membytes = series.get("cpu", _Series()), series.get("mempct"), series.get("membytes")
        samples = int(cpu.total("SampleCount") or 0)
        if not samples:
            notes.append(
                f"no CPUUtilization for {runner_id} in this window: the instance was not running then, "
                "or CloudWatch no longer keeps that data"
            )
        if not agent_dims:
            notes.append(
                f"no memory figures: the CloudWatch agent published none for this instance to {self.agent_namespace} "
                "in the last two weeks (all ListMetrics shows)"
            )
        elif mempct is None and membytes is None:
            notes.append("no memory figures: the CloudWatch agent sent no samples in this window")
        return RunnerUsage(
            runner_id=runner_id,
            start=first,
            end=last,
            source=SOURCE,
            period_s=period,
            cpu_pct_avg=cpu.mean(),
            cpu_pct_max=cpu.maximum(),
            mem_used_pct_avg=mempct.mean() if mempct else None,
            mem_used_pct_max=mempct.maximum() if mempct else None,
            mem_used_mib_avg=_mib(membytes.mean()) if membytes else None,
            mem_used_mib_max=_mib(membytes.maximum()) if membytes else None,
            net_in_bytes=series["netin"].total("Sum") if "netin" in series else None,
            net_out_bytes=series["netout"].total("Sum") if "netout" in series else None,
            samples=samples,
            notes=notes,
        )

    def _agent_dimensions(self, instance: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
        """Per agent metric, the smallest dimension set that includes this instance (ListMetrics)."""
        found: dict[str, list[dict[str, str]]] = {}
        wanted = {metric for _, _, metric, _ in AGENT_METRICS}
        for page in self.client.get_paginator("list_metrics").paginate(
            Namespace=self.agent_namespace, Dimensions=instance
        ):
            for metric in page.get("Metrics", []):
                name, dims = metric.get("MetricName"), metric.get("Dimensions", [])
                if name in wanted:
                    current = found.get(name)
                    key = (len(dims), sorted((d["Name"], d["Value"]) for d in dims))
                    if current is None or key < (len(current), sorted((d["Name"], d["Value"]) for d in current)):
                        found[name] = dims
        return found

    def _fetch(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, _Series]:
        values: dict[str, list[float]] = {}
        pages = self.client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
        series: dict[str, _Series] = {}
        for qid, vals in values.items():
            metric, stat = qid.rsplit("_", 1)
            if vals:
                series.setdefault(metric, _Series()).values[_STATS[stat]] = vals
        return series


_STATS = {"samplecount": "SampleCount", "sum": "Sum", "maximum": "Maximum"}


def _queries(
    metrics: tuple[tuple[str, str, str, tuple[str, ...]], ...], dims: list[dict[str, str]], period: int
) -> Iterator[dict[str, Any]]:
    for qid, namespace, metric, stats in metrics:
        for stat in stats:
            yield {
                "Id": f"{qid}_{stat.lower()}",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }


def _mib(value: float | None) -> float | None:
    return value / _MIB if value is not None else None


@contextmanager
def _errors(subject: str) -> Iterator[None]:
    """botocore failures as one-line RunnerMetricsErrors that say what to fix."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        if code in _THROTTLED:
            problem = (
                f"CloudWatch throttled the requests ({code}) after {attempts} attempts; "
                "try later, or read fewer runners at once"
            )
        elif code in _DENIED:
            problem = f"CloudWatch refused ({code}): the credentials need cloudwatch:GetMetricData and ListMetrics"
        else:
            message = " ".join(str(error.get("Message", "")).split())[:200]
            problem = f"CloudWatch answered {code or 'an error'}: {message or 'no details'}"
        raise RunnerMetricsError(subject, problem) from exc
    except NoCredentialsError as exc:
        raise RunnerMetricsError(
            subject, "no AWS credentials: configure a profile, an instance role, or AWS_ACCESS_KEY_ID"
        ) from exc
    except NoRegionError as exc:
        raise RunnerMetricsError(subject, "no AWS region: set aws_region") from exc
    except EndpointConnectionError as exc:
        raise RunnerMetricsError(subject, f"cannot reach CloudWatch ({exc})") from exc
    except BotoCoreError as exc:
        raise RunnerMetricsError(subject, " ".join(str(exc).split())[:200]) from exc
