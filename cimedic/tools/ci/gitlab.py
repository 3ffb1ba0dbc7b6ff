"""GitLab CI through python-gitlab: pipelines, their jobs, job traces, the pipeline test report and
the project's deployments. How the SDK's requests and failures reach the guard (no retries of its own,
headers kept for rate limits, paging) lives in ``gitlab_session``; the mapping to cimedic's models in
``gitlab_parse``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests
from gitlab.base import RESTObjectList
from gitlab.exceptions import GitlabGetError
from gitlab.v4.objects import Project, ProjectJob, ProjectPipeline

from cimedic.models import Platform, RunInfo, TestResult
from cimedic.settings import CIClient, Settings
from cimedic.tools.ci import gitlab_parse as parse
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteKind, WriteResult, as_utc
from cimedic.tools.ci.download import LogSource, fetch_logs, material
from cimedic.tools.ci.gitlab_session import SDK, LastAnswer, iso, number, pages
from cimedic.tools.ci.guard import Guard, ProviderError
from cimedic.tools.ingest.base import RunMaterial

TOKEN_SETTING = "CIMEDIC_GITLAB_TOKEN"
# Job traces need read_api (read_user/read_repository do not reach CI); retry, cancel, run and comment need api.
READ_SCOPES = "the read_api scope and at least the Reporter role"
WRITE_SCOPES = "the api scope and at least the Developer role"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Loaded:
    info: RunInfo
    pipeline_id: int
    jobs: list[dict[str, Any]]
    job: dict[str, Any] | None  # the job the ref named, as GET /jobs/:id returned it


class GitLabProvider:
    """One GitLab server (gitlab.com or self-hosted, possibly under a path such as /gitlab)."""

    platform = Platform.GITLAB

    def __init__(
        self,
        base_url: str,
        token: str | None,
        client: CIClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        per_page: int = 100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.per_page = per_page
        self._last = LastAnswer()
        session = requests.Session()
        session.hooks["response"].append(self._last.remember)
        self.gl = gitlab.Gitlab(
            self.base_url,
            private_token=token,
            timeout=client.timeout_s,
            retry_transient_errors=False,
            per_page=per_page,
            # Pagination links carry the server's external_url; behind a proxy or under another host
            # name they would lead away from the server the user configured.
            keep_base_url=True,
            session=session,
        )
        self._api_path = urlsplit(self.gl.api_url).path
        self.guard = Guard(
            platform=Platform.GITLAB,
            base_url=self.base_url,
            token_setting=TOKEN_SETTING,
            read_scopes=READ_SCOPES,
            write_scopes=WRITE_SCOPES,
            classify=self._last.classify,
            client=client,
            has_token=token is not None,
            sleep=sleep,
        )

    @classmethod
    def from_settings(cls, base_url: str, settings: Settings) -> GitLabProvider:
        token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else None
        return cls(base_url or settings.gitlab_url, token, settings.ci)

    # -- reading ------------------------------------------------------------------------------

    def _project(self, path: str) -> Project:
        # lazy: no request; the SDK URL-encodes "group/sub/project" into the project id.
        return self.gl.projects.get(path, lazy=True)

    @staticmethod
    def _subject(ref: RunRef) -> str:
        if ref.url:
            return ref.url
        return f"{ref.project} pipeline {ref.run_id}" if ref.run_id else f"{ref.project} job {ref.job_id}"

    def _pages(self, subject: str, open_listing: Callable[[], RESTObjectList[Any]]) -> Iterator[dict[str, Any]]:
        return pages(self.guard, subject, open_listing)

    def _pipeline_of(self, subject: str, project: Project, ref: RunRef) -> tuple[int, dict[str, Any] | None]:
        """The pipeline the ref names, and the job when it names one (read: a job URL names no pipeline)."""
        job: dict[str, Any] | None = None
        if ref.job_id:
            job_id = number(subject, ref.job_id, "job")
            job = self.guard.call(subject, lambda: project.jobs.get(job_id, **SDK).asdict())
        if ref.run_id:
            return number(subject, ref.run_id, "pipeline"), job
        if job is not None:
            return int(job["pipeline"]["id"]), job
        raise ProviderError(subject, "names neither a pipeline nor a job")

    def _load(self, ref: RunRef) -> _Loaded:
        subject = self._subject(ref)
        project = self._project(ref.project)
        pipeline_id, job = self._pipeline_of(subject, project, ref)
        pipeline = self.guard.call(subject, lambda: project.pipelines.get(pipeline_id, **SDK).asdict())
        jobs = list(
            self._pages(
                subject,
                lambda: project.pipelines.get(pipeline_id, lazy=True).jobs.list(
                    iterator=True, include_retried=False, **SDK
                ),
            )
        )
        ref_name = pipeline.get("ref")
        iid = parse.merge_request_iid(ref_name)
        if iid is not None:
            branch = self._source_branch(subject, project, int(iid))
        else:
            branch = None if pipeline.get("tag") else ref_name
        return _Loaded(parse.run_info(ref.project, pipeline, jobs, branch=branch), pipeline_id, jobs, job)

    def _source_branch(self, subject: str, project: Project, iid: int) -> str | None:
        """An MR pipeline's ref is refs/merge-requests/IID/head; the branch is the MR's source branch."""

        def read() -> dict[str, Any] | None:
            try:
                return project.mergerequests.get(iid, **SDK).asdict()
            except GitlabGetError as exc:
                # A fork's MR or one the token cannot see: the run is readable without its branch.
                if exc.response_code in (403, 404):
                    return None
                raise

        mr = self.guard.call(subject, read)
        return str(mr["source_branch"]) if mr and mr.get("source_branch") else None

    def run(self, ref: RunRef) -> RunInfo:
        return self._load(ref).info

    def _trace(self, project: Project, job_id: int) -> Callable[[], Iterable[bytes]]:
        def chunks() -> Iterable[bytes]:
            job = project.jobs.get(job_id, lazy=True)
            return job.trace(streamed=True, iterator=True, chunk_size=CHUNK, **SDK)

        return chunks

    def _tests(
        self, subject: str, project: Project, pipeline_id: int, job: dict[str, Any] | None
    ) -> tuple[list[TestResult], list[str]]:
        def read() -> dict[str, Any] | None:
            try:
                return project.pipelines.get(pipeline_id, lazy=True).test_report.get(**SDK).asdict()
            except GitlabGetError as exc:
                # No test report for this pipeline: nothing to add, not a failure of the fetch.
                if exc.response_code == 404:
                    return None
                raise

        report = self.guard.call(subject, read)
        if not report:
            return [], []
        return parse.report_results(report, job_name=str(job["name"]) if job else None)

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        subject = self._subject(ref)
        loaded = self._load(ref)
        project = self._project(ref.project)
        if loaded.job is not None:
            chosen = [loaded.job]
        else:
            # Jobs that never started (skipped, manual, created) have no trace; a job can fail before starting.
            ran = [j for j in loaded.jobs if j.get("started_at") or j.get("status") == "failed"]
            failed = [j for j in ran if j.get("status") == "failed"]
            # allow_failure jobs fail without failing the pipeline: they explain it only when nothing else failed.
            blocking = [j for j in failed if not j.get("allow_failure")] or failed
            chosen = ran if full_logs or not blocking else blocking
        sources = [LogSource(parse.job_model(j), None, self._trace(project, int(j["id"]))) for j in chosen]
        logs, warnings = fetch_logs(self.guard, subject, sources, dest, max_bytes=self.client.log_max_bytes)
        tests, report_warnings = self._tests(subject, project, loaded.pipeline_id, loaded.job)
        return material(loaded.info, logs, tests, warnings + report_warnings, root=dest)

    def test_results(self, ref: RunRef) -> list[TestResult]:
        # The pipeline's test report alone: one request for a pipeline, two for a job (which names its pipeline).
        subject = self._subject(ref)
        project = self._project(ref.project)
        pipeline_id, job = self._pipeline_of(subject, project, ref)
        return self._tests(subject, project, pipeline_id, job)[0]

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        subject = f"{project} pipelines"
        params: dict[str, Any] = {"order_by": "id", "sort": "desc"}
        if filters.branch:
            params["ref"] = filters.branch
        server_status = parse.STATUS_FILTER.get(filters.status) if filters.status else None
        if server_status:
            params["status"] = server_status
        if filters.since:
            params["updated_after"] = iso(filters.since)
        if filters.workflow:
            # GitLab has one pipeline definition per project; workflow:name gives pipelines a name.
            params["name"] = filters.workflow
        limit = min(filters.limit, self.client.list_max)
        client_side = (filters.status is not None and server_status is None) or bool(filters.workflow)
        params["per_page"] = self.per_page if client_side else min(self.per_page, limit)
        pipelines = self._project(project).pipelines
        count = 0
        for item in self._pages(subject, lambda: pipelines.list(iterator=True, **params, **SDK)):
            summary = parse.summary(project, item)
            if filters.status is not None and summary.status != filters.status:
                continue
            # Servers before workflow:name ignore the name filter; their pipelines have no name to match.
            if filters.workflow and item.get("name") != filters.workflow:
                continue
            yield summary
            count += 1
            if count >= limit:
                return

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        """GET /projects/:id/deployments, most recently updated first. GitLab filters on the update time
        (``updated_after``, which needs ``order_by=updated_at``); a deployment created before ``since`` but
        updated after it is dropped here."""
        if limit < 1:
            return
        params: dict[str, Any] = {"order_by": "updated_at", "sort": "desc", "per_page": min(self.per_page, limit)}
        after = as_utc(since) if since is not None else None
        if after is not None:
            params["updated_after"] = iso(after)
        listing = self._project(project).deployments
        count = 0
        for item in self._pages(f"{project} deployments", lambda: listing.list(iterator=True, **params, **SDK)):
            found = parse.deployment(project, item, self.base_url)
            if after is not None and found.created_at is not None and found.created_at < after:
                continue
            yield found
            count += 1
            if count >= limit:
                return

    # -- writing ------------------------------------------------------------------------------

    def _write(
        self,
        kind: WriteKind,
        target: str,
        path: str,
        payload: dict[str, Any],
        what: tuple[str, str],
        action: Callable[[], object],
        dry_run: bool,
    ) -> WriteResult:
        would, did = what
        result = WriteResult(
            kind=kind,
            platform=Platform.GITLAB,
            target=target,
            dry_run=dry_run,
            method="POST",
            endpoint=self._api_path + path,
            payload=payload,
            detail=f"would {would}",
        )
        if dry_run:
            return result
        answer = self.guard.call(target, action, write=True)
        url = answer.get("web_url") if isinstance(answer, dict) else None
        return result.model_copy(update={"done": True, "detail": f"{did}: {url}" if url else did})

    def _act(self, ref: RunRef, kind: WriteKind, dry_run: bool) -> WriteResult:
        """Retry or cancel: the job the ref names, else the pipeline (whose retry reruns its failed jobs)."""
        subject = self._subject(ref)
        project = self._project(ref.project)
        retry = kind == WriteKind.RERUN_FAILED
        target: ProjectJob | ProjectPipeline
        if ref.job_id:
            target = project.jobs.get(number(subject, ref.job_id, "job"), lazy=True)
            what = f"job {ref.job_id}"
        else:
            target = project.pipelines.get(number(subject, ref.run_id, "pipeline"), lazy=True)
            what = f"the failed jobs of pipeline {ref.run_id}" if retry else f"pipeline {ref.run_id}"
        verb, done = ("retry", "retried") if retry else ("cancel", "canceled")
        return self._write(
            kind,
            subject,
            f"{target.manager.path}/{target.encoded_id}/{verb}",
            {},
            (f"{verb} {what}", f"{done} {what}"),
            lambda: target.retry(**SDK) if retry else target.cancel(**SDK),
            dry_run,
        )

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._act(ref, WriteKind.RERUN_FAILED, dry_run)

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._act(ref, WriteKind.CANCEL, dry_run)

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        if workflow:
            raise ProviderError(
                project,
                "GitLab runs the project's one .gitlab-ci.yml; there is no workflow to choose (drop --workflow)",
            )
        payload: dict[str, Any] = {"ref": ref_name}
        if inputs:
            payload["variables"] = [{"key": key, "value": value} for key, value in inputs.items()]
        pipelines = self._project(project).pipelines
        return self._write(
            WriteKind.TRIGGER,
            f"{project} {ref_name}",
            pipelines.path[: -len("s")],  # POST /projects/:id/pipeline (singular), as the SDK's create does
            payload,
            (f"run a pipeline on {ref_name}", f"started a pipeline on {ref_name}"),
            lambda: pipelines.create(dict(payload), **SDK).asdict(),
            dry_run,
        )

    def _ref_and_sha(self, subject: str, project: Project, ref: RunRef) -> tuple[str | None, str | None]:
        if ref.run_id:
            pipeline_id = number(subject, ref.run_id, "pipeline")
            pipeline = self.guard.call(subject, lambda: project.pipelines.get(pipeline_id, **SDK).asdict())
            return pipeline.get("ref"), pipeline.get("sha")
        job_id = number(subject, ref.job_id or "", "job")
        job = self.guard.call(subject, lambda: project.jobs.get(job_id, **SDK).asdict())
        owner = job.get("pipeline") or {}
        return job.get("ref") or owner.get("ref"), owner.get("sha") or (job.get("commit") or {}).get("id")

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        subject = self._subject(ref)
        project = self._project(ref.project)
        # Where the comment goes depends on the pipeline (an MR pipeline's ref names the MR), so even a
        # dry run reads the pipeline; it sends nothing that changes anything.
        ref_name, sha = self._ref_and_sha(subject, project, ref)
        iid = parse.merge_request_iid(ref_name)
        if iid is not None:
            notes = project.mergerequests.get(int(iid), lazy=True).notes
            note = {"body": body}
            return self._write(
                WriteKind.COMMENT,
                subject,
                notes.path,
                note,
                (f"comment on merge request !{iid}", f"commented on merge request !{iid}"),
                lambda: notes.create(dict(note), **SDK).asdict(),
                dry_run,
            )
        if not sha:
            raise ProviderError(subject, "GitLab gave no commit for this pipeline; there is nothing to comment on")
        comments = project.commits.get(sha, lazy=True).comments
        remark = {"note": body}
        return self._write(
            WriteKind.COMMENT,
            subject,
            comments.path,
            remark,
            (f"comment on commit {sha[:8]}", f"commented on commit {sha[:8]}"),
            lambda: comments.create(dict(remark), **SDK).asdict(),
            dry_run,
        )
