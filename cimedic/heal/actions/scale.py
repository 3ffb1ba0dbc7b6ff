"""Scale a self-hosted runner pool, an EC2 Auto Scaling group, when jobs wait too long for a runner.

plan() reads the group and its recent scaling activities and decides with ``cimedic.heal.scaling``;
execute() sets the desired capacity and nothing else. It passes HonorCooldown=False: the cooldown
that matters was already applied in the plan (from the group's own activity history), and the step
the policy approved must not be silently dropped by a group-level cooldown it never saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from cimedic.errors import InputError
from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.heal.scaling import Capacity, Decision, QueueSignals, ScalePolicy, decide
from cimedic.models import Action, ActionKind, Diagnosis
from cimedic.settings import Settings, get_settings

# AWS writes this into the Cause of every activity that changed a group's desired capacity (user
# request, scaling policy, schedule); instance replacements after a failed health check lack it and
# must not hold scaling back.
_CAPACITY_CHANGE = "changing the desired capacity from"


class ScalingError(InputError):
    """The Auto Scaling group cannot be read or changed: one line naming the group and the problem."""


def autoscaling_client(region: str | None, endpoint_url: str | None, *, retries: int = 5) -> Any:
    """A boto3 Auto Scaling client with standard retries (backoff on throttling)."""
    try:
        import boto3
    except ModuleNotFoundError as exc:
        raise ScalingError("Auto Scaling", "scaling runners needs boto3: pip install 'cimedic[aws]'") from exc
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "standard", "total_max_attempts": retries + 1}, connect_timeout=30, read_timeout=30
    )
    try:
        return boto3.session.Session(region_name=region).client("autoscaling", endpoint_url=endpoint_url, config=config)
    except NoRegionError as exc:
        raise ScalingError("Auto Scaling", "no AWS region: set aws_region") from exc


@contextmanager
def _aws(group: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = " ".join(str(error.get("Message", "")).split())[:200]
        raise ScalingError(group, f"Auto Scaling answered {error.get('Code', 'an error')}: {message}") from exc
    except BotoCoreError as exc:
        raise ScalingError(group, " ".join(str(exc).split())[:200]) from exc


class ScaleRunners:
    """``Healer`` for ActionKind.SCALE; ``groups`` maps a runner label or pool to its group's name."""

    kind: ClassVar[ActionKind] = ActionKind.SCALE

    def __init__(
        self,
        groups: dict[str, str] | None = None,
        *,
        policy: ScalePolicy | None = None,
        client: Any = None,
        settings: Settings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.groups = dict(groups or {})
        self.policy = policy or ScalePolicy()
        self._client, self._settings, self.now = client, settings, now

    def client(self, settings: Settings | None = None) -> Any:
        # One client per healer: the first settings seen (the context's, else the constructor's) choose it.
        if self._client is None:
            settings = settings or self._settings or get_settings()
            self._client = autoscaling_client(settings.aws_region, settings.aws_endpoint_url)
        return self._client

    def plan(self, action: Action, ctx: HealContext) -> Step:
        self.groups = self.groups or dict(ctx.settings.runner_groups)
        name = self.group_for(action)
        client = self.client(ctx.settings)
        samples, length, busy = _params(action.params, name)
        samples = run_queue_times(ctx.diagnosis) + samples
        capacity = describe(client, name)
        last = last_capacity_change(client, name)
        signals = QueueSignals(samples, length, busy, self._since(last))
        decision = decide(capacity, signals, self.policy)
        if not decision.delta:
            raise ValueError(f"scale {name}: nothing to do: {decision.why}")
        return _step(name, capacity, decision, key=f"scale:{name}:{run_key(ctx)}")

    def scale_down_if_idle(
        self,
        group: str,
        recent_queue_samples: list[float],
        *,
        queue_length: int | None = None,
        utilisation: float | None = None,
    ) -> Step | None:
        """For periodic sweeps: the step shrinking an idle ``group``, or None; never grows a group.

        Like plan() it only reads: the step goes through the policy and audit before execute().
        """
        client = self.client()
        capacity, last = describe(client, group), last_capacity_change(client, group)
        signals = QueueSignals(recent_queue_samples, queue_length, utilisation, self._since(last))
        decision = decide(capacity, signals, self.policy)
        if decision.delta >= 0:
            return None
        # Keyed by the group's state, not a run: the same shrink from the same state runs once.
        since = last.isoformat() if last else "never"
        return _step(group, capacity, decision, key=f"scale:{group}:{decision.current}->{decision.desired}:{since}")

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        name, planned, desired = step.target, int(step.request["current"]), int(step.request["desired"])
        if ctx.dry_run:  # the caller should never get here in a dry run; a guard costs nothing
            return Outcome(done=False, detail=f"dry run: {name} not changed")
        client = self.client(ctx.settings)
        try:
            now = describe(client, name).desired
            if now == desired:
                return Outcome(done=True, detail=f"{name} already wants {desired} runner(s)", data={"desired": desired})
            if now != planned:
                # Someone (a scaling policy, a person) moved it since the plan: our change was for another state.
                return Outcome(done=False, detail=f"{name} changed from {planned} to {now} since the plan: plan again")
            with _aws(name):
                client.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False)
        except ScalingError as exc:
            return Outcome(done=False, detail=str(exc))
        return Outcome(done=True, detail=f"{name}: desired capacity {planned} -> {desired}", data={"desired": desired})

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        """FIXED once enough runners are InService and Healthy; raises ScalingError when the group cannot be read."""
        if not outcome.done:
            return Verdict.NOT_FIXED, outcome.detail
        name, desired = step.target, int(step.request["desired"])
        up = desired >= int(step.request["current"])
        capacity = describe(self.client(ctx.settings), name)
        ready = capacity.in_service or 0
        if (ready >= desired) if up else (ready <= desired):
            return Verdict.FIXED, f"{name}: {ready} runner(s) in service, {desired} wanted"
        return Verdict.PENDING, f"{name}: {ready} of {desired} runner(s) in service so far"

    def group_for(self, action: Action) -> str:
        """The group: params "group", else the mapped label/pool (params or target), else a mapped group's name."""
        if group := action.params.get("group"):
            return group
        for label in (action.params.get("pool"), action.params.get("label"), action.target):
            if label and label in self.groups:
                return self.groups[label]
        if action.target in self.groups.values():
            return action.target
        raise ValueError(f"which Auto Scaling group runs {action.target!r}? give params group, or map the label")

    def _since(self, last: datetime | None) -> float | None:
        return (self.now() - last).total_seconds() if last else None


