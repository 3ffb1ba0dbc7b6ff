"""ScaleRunners against moto's server over real HTTP: a launch template, an Auto Scaling group, runners.

moto launches and terminates the group's instances as the desired capacity moves, so what verify
reads is the group's real instance list. moto records no scaling activities, so the cooldown tests
put a small HTTP proxy in front of it that answers DescribeScalingActivities the way AWS does and
passes every other request on.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.heal.actions.scale import ScaleRunners, ScalingError, autoscaling_client
from cimedic.heal.base import HealContext, Outcome, Verdict
from cimedic.heal.scaling import ScalePolicy
from cimedic.models import Action, ActionKind, Category, Diagnosis, Job, Platform, RunInfo, Source, SourceKind
from cimedic.settings import Settings

NOW = datetime(2024, 5, 14, 10, 0, tzinfo=UTC)
REGION = "us-east-1"


pytestmark = pytest.mark.usefixtures("aws_env")


def make_group(endpoint: str, *, minimum: int, maximum: int, desired: int) -> str:
    """A launch template for c6i.large runners and a group of them; returns the group's name."""
    name = f"ci-runners-{uuid.uuid4().hex[:8]}"
    ec2 = boto3.session.Session(region_name=REGION).client("ec2", endpoint_url=endpoint)
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": "ami-0abcdef1234567890", "InstanceType": "c6i.large"},
    )
    autoscaling_client(REGION, endpoint).create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        MinSize=minimum,
        MaxSize=maximum,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{REGION}a", f"{REGION}b"],
    )
    return name


def group_state(endpoint: str, name: str) -> tuple[int, list[dict[str, Any]]]:
    group = autoscaling_client(REGION, endpoint).describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    found = group["AutoScalingGroups"][0]
    return found["DesiredCapacity"], found["Instances"]


def diagnosis(queue_s: list[float]) -> Diagnosis:
    """An infra failure of a GitHub Actions run whose jobs waited ``queue_s`` for a runner."""
    jobs = [
        Job(name=f"build-{i}", queued_at=NOW, started_at=NOW + timedelta(seconds=q), runner="linux-x64")
        for i, q in enumerate(queue_s)
    ]
    run = RunInfo(platform=Platform.GITHUB_ACTIONS, id="9001", project="acme/shop", attempt=1, jobs=jobs)
    return Diagnosis(
        source=Source(kind=SourceKind.GITHUB_ACTIONS, path="https://github.com/acme/shop/actions/runs/9001"),
        category=Category.INFRA,
        confidence=0.9,
        summary="jobs waited for a self-hosted runner",
        excerpt=None,
        run=run,
    )


def context(endpoint: str, queue_s: list[float]) -> HealContext:
    settings = Settings(aws_region=REGION, aws_endpoint_url=endpoint)
    return HealContext(diagnosis(queue_s), settings, dry_run=False)


def scale(target: str = "linux-x64", **params: str) -> Action:
    return Action(kind=ActionKind.SCALE, target=target, reason="jobs queue for runners", params=params)


