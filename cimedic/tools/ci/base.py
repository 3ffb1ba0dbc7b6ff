"""The one Protocol every CI provider implements, and the typed values that cross it.

A provider reads a run (metadata, jobs, steps, timings), streams its logs to disk and collects
its test reports (or only the reports, without logs), lists recent runs and deployments, and
performs the few write operations self-healing needs.
Writes are dry-run unless asked otherwise: they then say exactly what they would send, reading what
they need to be exact but never writing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cimedic.models import Platform, RunInfo, Status, TestResult
from cimedic.tools.ingest.base import RunMaterial


class RunRef(BaseModel):
    """Which run: parsed from a URL (``cimedic.tools.ci.urls``) or built by a sweep."""

    model_config = ConfigDict(frozen=True, use_enum_values=False)

    platform: Platform
    base_url: str = Field(description="API root (GitHub), server (GitLab, Jenkins) or collection (Azure)")
    project: str = Field(description="owner/repo, group/project, Jenkins job full name, or Azure project")
    run_id: str
    job_id: str | None = Field(default=None, description="one job of the run, when the URL named it")
    url: str = Field(default="", description="the URL the user gave, for messages and the report")


class RunFilter(BaseModel):
    branch: str | None = None
    status: Status | None = Field(default=None, description="only runs that ended this way")
    since: datetime | None = None
    limit: int = Field(default=20, ge=1)
    workflow: str | None = Field(default=None, description="GitHub workflow file or id; Jenkins/Azure definition")


class RunSummary(BaseModel):
    """One line of `cimedic runs list`: enough for history and sweeps without fetching logs."""

    model_config = ConfigDict(use_enum_values=True)

    platform: Platform
    project: str
    id: str
    number: str | None = None
    # The platform's attempt number when its listing says (GitHub run_attempt): a re-run is a new one.
    attempt: int | None = None
    name: str | None = None
    status: Status = Status.UNKNOWN
    branch: str | None = None
    commit: str | None = None
    actor: str | None = None
    event: str | None = None
    url: str | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None


class Deployment(BaseModel):
    """One deployment to an environment as the platform's deployments API records it: DORA's input."""

    model_config = ConfigDict(use_enum_values=True)

    platform: Platform
    project: str
    id: str
    environment: str | None = None
    commit: str | None = Field(default=None, description="the deployed commit (sha)")
    ref: str | None = Field(default=None, description="the deployed branch or tag")
    status: Status = Field(default=Status.UNKNOWN, description="success, failure, cancelled, running or unknown")
    created_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = Field(default=None, description="the CI run (pipeline, build) that deployed, when known")
    url: str | None = None

    @field_validator("created_at", "finished_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # Platforms write UTC; a time without an offset is UTC, so comparisons with `since` never mix kinds.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def as_utc(moment: datetime) -> datetime:
    """``since`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class WriteKind(StrEnum):
    RERUN_FAILED = "rerun-failed"
    CANCEL = "cancel"
    TRIGGER = "trigger"
    COMMENT = "comment"


class WriteResult(BaseModel):
    """What a write did, or with ``dry_run`` what it would have done: the exact request."""

    model_config = ConfigDict(use_enum_values=True)

    kind: WriteKind
    platform: Platform
    target: str = Field(description="the run, pipeline, job or PR the write applies to")
    dry_run: bool
    method: str
    endpoint: str = Field(description="the API path the SDK calls")
    payload: dict[str, Any] = Field(default_factory=dict)
    done: bool = False
    detail: str = ""


class CIProvider(Protocol):
    """A CI platform (or local material) seen the same way by investigate, sweeps and self-healing.

    The writes (``rerun_failed``, ``cancel``, ``trigger``, ``comment``) are dry runs unless ``dry_run=False``.
    A dry run may read (through the guard: GET, and the OPTIONS an SDK sends for route metadata) so that its
    WriteResult names the exact endpoint and payload the write would send and it refuses what the write
    would refuse; it never sends a write (POST, PATCH, PUT or DELETE).
    """

    platform: Platform

    def run(self, ref: RunRef) -> RunInfo:
        """Metadata of one run: jobs, steps, status, timings, runner, commit, branch, PR, actor."""
        ...

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        """The run plus its logs streamed into ``dest`` (failed jobs only unless ``full_logs``) and test reports."""
        ...

    def test_results(self, ref: RunRef) -> list[TestResult]:
        """Every test result the platform keeps for the run, passed ones included, without downloading logs.

        History ingest calls it for every run, passed or failed, to find flaky tests; a run without
        test reports gives an empty list.
        """
        ...

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        """Recent runs of a repository, project or job, newest first, following pagination."""
        ...

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        """Deployments of a project, newest first, at most ``limit``, none created before ``since``.

        Empty where the platform keeps no deployments (Jenkins, local material): DORA then counts the
        runs its deploy pattern names (config/dora.yaml).
        """
        ...

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult: ...

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult: ...

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult: ...

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        """Comment on the run's PR/MR, or its commit when it has none."""
        ...
