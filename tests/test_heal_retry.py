"""Retry through the real PyGithub and python-gitlab over real HTTP: the local server keeps the run's state
as the platform would (a re-run makes a new attempt on GitHub, new jobs in the same pipeline on GitLab)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import test_ci_github as github
import test_ci_gitlab as gitlab
import test_ci_jenkins as jenkins
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.heal.actions.retry import Retry
from cimedic.heal.base import HealContext, Outcome, Verdict
from cimedic.investigate import diagnose
from cimedic.models import Action, ActionKind, Category, Diagnosis, Platform, RunInfo, Source, SourceKind
from cimedic.settings import Limits, get_settings
from cimedic.tools.ci.base import CIProvider, RunRef
from tests.http_log import answer, calls, writes

NEW_TEST_JOB = 24512399902  # the failed job again, in attempt 2
GL = gitlab.api()
GL_PYTEST = gitlab.JOBS["pytest"]
GL_RETRIED = 6745188902  # job_retry.json: the retried pytest job


def diagnosed(provider: CIProvider, ref: RunRef, tmp_path: Path) -> Diagnosis:
    # As cimedic.remote does: fetch, diagnose, attach the run's metadata.
    material = provider.fetch(ref, tmp_path / "run")
    return diagnose(material, limits=Limits()).model_copy(update={"run": material.run.info})


def retry(target: str = "run") -> Action:
    return Action(kind=ActionKind.RETRY, target=target, reason="flaky network in the test job")


# -- GitHub ------------------------------------------------------------------------------------------


class GitHubRun:
    """The run as api.github.com shows it now; a re-run request starts attempt 2 of the same run."""

    def __init__(self, server: HTTPServer) -> None:
        self.run = github.fixture("run-failed.json", server)
        self.jobs = github.fixture("run-jobs.json", server)
        server.expect_request(github.RUN_PATH, method="GET").respond_with_handler(lambda _: answer(self.run))
        server.expect_request(f"{github.RUN_PATH}/jobs", method="GET").respond_with_handler(lambda _: answer(self.jobs))
        for path in (
            f"{github.RUN_PATH}/rerun-failed-jobs",
            f"/repos/{github.PROJECT}/actions/jobs/{github.TEST_JOB}/rerun",
        ):
            server.expect_request(path, method="POST").respond_with_handler(self.rerun)
        github.serve_run(server)  # the logs and reports the diagnosis reads; run and jobs are answered above

    def rerun(self, request: Request) -> Response:
        self.attempt_ends(None)
        return answer({}, status=201)

    def attempt_ends(self, conclusion: str | None) -> None:
        """Attempt 2: queued and running (None), or completed with ``conclusion``."""
        status = "completed" if conclusion else "in_progress"
        self.run |= {"run_attempt": 2, "status": status, "conclusion": conclusion}
        job = copy.deepcopy(self.jobs["jobs"][1]) | {"id": NEW_TEST_JOB, "run_attempt": 2}
        job |= {"status": status, "conclusion": conclusion}
        self.jobs["jobs"][1] = job


@pytest.fixture
def gh(httpserver: HTTPServer, tmp_path: Path) -> tuple[GitHubRun, HealContext]:
    state = GitHubRun(httpserver)
    provider = github.make_provider(httpserver)
    ref = github.make_ref(httpserver)
    ctx = HealContext(diagnosed(provider, ref, tmp_path), get_settings(), ref=ref, dry_run=False, provider=provider)
    httpserver.clear_log()
    return state, ctx


def test_github_plan_names_the_rerun_and_sends_nothing(
    httpserver: HTTPServer, gh: tuple[GitHubRun, HealContext]
) -> None:
    step = Retry().plan(retry(), gh[1])
    assert step.key == f"retry:github-actions:{github.PROJECT}:{github.RUN_ID}:1:run"
    assert step.request == {
        "method": "POST",
        "endpoint": f"{github.RUN_PATH}/rerun-failed-jobs",
        "payload": {},
        "job_id": None,
        "job": None,
    }
    assert step.summary == f"Re-run the failed jobs of run {github.RUN_ID}"
    assert calls(httpserver) == []  # GitHub's dry run needs no read at all


def test_github_execute_reruns_the_failed_jobs_once(httpserver: HTTPServer, gh: tuple[GitHubRun, HealContext]) -> None:
    ctx = gh[1]
    step = Retry().plan(retry(), ctx)
    first = Retry().execute(step, ctx)
    assert first.done and first.data == {"endpoint": f"{github.RUN_PATH}/rerun-failed-jobs"}
    # It read the run (still attempt 1, failed) before the one write.
    assert calls(httpserver) == [
        ("GET", github.RUN_PATH, None),
        ("GET", f"{github.RUN_PATH}/jobs", None),
        ("POST", f"{github.RUN_PATH}/rerun-failed-jobs", None),
    ]
    again = Retry().execute(step, ctx)
    assert again.done and again.data["already"]
    assert again.detail == f"already re-run: run {github.RUN_ID} attempt 2 is running"
    assert writes(httpserver) == [("POST", f"{github.RUN_PATH}/rerun-failed-jobs", None)]


def test_github_a_named_job_is_rerun_alone(httpserver: HTTPServer, gh: tuple[GitHubRun, HealContext]) -> None:
    state, ctx = gh
    step = Retry().plan(retry("test (3.12)"), ctx)
    job_path = f"/repos/{github.PROJECT}/actions/jobs/{github.TEST_JOB}/rerun"
    assert (step.request["endpoint"], step.request["job_id"]) == (job_path, str(github.TEST_JOB))
    assert step.key.endswith(":1:test (3.12)")
    Retry().execute(step, ctx)
    assert writes(httpserver) == [("POST", job_path, None)]
    state.attempt_ends("success")
    assert Retry().verify(step, Retry().execute(step, ctx), ctx) == (Verdict.FIXED, "job test (3.12) passed")
    assert len(writes(httpserver)) == 1


@pytest.mark.parametrize(
    ("conclusion", "verdict", "detail"),
    [
        (None, Verdict.PENDING, f"run {github.RUN_ID} attempt 2 is still running"),
        ("success", Verdict.FIXED, f"run {github.RUN_ID} attempt 2 passed"),
        ("failure", Verdict.NOT_FIXED, f"run {github.RUN_ID} attempt 2 ended failure"),
        ("cancelled", Verdict.NOT_FIXED, f"run {github.RUN_ID} attempt 2 ended cancelled"),
    ],
)
def test_github_verify_reads_the_new_attempt(
    httpserver: HTTPServer, gh: tuple[GitHubRun, HealContext], conclusion: str | None, verdict: Verdict, detail: str
) -> None:
    state, ctx = gh
    step = Retry().plan(retry(), ctx)
    outcome = Retry().execute(step, ctx)
    state.attempt_ends(conclusion)
    httpserver.clear_log()
    assert Retry().verify(step, outcome, ctx) == (verdict, detail)
    assert {method for method, _, _ in calls(httpserver)} == {"GET"}


def test_github_verify_before_the_rerun_shows_is_pending(gh: tuple[GitHubRun, HealContext]) -> None:
    ctx = gh[1]
    step = Retry().plan(retry(), ctx)
    # Attempt 1, failed, as diagnosed: the re-run has not been made (or not yet shown).
    assert Retry().verify(step, Outcome(done=True), ctx) == (Verdict.PENDING, "the re-run has not started yet")


def test_a_run_that_passed_is_not_retried(gh: tuple[GitHubRun, HealContext]) -> None:
    ctx = gh[1]
    assert ctx.diagnosis.run is not None
    passed = ctx.diagnosis.model_copy(update={"run": ctx.diagnosis.run.model_copy(update={"status": "success"})})
    with pytest.raises(ValueError, match="succeeded: there is nothing to retry"):
        Retry().plan(retry(), HealContext(passed, ctx.settings, ref=ctx.ref, provider=ctx.provider))


# -- GitLab ------------------------------------------------------------------------------------------


class GitLabPipeline:
    """The pipeline as GitLab shows it now; a retry replaces the failed jobs with new ones, same pipeline."""

    def __init__(self, server: HTTPServer) -> None:
        self.pipeline = gitlab.js("pipeline.json")
        self.jobs = gitlab.js("pipeline_jobs.json")
        server.expect_request(f"{GL}/pipelines/{gitlab.PIPELINE}", method="GET").respond_with_handler(
            lambda _: answer(self.pipeline)
        )
        server.expect_request(f"{GL}/pipelines/{gitlab.PIPELINE}/jobs", method="GET").respond_with_handler(
            lambda _: answer(self.jobs, headers={"X-Page": "1", "X-Total-Pages": "1", "X-Next-Page": ""})
        )
        server.expect_request(f"{GL}/pipelines/{gitlab.PIPELINE}/retry", method="POST").respond_with_handler(self.retry)
        server.expect_request(f"{GL}/jobs/{GL_PYTEST}/retry", method="POST").respond_with_handler(self.retry_job)
        gitlab.serve_run(server)

    def _replace(self, old: int, new: dict[str, Any]) -> None:
        self.jobs = [new if job["id"] == old else job for job in self.jobs]
        self.pipeline |= {"status": "running"}

    def retry(self, request: Request) -> Response:
        for job in [j for j in self.jobs if j["status"] == "failed"]:
            self._replace(job["id"], job | {"id": job["id"] + 68000, "status": "pending", "started_at": None})
        return answer(gitlab.js("pipeline_retry.json"), status=201)

    def retry_job(self, request: Request) -> Response:
        self._replace(GL_PYTEST, gitlab.js("job_retry.json"))
        return answer(gitlab.js("job_retry.json"), status=201)

    def ends(self, status: str) -> None:
        self.pipeline |= {"status": status}
        self.jobs = [job | {"status": status} if job["status"] == "pending" else job for job in self.jobs]


@pytest.fixture
def gl(httpserver: HTTPServer, tmp_path: Path) -> tuple[GitLabPipeline, HealContext]:
    state = GitLabPipeline(httpserver)
    provider = gitlab.make(httpserver, [])
    ref = gitlab.pipeline_ref()
    ctx = HealContext(diagnosed(provider, ref, tmp_path), get_settings(), ref=ref, dry_run=False, provider=provider)
    httpserver.clear_log()
    return state, ctx


def test_gitlab_plan_sends_nothing_and_execute_retries_the_pipeline_once(
    httpserver: HTTPServer, gl: tuple[GitLabPipeline, HealContext]
) -> None:
    state, ctx = gl
    step = Retry().plan(retry(), ctx)
    assert step.request["endpoint"] == f"/api/v4/projects/{gitlab.ENCODED}/pipelines/{gitlab.PIPELINE}/retry"
    assert step.key == f"retry:gitlab:{gitlab.PROJECT}:{gitlab.PIPELINE}:1:run"
    assert calls(httpserver) == []

    assert Retry().execute(step, ctx).done
    assert writes(httpserver) == [("POST", f"{GL}/pipelines/{gitlab.PIPELINE}/retry", {})]
    assert Retry().verify(step, Retry().execute(step, ctx), ctx) == (
        Verdict.PENDING,
        f"run {gitlab.PIPELINE} is still running",
    )
    assert len(writes(httpserver)) == 1  # the second execute saw the pipeline running again
    state.ends("success")
    assert Retry().verify(step, Retry().execute(step, ctx), ctx)[0] == Verdict.FIXED
    state.ends("failed")
    assert Retry().execute(step, ctx).data["already"]  # failed again, but as new jobs: already retried
    assert len(writes(httpserver)) == 1


@pytest.mark.parametrize(("status", "verdict"), [("success", Verdict.FIXED), ("failed", Verdict.NOT_FIXED)])
def test_gitlab_a_named_job_is_retried_alone_and_judged_by_its_new_job(
    httpserver: HTTPServer, gl: tuple[GitLabPipeline, HealContext], status: str, verdict: Verdict
) -> None:
    state, ctx = gl
    name = "test / pytest: [3.11]"
    step = Retry().plan(retry(name), ctx)
    assert step.request["job_id"] == str(GL_PYTEST)
    outcome = Retry().execute(step, ctx)
    assert writes(httpserver) == [("POST", f"{GL}/jobs/{GL_PYTEST}/retry", {})]
    state.ends(status)
    state.pipeline |= {"status": "failed"}  # docs (allowed to fail) keeps the pipeline red; pytest decides
    assert Retry().verify(step, outcome, ctx)[0] == verdict
    Retry().execute(step, ctx)
    assert len(writes(httpserver)) == 1


# -- Jenkins: a new build, not a new attempt ----------------------------------------------------------

GATEWAY_JOB = "platform/api-gateway"
GATEWAY_BUILD = "/job/platform/job/api-gateway/57/api/json"
GATEWAY_REBUILD = "/job/platform/job/api-gateway/buildWithParameters"


def test_jenkins_starts_a_new_build_and_verify_reads_the_next_build(httpserver: HTTPServer) -> None:
    jenkins.serve_gateway(httpserver)  # builds #58 (running), #57 (failed), #56 ... newest first
    build = jenkins.load("freestyle_build.json") | {"url": "https://ci.example.com/job/platform/job/api-gateway/57/"}
    httpserver.expect_request(GATEWAY_BUILD, query_string={"depth": "0"}).respond_with_json(build)
    httpserver.expect_request(GATEWAY_REBUILD, method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/915/")}
    )
    ref = jenkins.ref(httpserver, GATEWAY_JOB, "57")
    info = RunInfo(platform=Platform.JENKINS, id="57", project=GATEWAY_JOB, status="failure")
    diag = Diagnosis(
        source=Source(kind=SourceKind.JENKINS, path=GATEWAY_JOB),
        category=Category.INFRA,
        confidence=0.9,
        summary="agent lost",
        excerpt=None,
        run=info,
    )
    ctx = HealContext(diag, get_settings(), ref=ref, dry_run=False, provider=jenkins.make(httpserver, page_size=3))

    step = Retry().plan(retry(), ctx)
    assert (step.request["endpoint"], step.request["payload"]) == (
        GATEWAY_REBUILD,
        {"TARGET": "staging", "DRY_RUN": "false"},
    )
    assert writes(httpserver) == []
    outcome = Retry().execute(step, ctx)
    assert (outcome.done, outcome.detail) == (True, "queued as item 915")
    assert [(m, p) for m, p, _ in writes(httpserver)] == [("POST", GATEWAY_REBUILD)]

    httpserver.clear_log()
    assert Retry().verify(step, outcome, ctx) == (Verdict.PENDING, "the new build is still running")
    # One page of the listing: it stops at the failed build.
    assert [p for _, p, _ in calls(httpserver)] == ["/job/platform/job/api-gateway/api/json"]
    done = jenkins.load("job_builds_0.json")
    done["allBuilds"][0] |= {"building": False, "result": "SUCCESS"}
    httpserver.expect_oneshot_request(jenkins.GATEWAY).respond_with_json(done)
    assert Retry().verify(step, outcome, ctx) == (Verdict.FIXED, "the new build passed")
