"""Reading Jenkins' remote-API JSON: builds, Pipeline Stage View stages and JUnit plugin test reports.

Kept apart from the provider so the shapes Jenkins and its plugins export are decoded in one place:
a build's facts live in its ``actions`` (causes, git data, queue time, parameters), told apart by
``_class``; stages come from the Stage View plugin (``wfapi/describe``); tests from the JUnit plugin.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from cimedic.models import Platform, Status, Step, TestResult, TestStatus
from cimedic.tools.ci.base import RunSummary

JsonObj = dict[str, Any]

RESULTS = {
    "SUCCESS": Status.SUCCESS,
    # UNSTABLE is how Jenkins reports test failures recorded by a step that itself succeeded.
    "UNSTABLE": Status.FAILURE,
    "FAILURE": Status.FAILURE,
    "ABORTED": Status.CANCELLED,
    "NOT_BUILT": Status.SKIPPED,
}
STAGE_STATUS = {
    "SUCCESS": Status.SUCCESS,
    "UNSTABLE": Status.FAILURE,
    "FAILED": Status.FAILURE,
    "ABORTED": Status.CANCELLED,
    "NOT_EXECUTED": Status.SKIPPED,
    "SKIPPED": Status.SKIPPED,
    "IN_PROGRESS": Status.RUNNING,
    "PAUSED_PENDING_INPUT": Status.RUNNING,
}
TEST_STATUS = {
    "PASSED": TestStatus.PASSED,
    "FIXED": TestStatus.PASSED,
    "FAILED": TestStatus.FAILED,
    "REGRESSION": TestStatus.FAILED,
    "SKIPPED": TestStatus.SKIPPED,
}
EVENTS = {
    "hudson.model.Cause$UserIdCause": "manual",
    "hudson.model.Cause$UserCause": "manual",
    "hudson.triggers.TimerTrigger$TimerTriggerCause": "schedule",
    "hudson.triggers.SCMTrigger$SCMTriggerCause": "scm-poll",
    "com.cloudbees.jenkins.GitHubPushCause": "push",
    "hudson.model.Cause$UpstreamCause": "upstream",
    "org.jenkinsci.plugins.workflow.support.steps.build.BuildUpstreamCause": "upstream",
    "hudson.model.Cause$RemoteCause": "remote",
    "jenkins.branch.BranchIndexingCause": "branch-indexing",
    "org.jenkinsci.plugins.workflow.cps.replay.ReplayCause": "replay",
    "org.jenkinsci.plugins.gwt.GenericCause": "webhook",
}
CAUSE_ACTION = "hudson.model.CauseAction"
GIT_BUILD_DATA = "hudson.plugins.git.util.BuildData"
TIME_IN_QUEUE = "jenkins.metrics.impl.TimeInQueueAction"
PARAMETERS = "hudson.model.ParametersAction"
REPORT_PATH = "jenkins testReport"
# Multibranch projects name pull-request jobs PR-<n> (GitHub, Bitbucket) or MR-<n> (GitLab).
_CHANGE_REQUEST = re.compile(r"^(?:PR|MR)-(\d+)$")
_PUSHED_BY = re.compile(r"\bpush(?:ed)? by (\S+)", re.I)

# What `runs` asks Jenkins for per build: enough for a RunSummary, nothing heavier.
BUILD_TREE = (
    "number,url,result,building,timestamp,duration,"
    "actions[causes[shortDescription,userId,userName],lastBuiltRevision[SHA1,branch[name]],queuingDurationMillis]"
)
# The JUnit plugin also exports each case's stdout/stderr, which can dwarf everything else: not asked for.
TEST_TREE = (
    "suites[name,cases[className,name,status,duration,errorDetails,errorStackTrace]],"
    "childReports[result[suites[name,cases[className,name,status,duration,errorDetails,errorStackTrace]]]]"
)


def at_millis(value: Any) -> datetime | None:
    """Jenkins times are epoch milliseconds; 0 means "not recorded"."""
    if not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def job_path(name: str) -> str:
    """``folder/sub/job`` -> ``job/folder/job/sub/job/job/``, each segment quoted as python-jenkins does."""
    return "".join(f"job/{quote(segment)}/" for segment in name.split("/"))


def branch_job_name(branch: str) -> str:
    """The name a multibranch project gives a branch's job: ``feature/x`` -> ``feature%2Fx``."""
    return quote(branch, safe="")


def build_status(build: JsonObj) -> Status:
    result = build.get("result")
    if result is None:
        return Status.RUNNING if build.get("building") or build.get("inProgress") else Status.UNKNOWN
    return RESULTS.get(str(result), Status.UNKNOWN)


def actions(build: JsonObj, cls: str) -> list[JsonObj]:
    return [a for a in build.get("actions") or [] if isinstance(a, dict) and a.get("_class") == cls]


def causes(build: JsonObj) -> list[JsonObj]:
    return [c for a in actions(build, CAUSE_ACTION) for c in a.get("causes") or [] if isinstance(c, dict)]


def actor(build: JsonObj) -> str | None:
    for cause in causes(build):
        if cause.get("userId") or cause.get("userName"):
            return str(cause.get("userId") or cause.get("userName"))
        pushed = _PUSHED_BY.search(str(cause.get("shortDescription") or ""))
        if pushed:
            return pushed.group(1)
    return None


