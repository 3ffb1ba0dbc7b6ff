"""Azure DevOps Pipelines through the real azure-devops SDK, over real HTTP against a local server.

The SDK resolves every route from the server's location metadata (OPTIONS {collection}/_apis, and
GET {collection}/_apis/ResourceAreas for the client's area), so each test serves those fixtures too.
It caches them per URL for the process, so tests never count metadata requests.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.investigate import diagnose
from cimedic.models import Platform, Status
from cimedic.settings import CIClient, Limits, get_settings
from cimedic.tools.ci import azure
from cimedic.tools.ci.azure import READ_SCOPES, AzureDevOpsProvider
from cimedic.tools.ci.azure_session import classify
from cimedic.tools.ci.base import RunFilter, RunRef
from cimedic.tools.ci.guard import ProviderError
from cimedic.tools.ci.providers import provider_for

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci" / "azure"
ORG = "/org"
PROJECT = "Fabrikam"
API = f"{ORG}/{PROJECT}/_apis"
BUILD = f"{API}/build/builds/1234"
TOKEN = "azdopat7q2m9x4k1v8c3n6b5z0w"
SETTING = "CIMEDIC_AZURE_DEVOPS_TOKEN"
LINT_JOB = "2d2b5a31-6c1e-5f6a-9b0d-7e3c4a2f1b08"
UNIT_JOB = "c8e6f3a2-1d4b-5e9f-8a7c-0b2d3e4f5a61"
REPO_ID = "a4bcf5f2-8a5e-4f8c-9b4c-3f1c7d0e2b11"
THREADS = f"{API}/git/repositories/{REPO_ID}/pullRequests/12/threads"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def serve_metadata(server: HTTPServer) -> None:
    server.expect_request(f"{ORG}/_apis", method="OPTIONS").respond_with_json(fixture("options.json"))
    # The real answer points each area at https://dev.azure.com/ORG/; here that is the test server.
    areas = text("resource_areas.json").replace("https://dev.azure.com/fabrikam/", server.url_for(f"{ORG}/"))
    server.expect_request(f"{ORG}/_apis/ResourceAreas", method="GET").respond_with_data(
        areas, content_type="application/json; charset=utf-8; api-version=7.1-preview.1"
    )


def serve_build(server: HTTPServer, timeline: dict[str, Any] | None = None) -> None:
    serve_metadata(server)
    server.expect_request(BUILD, method="GET").respond_with_json(fixture("build.json"))
    server.expect_request(f"{BUILD}/Timeline", method="GET").respond_with_json(timeline or fixture("timeline.json"))
    for log_id, name in ((5, "log_lint_job.txt"), (9, "log_unit_tests_job.txt"), (8, "log_run_tests_task.txt")):
        server.expect_request(f"{BUILD}/logs/{log_id}", method="GET").respond_with_data(
            text(name), content_type="text/plain; charset=utf-8"
        )
    server.expect_request(f"{API}/test/runs", method="GET").respond_with_json(fixture("test_runs.json"))
    server.expect_request(f"{API}/test/Runs/1000051/Results", method="GET").respond_with_json(
        fixture("test_results.json")
    )


def make(
    server: HTTPServer,
    *,
    token: str | None = TOKEN,
    retries: int = 2,
    max_wait: float = 30.0,
    sleeps: list[float] | None = None,
) -> AzureDevOpsProvider:
    client = CIClient(timeout_s=10, retries=retries, max_wait_s=max_wait)
    return AzureDevOpsProvider(server.url_for(ORG), token, client, sleep=(sleeps if sleeps is not None else []).append)


def ref_of(server: HTTPServer, job_id: str | None = None) -> RunRef:
    return RunRef(
        platform=Platform.AZURE_DEVOPS,
        base_url=server.url_for(ORG),
        project=PROJECT,
        run_id="1234",
        job_id=job_id,
        url=f"https://dev.azure.com/fabrikam/{PROJECT}/_build/results?buildId=1234",
    )


def requests_to(server: HTTPServer, path: str, method: str = "GET") -> list[Request]:
    return [req for req, _ in server.log if req.path == path and req.method == method]


def writes(server: HTTPServer) -> list[Request]:
    """What changed something on the server: a dry run may read (GET, and the SDK's OPTIONS metadata), never this."""
    return [req for req, _ in server.log if req.method in WRITES]


def test_a_failed_build_fetched_and_diagnosed_end_to_end(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_build(httpserver)
    material = make(httpserver).fetch(ref_of(httpserver), tmp_path)

    info = material.run.info
    assert info is not None
    assert (info.id, info.number, info.name, info.status) == ("1234", "20240501.3", "orders-service CI", "failure")
    assert info.commit == "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
    assert (info.branch, info.pull_request, info.event) == ("feature/order-totals", "12", "pull_request")
    assert (info.actor, info.attempt) == ("jamal@fabrikam.com", 1)
    assert info.url == "https://dev.azure.com/fabrikam/6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c/_build/results?buildId=1234"
    assert info.queued_at == datetime(2024, 5, 1, 9, 58, 12, 447183, tzinfo=UTC)
    assert info.queue_s == 15.493
    assert info.duration_s == 313.177
    assert [(j.name, j.status, j.runner) for j in info.jobs] == [
        ("Build / Lint and type-check", "success", "Azure Pipelines 2"),
        ("Test / Unit tests", "failure", "Azure Pipelines 4"),
    ]
    unit = info.jobs[1]
    assert unit.id == UNIT_JOB
    assert unit.url is not None and unit.url.endswith(f"buildId=1234&view=logs&j={UNIT_JOB}")
    assert unit.duration_s == 226.632
    assert [(s.name, s.status) for s in unit.steps][3:6] == [
        ("Install dependencies", "success"),
        ("Run tests", "failure"),
        ("Publish test results", "success"),
    ]

    # Failed jobs only: the lint job's log is not fetched.
    assert [(log.path, log.job, log.step) for log in material.logs] == [
        ("Test _ Unit tests.log", "Test / Unit tests", None)
    ]
    assert (tmp_path / "Test _ Unit tests.log").read_text() == text("log_unit_tests_job.txt")
    assert not requests_to(httpserver, f"{BUILD}/logs/5")

    diagnosis = diagnose(material, limits=Limits())
    assert diagnosis.category == "test"
    assert diagnosis.excerpt is not None
    assert "AssertionError: assert Decimal('20.00') == Decimal('23.80')" in diagnosis.excerpt.text
    assert "FAILED tests/test_orders.py::test_order_total_includes_tax" in diagnosis.excerpt.text
    assert diagnosis.source.kind == "azure-devops"

    # The PAT goes as basic auth with an empty user; the API version rides in Accept, as the SDK sends it.
    build_request = requests_to(httpserver, BUILD)[0]
    assert build_request.headers["Authorization"] == "Basic " + base64.b64encode(f":{TOKEN}".encode()).decode()
    assert "api-version=7.0" in build_request.headers["Accept"]


def test_test_runs_of_the_build_become_failed_test_results(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_build(httpserver)
    material = make(httpserver).fetch(ref_of(httpserver), tmp_path)

    [failed] = material.run.failed_tests
    assert (failed.name, failed.classname, failed.suite) == (
        "test_order_total_includes_tax",
        "tests.test_orders",
        "Python test results",
    )
    assert failed.status == "failed"
    assert failed.message is not None and failed.message.startswith("AssertionError: assert Decimal('20.00')")
    assert failed.details is not None and "tests/test_orders.py:57" in failed.details
    assert (failed.duration_s, failed.report_path) == (0.019, "azure test run 1000051")

    [runs_request] = requests_to(httpserver, f"{API}/test/runs")
    assert runs_request.args["buildUri"] == "vstfs:///Build/Build/1234"
    [results_request] = requests_to(httpserver, f"{API}/test/Runs/1000051/Results")
    assert results_request.args["outcomes"] == "Failed,Error,Timeout"
    # The lint run passed every test: its results are not read.
    assert not requests_to(httpserver, f"{API}/test/Runs/1000050/Results")


def test_without_the_test_scope_the_logs_still_come_with_a_warning(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_oneshot_request(f"{API}/test/runs").respond_with_json(
        {"$id": "1", "message": "TF400813: The user is not authorized to access this resource.", "errorCode": 0},
        status=403,
    )
    serve_build(httpserver)
    material = make(httpserver).fetch(ref_of(httpserver), tmp_path)
    assert [log.job for log in material.logs] == ["Test / Unit tests"]
    assert material.run.test_results == []
    [warning] = material.warnings
    assert warning.startswith("test results not read: Azure DevOps refused access (HTTP 403)")
    assert READ_SCOPES in warning


def test_full_logs_and_a_job_named_in_the_url(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_build(httpserver)
    provider = make(httpserver)

    every = provider.fetch(ref_of(httpserver), tmp_path / "all", full_logs=True)
    assert [log.job for log in every.logs] == ["Build / Lint and type-check", "Test / Unit tests"]

    only = provider.fetch(ref_of(httpserver, job_id=LINT_JOB.upper()), tmp_path / "one")
    assert [log.job for log in only.logs] == ["Build / Lint and type-check"]
    assert (tmp_path / "one" / "Build _ Lint and type-check.log").read_text() == text("log_lint_job.txt")

    with pytest.raises(ProviderError, match="build 1234 has no job 00000000-0000"):
        provider.fetch(ref_of(httpserver, job_id="00000000-0000-0000-0000-000000000000"), tmp_path / "none")


def test_a_job_without_its_own_log_gives_the_logs_of_its_failed_tasks(httpserver: HTTPServer, tmp_path: Path) -> None:
    timeline = fixture("timeline.json")
    for record in timeline["records"]:
        if record["id"] == UNIT_JOB:
            record["log"] = None
    serve_build(httpserver, timeline)
    material = make(httpserver).fetch(ref_of(httpserver), tmp_path)
    assert [(log.path, log.step) for log in material.logs] == [("Test _ Unit tests/Run tests.log", "Run tests")]
    assert requests_to(httpserver, f"{BUILD}/logs/8")
    assert not requests_to(httpserver, f"{BUILD}/logs/9")
    assert diagnose(material, limits=Limits()).category == "test"


def serve_all_results(server: HTTPServer) -> None:
    """The results of both test runs of build 1234, every outcome, paged by $skip/$top as Azure pages them."""
    serve_metadata(server)
    server.expect_request(f"{API}/test/runs", method="GET").respond_with_json(fixture("test_runs.json"))
    for run_id in (1000050, 1000051):
        listed = fixture(f"test_results_{run_id}_all.json")["value"]

        def page(request: Request, listed: list[dict[str, Any]] = listed) -> Response:
            skip, top = int(request.args.get("$skip", 0)), int(request.args.get("$top", 1000))
            chunk = listed[skip : skip + top]
            return Response(json.dumps({"count": len(chunk), "value": chunk}), content_type="application/json")

        server.expect_request(f"{API}/test/Runs/{run_id}/Results", method="GET").respond_with_handler(page)


def test_test_results_page_through_every_outcome_without_logs(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_all_results(httpserver)
    monkeypatch.setattr(azure, "TEST_PAGE", 20)
    results = make(httpserver).test_results(ref_of(httpserver))

    assert len(results) == 50
    assert sum(1 for t in results if t.status == "passed") == 49
    [failed] = [t for t in results if t.status == "failed"]
    assert (failed.name, failed.suite, failed.classname) == (
        "test_order_total_includes_tax",
        "Python test results",
        "tests.test_orders",
    )
    passed = next(t for t in results if t.name == "test_vat_rate_de")
    assert (passed.classname, passed.message, passed.details) == ("tests.test_tax", None, None)
    assert {t.suite for t in results} == {"Python test results", "Lint report"}
    # Every run is read, passing ones too, page by page and with no outcome filter.
    pages = [(req.path.split("/")[-2], req.args["$skip"]) for req, _ in httpserver.log if req.path.endswith("/Results")]
    assert sorted(pages) == [("1000050", "0"), ("1000051", "0"), ("1000051", "20"), ("1000051", "40")]
    assert not [req for req, _ in httpserver.log if "outcomes" in req.args]
    [runs] = requests_to(httpserver, f"{API}/test/runs")
    assert runs.args["buildUri"] == "vstfs:///Build/Build/1234"
    # No build, timeline or log: the build's URI is known from its id.
    assert not [req for req, _ in httpserver.log if "/build/" in req.path or "/logs" in req.path]


def test_test_results_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(f"{API}/test/runs").respond_with_data("", status=401)
    with pytest.raises(ProviderError) as err:
        make(httpserver).test_results(ref_of(httpserver))
    assert f"Azure DevOps rejected the token (HTTP 401): check {SETTING}" in str(err.value)
    assert TOKEN not in str(err.value)


ENVIRONMENTS = f"{API}/distributedtask/environments"


def serve_deployments(server: HTTPServer) -> None:
    serve_metadata(server)
    server.expect_request(ENVIRONMENTS, method="GET").respond_with_json(fixture("environments.json"))
    server.expect_request(f"{ENVIRONMENTS}/2/environmentdeploymentRecords", method="GET").respond_with_json(
        fixture("environment_2_deployments.json")
    )

    def production(request: Request) -> Response:
        if request.args.get("continuationToken") == "398":
            return Response(text("environment_3_deployments_page2.json"), content_type="application/json")
        return Response(
            text("environment_3_deployments_page1.json"),
            content_type="application/json",
            headers={"x-ms-continuationtoken": "398"},
        )

    server.expect_request(f"{ENVIRONMENTS}/3/environmentdeploymentRecords", method="GET").respond_with_handler(
        production
    )
    builds = fixture("deployment_builds.json")["value"]

    def by_id(request: Request) -> Response:
        wanted = {int(i) for i in request.args["buildIds"].split(",")}
        found = [b for b in builds if b["id"] in wanted]
        return Response(json.dumps({"count": len(found), "value": found}), content_type="application/json")

    server.expect_request(f"{API}/build/builds", method="GET").respond_with_handler(by_id)


def build_lookups(server: HTTPServer) -> list[str]:
    return [req.args["buildIds"] for req in requests_to(server, f"{API}/build/builds")]


def test_deployments_merge_environments_newest_first_and_stop_at_the_limit(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    found = list(make(httpserver).deployments(PROJECT, limit=4))

    assert [(d.id, d.environment, d.status, d.run_id) for d in found] == [
        ("413", "staging", "running", "1322"),
        ("412", "production", "success", "1320"),
        ("410", "staging", "success", "1320"),
        ("405", "production", "failure", "1316"),
    ]
    prod = found[1]
    assert (prod.platform, prod.project, prod.ref) == ("azure-devops", PROJECT, "main")
    assert prod.commit == "4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
    assert prod.created_at == datetime(2024, 5, 3, 15, 2, 11, 16666, tzinfo=UTC)
    assert prod.finished_at == datetime(2024, 5, 3, 15, 5, 47, 783333, tzinfo=UTC)
    assert prod.url == "https://dev.azure.com/fabrikam/6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c/_build/results?buildId=1320"
    assert found[0].finished_at is None  # still deploying
    # Production's second page was never needed; the builds of both first pages were read in one request.
    records = requests_to(httpserver, f"{ENVIRONMENTS}/3/environmentdeploymentRecords")
    assert [req.args.get("continuationToken") for req in records] == [None]
    assert records[0].args["top"] == "4"
    assert build_lookups(httpserver) == ["1316,1320,1322"]
    assert writes(httpserver) == []


def test_deployments_follow_the_continuation_token_and_map_every_result(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    found = list(make(httpserver).deployments(PROJECT))

    assert [(d.id, d.environment, d.status) for d in found] == [
        ("413", "staging", "running"),
        ("412", "production", "success"),
        ("410", "staging", "success"),
        ("405", "production", "failure"),
        ("404", "staging", "success"),
        ("398", "production", "cancelled"),
        ("391", "production", "success"),  # succeededWithIssues
    ]
    cancelled = found[5]
    assert (cancelled.ref, cancelled.commit) == ("v1.18.0", "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e")
    records = requests_to(httpserver, f"{ENVIRONMENTS}/3/environmentdeploymentRecords")
    assert [req.args.get("continuationToken") for req in records] == [None, "398"]
    # Builds already read for another deployment are not asked for again.
    assert build_lookups(httpserver) == ["1316,1320,1322", "1297,1309"]


def test_deployments_stop_each_environment_at_since(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    since = datetime(2024, 5, 3, tzinfo=UTC)
    found = list(make(httpserver).deployments(PROJECT, since=since))
    assert [d.id for d in found] == ["413", "412", "410", "405", "404"]
    # Production's second page holds only older deployments: read, but their builds are not.
    assert build_lookups(httpserver) == ["1316,1320,1322"]


def test_deployments_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(ENVIRONMENTS).respond_with_json(
        {"$id": "1", "message": "TF400813: The user is not authorized to access this resource.", "errorCode": 0},
        status=403,
    )
    with pytest.raises(ProviderError) as err:
        list(make(httpserver).deployments(PROJECT))
    message = str(err.value)
    assert f"Azure DevOps refused access (HTTP 403): the token in {SETTING} needs" in message
    assert "Environment (Read & manage)" in message and TOKEN not in message


def test_runs_follow_the_continuation_token_with_filters_applied_by_the_server(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(f"{API}/build/definitions").respond_with_json(fixture("definitions.json"))
    httpserver.expect_oneshot_request(f"{API}/build/builds").respond_with_json(
        fixture("builds_page1.json"), headers={"x-ms-continuationtoken": "2024-05-03T08:12:44.9021573Z"}
    )
    httpserver.expect_oneshot_request(f"{API}/build/builds").respond_with_json(fixture("builds_page2.json"))

    filters = RunFilter(
        branch="main",
        status=Status.FAILURE,
        since=datetime(2024, 4, 1, tzinfo=UTC),
        limit=3,
        workflow="orders-service CI",
    )
    listed = list(make(httpserver).runs(PROJECT, filters))

    assert [(r.id, r.number, r.status, r.branch, r.event) for r in listed] == [
        ("1301", "20240503.4", "failure", "main", "push"),
        ("1288", "20240503.1", "failure", "main", "schedule"),
        ("1259", "20240502.6", "failure", "main", "push"),
    ]
    assert listed[0].actor == "chuck@fabrikam.com"
    assert listed[0].duration_s == 333.635
    assert listed[0].url == (
        "https://dev.azure.com/fabrikam/6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c/_build/results?buildId=1301"
    )
    [definitions] = requests_to(httpserver, f"{API}/build/definitions")
    assert definitions.args["name"] == "orders-service CI"
    first, second = requests_to(httpserver, f"{API}/build/builds")
    common = {
        "definitions": "7",
        "branchName": "refs/heads/main",
        "resultFilter": "failed",
        "queryOrder": "queueTimeDescending",
        "$top": "3",
    }
    assert {k: first.args[k] for k in common} == common
    assert first.args["minTime"].startswith("2024-04-01T00:00:00")
    assert "continuationToken" not in first.args
    assert {k: second.args[k] for k in common} == common
    assert second.args["continuationToken"] == "2024-05-03T08:12:44.9021573Z"


def test_runs_stop_when_the_server_has_no_more_pages(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(f"{API}/build/builds").respond_with_json(fixture("builds_page2.json"))
    listed = list(make(httpserver).runs(PROJECT, RunFilter(limit=10, status=Status.SUCCESS)))
    # Both builds failed: "success" is asked of the server as completed builds and checked here.
    assert listed == []
    [request] = requests_to(httpserver, f"{API}/build/builds")
    assert request.args["statusFilter"] == "completed"
    assert "resultFilter" not in request.args


RATE_LIMITED = {
    "Retry-After": "7",
    "X-RateLimit-Resource": "Build/Builds",
    "X-RateLimit-Delay": "3.271",
    "X-RateLimit-Limit": "200",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "1714557600",
}


def test_a_rate_limit_waits_what_retry_after_asks_then_succeeds(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(BUILD).respond_with_data(
        "Request was blocked due to exceeding usage of resource 'Build/Builds'.",
        status=429,
        headers=RATE_LIMITED,
        content_type="text/plain",
    )
    serve_build(httpserver)
    sleeps: list[float] = []
    info = make(httpserver, sleeps=sleeps).run(ref_of(httpserver))
    assert info.status == "failure"
    assert sleeps == [7.0]
    assert len(requests_to(httpserver, BUILD)) == 2


def test_a_rate_limit_that_does_not_lift_is_a_clear_error(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_data("blocked", status=429, headers=RATE_LIMITED)
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make(httpserver, retries=2, sleeps=sleeps).run(ref_of(httpserver))
    assert "Azure DevOps rate limit exceeded (HTTP 429); it resets in 7 s" in str(err.value)
    assert sleeps == [7.0, 7.0]
    assert len(requests_to(httpserver, BUILD)) == 3


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (401, "", f"Azure DevOps rejected the token (HTTP 401): check {SETTING} ({READ_SCOPES})"),
        (403, "", f"Azure DevOps refused access (HTTP 403): the token in {SETTING} needs {READ_SCOPES}"),
        (
            404,
            "error_build_not_found.json",
            f"not found on Azure DevOps (HTTP 404): check the URL, or the token in {SETTING}",
        ),
    ],
)
def test_refusals_name_the_token_setting(httpserver: HTTPServer, status: int, body: str, says: str) -> None:
    serve_metadata(httpserver)
    payload = text(body) if body else ""
    httpserver.expect_request(BUILD).respond_with_data(payload, status=status, content_type="application/json")
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make(httpserver, sleeps=sleeps).run(ref_of(httpserver))
    message = str(err.value)
    assert says in message
    assert "\n" not in message and TOKEN not in message
    assert sleeps == []


def test_without_a_token_a_401_says_to_set_one(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_data("", status=401)
    with pytest.raises(ProviderError, match=f"Azure DevOps needs a token \\(HTTP 401\\): set {SETTING}"):
        make(httpserver, token=None).run(ref_of(httpserver))
    assert "Authorization" not in requests_to(httpserver, BUILD)[0].headers


def test_a_sign_in_page_instead_of_data_is_a_rejected_token(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_data(
        "<html><head><title>Azure DevOps Services | Sign In</title></head></html>", status=203, content_type="text/html"
    )
    with pytest.raises(ProviderError, match="Azure DevOps rejected the token \\(HTTP 401\\)"):
        make(httpserver).run(ref_of(httpserver))


def test_azure_error_messages_reach_the_user(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD, method="PATCH").respond_with_json(
        {
            "$id": "1",
            "innerException": None,
            "message": "Build 1234 cannot be retried because it is still in progress.",
            "typeName": "Microsoft.TeamFoundation.Build.WebApi.InvalidBuildException, "
            "Microsoft.TeamFoundation.Build2.WebApi",
            "typeKey": "InvalidBuildException",
            "errorCode": 0,
            "eventId": 3000,
        },
        status=400,
    )
    with pytest.raises(ProviderError) as err:
        make(httpserver).rerun_failed(ref_of(httpserver), dry_run=False)
    assert str(err.value).endswith(
        "Azure DevOps answered HTTP 400: Build 1234 cannot be retried because it is still in progress."
    )


WEB_PAGE = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>It works</body></html>"


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("text/html; charset=utf-8", WEB_PAGE, "the _apis metadata is not JSON"),
        ("application/json", WEB_PAGE, "the _apis metadata is not JSON"),
        ("application/json", '{"status": "ok"}', "the _apis metadata lists no APIs"),
    ],
)
def test_a_url_that_is_no_azure_devops_collection_is_one_line(
    httpserver: HTTPServer, content_type: str, body: str, why: str
) -> None:
    # The SDK's first request to a URL is OPTIONS {url}/_apis for its route metadata; a plain web server (or a
    # proxy that labels its page JSON) answers it with a page, which msrest only reports as a DeserializationError.
    # A path of its own: the SDK caches route metadata per URL for the process.
    org = "/not-a-collection"
    httpserver.expect_request(f"{org}/_apis", method="OPTIONS").respond_with_data(body, content_type=content_type)
    base = httpserver.url_for(org)
    sleeps: list[float] = []
    provider = AzureDevOpsProvider(base, TOKEN, CIClient(timeout_s=10, retries=2), sleep=sleeps.append)
    ref = RunRef(platform=Platform.AZURE_DEVOPS, base_url=base, project=PROJECT, run_id="1234")
    with pytest.raises(ProviderError) as err:
        provider.run(ref)
    assert str(err.value) == (
        f"{base}/{PROJECT} build 1234: Azure DevOps answered HTTP 200: "
        f"{base} is not an Azure DevOps server or collection URL ({why})"
    )
    assert sleeps == []  # not worth another try
    assert [(req.method, req.path) for req, _ in httpserver.log] == [("OPTIONS", f"{org}/_apis")]


def test_a_page_instead_of_build_data_is_one_line(httpserver: HTTPServer) -> None:
    # The metadata is fine but a proxy answers the build itself with a page (and 200).
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_data(WEB_PAGE, content_type="text/html")
    with pytest.raises(ProviderError) as err:
        make(httpserver).run(ref_of(httpserver))
    assert str(err.value).endswith(
        "Azure DevOps answered HTTP 200: the answer is not Azure DevOps JSON: "
        "Cannot deserialize content-type: text/html"
    )
    assert len(requests_to(httpserver, BUILD)) == 1


def test_a_server_without_a_route_the_sdk_needs_is_one_line(httpserver: HTTPServer) -> None:
    # An old TFS collection: route metadata without the build timeline. The SDK then looks at the deployment
    # level (the URL's parent) too, and raises ValueError("API resource location ... is not registered on ...").
    collection = "/tfs/legacy"  # the SDK lowercases the URL it reads metadata from
    options = fixture("options.json")
    options["value"] = [loc for loc in options["value"] if loc["resourceName"] != "Timeline"]
    options["count"] = len(options["value"])
    httpserver.expect_request(f"{collection}/_apis", method="OPTIONS").respond_with_json(options)
    httpserver.expect_request("/tfs/_apis", method="OPTIONS").respond_with_json(options)
    # On-premises servers list no resource areas: every client uses the collection URL.
    httpserver.expect_request(f"{collection}/_apis/ResourceAreas").respond_with_json({"count": 0, "value": []})
    httpserver.expect_request(f"{collection}/{PROJECT}/_apis/build/builds/1234").respond_with_json(
        fixture("build.json")
    )
    base = httpserver.url_for(collection)
    sleeps: list[float] = []
    provider = AzureDevOpsProvider(base, TOKEN, CIClient(timeout_s=10, retries=2), sleep=sleeps.append)
    ref = RunRef(platform=Platform.AZURE_DEVOPS, base_url=base, project=PROJECT, run_id="1234")
    with pytest.raises(ProviderError) as err:
        provider.run(ref)
    assert str(err.value) == (
        f"{base}/{PROJECT} build 1234: Azure DevOps answered HTTP 200: "
        "this Azure DevOps server has no API for build timelines; it may be too old"
    )
    assert sleeps == []
    assert not [req for req, _ in httpserver.log if "Timeline" in req.path]


def test_a_route_cimedic_has_no_name_for_is_named_by_its_id() -> None:
    exc = ValueError("API resource location 00000000-1111-2222-3333-444444444444 is not registered on https://tfs/c.")
    failure = classify(exc)
    assert failure is not None and failure.status == 200
    assert failure.message == (
        "this Azure DevOps server has no API for the route 00000000-1111-2222-3333-444444444444; it may be too old"
    )
    assert classify(ValueError("some other value error")) is None


def test_a_64_mb_log_streams_to_disk_in_bounded_memory(httpserver: HTTPServer, tmp_path: Path) -> None:
    line = b"2024-05-01T10:00:01.1234567Z " + b"PASSED tests/test_load.py::test_case " + b"x" * 52 + b"\n"
    block = line * 512
    blocks = (64 * 1024 * 1024) // len(block) + 1

    def huge(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(blocks):
                yield block

        return Response(chunks(), content_type="text/plain; charset=utf-8")

    httpserver.expect_request(f"{BUILD}/logs/9").respond_with_handler(huge)
    serve_build(httpserver)
    provider = make(httpserver)
    tracemalloc.start()
    try:
        material = provider.fetch(ref_of(httpserver), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "Test _ Unit tests.log").stat().st_size == blocks * len(block) > 64 * 1024 * 1024
    assert len(material.logs) == 1
    assert peak < 16 * 1024 * 1024


def test_dry_run_rerun_and_cancel_send_nothing(httpserver: HTTPServer) -> None:
    provider = make(httpserver)
    ref = ref_of(httpserver)
    base = httpserver.url_for(ORG)

    rerun = provider.rerun_failed(ref)
    assert (rerun.dry_run, rerun.done, rerun.method) == (True, False, "PATCH")
    assert rerun.endpoint == f"{base}/{PROJECT}/_apis/build/builds/1234?retry=true"
    assert rerun.payload == {} and rerun.detail == "would retry the failed jobs of build 1234"

    cancel = provider.cancel(ref)
    assert (cancel.method, cancel.endpoint) == ("PATCH", f"{base}/{PROJECT}/_apis/build/builds/1234")
    assert cancel.payload == {"status": "cancelling"}

    assert httpserver.log == []


def test_dry_run_trigger_resolves_the_pipeline_name_and_sends_nothing(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(f"{API}/build/definitions").respond_with_json(fixture("definitions.json"))
    provider = make(httpserver)

    trigger = provider.trigger(PROJECT, "main", {"python": "3.12"}, workflow="orders-service CI")
    assert (trigger.dry_run, trigger.done, trigger.method) == (True, False, "POST")
    assert trigger.endpoint == f"{httpserver.url_for(ORG)}/{PROJECT}/_apis/build/builds"
    # The exact body the real trigger posts (test_trigger_resolves_the_pipeline_name_and_queues_a_build).
    assert trigger.payload == {
        "definition": {"id": 7},
        "sourceBranch": "refs/heads/main",
        "parameters": '{"python": "3.12"}',
    }
    assert trigger.detail == "would queue pipeline orders-service CI (definition 7) on refs/heads/main"
    [definitions] = requests_to(httpserver, f"{API}/build/definitions")
    assert definitions.args["name"] == "orders-service CI"

    # A definition id needs no lookup.
    httpserver.clear_log()
    by_id = provider.trigger(PROJECT, "release/2.4", {}, workflow="7")
    assert by_id.payload == {"definition": {"id": 7}, "sourceBranch": "refs/heads/release/2.4"}
    assert httpserver.log == []

    # An unknown name is refused as the real trigger refuses it.
    with pytest.raises(ProviderError, match="no pipeline named 'nightly'"):
        provider.trigger(PROJECT, "main", {}, workflow="nightly")
    assert writes(httpserver) == []


def test_dry_run_comment_reads_the_build_to_name_the_thread_endpoint(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_json(fixture("build.json"))

    comment = make(httpserver).comment(ref_of(httpserver), "cimedic: test failure")
    assert (comment.dry_run, comment.done, comment.method) == (True, False, "POST")
    assert comment.endpoint == httpserver.url_for(THREADS)
    assert (comment.target, comment.detail) == (f"{PROJECT} PR 12", "would start a thread on pull request 12")
    assert comment.payload == {
        "comments": [{"parentCommentId": 0, "content": "cimedic: test failure", "commentType": "text"}],
        "status": "active",
    }
    assert len(requests_to(httpserver, BUILD)) == 1
    assert writes(httpserver) == []


def test_rerun_failed_and_cancel_patch_the_build(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    answer = fixture("build.json") | {"status": "inProgress", "result": None}
    httpserver.expect_request(BUILD, method="PATCH").respond_with_json(answer)
    provider = make(httpserver)

    rerun = provider.rerun_failed(ref_of(httpserver), dry_run=False)
    assert (rerun.done, rerun.detail) == (True, "build 1234 is inProgress")
    cancel = provider.cancel(ref_of(httpserver), dry_run=False)
    assert cancel.done

    retry_request, cancel_request = requests_to(httpserver, BUILD, "PATCH")
    assert retry_request.args["retry"] == "true"
    assert retry_request.get_json() == {}
    assert "retry" not in cancel_request.args
    assert cancel_request.get_json() == {"status": "cancelling"}


def test_trigger_resolves_the_pipeline_name_and_queues_a_build(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(f"{API}/build/definitions").respond_with_json(fixture("definitions.json"))
    httpserver.expect_request(f"{API}/build/builds", method="POST").respond_with_json(fixture("build_queued.json"))

    result = make(httpserver).trigger(PROJECT, "main", {"python": "3.12"}, workflow="orders-service CI", dry_run=False)
    assert result.done
    assert result.detail.startswith("queued build 1311 (20240503.7)")
    [queued] = requests_to(httpserver, f"{API}/build/builds", "POST")
    assert queued.get_json() == {
        "definition": {"id": 7},
        "sourceBranch": "refs/heads/main",
        "parameters": '{"python": "3.12"}',
    }
    with pytest.raises(ProviderError, match="trigger needs the pipeline"):
        make(httpserver).trigger(PROJECT, "main", {}, dry_run=False)


def test_comment_starts_a_thread_on_the_pull_request(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_json(fixture("build.json"))
    httpserver.expect_request(THREADS, method="POST").respond_with_json(fixture("thread.json"))

    result = make(httpserver).comment(ref_of(httpserver), "cimedic: test failure", dry_run=False)
    assert (result.done, result.target, result.detail) == (True, f"{PROJECT} PR 12", "thread 148 on pull request 12")
    assert result.endpoint == httpserver.url_for(THREADS)
    [posted] = requests_to(httpserver, THREADS, "POST")
    assert posted.get_json() == {
        "comments": [{"parentCommentId": 0, "content": "cimedic: test failure", "commentType": "text"}],
        "status": "active",
    }


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"sourceBranch": "refs/heads/main", "triggerInfo": {}}, "build 1234 was not built for a pull request"),
        ({"repository": {"id": "fabrikam/orders-service", "type": "GitHub"}}, "lives on GitHub, not Azure Repos"),
    ],
)
def test_comment_needs_a_pull_request_on_azure_repos(
    httpserver: HTTPServer, change: dict[str, Any], says: str, dry_run: bool
) -> None:
    serve_metadata(httpserver)
    httpserver.expect_request(BUILD).respond_with_json(fixture("build.json") | change)
    # A dry run refuses it the same way: it reads the build as the comment does.
    with pytest.raises(ProviderError, match=says):
        make(httpserver).comment(ref_of(httpserver), "hello", dry_run=dry_run)
    assert writes(httpserver) == []


def test_an_unreachable_server_is_one_line_after_retries(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/org"
    sleeps: list[float] = []
    provider = AzureDevOpsProvider(base, TOKEN, CIClient(timeout_s=2, retries=1), sleep=sleeps.append)
    ref = RunRef(platform=Platform.AZURE_DEVOPS, base_url=base, project=PROJECT, run_id="1234")
    with pytest.raises(ProviderError) as err:
        provider.fetch(ref, tmp_path)
    message = str(err.value)
    assert f"cannot reach Azure DevOps at {base}: " in message
    assert "\n" not in message and TOKEN not in message
    assert len(sleeps) == 1


def test_a_server_slower_than_the_timeout_is_no_answer(httpserver: HTTPServer) -> None:
    serve_metadata(httpserver)

    def slow(request: Request) -> Response:
        time.sleep(0.8)
        return Response(text("build.json"), content_type="application/json")

    httpserver.expect_request(BUILD).respond_with_handler(slow)
    provider = AzureDevOpsProvider(httpserver.url_for(ORG), TOKEN, CIClient(timeout_s=0.2, retries=0))
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"cannot reach Azure DevOps at .*timed out"):
        provider.run(ref_of(httpserver))
    # ci.timeout_s bounds the request, and the SDK adds no tries of its own (msrest's default is three).
    assert time.monotonic() - started < 0.7
    # The server logs a request once its handler returns; wait for it so the next test starts clean.
    while not requests_to(httpserver, BUILD) and time.monotonic() - started < 5:
        time.sleep(0.05)
    assert len(requests_to(httpserver, BUILD)) == 1


def test_the_provider_comes_from_settings(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, TOKEN)
    get_settings.cache_clear()
    provider = provider_for(Platform.AZURE_DEVOPS, httpserver.url_for(ORG), get_settings())
    assert isinstance(provider, AzureDevOpsProvider)
    serve_build(httpserver)
    assert provider.run(ref_of(httpserver)).number == "20240501.3"
    [request] = requests_to(httpserver, BUILD)
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f":{TOKEN}".encode()).decode()
