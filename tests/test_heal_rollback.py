"""Rollback through the real PyGithub and python-gitlab over real HTTP: the local server keeps the project's
deployments as the platform would, and re-running the earlier deploy job records a new deployment."""

from __future__ import annotations

import copy
import re

import pytest
import test_ci_github as github
import test_ci_gitlab as gitlab
import test_ci_jenkins as jenkins
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.heal.actions.rollback import Rollback
from cimedic.heal.base import HealContext, Outcome, Verdict
from cimedic.models import Action, ActionKind, Category, Diagnosis, Platform, RunInfo, Source, SourceKind
from cimedic.settings import get_settings
from cimedic.tools.ci.base import CIProvider, RunRef
from tests.http_log import answer, calls, writes

GL = gitlab.api()


def diagnosis_of(info: RunInfo, kind: SourceKind) -> Diagnosis:
    """A failed deploy run as investigate reports it (run metadata attached, as cimedic.remote does)."""
    return Diagnosis(
        source=Source(kind=kind, path=info.url or info.id),
        category=Category.CONFIG,
        confidence=0.8,
        summary="deploy: health check on /healthz failed after the rollout",
        excerpt=None,
        run=info,
    )


def rollback(target: str) -> Action:
    return Action(kind=ActionKind.ROLLBACK, target=target, reason="the new release fails its health check")


def context(diag: Diagnosis, ref: RunRef, provider: CIProvider) -> HealContext:
    return HealContext(diag, get_settings(), ref=ref, dry_run=False, provider=provider)


# -- GitHub ------------------------------------------------------------------------------------------

BAD_RUN, BAD_DEPLOYMENT, BAD_SHA = 8913100021, 1502260113, "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
GOOD_RUN, GOOD_JOB, GOOD_DEPLOYMENT = 8913100017, 24590000277, 1502231144
GOOD_SHA = "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
REDEPLOYMENT = 1502270001
GH_RERUN = f"/repos/{github.PROJECT}/actions/jobs/{GOOD_JOB}/rerun"


class GitHubDeployments:
    """The repository's deployments now. The newest production deploy (of 1a2b, by run 8913100021) failed
    and the one before it (of 2b3c, by run 8913100017) succeeded; re-running that job deploys 2b3c again."""

    def __init__(self, server: HTTPServer, *, swap: bool = True) -> None:
        self.server = server
        self.listing = [d for page in (1, 2, 3) for d in github.fixture(f"deployments-page-{page}.json", server)]
        self.statuses = {str(i): github.fixture(f"deployment-{i}-statuses.json", server) for i in github.DEPLOYMENT_IDS}
        if swap:
            self.statuses[str(BAD_DEPLOYMENT)][0]["state"] = "failure"
            self.statuses[str(GOOD_DEPLOYMENT)][0]["state"] = "success"
        server.expect_request(github.DEPLOYMENTS, method="GET").respond_with_handler(lambda _: answer(self.listing))
        statuses = re.compile(rf"{github.DEPLOYMENTS}/(\d+)/statuses")
        server.expect_request(statuses, method="GET").respond_with_handler(self.states)
        server.expect_request(GH_RERUN, method="POST").respond_with_handler(self.rerun)

    def states(self, request: Request) -> Response:
        return answer(self.statuses[request.path.split("/")[-2]])

    def rerun(self, request: Request) -> Response:
        # The job's environment makes GitHub record a new deployment of the run's commit, queued at first.
        earlier = next(d for d in self.listing if d["id"] == GOOD_DEPLOYMENT)
        self.listing.insert(0, earlier | {"id": REDEPLOYMENT, "created_at": "2024-05-03T17:20:00Z"})
        self.redeploy_is("queued")
        return answer({}, status=201)

    def redeploy_is(self, state: str) -> None:
        status = copy.deepcopy(self.statuses[str(GOOD_DEPLOYMENT)][0])
        status |= {"state": state, "log_url": f"https://github.com/{github.PROJECT}/actions/runs/{GOOD_RUN}/job/1"}
        self.statuses[str(REDEPLOYMENT)] = [status]


