"""Jenkins through python-jenkins: a build, its console log, stages and JUnit report; job history; writes.

A Jenkins build is one job here: its console log is the log, and its Pipeline stages (Stage View
plugin, absent for freestyle jobs) are the steps. ``ref.project`` is the job's full name with its
folders (``folder/sub/job``; a multibranch branch is ``org/repo/PR-12`` or ``org/repo/feature%2Fx``).

Jenkins has no deployments API: ``deployments`` is empty, and DORA counts the builds of jobs its
deploy pattern names instead (``job_pattern`` in config/dora.yaml).
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jenkins
import requests

from cimedic.models import Job, Platform, RunInfo, Status, TestResult
from cimedic.settings import CIClient, Settings
from cimedic.tools.ci import jenkins_json as jj
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteKind, WriteResult
from cimedic.tools.ci.download import LogSource, fetch_logs, material
from cimedic.tools.ci.guard import Guard, HttpFailure, ProviderError
from cimedic.tools.ingest.base import RunMaterial

TOKEN_SETTING = "CIMEDIC_JENKINS_TOKEN"
USER_SETTING = "CIMEDIC_JENKINS_USER"
READ_SCOPES = "Overall/Read + Job/Read"
WRITE_SCOPES = "Job/Build + Job/Cancel"
CHUNK = 64 * 1024
PAGE_SIZE = 100
_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def classify(exc: BaseException) -> HttpFailure | None:
    """What a python-jenkins failure says about the HTTP exchange.

    python-jenkins wraps most HTTP errors in its own exceptions without the response (401/403/500
    become JenkinsException, 404 NotFoundException, and its getters rewrap those as "does not exist"),
    but it raises them while handling the requests error, so the response with its status and headers
    is still on the exception chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.HTTPError) and current.response is not None:
            response = current.response
            return HttpFailure(response.status_code, dict(response.headers), str(current))
        if isinstance(current, _TRANSPORT):
            return HttpFailure(None, {}, str(current))
        current = current.__cause__ or current.__context__
    if isinstance(exc, jenkins.TimeoutException):
        return HttpFailure(None, {}, str(exc))
    if isinstance(exc, jenkins.JenkinsException):
        # No HTTP error behind it: Jenkins answered, but not with what the API promises (an empty
        # body, HTML from a proxy instead of JSON, a build trigger without a queue item).
        return HttpFailure(200, {}, str(exc))
    return None