def _params(params: dict[str, str], name: str) -> tuple[list[float], int | None, float | None]:
    """Extra signals an action may carry: queue_samples "s1,s2,...", queue_length "n", utilisation "0..1"."""
    try:
        samples = [float(v) for v in params.get("queue_samples", "").split(",") if v.strip()]
        length = int(params["queue_length"]) if "queue_length" in params else None
        busy = float(params["utilisation"]) if "utilisation" in params else None
    except ValueError as exc:
        raise ValueError(f"scale {name}: bad queue_samples, queue_length or utilisation ({exc})") from exc
    if (length is not None and length < 0) or (busy is not None and not 0 <= busy <= 1):
        raise ValueError(f"scale {name}: queue_length must be >= 0 and utilisation within 0..1")
    return samples, length, busy


def run_queue_times(diagnosis: Diagnosis) -> list[float]:
    """Queue times of the diagnosed run's jobs, or of the run itself when its jobs have none."""
    run = diagnosis.run
    if run is None:
        return []
    jobs = [job.queue_s for job in run.jobs if job.queue_s is not None]
    return jobs or ([run.queue_s] if run.queue_s is not None else [])


def describe(client: Any, name: str) -> Capacity:
    """The group's bounds, desired capacity and runners InService and Healthy (the ones taking jobs)."""
    with _aws(name):
        groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        raise ScalingError(name, "no such Auto Scaling group in this account and region")
    group = groups[0]
    ready = sum(
        1
        for i in group.get("Instances", [])
        if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"
    )
    return Capacity(group["MinSize"], group["MaxSize"], group["DesiredCapacity"], ready)


def last_capacity_change(client: Any, name: str) -> datetime | None:
    """When the group's desired capacity last changed, from its recent scaling activities (newest first)."""
    with _aws(name):
        activities = client.describe_scaling_activities(AutoScalingGroupName=name, MaxRecords=20)["Activities"]
    times = [a["StartTime"] for a in activities if _CAPACITY_CHANGE in a.get("Cause", "")]
    return max(times) if times else None


def _step(name: str, capacity: Capacity, decision: Decision, *, key: str) -> Step:
    verb = "grow" if decision.delta > 0 else "shrink"
    return Step(
        kind=ActionKind.SCALE,
        target=name,
        key=key,
        summary=f"{verb} {name} from {decision.current} to {decision.desired} runner(s): {decision.why}",
        request={
            "endpoint": "autoscaling:SetDesiredCapacity",
            "group": name,
            "current": decision.current,
            "desired": decision.desired,
            "min": capacity.minimum,
            "max": capacity.maximum,
            "why": decision.why,
        },
    )
