"""The CI run cimedic is running inside, worked out from the platform's documented variables.

Only ``cimedic.settings`` reads the environment: it collects the variables named here, under their
documented names, into ``Settings.ci_env``; ``PipelineEnv.from_mapping`` turns that mapping into the
current run. Tokens are not among them: they stay in the settings' own token fields.

- GitHub Actions: ``GITHUB_SERVER_URL``/``GITHUB_REPOSITORY``/``GITHUB_RUN_ID`` name the run,
  ``GITHUB_RUN_ATTEMPT`` the attempt, the event payload at ``GITHUB_EVENT_PATH`` the pull request, and
  ``GITHUB_STEP_SUMMARY`` the step's summary file.
- GitLab CI: ``CI_SERVER_URL``/``CI_PROJECT_PATH``/``CI_PIPELINE_ID`` name the pipeline,
  ``CI_MERGE_REQUEST_IID`` the merge request (merge request pipelines only).
- Jenkins: ``BUILD_URL`` is the build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.settings import CI_ENV_NAMES

# Every variable from_mapping reads: the names settings collects into ci_env, listed there once.
VARIABLES = CI_ENV_NAMES

SUBJECT = "ci-report"
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_PROJECT_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+")


class PipelineEnv(BaseModel):
    """The current run: where it is, which attempt, its pull/merge request and where its summary goes."""

    model_config = ConfigDict(frozen=True)

    platform: Platform
    run_url: str = Field(description="the run's web URL, as `cimedic investigate` takes it")
    project: str = Field(default="", description="owner/repo or group/project; empty for Jenkins")
    run_id: str = ""
    attempt: int = Field(default=1, ge=1)
    api_url: str | None = Field(default=None, description="GitHub's REST API root for this job (GITHUB_API_URL)")
    pull_request: int | None = Field(default=None, description="the PR number (GitHub) or MR iid (GitLab)")
    summary_path: Path | None = Field(default=None, description="GitHub's job summary file for this step")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> PipelineEnv:
        """The run the variables describe; an InputError when they describe no CI job cimedic knows."""
        env = {key: value.strip() for key, value in mapping.items() if value and value.strip()}
        if env.get("GITHUB_ACTIONS") == "true" or "GITHUB_RUN_ID" in env:
            return cls._github(env)
        if env.get("GITLAB_CI") == "true" or "CI_PIPELINE_ID" in env:
            return cls._gitlab(env)
        if "BUILD_URL" in env:
            return cls(platform=Platform.JENKINS, run_url=env["BUILD_URL"])
        raise InputError(
            SUBJECT,
            "not inside a CI job cimedic knows: no GitHub Actions (GITHUB_RUN_ID), GitLab CI (CI_PIPELINE_ID) "
            "or Jenkins (BUILD_URL) variables",
        )

    @classmethod
    def _github(cls, env: dict[str, str]) -> PipelineEnv:
        repository = _required(env, "GITHUB_REPOSITORY", _REPOSITORY, "OWNER/REPO")
        run_id = _required(env, "GITHUB_RUN_ID", re.compile(r"\d+"), "a number")
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
        summary = env.get("GITHUB_STEP_SUMMARY")
        return cls(
            platform=Platform.GITHUB_ACTIONS,
            run_url=f"{server}/{repository}/actions/runs/{run_id}",
            project=repository,
            run_id=run_id,
            attempt=int(attempt) if attempt.isdigit() and int(attempt) > 0 else 1,
            api_url=env["GITHUB_API_URL"].rstrip("/") if "GITHUB_API_URL" in env else None,
            pull_request=event_pull_request(env.get("GITHUB_EVENT_PATH")),
            summary_path=Path(summary) if summary else None,
        )

    @classmethod
    def _gitlab(cls, env: dict[str, str]) -> PipelineEnv:
        server = _required(env, "CI_SERVER_URL", re.compile(r"https?://\S+"), "an http(s) URL").rstrip("/")
        project = _required(env, "CI_PROJECT_PATH", _PROJECT_PATH, "GROUP/PROJECT")
        pipeline = _required(env, "CI_PIPELINE_ID", re.compile(r"\d+"), "a number")
        iid = env.get("CI_MERGE_REQUEST_IID", "")
        return cls(
            platform=Platform.GITLAB,
            run_url=f"{server}/{project}/-/pipelines/{pipeline}",
            project=project,
            run_id=pipeline,
            pull_request=int(iid) if iid.isdigit() and int(iid) > 0 else None,
        )


def _required(env: dict[str, str], name: str, shape: re.Pattern[str], expected: str) -> str:
    value = env.get(name)
    if value is None:
        raise InputError(SUBJECT, f"{name} is not set")
    if not shape.fullmatch(value):
        raise InputError(SUBJECT, f"{name} is not {expected}")
    return value


def event_pull_request(path: str | None) -> int | None:
    """The pull request a GitHub event payload names: ``pull_request.number`` (pull_request and
    pull_request_target events, reviews) or the issue number of a comment on a pull request.
    None for other events (push, schedule, workflow_dispatch) and for a payload that cannot be read."""
    if not path:
        return None
    try:
        event: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    number: Any = None
    pull = event.get("pull_request")
    issue = event.get("issue")
    if isinstance(pull, dict):
        number = pull.get("number")
    elif isinstance(issue, dict) and issue.get("pull_request"):
        number = issue.get("number")
    # bool is an int; a payload's number never is one.
    return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else None