class JenkinsProvider:
    platform = Platform.JENKINS

    def __init__(
        self,
        base_url: str,
        token: str | None,
        client: CIClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        user: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if token is not None and not user:
            # An API token is a password of one user (HTTP basic auth); alone it authenticates nobody.
            raise ProviderError(base_url, f"{TOKEN_SETTING} is set but {USER_SETTING} is not: set the token's user")
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.page_size = page_size
        # retries=0: python-jenkins would otherwise retry inside urllib3; the guard is the one retry policy.
        self.server = jenkins.Jenkins(self.base_url, username=user, password=token, timeout=client.timeout_s, retries=0)
        self.guard = Guard(
            Platform.JENKINS,
            self.base_url,
            # A 401 means a wrong user as often as a wrong token: both settings are named.
            token_setting=f"{USER_SETTING} / {TOKEN_SETTING}",
            read_scopes=READ_SCOPES,
            write_scopes=WRITE_SCOPES,
            classify=classify,
            client=client,
            has_token=token is not None,
            sleep=sleep,
        )

    @classmethod
    def from_settings(cls, base_url: str, settings: Settings) -> JenkinsProvider:
        token = settings.jenkins_token.get_secret_value() if settings.jenkins_token else None
        return cls(base_url, token, settings.ci, user=settings.jenkins_user)

    # --- reading -------------------------------------------------------------------------------

    def _subject(self, project: str, number: str | None = None) -> str:
        return f"{self.base_url}/{jj.job_path(project)}" + (f"{number}/" if number else "")

    def _get_json(self, path: str, params: dict[str, str]) -> Any:
        """A remote-API read python-jenkins has no method for (tree queries); same auth, crumb and errors."""
        request = requests.Request("GET", self.server.server + path, params=params)
        text = self.server.jenkins_open(request)
        try:
            return json.loads(text)
        except ValueError as exc:
            # As python-jenkins' own getters do, so the guard reads it the same way.
            raise jenkins.JenkinsException(f"Could not parse JSON info for {path}") from exc

    def _build(self, ref: RunRef) -> tuple[dict[str, Any], dict[str, Any] | None]:
        subject = ref.url or self._subject(ref.project, ref.run_id)
        # A number, or a permalink Jenkins resolves (lastBuild, lastFailedBuild, ...).
        number = ref.run_id
        build = self.guard.call(subject, lambda: self.server.get_build_info(ref.project, number))
        resolved = str(build.get("number", number))
        # Stage View plugin; None (404) for freestyle jobs, which have no stages.
        describe = self.guard.call(subject, lambda: self.server.get_build_stages(ref.project, resolved))
        return build, describe

    def _info(self, ref: RunRef, build: dict[str, Any], describe: dict[str, Any] | None) -> RunInfo:
        status = jj.build_status(build)
        commit, branch = jj.git(build)
        started = jj.at_millis(build.get("timestamp"))
        queued = jj.queued_at(build, started)
        finished = jj.finished_at(build, started)
        pull_request = jj.pull_request(branch, ref.project)
        if branch is None and pull_request:
            # A pull-request job of a multibranch project without git data (another SCM): named after it.
            branch = unquote(ref.project.rsplit("/", 1)[-1])
        steps, stage_node = jj.stages(describe)
        number = str(build.get("number", ref.run_id))
        url = build.get("url") or self._subject(ref.project, number)
        job = Job(
            name=ref.project,
            status=status,
            platform=Platform.JENKINS,
            runner=jj.runner(build, stage_node),
            steps=steps,
            id=number,
            url=url,
            queued_at=queued,
            started_at=started,
            finished_at=finished,
        )
        return RunInfo(
            platform=Platform.JENKINS,
            id=str(build.get("id") or number),
            url=url,
            project=ref.project,
            name=ref.project,
            number=number,
            status=status,
            commit=commit,
            branch=branch,
            pull_request=pull_request,
            actor=jj.actor(build),
            event=jj.event(build, pull_request),
            queued_at=queued,
            started_at=started,
            finished_at=finished,
            jobs=[job],
        )

    def run(self, ref: RunRef) -> RunInfo:
        return self._info(ref, *self._build(ref))

    def _console(self, project: str, number: str) -> Iterator[bytes]:
        request = requests.Request("GET", f"{self.server.server}{jj.job_path(project)}{number}/consoleText")
        response = self.server.jenkins_request(request, stream=True)
        with response:
            yield from response.iter_content(CHUNK)

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        info = self.run(ref)
        subject = ref.url or self._subject(ref.project, ref.run_id)
        jobs = info.jobs
        if ref.job_id is not None:
            jobs = [j for j in jobs if j.id == ref.job_id]
            if not jobs:
                raise ProviderError(
                    subject, f"a Jenkins build is one job (#{info.number}); there is no job {ref.job_id}"
                )
        failed = [j for j in jobs if Status(j.status) == Status.FAILURE]
        chosen = jobs if full_logs or not failed else failed
        number = info.number or ref.run_id
        sources = [LogSource(job, None, lambda: self._console(ref.project, number)) for job in chosen]
        logs, warnings = fetch_logs(self.guard, subject, sources, dest, max_bytes=self.client.log_max_bytes)
        return material(info, logs, self._tests(subject, ref.project, number), warnings, root=dest)

    def _tests(self, subject: str, project: str, number: str) -> list[TestResult]:
        """The JUnit plugin's report, every case (passed ones too); none when the build recorded none (404)."""
        report = self.guard.call(subject, lambda: self.server.get_build_test_report(project, number, tree=jj.TEST_TREE))
        return jj.test_results(report)

    def test_results(self, ref: RunRef) -> list[TestResult]:
        # One request: a permalink (lastCompletedBuild, ...) resolves in the report's URL as in the build's.
        return self._tests(ref.url or self._subject(ref.project, ref.run_id), ref.project, ref.run_id)

    # --- history -------------------------------------------------------------------------------

    def _range(self, start: int) -> str:
        return f"{{{start},{start + self.page_size}}}"

    def _job_json(self, project: str, tree: str) -> dict[str, Any]:
        """One page of a job's remote API, ``tree`` naming the fields and the range of builds."""
        path = f"{jj.job_path(project)}api/json"
        data: dict[str, Any] = self.guard.call(self._subject(project), lambda: self._get_json(path, {"tree": tree}))
        return data

    def _more(self, project: str, start: int, first: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """A job's builds newest first: ``first`` (the page already read) then a page per request."""
        page = first
        while True:
            yield from page
            if len(page) < self.page_size:
                return
            start += self.page_size
            data = self._job_json(project, f"allBuilds[{jj.BUILD_TREE}]{self._range(start)}")
            page = [b for b in data.get("allBuilds") or [] if isinstance(b, dict)]

    def _streams(self, project: str, branch: str | None) -> list[Iterator[tuple[str, str | None, dict[str, Any]]]]:
        """One newest-first stream of (job, branch, build) per job: the job itself, or a folder's or
        multibranch project's jobs (one per branch), all from one request for the first page."""
        builds = f"allBuilds[{jj.BUILD_TREE}]{self._range(0)}"
        data = self._job_json(project, f"jobs[name,{builds}],{builds}")
        if "allBuilds" in data:
            first = [b for b in data["allBuilds"] or [] if isinstance(b, dict)]
            return [_tagged(project, None, self._more(project, 0, first))]
        multibranch = str(data.get("_class", "")).endswith("MultiBranchProject")
        streams: list[Iterator[tuple[str, str | None, dict[str, Any]]]] = []
        for child in data.get("jobs") or []:
            name = str(child.get("name"))
            child_branch = unquote(name) if multibranch else None
            if "allBuilds" not in child or (multibranch and branch is not None and child_branch != branch):
                continue
            first = [b for b in child["allBuilds"] or [] if isinstance(b, dict)]
            full = f"{project}/{name}"
            streams.append(_tagged(full, child_branch, self._more(full, 0, first)))
        return streams

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        name = f"{project}/{filters.workflow}" if filters.workflow else project
        since = filters.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # Jenkins filters nothing server-side: pages are read newest first until the limit or `since`.
        merged = heapq.merge(*self._streams(name, filters.branch), key=lambda item: -(item[2].get("timestamp") or 0))
        count = 0
        for job, branch, build in merged:
            summary = jj.summary(job, build, branch=branch)
            if since is not None and summary.started_at is not None and summary.started_at < since:
                return
            if branch is None and filters.branch is not None and summary.branch != filters.branch:
                continue
            if filters.status is not None and Status(summary.status) != filters.status:
                continue
            yield summary
            count += 1
            if count >= filters.limit:
                return

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        """None: Jenkins records no deployments. DORA falls back to the deploy-named jobs of config/dora.yaml."""
        return iter(())

    # --- writes --------------------------------------------------------------------------------

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        """Jenkins cannot rerun part of a build: a new build of the job, with the failed build's parameters.

        The build is read even in a dry run: whether it failed and which parameters it had decide the request.
        """
        subject = ref.url or self._subject(ref.project, ref.run_id)
        build = self.guard.call(subject, lambda: self.server.get_build_info(ref.project, ref.run_id))
        number = str(build.get("number", ref.run_id))
        status = jj.build_status(build)
        if status not in (Status.FAILURE, Status.CANCELLED):
            raise ProviderError(subject, f"build #{number} is {status}, not failed: nothing to rerun")
        params = jj.parameters(build)
        job = f"/{jj.job_path(ref.project)}"
        endpoint = f"{job}buildWithParameters" if params else f"{job}build"
        if dry_run:
            like = f"#{number}" + (" with its parameters" if params else "")
            detail = f"would start a new build of {ref.project} like {like}"
            return _done(WriteKind.RERUN_FAILED, subject, endpoint, params, detail, dry_run=True)
        queued = self.guard.call(
            subject, lambda: self.server.build_job(ref.project, parameters=dict(params) or None), write=True
        )
        return _done(WriteKind.RERUN_FAILED, subject, endpoint, params, f"queued as item {queued}", dry_run=False)

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        subject = ref.url or self._subject(ref.project, ref.run_id)
        endpoint = f"/{jj.job_path(ref.project)}{ref.run_id}/stop"
        if dry_run:
            return _done(WriteKind.CANCEL, subject, endpoint, {}, f"would abort build #{ref.run_id}", dry_run=True)
        self.guard.call(subject, lambda: self.server.stop_build(ref.project, ref.run_id), write=True)
        return _done(WriteKind.CANCEL, subject, endpoint, {}, f"asked build #{ref.run_id} to abort", dry_run=False)

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        """Build ``project`` (``workflow``: a job inside it) with ``inputs`` as parameters. With ``ref_name``,
        ``project`` is a multibranch project and the branch's own job is built."""
        name = f"{project}/{workflow}" if workflow else project
        leaf = jj.branch_job_name(ref_name) if ref_name else None
        if leaf and name.rsplit("/", 1)[-1] != leaf:
            name = f"{name}/{leaf}"
        endpoint = f"/{jj.job_path(name)}" + ("buildWithParameters" if inputs else "build")
        subject = self._subject(name)
        if dry_run:
            return _done(WriteKind.TRIGGER, subject, endpoint, dict(inputs), f"would build {name}", dry_run=True)
        queued = self.guard.call(
            subject, lambda: self.server.build_job(name, parameters=dict(inputs) or None), write=True
        )
        return _done(
            WriteKind.TRIGGER, subject, endpoint, dict(inputs), f"queued {name} as item {queued}", dry_run=False
        )

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        # A build description is the nearest thing, but it replaces what pipelines write there and needs
        # Run/Update: the pull request's SCM is where a comment belongs.
        raise ProviderError(
            ref.url or self._subject(ref.project, ref.run_id),
            "Jenkins has no comments on builds; comment on the pull request or commit through its SCM instead",
        )


def _tagged(
    job: str, branch: str | None, builds: Iterator[dict[str, Any]]
) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    for build in builds:
        yield job, branch, build


def _done(
    kind: WriteKind, target: str, endpoint: str, payload: dict[str, str], detail: str, *, dry_run: bool
) -> WriteResult:
    """Every Jenkins write is a POST; python-jenkins sends parameters in the query string."""
    return WriteResult(
        kind=kind,
        platform=Platform.JENKINS,
        target=target,
        dry_run=dry_run,
        method="POST",
        endpoint=endpoint,
        payload=payload,
        done=not dry_run,
        detail=detail,
    )
