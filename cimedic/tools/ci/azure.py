"""Azure DevOps Pipelines through the azure-devops SDK: a build, its timeline, logs and test runs, and
the deployment records of the project's environments.

``base_url`` is the organisation or collection (https://dev.azure.com/ORG, https://ORG.visualstudio.com,
https://server/tfs/DefaultCollection) and ``project`` a project in it. The released (7.0) clients are
used; session plumbing and error reading live in ``azure_session``, the mapping to cimedic's models
in ``azure_map``.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.devops.connection import Connection
from azure.devops.released.build import Build, DefinitionReference
from azure.devops.released.git import Comment, GitPullRequestCommentThread

from cimedic.models import Job, Platform, RunInfo, Status, TestResult
from cimedic.settings import CIClient, Settings
from cimedic.tools.ci import azure_map as m
from cimedic.tools.ci.azure_session import AzureSession, classify
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteKind, WriteResult, as_utc
from cimedic.tools.ci.download import LogSource, fetch_logs, material
from cimedic.tools.ci.guard import Guard, ProviderError
from cimedic.tools.ingest.base import RunMaterial

TOKEN_SETTING = "CIMEDIC_AZURE_DEVOPS_TOKEN"
READ_SCOPES = "PAT scopes Build (Read) and Test Management (Read), and Environment (Read & manage) for deployments"
WRITE_SCOPES = "PAT scope Build (Read & execute); Code (Read & write) to comment on pull requests"
PAGE_MAX = 100
TEST_PAGE = 1000
# Filters the builds API applies itself; runs() checks the status of what comes back in any case.
_RESULT_FILTERS = {Status.FAILURE: "failed", Status.CANCELLED: "canceled"}
_STATUS_FILTERS = {Status.RUNNING: "inProgress", Status.SUCCESS: "completed"}
_EPOCH = datetime.fromtimestamp(0, UTC)


class AzureDevOpsProvider:
    platform = Platform.AZURE_DEVOPS

    def __init__(
        self, base_url: str, token: str | None, client: CIClient, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.session = AzureSession(token, client.timeout_s)
        # No I/O here: Connection reads resource areas and locations on the first client call.
        self.connection = Connection(base_url=self.base_url, creds=self.session)
        self.guard = Guard(
            Platform.AZURE_DEVOPS,
            self.base_url,
            token_setting=TOKEN_SETTING,
            read_scopes=READ_SCOPES,
            write_scopes=WRITE_SCOPES,
            classify=classify,
            client=client,
            has_token=token is not None,
            sleep=sleep,
        )

    @classmethod
    def from_settings(cls, base_url: str, settings: Settings) -> AzureDevOpsProvider:
        token = settings.azure_devops_token.get_secret_value() if settings.azure_devops_token else None
        return cls(base_url, token, settings.ci)

    # SDK clients: building one may read resource areas and locations, so they are made inside guarded calls.
    def _builds(self) -> Any:
        return self.connection.clients.get_build_client()

    def _tests(self) -> Any:
        return self.connection.clients.get_test_client()

    def _git(self) -> Any:
        return self.connection.clients.get_git_client()

    def _agents(self) -> Any:
        return self.connection.clients.get_task_agent_client()

    def _subject(self, ref: RunRef) -> str:
        return ref.url or f"{self.base_url}/{ref.project} build {ref.run_id}"

    def _build_id(self, ref: RunRef) -> int:
        if not ref.run_id.isdigit():
            raise ProviderError(self._subject(ref), "an Azure DevOps build id is a number")
        return int(ref.run_id)

    def _read(self, ref: RunRef) -> tuple[Any, list[Any]]:
        subject, build_id = self._subject(ref), self._build_id(ref)
        build = self.guard.call(subject, lambda: self._builds().get_build(ref.project, build_id))
        # A build still queued has no timeline yet (the API answers 204).
        timeline = self.guard.call(subject, lambda: self._builds().get_build_timeline(ref.project, build_id))
        return build, list(timeline.records or []) if timeline is not None else []

    def _web(self, project: str, build: Any) -> str:
        return m.web_url(self.base_url, project, build)

    def run(self, ref: RunRef) -> RunInfo:
        build, records = self._read(ref)
        web = self._web(ref.project, build)
        return m.run_info(ref.project, web, build, m.jobs(web, records))

    def _log(self, project: str, build_id: int, log_id: int) -> Iterable[bytes]:
        # get_build_log sends the request and hands back msrest's chunk generator over the open response.
        chunks: Iterable[bytes] = self._builds().get_build_log(project, build_id, log_id)
        return chunks

    def _log_sources(self, ref: RunRef, jobs: list[tuple[Job, Any]], records: list[Any], full: bool) -> list[LogSource]:
        build_id = self._build_id(ref)
        if ref.job_id:
            chosen = [(job, rec) for job, rec in jobs if rec.id.lower() == ref.job_id.lower()]
            if not chosen:
                raise ProviderError(self._subject(ref), f"build {build_id} has no job {ref.job_id}")
        else:
            failed = [(job, rec) for job, rec in jobs if job.status == Status.FAILURE]
            chosen = jobs if full or not failed else failed
        sources: list[LogSource] = []
        for job, rec in chosen:
            if rec.log is not None and rec.log.id is not None:
                # The Job record's log is the whole job, every task in order.
                sources.append(LogSource(job, None, partial(self._log, ref.project, build_id, rec.log.id)))
                continue
            tasks = m.tasks(records, rec.id)
            wanted = [t for t in tasks if m.status(t.state, t.result) == Status.FAILURE] or tasks
            sources += [
                LogSource(job, t.name, partial(self._log, ref.project, build_id, t.log.id))
                for t in wanted
                if t.log is not None and t.log.id is not None
            ]
        return sources

    def _test_results(self, subject: str, project: str, build_uri: str, *, passed: bool) -> list[TestResult]:
        """The results of the build's test runs, page by page: every outcome with ``passed``, else only the
        failed ones (and runs whose tests all passed are not read)."""
        runs = self.guard.call(subject, lambda: self._tests().get_test_runs(project, build_uri=build_uri)) or []
        outcomes = None if passed else list(m.FAILED_OUTCOMES)
        results: list[TestResult] = []
        for test_run in runs:
            clean = (test_run.passed_tests or 0) + (test_run.not_applicable_tests or 0) >= (test_run.total_tests or 0)
            if clean and not passed:
                continue
            skip = 0
            while True:
                page = self.guard.call(subject, partial(self._results_page, project, test_run.id, skip, outcomes))
                results += [m.test_result(test_run, r) for r in page]
                if len(page) < TEST_PAGE:
                    break
                skip += TEST_PAGE
        return results

    def _results_page(self, project: str, run_id: int, skip: int, outcomes: list[str] | None) -> list[Any]:
        page: list[Any] = self._tests().get_test_results(project, run_id, skip=skip, top=TEST_PAGE, outcomes=outcomes)
        return page or []

    def test_results(self, ref: RunRef) -> list[TestResult]:
        # The build's artifact URI names its test runs: no build, timeline or log request.
        uri = f"vstfs:///Build/Build/{self._build_id(ref)}"
        return self._test_results(self._subject(ref), ref.project, uri, passed=True)

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        subject = self._subject(ref)
        build, records = self._read(ref)
        web = self._web(ref.project, build)
        jobs = m.jobs(web, records)
        info = m.run_info(ref.project, web, build, jobs)
        sources = self._log_sources(ref, jobs, records, full_logs)
        logs, warnings = fetch_logs(self.guard, subject, sources, dest, max_bytes=self.client.log_max_bytes)
        try:
            tests = self._test_results(subject, ref.project, build.uri, passed=False)
        except ProviderError as exc:
            # Test Management (Read) is a scope of its own; without it the logs still tell the story.
            tests = []
            warnings.append(f"test results not read: {exc.problem}")
        return material(info, logs, tests, warnings, root=dest)

    def _definition_id(self, project: str, workflow: str) -> int:
        if workflow.isdigit():
            return int(workflow)
        found = self.guard.call(project, lambda: self._builds().get_definitions(project, name=workflow)) or []
        exact = [d for d in found if d.name == workflow]
        if not exact:
            raise ProviderError(project, f"no pipeline named {workflow!r} (pass its name or definition id)")
        return int(exact[0].id)

    def _continued(self, subject: str, read: Callable[[str | None], list[Any] | None]) -> Iterator[list[Any]]:
        """Pages of a list the server continues with a token; the SDK returns only the list, the next page's
        token is a header of the same answer (read inside the guarded call)."""
        token: str | None = None
        while True:

            def page(token: str | None = token) -> tuple[list[Any], str | None]:
                return read(token) or [], self.session.last_header("x-ms-continuationtoken")

            items, token = self.guard.call(subject, page)
            yield items
            if not token or not items:
                return

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        query: dict[str, Any] = {
            "query_order": "queueTimeDescending",
            "top": min(filters.limit, PAGE_MAX),
            "branch_name": m.full_branch(filters.branch) if filters.branch else None,
            "min_time": filters.since,
            "result_filter": _RESULT_FILTERS.get(filters.status) if filters.status else None,
            "status_filter": _STATUS_FILTERS.get(filters.status) if filters.status else None,
        }
        if filters.workflow:
            query["definitions"] = [self._definition_id(project, filters.workflow)]
        count = 0
        for page in self._continued(project, partial(self._builds_page, project, query)):
            for build in page:
                summary = m.summary(project, self._web(project, build), build)
                if filters.status and summary.status != filters.status:
                    continue
                yield summary
                count += 1
                if count >= filters.limit:
                    return

    def _builds_page(self, project: str, query: dict[str, Any], token: str | None) -> list[Any] | None:
        builds: list[Any] | None = self._builds().get_builds(project, continuation_token=token, **query)
        return builds

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        """The deployment records of every environment of the project, merged newest first (by queue time).
        Azure filters them on nothing: each environment's pages are read until ``since`` or the limit."""
        if limit < 1:
            return
        subject = f"{self.base_url}/{project} deployments"
        after = as_utc(since) if since is not None else None
        top = min(limit, PAGE_MAX)
        listing = self._continued(
            subject, lambda token: self._agents().get_environments(project, continuation_token=token)
        )
        environments = [env for page in listing for env in page]
        builds: dict[int, Any] = {}
        streams = [self._environment_deployments(subject, project, env, after, top, builds) for env in environments]
        newest = heapq.merge(*streams, key=lambda d: -(d.created_at.timestamp() if d.created_at else 0.0))
        for count, found in enumerate(newest, start=1):
            yield found
            if count >= limit:
                return

    def _environment_deployments(
        self, subject: str, project: str, env: Any, after: datetime | None, top: int, builds: dict[int, Any]
    ) -> Iterator[Deployment]:
        def read(token: str | None) -> list[Any] | None:
            records: list[Any] | None = self._agents().get_environment_deployment_execution_records(
                project, env.id, continuation_token=token, top=top
            )
            return records

        for page in self._continued(subject, read):
            # Newest first, as the server sends them (sorted again: the merge across environments relies on it).
            records = sorted(page, key=lambda r: m.created(r) or _EPOCH, reverse=True)
            kept = [r for r in records if after is None or (m.created(r) or after) >= after]
            self._owner_builds(subject, project, kept, builds)
            for record in kept:
                owner = int(record.owner.id) if record.owner is not None and record.owner.id is not None else -1
                yield m.deployment(project, env.name, record, builds.get(owner), self.base_url)
            if len(kept) < len(records):
                return  # the rest is older than `since`

    def _owner_builds(self, subject: str, project: str, records: list[Any], builds: dict[int, Any]) -> None:
        """The builds that ran these deployments (commit and branch), one request for those not read yet."""
        wanted = {
            int(r.owner.id)
            for r in records
            if r.owner is not None and r.owner.id is not None and (r.plan_type or "Build") == "Build"
        }
        missing = sorted(wanted - builds.keys())
        if not missing:
            return
        found = self.guard.call(subject, lambda: self._builds().get_builds(project, build_ids=missing)) or []
        builds.update({int(b.id): b for b in found})

    def _endpoint(self, project: str, path: str) -> str:
        return f"{self.base_url}/{quote(project)}/_apis/{path}"

    def _patch_build(self, kind: WriteKind, ref: RunRef, payload: dict[str, Any], dry_run: bool) -> WriteResult:
        build_id = self._build_id(ref)
        retry = kind is WriteKind.RERUN_FAILED
        endpoint = self._endpoint(ref.project, f"build/builds/{build_id}" + ("?retry=true" if retry else ""))
        what = "retry the failed jobs of" if retry else "cancel"
        result = WriteResult(
            kind=kind,
            platform=Platform.AZURE_DEVOPS,
            target=f"{ref.project} build {build_id}",
            dry_run=dry_run,
            method="PATCH",
            endpoint=endpoint,
            payload=payload,
        )
        if dry_run:
            return result.model_copy(update={"detail": f"would {what} build {build_id}"})
        build = Build(status=payload.get("status"))
        answer = self.guard.call(
            self._subject(ref),
            lambda: self._builds().update_build(build, ref.project, build_id, retry=True if retry else None),
            write=True,
        )
        return result.model_copy(update={"done": True, "detail": f"build {build_id} is {answer.status}"})

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._patch_build(WriteKind.RERUN_FAILED, ref, {}, dry_run)

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._patch_build(WriteKind.CANCEL, ref, {"status": "cancelling"}, dry_run)

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        if not workflow:
            raise ProviderError(project, "trigger needs the pipeline: its definition id or name")
        payload: dict[str, Any] = {"sourceBranch": m.full_branch(ref_name)}
        if inputs:
            # Queue-time variables, as the Builds API takes them: one JSON object in a string.
            payload["parameters"] = json.dumps(inputs)
        # A pipeline name is resolved to its definition id (a read) even in a dry run: the payload is the exact one.
        definition_id = self._definition_id(project, workflow)
        result = WriteResult(
            kind=WriteKind.TRIGGER,
            platform=Platform.AZURE_DEVOPS,
            target=f"{project} pipeline {workflow}",
            dry_run=dry_run,
            method="POST",
            endpoint=self._endpoint(project, "build/builds"),
            payload={"definition": {"id": definition_id}, **payload},
        )
        if dry_run:
            what = f"pipeline {workflow}" if workflow.isdigit() else f"pipeline {workflow} (definition {definition_id})"
            return result.model_copy(update={"detail": f"would queue {what} on {payload['sourceBranch']}"})
        build = Build(
            definition=DefinitionReference(id=definition_id),
            source_branch=payload["sourceBranch"],
            parameters=payload.get("parameters"),
        )
        queued = self.guard.call(project, lambda: self._builds().queue_build(build, project), write=True)
        return result.model_copy(
            update={
                "done": True,
                "detail": f"queued build {queued.id} ({queued.build_number}): {self._web(project, queued)}",
            }
        )

    def _pull_request(self, ref: RunRef) -> tuple[str, str]:
        """The Azure Repos repository id and pull request number the build was built for (reads the build)."""
        subject, build_id = self._subject(ref), self._build_id(ref)
        build = self.guard.call(subject, lambda: self._builds().get_build(ref.project, build_id))
        number = m.pull_request(build)
        repo = build.repository
        if number is None:
            # Azure Pipelines keeps no comments on builds; a PR thread is the only place a comment can go.
            raise ProviderError(subject, f"build {build_id} was not built for a pull request; nothing to comment on")
        if repo is None or repo.type != "TfsGit":
            where = repo.type if repo is not None else "an unknown host"
            raise ProviderError(subject, f"the pull request of build {build_id} lives on {where}, not Azure Repos")
        return str(repo.id), str(number)

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        # Where the thread goes depends on the build (its repository and PR), so even a dry run reads the build.
        repo_id, number = self._pull_request(ref)
        payload = {"comments": [{"parentCommentId": 0, "content": body, "commentType": "text"}], "status": "active"}
        result = WriteResult(
            kind=WriteKind.COMMENT,
            platform=Platform.AZURE_DEVOPS,
            target=f"{ref.project} PR {number}",
            dry_run=dry_run,
            method="POST",
            endpoint=self._endpoint(ref.project, f"git/repositories/{repo_id}/pullRequests/{number}/threads"),
            payload=payload,
        )
        if dry_run:
            return result.model_copy(update={"detail": f"would start a thread on pull request {number}"})
        thread = GitPullRequestCommentThread(
            comments=[Comment(parent_comment_id=0, content=body, comment_type="text")], status="active"
        )
        created = self.guard.call(
            self._subject(ref),
            lambda: self._git().create_thread(thread, repo_id, int(number), project=ref.project),
            write=True,
        )
        return result.model_copy(update={"done": True, "detail": f"thread {created.id} on pull request {number}"})