def serve_deploy_run(server: HTTPServer) -> RunRef:
    """The failed deploy run (a push to main) that the diagnosis is about."""
    run = github.fixture("run-failed.json", server)
    run |= {"id": BAD_RUN, "name": "Deploy", "head_sha": BAD_SHA, "head_branch": "main", "event": "push"}
    run |= {"pull_requests": [], "html_url": f"https://github.com/{github.PROJECT}/actions/runs/{BAD_RUN}"}
    path = f"/repos/{github.PROJECT}/actions/runs/{BAD_RUN}"
    run |= {"url": github.api(server) + path, "jobs_url": github.api(server) + f"{path}/jobs"}
    server.expect_request(path, method="GET").respond_with_json(run)
    server.expect_request(f"{path}/jobs", method="GET").respond_with_json(github.fixture("run-jobs.json", server))
    return github.make_ref(server).model_copy(update={"run_id": str(BAD_RUN), "url": run["html_url"]})


@pytest.fixture
def gh(httpserver: HTTPServer) -> tuple[GitHubDeployments, HealContext]:
    state = GitHubDeployments(httpserver)
    provider = github.make_provider(httpserver)
    ref = serve_deploy_run(httpserver)
    ctx = context(diagnosis_of(provider.run(ref), SourceKind.GITHUB_ACTIONS), ref, provider)
    httpserver.clear_log()
    return state, ctx


def statuses_read(server: HTTPServer) -> list[str]:
    return [path.split("/")[-2] for _, path, _ in calls(server) if path.endswith("/statuses")]


def test_github_plan_finds_the_last_good_deploy_and_only_reads(
    httpserver: HTTPServer, gh: tuple[GitHubDeployments, HealContext]
) -> None:
    # The target is the run's branch, as the knowledge base aims rollbacks: the run's own deployment
    # names the environment.
    step = Rollback().plan(rollback("main"), gh[1])
    assert step.key == f"rollback:github-actions:{github.PROJECT}:{BAD_RUN}:1:main"
    assert (step.request["method"], step.request["endpoint"], step.request["payload"]) == ("POST", GH_RERUN, {})
    assert step.request["environment"] == "production"
    assert (step.request["run_id"], step.request["job_id"]) == (str(GOOD_RUN), str(GOOD_JOB))
    assert step.request["failing"] == {"id": str(BAD_DEPLOYMENT), "commit": BAD_SHA, "ref": "main", "status": "failure"}
    assert step.request["deployment"]["id"] == str(GOOD_DEPLOYMENT)
    assert step.request["deployment"]["commit"] == GOOD_SHA
    assert step.summary == (
        f"Roll production back from {BAD_SHA[:12]} to {GOOD_SHA[:12]} (deployment {GOOD_DEPLOYMENT}): "
        f"re-run job {GOOD_JOB}"
    )
    assert {method for method, _, _ in calls(httpserver)} == {"GET"}
    # Newest first, stopping at the good one: the two older deployments' statuses were never read.
    assert statuses_read(httpserver) == [str(i) for i in github.DEPLOYMENT_IDS[:3]]