class Calls:
    """Records the SetDesiredCapacity requests a client sends (botocore's own event hook)."""

    def __init__(self, client: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.autoscaling.SetDesiredCapacity", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(dict(params))


def test_plan_reads_execute_writes_exactly_once(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    ctx = context(moto_endpoint, [200.0, 260.0, 300.0, 45.0])  # p75 270 s
    client = autoscaling_client(REGION, moto_endpoint)
    calls = Calls(client)
    healer = ScaleRunners({"linux-x64": name}, client=client)

    step = healer.plan(scale(queue_length="3"), ctx)
    assert step.kind is ActionKind.SCALE and step.target == name
    assert step.key == f"scale:{name}:github-actions:acme/shop:9001:1"
    assert {k: step.request[k] for k in ("group", "current", "desired", "min", "max")} == {
        "group": name,
        "current": 2,
        "desired": 5,
        "min": 1,
        "max": 8,
    }
    assert "p75 queue time 270 s is over the 120 s target" in step.request["why"]
    assert step.summary.startswith(f"grow {name} from 2 to 5 runner(s)")
    desired, instances = group_state(moto_endpoint, name)
    assert (desired, len(instances), calls.sent) == (2, 2, [])  # the plan wrote nothing

    outcome = healer.execute(step, ctx)
    assert outcome.done and outcome.data == {"desired": 5}
    assert calls.sent == [{"AutoScalingGroupName": name, "DesiredCapacity": 5, "HonorCooldown": False}]
    desired, instances = group_state(moto_endpoint, name)
    assert desired == 5 and sum(i["LifecycleState"] == "InService" for i in instances) == 5
    assert healer.verify(step, outcome, ctx) == (Verdict.FIXED, f"{name}: 5 runner(s) in service, 5 wanted")

    again = healer.execute(step, ctx)
    assert again.done and "already wants 5" in again.detail
    assert len(calls.sent) == 1  # the second execute sent nothing
    assert group_state(moto_endpoint, name)[0] == 5


def test_without_a_backlog_count_the_run_alone_sizes_the_step(moto_endpoint: str) -> None:
    # The healer builds its own client from settings (aws_region, aws_endpoint_url).
    name = make_group(moto_endpoint, minimum=0, maximum=10, desired=2)
    ctx = context(moto_endpoint, [300.0])
    # 2 runners, p75 (300, 180, 240 with the extra samples) 270 s: 2 * (270/120 - 1) = 2.5 -> 3 more.
    step = ScaleRunners().plan(scale(name, group=name, queue_samples="180,240"), ctx)
    assert (step.request["current"], step.request["desired"]) == (2, 5)


def test_bounds_are_respected(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=4, desired=3)
    ctx = context(moto_endpoint, [600.0, 900.0])
    healer = ScaleRunners({"linux-x64": name}, policy=ScalePolicy(max_step_up=10))
    step = healer.plan(scale(queue_length="25"), ctx)
    assert step.request["desired"] == 4  # 25 queued, but the group's maximum is 4
    assert healer.execute(step, ctx).done
    assert group_state(moto_endpoint, name)[0] == 4
    with pytest.raises(ValueError, match="at its maximum of 4"):
        healer.plan(scale(queue_length="25"), ctx)

    floor = make_group(moto_endpoint, minimum=2, maximum=6, desired=3)
    sweeper = ScaleRunners(policy=ScalePolicy(step_down=5), settings=ctx.settings)
    down = sweeper.scale_down_if_idle(floor, [1.0, 0.0, 2.0], queue_length=0, utilisation=0.1)
    assert down is not None and (down.request["current"], down.request["desired"]) == (3, 2)
    assert sweeper.execute(down, ctx).done
    assert group_state(moto_endpoint, floor)[0] == 2
    assert sweeper.scale_down_if_idle(floor, [], queue_length=0, utilisation=0.0) is None  # at the minimum


def test_idle_sweep_shrinks_one_runner_and_never_grows(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=6, desired=4)
    settings = Settings(aws_region=REGION, aws_endpoint_url=moto_endpoint)
    sweeper = ScaleRunners(settings=settings)
    assert sweeper.scale_down_if_idle(name, [600.0, 700.0], queue_length=5, utilisation=1.0) is None
    assert sweeper.scale_down_if_idle(name, [1.0, 2.0]) is None  # utilisation unknown: an empty queue is not enough
    step = sweeper.scale_down_if_idle(name, [1.0, 2.0, 0.5], utilisation=0.25)
    assert step is not None
    assert step.key == f"scale:{name}:4->3:never"
    assert step.summary.startswith(f"shrink {name} from 4 to 3 runner(s): idle")
    ctx = context(moto_endpoint, [])
    outcome = sweeper.execute(step, ctx)
    desired, instances = group_state(moto_endpoint, name)
    assert outcome.done and desired == 3 and len(instances) == 3
    assert sweeper.verify(step, outcome, ctx)[0] is Verdict.FIXED


def test_verify_waits_for_healthy_runners(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    ctx = context(moto_endpoint, [400.0, 500.0])
    healer = ScaleRunners({"linux-x64": name})
    step = healer.plan(scale(queue_length="2"), ctx)
    outcome = healer.execute(step, ctx)
    # One new runner fails its health check: AWS is replacing it, so the pool is not there yet.
    _, instances = group_state(moto_endpoint, name)
    autoscaling_client(REGION, moto_endpoint).set_instance_health(
        InstanceId=instances[-1]["InstanceId"], HealthStatus="Unhealthy"
    )
    assert healer.verify(step, outcome, ctx) == (Verdict.PENDING, f"{name}: 3 of 4 runner(s) in service so far")
    failed = Outcome(done=False, detail="refused")
    assert healer.verify(step, failed, ctx) == (Verdict.NOT_FIXED, "refused")


def test_execute_refuses_a_group_moved_since_the_plan(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    ctx = context(moto_endpoint, [400.0])
    healer = ScaleRunners({"linux-x64": name})
    step = healer.plan(scale(queue_length="1"), ctx)
    autoscaling_client(REGION, moto_endpoint).set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=6)
    outcome = healer.execute(step, ctx)
    assert not outcome.done and outcome.detail == f"{name} changed from 2 to 6 since the plan: plan again"
    assert group_state(moto_endpoint, name)[0] == 6


def test_a_dry_run_context_never_writes(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    ctx = context(moto_endpoint, [400.0])
    healer = ScaleRunners({"linux-x64": name})
    step = healer.plan(scale(queue_length="1"), ctx)
    ctx.dry_run = True
    outcome = healer.execute(step, ctx)
    assert (outcome.done, outcome.detail) == (False, f"dry run: {name} not changed")
    assert group_state(moto_endpoint, name)[0] == 2


def test_what_cannot_be_planned_says_why(moto_endpoint: str) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    healer = ScaleRunners({"linux-x64": name})
    with pytest.raises(ValueError, match=r"nothing to do: p75 queue time 60 s is between 15 s and 120 s"):
        healer.plan(scale(), context(moto_endpoint, [60.0, 60.0]))
    with pytest.raises(ValueError, match="which Auto Scaling group runs 'windows-arm'"):
        healer.plan(scale("windows-arm"), context(moto_endpoint, [600.0]))
    with pytest.raises(ValueError, match="bad queue_samples"):
        healer.plan(scale(queue_samples="lots"), context(moto_endpoint, [600.0]))
    with pytest.raises(ValueError, match=r"utilisation within 0\.\.1"):
        healer.plan(scale(utilisation="1.5"), context(moto_endpoint, [600.0]))
    with pytest.raises(ScalingError, match="no such Auto Scaling group"):
        healer.plan(scale(group="nope"), context(moto_endpoint, [600.0]))
    # A group's own name is accepted as the target when it is one of the configured groups.
    assert healer.group_for(scale(name)) == name
    assert healer.group_for(scale("anything", pool="linux-x64")) == name


def activities_xml(name: str, *items: tuple[datetime, str]) -> str:
    members = "".join(
        f"<member><ActivityId>{uuid.uuid4()}</ActivityId><AutoScalingGroupName>{name}</AutoScalingGroupName>"
        f"<Description>Launching a new EC2 instance</Description><Cause>{cause}</Cause>"
        f"<StartTime>{start.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</StartTime><StatusCode>Successful</StatusCode>"
        "<Progress>100</Progress></member>"
        for start, cause in items
    )
    return (
        '<DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
        f"<DescribeScalingActivitiesResult><Activities>{members}</Activities></DescribeScalingActivitiesResult>"
        "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"
    )


class ActivityProxy:
    """Answers DescribeScalingActivities with ``body``; forwards everything else to moto."""

    def __init__(self, server: HTTPServer, upstream: str, body: str) -> None:
        self.upstream, self.body = upstream, body
        server.expect_request(re.compile(".*")).respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        data = request.get_data()
        if parse_qs(data.decode()).get("Action") == ["DescribeScalingActivities"]:
            return Response(self.body, status=200, content_type="text/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.post(self.upstream + request.full_path.rstrip("?"), data=data, headers=headers, timeout=30)
        drop = ("content-length", "transfer-encoding", "connection", "content-encoding")
        return Response(
            answer.content,
            status=answer.status_code,
            headers=[(k, v) for k, v in answer.headers.items() if k.lower() not in drop],
        )


def test_a_recent_capacity_change_holds_the_plan(moto_endpoint: str, httpserver: HTTPServer) -> None:
    name = make_group(moto_endpoint, minimum=1, maximum=8, desired=2)
    changed = (
        "At 2024-05-14T09:58:00Z a user request explicitly set group desired capacity "
        "changing the desired capacity from 1 to 2."
    )
    replaced = "At 2024-05-14T09:59:30Z an instance was taken out of service in response to an EC2 health check."
    ActivityProxy(
        httpserver,
        moto_endpoint,
        activities_xml(name, (NOW - timedelta(seconds=30), replaced), (NOW - timedelta(minutes=2), changed)),
    )
    proxied = Settings(aws_region=REGION, aws_endpoint_url=httpserver.url_for("/").rstrip("/"))
    ctx = HealContext(diagnosis([600.0]), proxied, dry_run=False)
    healer = ScaleRunners({"linux-x64": name}, now=lambda: NOW)
    with pytest.raises(ValueError, match="capacity changed 120 s ago, within the 300 s cooldown"):
        healer.plan(scale(queue_length="2"), ctx)
    # The health-check replacement 30 s ago is not a capacity change; past the cooldown the plan goes ahead.
    later = ScaleRunners({"linux-x64": name}, now=lambda: NOW + timedelta(minutes=4))
    assert later.plan(scale(queue_length="2"), ctx).request["desired"] == 4
    # A sweep's key carries the last change: the same shrink after another change is a new step.
    down = later.scale_down_if_idle(name, [1.0], utilisation=0.0)
    assert down is not None and down.key == f"scale:{name}:2->1:2024-05-14T09:58:00+00:00"