def event(build: JsonObj, pull_request: str | None) -> str | None:
    found = causes(build)
    if not found:
        return None
    cls = str(found[0].get("_class") or "")
    if cls == "jenkins.branch.BranchEventCause":
        return "pull_request" if pull_request else "push"
    if cls in EVENTS:
        return EVENTS[cls]
    # Plugins add their own causes: name the event after the class (GitLabWebHookCause -> gitlab-web-hook).
    short = re.split(r"[.$]", cls)[-1].removesuffix("Cause")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", short).lower() or None


def _branch(name: str) -> str:
    for prefix in ("refs/heads/", "origin/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    if name.startswith("refs/remotes/"):
        return name.split("/", 3)[-1]
    return name


def git(build: JsonObj) -> tuple[str | None, str | None]:
    """(commit, branch) the git plugin recorded; a multibranch build's branch is its SCM head (PR-12)."""
    for data in actions(build, GIT_BUILD_DATA):
        revision = data.get("lastBuiltRevision") or {}
        sha = revision.get("SHA1")
        if not sha:
            continue
        names = [b.get("name") for b in revision.get("branch") or [] if isinstance(b, dict) and b.get("name")]
        return str(sha), _branch(str(names[0])) if names else None
    return None, None


def pull_request(branch: str | None, job_name: str) -> str | None:
    for candidate in (branch or "", unquote(job_name.rsplit("/", 1)[-1])):
        found = _CHANGE_REQUEST.match(candidate)
        if found:
            return found.group(1)
    return None


def queued_at(build: JsonObj, started: datetime | None) -> datetime | None:
    """Queue time is only known with the Metrics plugin (TimeInQueueAction)."""
    for action in actions(build, TIME_IN_QUEUE):
        waited = action.get("queuingDurationMillis")
        if started is not None and isinstance(waited, int | float) and waited >= 0:
            return started - timedelta(milliseconds=waited)
    return None


def finished_at(build: JsonObj, started: datetime | None) -> datetime | None:
    duration = build.get("duration")
    if started is None or build.get("building") or not isinstance(duration, int | float) or duration <= 0:
        return None
    return started + timedelta(milliseconds=duration)


def parameters(build: JsonObj) -> dict[str, str]:
    """The build's parameter values (password and file parameters export no value: left out)."""
    values: dict[str, str] = {}
    for action in actions(build, PARAMETERS):
        for param in action.get("parameters") or []:
            if not isinstance(param, dict) or "value" not in param or param.get("value") is None:
                continue
            value = param["value"]
            values[str(param["name"])] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def stages(describe: JsonObj | None) -> tuple[list[Step], str | None]:
    """Stage View stages as steps, and the agent the first stage ran on."""
    steps: list[Step] = []
    node: str | None = None
    for number, stage in enumerate((describe or {}).get("stages") or [], start=1):
        started = at_millis(stage.get("startTimeMillis"))
        duration = stage.get("durationMillis")
        steps.append(
            Step(
                name=str(stage.get("name") or f"stage {number}"),
                number=number,
                status=STAGE_STATUS.get(str(stage.get("status")), Status.UNKNOWN),
                started_at=started,
                finished_at=started + timedelta(milliseconds=duration)
                if started is not None and isinstance(duration, int | float) and duration >= 0
                else None,
            )
        )
        node = node or stage.get("execNode") or None
    return steps, node


def runner(build: JsonObj, stage_node: str | None) -> str | None:
    # Freestyle builds say where they ran; "" is the controller's own executor. Pipelines only per stage.
    if "builtOn" in build:
        return str(build["builtOn"]) or "built-in"
    return stage_node


def _suites(report: JsonObj) -> list[JsonObj]:
    suites = [s for s in report.get("suites") or [] if isinstance(s, dict)]
    # Maven-type jobs aggregate one report per module.
    for child in report.get("childReports") or []:
        suites.extend(s for s in ((child or {}).get("result") or {}).get("suites") or [] if isinstance(s, dict))
    return suites


def test_results(report: JsonObj | None) -> list[TestResult]:
    results: list[TestResult] = []
    for suite in _suites(report or {}):
        for case in suite.get("cases") or []:
            status = TEST_STATUS.get(str(case.get("status")))
            if status is None:
                continue
            duration = case.get("duration")
            results.append(
                TestResult(
                    name=str(case.get("name")),
                    classname=case.get("className"),
                    suite=suite.get("name"),
                    status=status,
                    message=case.get("errorDetails"),
                    details=case.get("errorStackTrace"),
                    duration_s=float(duration) if isinstance(duration, int | float) else None,
                    report_path=REPORT_PATH,
                )
            )
    return results


def summary(project: str, build: JsonObj, *, branch: str | None = None) -> RunSummary:
    """One build of ``project`` (its job full name) as `runs` lists it."""
    commit, git_branch = git(build)
    started = at_millis(build.get("timestamp"))
    finished = finished_at(build, started)
    branch = branch or git_branch
    return RunSummary(
        platform=Platform.JENKINS,
        project=project,
        id=str(build.get("number")),
        number=str(build.get("number")),
        name=project,
        status=build_status(build),
        branch=branch,
        commit=commit,
        actor=actor(build),
        event=event(build, pull_request(branch, project)),
        url=build.get("url"),
        queued_at=queued_at(build, started),
        started_at=started,
        finished_at=finished,
        duration_s=(finished - started).total_seconds() if started and finished else None,
    )