def test_github_execute_reruns_the_deploy_job_once(
    httpserver: HTTPServer, gh: tuple[GitHubDeployments, HealContext]
) -> None:
    ctx = gh[1]
    step = Rollback().plan(rollback("production"), ctx)
    httpserver.clear_log()
    outcome = Rollback().execute(step, ctx)
    assert outcome.done and outcome.data == {"endpoint": GH_RERUN}
    # No redeployment yet: the listing reaches the failing deployment at once, then the one write.
    assert calls(httpserver) == [
        ("GET", github.DEPLOYMENTS, None),
        ("GET", f"{github.DEPLOYMENTS}/{BAD_DEPLOYMENT}/statuses", None),
        ("POST", GH_RERUN, None),
    ]
    again = Rollback().execute(step, ctx)
    assert again.data == {"deployment": str(REDEPLOYMENT), "already": True}
    assert again.detail == f"already rolled back: deployment {REDEPLOYMENT} of {GOOD_SHA[:12]} is running"
    assert writes(httpserver) == [("POST", GH_RERUN, None)]


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        ("queued", Verdict.PENDING),
        ("in_progress", Verdict.PENDING),
        ("success", Verdict.FIXED),
        ("failure", Verdict.NOT_FIXED),
        ("error", Verdict.NOT_FIXED),
    ],
)
def test_github_verify_reads_the_new_deployment(
    httpserver: HTTPServer, gh: tuple[GitHubDeployments, HealContext], state: str, verdict: Verdict
) -> None:
    deployments, ctx = gh
    step = Rollback().plan(rollback("production"), ctx)
    assert Rollback().verify(step, Outcome(done=True), ctx) == (Verdict.PENDING, "no new deployment to production yet")
    outcome = Rollback().execute(step, ctx)
    deployments.redeploy_is(state)
    httpserver.clear_log()
    found, detail = Rollback().verify(step, outcome, ctx)
    assert found == verdict and detail.startswith(f"deployment {REDEPLOYMENT} to production ")
    assert {method for method, _, _ in calls(httpserver)} == {"GET"}


def test_github_no_earlier_success_is_a_clear_refusal(httpserver: HTTPServer) -> None:
    GitHubDeployments(httpserver, swap=False)  # production: 1a2b succeeded last; every earlier deploy failed
    provider = github.make_provider(httpserver)
    ref = serve_deploy_run(httpserver)
    ctx = context(diagnosis_of(provider.run(ref), SourceKind.GITHUB_ACTIONS), ref, provider)
    with pytest.raises(
        ValueError, match=f"no earlier successful deployment to production before deployment {BAD_DEPLOYMENT}"
    ):
        Rollback().plan(rollback("production"), ctx)
    # A run that deployed nothing, and a target that is no environment or deployed branch: which one?
    assert ctx.diagnosis.run is not None
    other = ctx.diagnosis.model_copy(update={"run": ctx.diagnosis.run.model_copy(update={"id": str(github.RUN_ID)})})
    with pytest.raises(ValueError, match="no deployment to 'eu-west', of branch 'eu-west' or by this run"):
        Rollback().plan(rollback("eu-west"), context(other, ref, provider))
    assert writes(httpserver) == []


# -- GitLab ------------------------------------------------------------------------------------------

GL_BAD, GL_GOOD, GL_GOOD_JOB, GL_REDEPLOYMENT = "512384117", "512377032", 6745371050, 512390001
GL_GOOD_SHA = "b4d6f8a0c2e4a6b8d0f2a4c6e8b0d2f4a6c8e0b2"
GL_RETRY = f"{GL}/jobs/{GL_GOOD_JOB}/retry"


class GitLabDeployments:
    """The project's deployments now: production's newest (of e7a1) failed, the one before (v2.14.0) succeeded.
    Retrying that deployment's job (the environment's rollback) records a new deployment of its commit."""

    def __init__(self, server: HTTPServer) -> None:
        self.listing = gitlab.js("deployments_page_1.json") + gitlab.js("deployments_page_2.json")
        self._set(GL_BAD, "failed")
        self._set(GL_GOOD, "success")
        pages = {"X-Page": "1", "X-Total-Pages": "1", "X-Next-Page": ""}
        server.expect_request(f"{GL}/deployments", method="GET").respond_with_handler(
            lambda _: answer(self.listing, headers=pages)
        )
        server.expect_request(GL_RETRY, method="POST").respond_with_handler(self.retry)

    def _set(self, deployment: str | int, status: str) -> None:
        for item in self.listing:
            if str(item["id"]) == str(deployment):
                item["status"] = item["deployable"]["status"] = status

    def retry(self, request: Request) -> Response:
        earlier = next(d for d in self.listing if str(d["id"]) == GL_GOOD)
        job = earlier["deployable"] | {"id": 6745399001, "status": "created", "finished_at": None}
        redeploy = earlier | {"id": GL_REDEPLOYMENT, "iid": 213, "status": "created", "deployable": job}
        self.listing.insert(0, redeploy | {"created_at": "2024-05-03T15:00:00.000Z"})
        return answer(job, status=201)

    def redeploy_is(self, status: str) -> None:
        self._set(GL_REDEPLOYMENT, status)


