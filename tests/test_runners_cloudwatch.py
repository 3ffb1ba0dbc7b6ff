"""CloudWatchMetrics against moto's server over real HTTP.

There is no public archive of CloudWatch data, so each test publishes a small, plausible profile
of one CI job (CPU climbing during a compile, the agent's memory samples every 10 s, network
bursts while dependencies download) and checks the figures read back against sums worked out by
hand. moto accepts data in the AWS/EC2 namespace, which real AWS reserves for EC2 itself; that is
only how the test seeds what EC2 would have published.

moto does not emulate throttling, so those tests put a small HTTP proxy in front of moto that
answers the way CloudWatch does when it throttles (HTTP 400, ``x-amzn-query-error: Throttling;Sender``
in whichever protocol, JSON or rpc-v2-cbor, botocore speaks to CloudWatch) before passing requests on.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.tools.runners import CloudWatchMetrics, RunnerMetricsError, choose_period, cloudwatch_client

T0 = datetime(2024, 5, 14, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


pytestmark = pytest.mark.usefixtures("aws_env")


def instance_id() -> str:
    return "i-0" + uuid.uuid4().hex[:16]


def put(client: Any, namespace: str, metric: str, dims: dict[str, str], points: list[tuple[datetime, float]]) -> None:
    dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
    for i in range(0, len(points), 500):
        client.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": metric, "Dimensions": dimensions, "Timestamp": ts, "Value": value}
                for ts, value in points[i : i + 500]
            ],
        )


def minute(m: int, s: int = 0) -> datetime:
    return T0 + timedelta(minutes=m, seconds=s)


def test_cpu_memory_and_network_of_one_job(moto_endpoint: str) -> None:
    client = cloudwatch_client("us-east-1", moto_endpoint)
    runner, neighbour = instance_id(), instance_id()
    # EC2 CPU, one point a minute (detailed monitoring) from 09:55 to 10:14; the job runs 10:00:20-10:09:40.
    cpu = [(minute(m), float(5 + 9 * m if 0 <= m < 10 else 2)) for m in range(-5, 15)]
    put(client, "AWS/EC2", "CPUUtilization", {"InstanceId": runner}, cpu)
    put(client, "AWS/EC2", "CPUUtilization", {"InstanceId": neighbour}, [(minute(m), 100.0) for m in range(10)])
    put(client, "AWS/EC2", "NetworkIn", {"InstanceId": runner}, [(minute(m), 1e6 * (m + 1)) for m in range(-2, 12)])
    put(client, "AWS/EC2", "NetworkOut", {"InstanceId": runner}, [(minute(m), 2000.0) for m in range(10)])
    # The CloudWatch agent, as its default config publishes it: extra dimensions, a sample every 10 s
    # during minute 0 and a single late sample in minute 5.
    agent = {"InstanceId": runner, "ImageId": "ami-0abcdef1234567890", "InstanceType": "c6i.xlarge"}
    pct = [(minute(0, 10 * k), 30.0 + k) for k in range(6)] + [(minute(5, 30), 90.0)]
    put(client, "CWAgent", "mem_used_percent", agent, pct)
    mib = 1024.0 * 1024.0
    put(
        client,
        "CWAgent",
        "mem_used",
        agent,
        [(minute(0, 10 * k), 2048 * mib) for k in range(6)] + [(minute(5), 6144 * mib)],
    )

    usage = CloudWatchMetrics(client, now=lambda: NOW).usage(runner, minute(0, 20), minute(9, 40))

    assert (usage.start, usage.end, usage.period_s, usage.source) == (minute(0), minute(10), 60, "aws-cloudwatch")
    # Minutes 0..9 only: 5, 14, ..., 86 -> mean 45.5, max 86; nothing from before, after or the neighbour.
    assert usage.samples == 10
    assert usage.cpu_pct_avg == pytest.approx(45.5)
    assert usage.cpu_pct_max == pytest.approx(86.0)
    # Exact mean over the 7 raw samples (30..35 and 90), not the mean of the two per-minute means (61.25).
    assert usage.mem_used_pct_avg == pytest.approx((30 + 31 + 32 + 33 + 34 + 35 + 90) / 7)
    assert usage.mem_used_pct_max == pytest.approx(90.0)
    assert usage.mem_used_mib_avg == pytest.approx((6 * 2048 + 6144) / 7)
    assert usage.mem_used_mib_max == pytest.approx(6144.0)
    assert usage.net_in_bytes == pytest.approx(1e6 * sum(range(1, 11)))
    assert usage.net_out_bytes == pytest.approx(20000.0)
    assert usage.notes == []


def test_without_the_agent_memory_is_none_not_an_error(moto_endpoint: str) -> None:
    client = cloudwatch_client("us-east-1", moto_endpoint)
    runner = instance_id()
    # Basic monitoring: one point every 5 minutes.
    put(client, "AWS/EC2", "CPUUtilization", {"InstanceId": runner}, [(minute(m), 40.0 + m) for m in (0, 5, 10)])
    usage = CloudWatchMetrics(client, now=lambda: NOW).usage(runner, minute(0), minute(12))
    assert usage.samples == 3
    assert usage.cpu_pct_avg == pytest.approx(45.0)
    assert usage.mem_used_pct_avg is usage.mem_used_mib_max is usage.net_in_bytes is None
    assert any("CloudWatch agent" in note for note in usage.notes)


def test_agent_silent_during_the_job(moto_endpoint: str) -> None:
    client = cloudwatch_client("us-east-1", moto_endpoint)
    runner = instance_id()
    put(client, "AWS/EC2", "CPUUtilization", {"InstanceId": runner}, [(minute(m), 10.0) for m in range(30, 40)])
    put(client, "CWAgent", "mem_used_percent", {"InstanceId": runner}, [(minute(0), 50.0)])  # earlier only
    usage = CloudWatchMetrics(client, now=lambda: NOW).usage(runner, minute(30), minute(40))
    assert usage.cpu_pct_avg == pytest.approx(10.0) and usage.mem_used_pct_avg is None
    assert usage.notes == ["no memory figures: the CloudWatch agent sent no samples in this window"]


def test_an_instance_without_data_gives_none_everywhere(moto_endpoint: str) -> None:
    usage = CloudWatchMetrics(cloudwatch_client("us-east-1", moto_endpoint), now=lambda: NOW).usage(
        instance_id(), minute(0), minute(30)
    )
    assert usage.samples == 0
    assert usage.cpu_pct_avg is usage.cpu_pct_max is usage.mem_used_pct_avg is usage.net_out_bytes is None
    assert len(usage.notes) == 2


def test_a_day_long_window_reads_coarser_periods(moto_endpoint: str) -> None:
    client = cloudwatch_client("us-east-1", moto_endpoint)
    runner = instance_id()
    points = [(T0 + timedelta(minutes=5 * k), float(k % 20)) for k in range(12 * 30)]  # 30 h, every 5 min
    put(client, "AWS/EC2", "CPUUtilization", {"InstanceId": runner}, points)
    usage = CloudWatchMetrics(client, now=lambda: T0 + timedelta(days=2)).usage(runner, T0, T0 + timedelta(hours=30))
    assert usage.period_s == 300  # 30 h at 60 s would be 1800 points, above the 1440 cap
    assert usage.samples == len(points)
    assert usage.cpu_pct_avg == pytest.approx(sum(v for _, v in points) / len(points))
    assert usage.cpu_pct_max == 19.0


def test_period_follows_window_length_and_age() -> None:
    ten_minutes = (T0, T0 + timedelta(minutes=10))
    assert choose_period(*ten_minutes, now=T0 + timedelta(hours=1)) == 60
    assert choose_period(*ten_minutes, now=T0 + timedelta(days=20)) == 300  # 1-minute data is gone after 15 days
    assert choose_period(*ten_minutes, now=T0 + timedelta(days=100)) == 3600
    assert choose_period(T0, T0 + timedelta(days=3), now=T0 + timedelta(days=3)) == 300
    assert choose_period(T0, T0 + timedelta(days=30), now=T0 + timedelta(days=30)) == 3600
    assert choose_period(T0, T0 + timedelta(days=3000), now=T0 + timedelta(days=3000)) == 86400


def test_bad_requests_are_refused_before_calling(moto_endpoint: str) -> None:
    metrics = CloudWatchMetrics(cloudwatch_client("us-east-1", moto_endpoint), now=lambda: NOW)
    with pytest.raises(RunnerMetricsError, match="not an EC2 instance id"):
        metrics.usage("ubuntu-runner-7", minute(0), minute(5))
    with pytest.raises(RunnerMetricsError, match="before it starts"):
        metrics.usage(instance_id(), minute(5), minute(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        metrics.usage(instance_id(), datetime(2024, 5, 14, 10), minute(5))


def cbor_map(items: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949), enough for an AWS rpc-v2-cbor error body."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return (bytes([0x60 + len(raw)]) if len(raw) < 24 else bytes([0x78, len(raw)])) + raw

    return bytes([0xA0 + len(items)]) + b"".join(text(k) + text(v) for k, v in items.items())


def aws_error(request: Request, code: str, message: str) -> Response:
    """CloudWatch's error in the protocol the request used (botocore picks JSON or CBOR by version)."""
    headers = {"x-amzn-query-error": f"{code};Sender"}
    if "cbor" in (request.content_type or ""):
        body = cbor_map({"__type": code, "message": message})
        headers |= {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    else:
        assert request.content_type == "application/x-amz-json-1.0", request.content_type
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.0"
    return Response(body, status=400, headers=headers)


class Proxy:
    """Answers the first ``fail`` requests with ``error``, then forwards to moto."""

    def __init__(self, server: HTTPServer, upstream: str, fail: int, error: tuple[str, str]) -> None:
        self.upstream, self.fail, self.error = upstream, fail, error
        self.seen: list[str] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        # rpc-v2-cbor names the operation in the path, JSON in the X-Amz-Target header.
        target = request.headers.get("X-Amz-Target") or request.path
        self.seen.append(target.rsplit("/", 1)[-1].rsplit(".", 1)[-1])
        if len(self.seen) <= self.fail:
            return aws_error(request, *self.error)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.post(
            self.upstream + request.full_path.rstrip("?"), data=request.get_data(), headers=headers, timeout=30
        )
        drop = ("content-length", "transfer-encoding", "connection", "content-encoding")
        return Response(
            answer.content,
            status=answer.status_code,
            headers=[(k, v) for k, v in answer.headers.items() if k.lower() not in drop],
        )


def test_throttled_requests_are_retried(moto_endpoint: str, httpserver: HTTPServer) -> None:
    runner = instance_id()
    put(
        cloudwatch_client("us-east-1", moto_endpoint),
        "AWS/EC2",
        "CPUUtilization",
        {"InstanceId": runner},
        [(minute(1), 70.0)],
    )
    proxy = Proxy(httpserver, moto_endpoint, fail=2, error=("Throttling", "Rate exceeded"))
    client = cloudwatch_client("us-east-1", httpserver.url_for("/").rstrip("/"), retries=3)
    usage = CloudWatchMetrics(client, now=lambda: NOW).usage(runner, minute(0), minute(5))
    assert usage.cpu_pct_avg == pytest.approx(70.0)
    assert proxy.seen[:3] == ["ListMetrics"] * 3  # throttled twice, then answered
    assert proxy.seen[3:] == ["GetMetricData"]


def test_throttling_beyond_the_retries_is_one_clear_line(moto_endpoint: str, httpserver: HTTPServer) -> None:
    proxy = Proxy(httpserver, moto_endpoint, fail=1000, error=("Throttling", "Rate exceeded"))
    client = cloudwatch_client("us-east-1", httpserver.url_for("/").rstrip("/"), retries=2)
    with pytest.raises(RunnerMetricsError) as err:
        CloudWatchMetrics(client, now=lambda: NOW).usage(instance_id(), minute(0), minute(5))
    assert len(proxy.seen) == 3
    assert "throttled the requests (Throttling) after 3 attempts" in str(err.value)
    assert "\n" not in str(err.value)


def test_access_denied_says_which_permissions(moto_endpoint: str, httpserver: HTTPServer) -> None:
    proxy = Proxy(httpserver, moto_endpoint, fail=1000, error=("AccessDenied", "User is not authorized"))
    client = cloudwatch_client("us-east-1", httpserver.url_for("/").rstrip("/"), retries=2)
    with pytest.raises(RunnerMetricsError, match="cloudwatch:GetMetricData"):
        CloudWatchMetrics(client, now=lambda: NOW).usage(instance_id(), minute(0), minute(5))
    assert len(proxy.seen) == 1  # not retried


def test_no_region_is_one_clear_line() -> None:
    with pytest.raises(RunnerMetricsError, match="no AWS region"):
        cloudwatch_client(None, None)
