"""GitHub Actions through PyGithub: workflow runs, their jobs and steps, job logs, JUnit artifacts,
run listings, and the write operations (re-run failed jobs, cancel, dispatch, comment).

Every request goes through the provider's ``Guard``; PyGithub's own retries are off (``retry=None``)
so the guard is the only retry policy. Job logs and artifacts are served by GitHub as a redirect to
a short-lived signed blob URL: the SDK asks for the location, and ``requests`` streams the blob to
disk without sending the token to the blob host.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from github import Auth, Github, GithubException
from github.Artifact import Artifact
from github.Deployment import Deployment as GitHubDeployment
from github.DeploymentStatus import DeploymentStatus
from github.GithubObject import GithubObject
from github.PaginatedList import PaginatedList
from github.WorkflowRun import WorkflowRun

from cimedic.models import Job, Platform, RunInfo, Status, TestResult
from cimedic.settings import CIClient, Limits, Settings
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteKind, WriteResult, as_utc
from cimedic.tools.ci.download import LogSource, fetch_logs, material
from cimedic.tools.ci.github_convert import (
    DeployState,
    deploy_record,
    deploy_state,
    deployment_of,
    job_of,
    run_info,
    summary_of,
)
from cimedic.tools.ci.github_reports import ReportArtifact, collect_reports
from cimedic.tools.ci.guard import Guard, HttpFailure, ProviderError
from cimedic.tools.ingest.base import RunMaterial

TOKEN_SETTING = "CIMEDIC_GITHUB_TOKEN"
READ_SCOPES = (
    'classic token scope "repo" (private repositories) or fine-grained permission "Actions: read" '
    '("Deployments: read" for deployments)'
)
WRITE_SCOPES = (
    'classic token scopes "repo" and "workflow", or fine-grained permissions "Actions: write" '
    '(plus "Pull requests: write" to comment on a pull request, "Contents: write" on a commit)'
)
CHUNK = 64 * 1024
MAX_PER_PAGE = 100  # GitHub's ceiling for list endpoints

G = TypeVar("G", bound=GithubObject)
R = TypeVar("R")

# The `status` query parameter of the runs listing, for the statuses it can filter on.
_LIST_STATUS = {
    Status.FAILURE: "failure",
    Status.SUCCESS: "success",
    Status.CANCELLED: "cancelled",
    Status.SKIPPED: "skipped",
    Status.RUNNING: "in_progress",
}
_QUERY = re.compile(r"\?[^\s'\")]*")


def classify(exc: BaseException) -> HttpFailure | None:
    """What PyGithub's and requests' exceptions say about the HTTP exchange; None for real bugs."""
    if isinstance(exc, GithubException):
        headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
        data = exc.data
        said = data.get("message") or data.get("data") if isinstance(data, dict) else None
        return HttpFailure(exc.status, headers, str(said or exc.message or ""))
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        # Not str(exc): it carries the blob URL, whose query string is a signature.
        response = exc.response
        return HttpFailure(response.status_code, dict(response.headers), f"{response.status_code} {response.reason}")
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return HttpFailure(None, {}, _QUERY.sub("", str(exc)))
    return None


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # A session whose auth is None falls back to ~/.netrc; the blob host must get no credentials at all.
    return request


def _number(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ProviderError(value, f"a GitHub {what} is a number") from None


class GitHubProvider:
    """GitHub.com or GitHub Enterprise Server; ``base_url`` is the REST API root."""

    platform = Platform.GITHUB_ACTIONS

    def __init__(
        self,
        base_url: str,
        token: str | None,
        client: CIClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        limits: Limits | None = None,
        per_page: int = MAX_PER_PAGE,
        seconds_between_requests: float | None = 0.25,
        seconds_between_writes: float | None = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.limits = limits or Limits()
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))
        # lazy=True: PyGithub objects make no request until asked, so every request is one we make
        # explicitly inside guard.call. The pacing between requests is GitHub's advice against
        # secondary rate limits, not a retry.
        self.gh = Github(
            base_url=self.base_url,
            auth=Auth.Token(token) if token else None,
            timeout=max(1, math.ceil(client.timeout_s)),
            retry=None,
            per_page=self.per_page,
            user_agent="cimedic",
            lazy=True,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self.guard = Guard(
            self.platform,
            self.base_url,
            token_setting=TOKEN_SETTING,
            read_scopes=READ_SCOPES,
            write_scopes=WRITE_SCOPES,
            classify=classify,
            client=client,
            has_token=token is not None,
            sleep=sleep,
        )
        self._blobs = requests.Session()
        self._blobs.auth = _no_auth

    @classmethod
    def from_settings(cls, base_url: str, settings: Settings) -> GitHubProvider:
        token = settings.github_token.get_secret_value() if settings.github_token else None
        return cls(base_url or settings.effective_github_api_url, token, settings.ci, limits=settings.limits)

    # -- reading ---------------------------------------------------------------------------------

    def _pages(self, subject: str, listing: PaginatedList[G], convert: Callable[[G], R]) -> Iterator[R]:
        """Page by page, each page one guarded request (converted inside it, so a lazy attribute
        that needs a request is guarded too); stops at the first short page."""
        page = 0
        while True:

            def fetch(page: int = page) -> tuple[int, list[R]]:
                items = listing.get_page(page)
                return len(items), [convert(item) for item in items]

            size, converted = self.guard.call(subject, fetch)
            yield from converted
            if size < self.per_page:
                return
            page += 1

    def _read(self, ref: RunRef) -> tuple[WorkflowRun, RunInfo]:
        subject = _subject(ref)
        run_id = _number(ref.run_id, "run id")
        repo = self.gh.get_repo(ref.project)
        run = self.guard.call(subject, lambda: repo.get_workflow_run(run_id).complete())
        jobs = list(self._pages(subject, run.jobs("latest"), job_of))
        return run, run_info(ref.project, run, jobs)

    def run(self, ref: RunRef) -> RunInfo:
        return self._read(ref)[1]

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        subject = _subject(ref)
        run, info = self._read(ref)
        dest.mkdir(parents=True, exist_ok=True)
        sources = [
            LogSource(job, None, self._job_log(ref.project, job)) for job in self._log_jobs(ref, info, full_logs)
        ]
        logs, warnings = fetch_logs(self.guard, subject, sources, dest, max_bytes=self.client.log_max_bytes)
        tests, report_warnings = self._test_reports(subject, ref.project, run.id, dest)
        return material(info, logs, tests, [*warnings, *report_warnings], root=dest)

    def _log_jobs(self, ref: RunRef, info: RunInfo, full_logs: bool) -> list[Job]:
        if ref.job_id:
            chosen = [j for j in info.jobs if j.id == ref.job_id]
            if chosen:
                return chosen
            # A job of an earlier attempt is not in the latest attempt's listing; ask for it alone.
            job_id = _number(ref.job_id, "job id")
            repo = self.gh.get_repo(ref.project)
            return [self.guard.call(_subject(ref), lambda: job_of(repo.get_workflow_job(job_id).complete()))]
        # Skipped jobs never ran on a runner: GitHub has no log for them.
        ran = [j for j in info.jobs if j.status != Status.SKIPPED]
        failed = [j for j in ran if j.status == Status.FAILURE]
        return ran if full_logs or not failed else failed

    def _job_log(self, project: str, job: Job) -> Callable[[], Iterator[bytes]]:
        job_id = _number(job.id or "", "job id")

        def chunks() -> Iterator[bytes]:
            # Asked again on every attempt: the signed location expires within minutes.
            location = self.gh.get_repo(project).get_workflow_job(job_id).logs_url()
            yield from self._stream(location)

        return chunks

    def _stream(self, url: str) -> Iterator[bytes]:
        with self._blobs.get(url, stream=True, timeout=self.client.timeout_s) as response:
            response.raise_for_status()
            yield from response.iter_content(chunk_size=CHUNK)

    def _artifact_chunks(self, artifact: ReportArtifact) -> Iterator[bytes]:
        headers, _ = self.gh.requester.requestBlobAndCheck("GET", artifact.download_url)
        location = headers.get("location")
        if not location:
            raise ProviderError(artifact.name, "GitHub gave no download location for this artifact")
        yield from self._stream(str(location))

    def _test_reports(self, subject: str, project: str, run_id: int, dest: Path) -> tuple[list[TestResult], list[str]]:
        def keep(artifact: Artifact) -> ReportArtifact:
            return ReportArtifact(artifact.id, artifact.name, bool(artifact.expired), artifact.archive_download_url)

        path = f"/repos/{project}/actions/runs/{run_id}/artifacts"
        listing = PaginatedList(Artifact, self.gh.requester, path, None, list_item="artifacts")
        artifacts = self._pages(subject, listing, keep)
        limits, max_bytes = self.limits, self.client.log_max_bytes
        return collect_reports(self.guard, subject, artifacts, self._artifact_chunks, dest, limits, max_bytes=max_bytes)

    def test_results(self, ref: RunRef) -> list[TestResult]:
        """The JUnit XML of the run's test-result artifacts, read in a scratch folder removed afterwards:
        the artifacts listing and the report downloads, no run, job or log request."""
        with tempfile.TemporaryDirectory(prefix="cimedic-reports-") as scratch:
            return self._test_reports(_subject(ref), ref.project, _number(ref.run_id, "run id"), Path(scratch))[0]

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        params: dict[str, Any] = {}
        if filters.branch:
            params["branch"] = filters.branch
        if filters.status in _LIST_STATUS:
            params["status"] = _LIST_STATUS[filters.status]
        since = as_utc(filters.since) if filters.since else None
        if since:
            params["created"] = ">=" + since.strftime("%Y-%m-%dT%H:%M:%SZ")
        path = f"/repos/{project}/actions/runs"
        if filters.workflow:
            path = f"/repos/{project}/actions/workflows/{quote(filters.workflow, safe='')}/runs"
        listing = PaginatedList(WorkflowRun, self.gh.requester, path, params, list_item="workflow_runs")
        count = 0
        for summary in self._pages(project, listing, lambda run: summary_of(project, run)):
            if since and summary.queued_at and summary.queued_at < since:
                return  # newest first: everything after is older still
            if filters.status and summary.status != filters.status:
                continue
            if filters.branch and summary.branch != filters.branch:
                continue
            yield summary
            count += 1
            if count >= filters.limit:
                return

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        """GET /repos/{o}/{r}/deployments (newest first, paginated), then each one's statuses, newest first:
        one request per deployment, made only for the deployments returned."""
        after = as_utc(since) if since is not None else None
        subject = f"{project} deployments"
        path = f"/repos/{project}/deployments"
        if limit < 1:
            return
        listing = PaginatedList(GitHubDeployment, self.gh.requester, path, None)
        for count, record in enumerate(self._pages(subject, listing, deploy_record), start=1):
            if after is not None and record.created_at is not None and as_utc(record.created_at) < after:
                return  # newest first: everything after is older still
            yield deployment_of(project, record, self._deploy_states(subject, f"{path}/{record.id}/statuses"))
            if count >= limit:
                return

    def _deploy_states(self, subject: str, path: str) -> list[DeployState]:
        # One page (up to per_page statuses) holds them all in practice: queued, in_progress, an outcome, inactive.
        statuses = PaginatedList(DeploymentStatus, self.gh.requester, path, None)
        return self.guard.call(subject, lambda: [deploy_state(s) for s in statuses.get_page(0)])

    # -- writing ---------------------------------------------------------------------------------

    def _write(
        self,
        kind: WriteKind,
        target: str,
        method: str,
        endpoint: str,
        payload: dict[str, Any],
        action: str,
        send: Callable[[], object],
        dry_run: bool,
    ) -> WriteResult:
        result = WriteResult(
            kind=kind,
            platform=self.platform,
            target=target,
            dry_run=dry_run,
            method=method,
            endpoint=endpoint,
            payload=payload,
        )
        if dry_run:
            return result.model_copy(update={"detail": f"would {action}"})
        self.guard.call(target, send, write=True)
        return result.model_copy(update={"done": True, "detail": action})

    def _post(self, endpoint: str) -> Callable[[], object]:
        # WorkflowRun.rerun_failed_jobs()/cancel() return False instead of raising on 4xx, which would
        # hide a missing permission; the SDK's checked request raises GithubException for the guard.
        return lambda: self.gh.requester.requestJsonAndCheck("POST", endpoint)

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        run_id = _number(ref.run_id, "run id")
        if ref.job_id:
            job_id = _number(ref.job_id, "job id")
            endpoint = f"/repos/{ref.project}/actions/jobs/{job_id}/rerun"
            action = f"re-run job {job_id} of run {run_id}"
        else:
            endpoint = f"/repos/{ref.project}/actions/runs/{run_id}/rerun-failed-jobs"
            action = f"re-run the failed jobs of run {run_id}"
        return self._write(
            WriteKind.RERUN_FAILED, _subject(ref), "POST", endpoint, {}, action, self._post(endpoint), dry_run
        )

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        run_id = _number(ref.run_id, "run id")
        endpoint = f"/repos/{ref.project}/actions/runs/{run_id}/cancel"
        action = f"cancel run {run_id}"
        return self._write(WriteKind.CANCEL, _subject(ref), "POST", endpoint, {}, action, self._post(endpoint), dry_run)

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        if not workflow:
            raise ProviderError(project, "GitHub dispatches a workflow: name its file or id (e.g. --workflow ci.yml)")
        endpoint = f"/repos/{project}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        payload: dict[str, Any] = {"ref": ref_name, "inputs": inputs}
        repo = self.gh.get_repo(project)

        def send() -> object:
            return repo.get_workflow(workflow).create_dispatch(ref_name, inputs, throw=True)

        action = f"dispatch workflow {workflow} on {ref_name}"
        return self._write(WriteKind.TRIGGER, f"{project} {workflow}", "POST", endpoint, payload, action, send, dry_run)

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        # Where the comment goes depends on the run (its pull request, else its commit), so even a dry
        # run reads the run once; nothing is written.
        subject = _subject(ref)
        run_id = _number(ref.run_id, "run id")
        repo = self.gh.get_repo(ref.project)
        run = self.guard.call(subject, lambda: repo.get_workflow_run(run_id).complete())
        prs = run.pull_requests or []
        payload: dict[str, Any] = {"body": body}
        if prs:
            number = prs[0].number
            target = f"{ref.project}#{number}"
            endpoint = f"/repos/{ref.project}/issues/{number}/comments"
            action = f"comment on pull request #{number}"

            def send() -> object:
                return repo.get_issue(number).create_comment(body)

        else:
            sha = run.head_sha
            target = f"{ref.project}@{sha}"
            endpoint = f"/repos/{ref.project}/commits/{sha}/comments"
            action = f"comment on commit {sha[:12]} (the run has no pull request)"

            def send() -> object:
                return repo.get_commit(sha).create_comment(body)

        return self._write(WriteKind.COMMENT, target, "POST", endpoint, payload, action, send, dry_run)


def _subject(ref: RunRef) -> str:
    return ref.url or f"{ref.project} run {ref.run_id}"