@pytest.fixture
def gl(httpserver: HTTPServer) -> tuple[GitLabDeployments, HealContext]:
    state = GitLabDeployments(httpserver)
    gitlab.serve_run(httpserver)
    provider = gitlab.make(httpserver, [])
    ref = gitlab.pipeline_ref()
    ctx = context(diagnosis_of(provider.run(ref), SourceKind.GITLAB), ref, provider)
    httpserver.clear_log()
    return state, ctx


def test_gitlab_rollback_retries_the_earlier_deploy_job_once_and_verifies_the_new_deployment(
    httpserver: HTTPServer, gl: tuple[GitLabDeployments, HealContext]
) -> None:
    deployments, ctx = gl
    step = Rollback().plan(rollback("production"), ctx)
    assert step.request["endpoint"] == f"/api/v4/projects/{gitlab.ENCODED}/jobs/{GL_GOOD_JOB}/retry"
    assert (step.request["environment"], step.request["deployment"]["commit"]) == ("production", GL_GOOD_SHA)
    assert step.request["deployment"]["ref"] == "v2.14.0"
    assert calls(httpserver) == [("GET", f"{GL}/deployments", None)]

    assert Rollback().verify(step, Outcome(done=True), ctx)[0] == Verdict.PENDING
    outcome = Rollback().execute(step, ctx)
    assert outcome.done
    assert writes(httpserver) == [("POST", GL_RETRY, {})]
    assert Rollback().execute(step, ctx).data["already"]
    assert len(writes(httpserver)) == 1

    assert Rollback().verify(step, outcome, ctx) == (
        Verdict.PENDING,
        f"deployment {GL_REDEPLOYMENT} to production is running",
    )
    deployments.redeploy_is("success")
    assert Rollback().verify(step, outcome, ctx) == (
        Verdict.FIXED,
        f"deployment {GL_REDEPLOYMENT} to production succeeded",
    )
    deployments.redeploy_is("failed")
    assert Rollback().verify(step, outcome, ctx) == (
        Verdict.NOT_FIXED,
        f"deployment {GL_REDEPLOYMENT} to production ended failure",
    )
    assert len(writes(httpserver)) == 1


def test_gitlab_a_deployment_without_a_job_cannot_be_rerun(
    httpserver: HTTPServer, gl: tuple[GitLabDeployments, HealContext]
) -> None:
    deployments, ctx = gl
    next(d for d in deployments.listing if str(d["id"]) == GL_GOOD)["deployable"] = None  # made through the API
    with pytest.raises(ValueError, match=f"deployment {GL_GOOD} to production was not made by a CI job"):
        Rollback().plan(rollback("production"), ctx)
    assert writes(httpserver) == []


# -- platforms without a rollback -------------------------------------------------------------------


def test_jenkins_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    ref = jenkins.ref(httpserver, jenkins.FS_JOB, "57")
    info = RunInfo(platform=Platform.JENKINS, id="57", project=jenkins.FS_JOB, status="failure")
    ctx = context(diagnosis_of(info, SourceKind.JENKINS), ref, jenkins.make(httpserver))
    with pytest.raises(ValueError, match="cannot do on jenkins"):
        Rollback().plan(rollback("production"), ctx)
    assert httpserver.log == []
