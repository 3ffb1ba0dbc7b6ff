"""The Jenkins provider with the real python-jenkins over real HTTP (pytest-httpserver as Jenkins)."""

from __future__ import annotations

import base64
import json
import socket
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
from cimedic.models import TestStatus as Case
from cimedic.settings import CIClient, Limits, get_settings
from cimedic.tools.ci import jenkins_json as jj
from cimedic.tools.ci.base import RunFilter, RunRef
from cimedic.tools.ci.guard import ProviderError
from cimedic.tools.ci.jenkins import JenkinsProvider

FIX = Path(__file__).parent / "fixtures" / "ci" / "jenkins"
TOKEN = "11e5c2f0a9d84b7c6e3f1a2b4c5d6e7f80"
USER = "cimedic-bot"
PR_JOB = "acme/payments/PR-12"
PR_BUILD = "/job/acme/job/payments/job/PR-12/4"
FS_JOB = "tools/nightly-report"
FS_BUILD = "/job/tools/job/nightly-report/57"
GATEWAY = "/job/platform/job/api-gateway/api/json"
MB = "/job/acme/job/payments"
SETTINGS = "CIMEDIC_JENKINS_USER / CIMEDIC_JENKINS_TOKEN"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def make(
    server: HTTPServer,
    sleeps: list[float] | None = None,
    *,
    token: str | None = TOKEN,
    user: str | None = USER,
    retries: int = 3,
    max_wait: float = 60.0,
    page_size: int = 100,
    prefix: str = "",
) -> JenkinsProvider:
    client = CIClient(retries=retries, max_wait_s=max_wait, timeout_s=10)
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    base = server.url_for(prefix or "/").rstrip("/")
    return JenkinsProvider(base, token, client, sleep=sleep, user=user, page_size=page_size)


def ref(server: HTTPServer, project: str, number: str, job_id: str | None = None) -> RunRef:
    return RunRef(
        platform=Platform.JENKINS,
        base_url=server.url_for("/").rstrip("/"),
        project=project,
        run_id=number,
        job_id=job_id,
    )


def serve_crumb(server: HTTPServer, prefix: str = "") -> None:
    server.expect_request(f"{prefix}/crumbIssuer/api/json").respond_with_json(load("crumb.json"))


def serve_pr(server: HTTPServer, prefix: str = "") -> None:
    serve_crumb(server, prefix)
    build = f"{prefix}{PR_BUILD}"
    server.expect_request(f"{build}/api/json", query_string={"depth": "0"}).respond_with_json(load("pr_build.json"))
    server.expect_request(f"{build}/wfapi/describe/").respond_with_json(load("pr_stages.json"))
    server.expect_request(f"{build}/consoleText").respond_with_data(
        (FIX / "pr_console.txt").read_bytes(), content_type="text/plain;charset=UTF-8"
    )
    server.expect_request(
        f"{build}/testReport/api/json", query_string={"depth": "0", "tree": jj.TEST_TREE}
    ).respond_with_json(load("pr_testReport.json"))


def serve_freestyle(server: HTTPServer, build: dict[str, Any] | None = None) -> None:
    """A freestyle job: no Stage View (404) and no test report (404), like Jenkins answers."""
    serve_crumb(server)
    server.expect_request(f"{FS_BUILD}/api/json", query_string={"depth": "0"}).respond_with_json(
        build or load("freestyle_build.json")
    )
    server.expect_request(f"{FS_BUILD}/wfapi/describe/").respond_with_data("Not Found", status=404)
    server.expect_request(f"{FS_BUILD}/testReport/api/json").respond_with_data("Not Found", status=404)
    server.expect_request(f"{FS_BUILD}/consoleText").respond_with_data(
        (FIX / "freestyle_console.txt").read_bytes(), content_type="text/plain;charset=UTF-8"
    )


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# 1. a failed run end to end ---------------------------------------------------------------------


def test_failed_pipeline_build_diagnosed_end_to_end(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_pr(httpserver)
    material = make(httpserver).fetch(ref(httpserver, PR_JOB, "4"), tmp_path)
    diag = diagnose(material, limits=Limits())

    assert diag.category == "test"
    assert diag.excerpt is not None
    assert "RefundServiceTest.partialRefundKeepsCurrencyScale" in diag.excerpt.text
    assert "expected: <12.50> but was: <12.5>" in diag.excerpt.text
    assert [t.name for t in diag.failed_tests] == ["partialRefundKeepsCurrencyScale"]

    info = material.run.info
    assert info is not None
    assert (info.platform, info.id, info.number, info.project) == ("jenkins", "4", "4", PR_JOB)
    assert info.url == "https://ci.example.com/job/acme/job/payments/job/PR-12/4/"
    assert info.status == "failure"
    assert info.commit == "8c2f4e1b9d7a6c5e3f2a1b0c9d8e7f6a5b4c3d2e"
    assert (info.branch, info.pull_request) == ("PR-12", "12")
    assert (info.actor, info.event) == ("dwhitfield", "manual")
    assert info.started_at == datetime(2024, 5, 14, 9, 12, 0, 123000, tzinfo=UTC)
    assert info.queue_s == 8.412  # TimeInQueueAction.queuingDurationMillis
    assert info.duration_s == 161.877  # build duration
    job = info.jobs[0]
    assert (job.name, job.id, job.runner, job.status) == (PR_JOB, "4", "build-agent-03", "failure")
    assert [(s.name, s.status) for s in job.steps] == [
        ("Declarative: Checkout SCM", Status.SUCCESS),
        ("Build", Status.SUCCESS),
        ("Test", Status.FAILURE),
        ("Declarative: Post Actions", Status.FAILURE),
    ]
    test_stage = job.steps[2]
    assert test_stage.started_at == at(1715677964702)
    assert test_stage.finished_at == at(1715677964702 + 112318)

    # The console log streamed to disk whole; the crumb and the token's basic auth went with every call.
    assert [log.path for log in material.logs] == ["acme_payments_PR-12.log"]
    assert (tmp_path / "acme_payments_PR-12.log").read_bytes() == (FIX / "pr_console.txt").read_bytes()
    console = requests_to(httpserver, f"{PR_BUILD}/consoleText")[0]
    assert console.headers["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert console.headers["Jenkins-Crumb"] == load("crumb.json")["crumb"]


def test_server_under_a_path_prefix(httpserver: HTTPServer) -> None:
    serve_pr(httpserver, prefix="/jenkins")
    info = make(httpserver, prefix="/jenkins").run(ref(httpserver, PR_JOB, "4"))
    assert (info.commit, len(info.jobs[0].steps)) == ("8c2f4e1b9d7a6c5e3f2a1b0c9d8e7f6a5b4c3d2e", 4)


def test_freestyle_build_has_no_stages_and_no_test_report(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_freestyle(httpserver)
    material = make(httpserver).fetch(ref(httpserver, FS_JOB, "57"), tmp_path)
    info = material.run.info
    assert info is not None
    assert (info.branch, info.pull_request, info.event, info.actor) == ("main", None, "schedule", None)
    assert info.commit == "3e9a7c1d5b2f4e6a8c0d1e2f3a4b5c6d7e8f9a0b"
    assert (info.queued_at, info.queue_s, info.duration_s) == (None, None, 48.231)  # no Metrics plugin
    assert (info.jobs[0].runner, info.jobs[0].steps) == ("linux-agent-2", [])
    assert material.run.test_results == []
    diag = diagnose(material, limits=Limits())
    assert diag.excerpt is not None and "psycopg2.OperationalError" in diag.excerpt.text


def test_a_permalink_is_resolved_once_and_the_build_number_used_after(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_freestyle(httpserver)
    httpserver.expect_request("/job/tools/job/nightly-report/lastFailedBuild/api/json").respond_with_json(
        load("freestyle_build.json")
    )
    material = make(httpserver).fetch(ref(httpserver, FS_JOB, "lastFailedBuild"), tmp_path)
    assert material.run.info is not None and material.run.info.number == "57"
    assert [request.path for request, _ in httpserver.log][1:] == [
        "/job/tools/job/nightly-report/lastFailedBuild/api/json",
        f"{FS_BUILD}/wfapi/describe/",
        f"{FS_BUILD}/consoleText",
        f"{FS_BUILD}/testReport/api/json",
    ]


# 2. which logs ---------------------------------------------------------------------------------


def test_a_build_is_one_job_whose_log_is_fetched_whether_or_not_it_failed(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    passed = load("freestyle_build.json") | {"result": "SUCCESS"}
    serve_freestyle(httpserver, passed)
    provider = make(httpserver)

    # No job failed: the log comes anyway (failed-jobs-only would leave nothing to look at).
    default = provider.fetch(ref(httpserver, FS_JOB, "57"), tmp_path / "default")
    full = provider.fetch(ref(httpserver, FS_JOB, "57"), tmp_path / "full", full_logs=True)
    assert [log.job for log in default.logs] == [log.job for log in full.logs] == [FS_JOB]
    assert default.run.status == Status.SUCCESS
    assert len(requests_to(httpserver, f"{FS_BUILD}/consoleText")) == 2


def test_job_id_narrows_to_the_build_and_names_a_missing_one(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_freestyle(httpserver)
    provider = make(httpserver)
    material = provider.fetch(ref(httpserver, FS_JOB, "57", job_id="57"), tmp_path)
    assert [log.path for log in material.logs] == ["tools_nightly-report.log"]

    httpserver.clear_log()
    with pytest.raises(ProviderError, match="no job 3"):
        provider.fetch(ref(httpserver, FS_JOB, "57", job_id="3"), tmp_path / "other")
    assert requests_to(httpserver, f"{FS_BUILD}/consoleText") == []


# 3. test reports -------------------------------------------------------------------------------


def test_junit_plugin_report_becomes_test_results(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_pr(httpserver)
    material = make(httpserver).fetch(ref(httpserver, PR_JOB, "4"), tmp_path)
    results = material.run.test_results
    assert len(results) == 15
    failed = material.run.failed_tests
    assert [(t.classname, t.name, t.status) for t in failed] == [
        ("com.acme.payments.RefundServiceTest", "partialRefundKeepsCurrencyScale", Case.FAILED)
    ]
    assert failed[0].message == "expected: <12.50> but was: <12.5>"
    assert failed[0].details is not None and "RefundServiceTest.java:58" in failed[0].details
    assert (failed[0].suite, failed[0].duration_s, failed[0].report_path) == (
        "com.acme.payments.RefundServiceTest",
        0.031,
        "jenkins testReport",
    )
    by_name = {t.name: t.status for t in results}
    assert by_name["refundOfVoidedPaymentIsRejected"] == Case.PASSED  # FIXED
    assert by_name["refundInForeignCurrency"] == Case.SKIPPED


def test_test_results_read_the_report_alone_passes_included(httpserver: HTTPServer) -> None:
    serve_pr(httpserver)
    results = make(httpserver).test_results(ref(httpserver, PR_JOB, "4"))
    counts = {status: sum(1 for t in results if t.status == status) for status in Case}
    assert counts == {Case.PASSED: 13, Case.FAILED: 1, Case.ERROR: 0, Case.SKIPPED: 1}
    assert {t.report_path for t in results} == {"jenkins testReport"}
    # The report and the crumb: no build JSON, no stages, no console log.
    assert sorted({request.path for request, _ in httpserver.log}) == [
        "/crumbIssuer/api/json",
        f"{PR_BUILD}/testReport/api/json",
    ]
    assert not [request for request, _ in httpserver.log if "consoleText" in request.path]


def test_test_results_of_a_build_without_a_report_are_none(httpserver: HTTPServer) -> None:
    serve_freestyle(httpserver)
    assert make(httpserver).test_results(ref(httpserver, FS_JOB, "57")) == []
    assert requests_to(httpserver, f"{FS_BUILD}/consoleText") == []


def test_test_results_refused_name_the_settings(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_data("<html>Unauthorized</html>", status=401)
    httpserver.expect_request(f"{PR_BUILD}/testReport/api/json").respond_with_data(
        "<html>HTTP ERROR 401</html>", status=401
    )
    with pytest.raises(ProviderError) as err:
        make(httpserver).test_results(ref(httpserver, PR_JOB, "4"))
    message = str(err.value)
    assert f"Jenkins rejected the token (HTTP 401): check {SETTINGS}" in message
    assert TOKEN not in message and "\n" not in message


def test_jenkins_has_no_deployments_and_asks_nothing(httpserver: HTTPServer) -> None:
    since = datetime(2024, 5, 1, tzinfo=UTC)
    assert list(make(httpserver).deployments("platform/api-gateway", since=since, limit=5)) == []
    assert httpserver.log == []


# 4. runs across pages --------------------------------------------------------------------------


def serve_gateway(server: HTTPServer) -> None:
    serve_crumb(server)
    builds = f"allBuilds[{jj.BUILD_TREE}]"
    server.expect_request(
        GATEWAY, query_string={"tree": f"jobs[name,{builds}{{0,3}}],{builds}{{0,3}}"}
    ).respond_with_json(load("job_builds_0.json"))
    for start in (3, 6):
        server.expect_request(GATEWAY, query_string={"tree": f"{builds}{{{start},{start + 3}}}"}).respond_with_json(
            load(f"job_builds_{start}.json")
        )


def test_runs_pages_through_builds_with_tree_ranges_and_filters(httpserver: HTTPServer) -> None:
    serve_gateway(httpserver)
    since = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)  # between #53 (-9 h) and #52 (-30 h)
    filters = RunFilter(branch="main", status=Status.FAILURE, since=since, limit=10)
    found = list(make(httpserver, page_size=3).runs("platform/api-gateway", filters))

    assert [r.id for r in found] == ["57", "54"]
    first = found[0]
    assert (first.platform, first.project, first.status, first.branch) == (
        "jenkins",
        "platform/api-gateway",
        "failure",
        "main",
    )
    assert (first.actor, first.event) == ("mkovacs", "push")
    assert first.commit == "57a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3"
    assert first.url == "https://ci.example.com/job/platform/job/api-gateway/57/"
    assert first.started_at is not None and first.queued_at is not None
    assert (first.started_at - first.queued_at).total_seconds() == 2.057
    assert first.duration_s == 469.0

    # Three pages, newest first, each a {from,to} range of allBuilds; the third holds #52, older than `since`.
    trees = [request.args["tree"] for request in requests_to(httpserver, GATEWAY)]
    builds = f"allBuilds[{jj.BUILD_TREE}]"
    assert trees == [f"jobs[name,{builds}{{0,3}}],{builds}{{0,3}}", f"{builds}{{3,6}}", f"{builds}{{6,9}}"]


def test_runs_stops_reading_at_the_limit(httpserver: HTTPServer) -> None:
    serve_gateway(httpserver)
    found = list(make(httpserver, page_size=3).runs("platform/api-gateway", RunFilter(limit=2)))
    assert [(r.id, r.status) for r in found] == [("58", "running"), ("57", "failure")]
    assert found[0].finished_at is None
    assert len(requests_to(httpserver, GATEWAY)) == 1


def serve_multibranch(server: HTTPServer) -> None:
    serve_crumb(server)
    builds = f"allBuilds[{jj.BUILD_TREE}]"
    server.expect_request(
        f"{MB}/api/json", query_string={"tree": f"jobs[name,{builds}{{0,2}}],{builds}{{0,2}}"}
    ).respond_with_json(load("multibranch.json"))
    server.expect_request(f"{MB}/job/main/api/json", query_string={"tree": f"{builds}{{2,4}}"}).respond_with_json(
        load("multibranch_main_2.json")
    )
    server.expect_request(f"{MB}/job/PR-12/api/json", query_string={"tree": f"{builds}{{2,4}}"}).respond_with_json(
        load("multibranch_pr12_2.json")
    )


def test_runs_of_a_multibranch_project_merge_its_branch_jobs_newest_first(httpserver: HTTPServer) -> None:
    serve_multibranch(httpserver)
    found = list(make(httpserver, page_size=2).runs("acme/payments", RunFilter(limit=10)))
    assert [(r.project, r.id, r.branch) for r in found] == [
        ("acme/payments/main", "31", "main"),
        ("acme/payments/feature%2Fledger-export", "1", "feature/ledger-export"),
        ("acme/payments/PR-12", "4", "PR-12"),
        ("acme/payments/main", "30", "main"),
        ("acme/payments/PR-12", "3", "PR-12"),
        ("acme/payments/main", "29", "main"),
    ]
    assert [r.event for r in found] == ["push", "push", "manual", "push", "pull_request", "branch-indexing"]


def test_branch_filter_on_a_multibranch_project_reads_that_branch_job_only(httpserver: HTTPServer) -> None:
    serve_multibranch(httpserver)
    found = list(make(httpserver, page_size=2).runs("acme/payments", RunFilter(branch="feature/ledger-export")))
    assert [(r.project, r.id) for r in found] == [("acme/payments/feature%2Fledger-export", "1")]
    assert [request.path for request, _ in httpserver.log] == ["/crumbIssuer/api/json", f"{MB}/api/json"]


# 5. rate limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_then_the_call_succeeds(httpserver: HTTPServer, status: int) -> None:
    serve_crumb(httpserver)
    httpserver.expect_oneshot_request(f"{FS_BUILD}/api/json").respond_with_data(
        "Too Many Requests", status=status, headers={"Retry-After": "7"}
    )
    serve_freestyle(httpserver)
    sleeps: list[float] = []
    info = make(httpserver, sleeps).run(ref(httpserver, FS_JOB, "57"))
    assert info.number == "57"
    assert sleeps == [7.0]
    assert len(requests_to(httpserver, f"{FS_BUILD}/api/json")) == 2


def test_a_rate_limit_that_persists_becomes_a_clear_error(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    httpserver.expect_request(f"{FS_BUILD}/api/json").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "5"}
    )
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make(httpserver, sleeps, retries=2).run(ref(httpserver, FS_JOB, "57"))
    assert "rate limit exceeded (HTTP 429)" in str(err.value)
    assert sleeps == [5.0, 5.0]


def test_a_retry_after_beyond_the_bound_fails_at_once(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    httpserver.expect_request(f"{FS_BUILD}/api/json").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    sleeps: list[float] = []
    with pytest.raises(ProviderError, match=r"rate limit exceeded .*resets in 3600 s"):
        make(httpserver, sleeps, max_wait=60).run(ref(httpserver, FS_JOB, "57"))
    assert sleeps == []


# 6. authentication and permissions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "wording"),
    [
        # A 401 is a wrong user as well as a wrong token: both settings are named.
        (401, f"rejected the token (HTTP 401): check {SETTINGS} (Overall/Read + Job/Read)"),
        (403, f"refused access (HTTP 403): the token in {SETTINGS} needs Overall/Read + Job/Read"),
        (404, "not found on Jenkins (HTTP 404)"),
    ],
)
def test_refusals_name_the_token_setting_and_never_the_token(httpserver: HTTPServer, status: int, wording: str) -> None:
    # Jenkins refuses everything to a bad token, the crumb issuer included; a 404 is only the build's.
    if status == 404:
        serve_crumb(httpserver)
    else:
        httpserver.expect_request("/crumbIssuer/api/json").respond_with_data(f"<html>{TOKEN}</html>", status=status)
    httpserver.expect_request(f"{FS_BUILD}/api/json").respond_with_data(
        f"<html>HTTP ERROR {status}</html>", status=status
    )
    with pytest.raises(ProviderError) as err:
        make(httpserver).run(ref(httpserver, FS_JOB, "57"))
    message = str(err.value)
    assert wording in message
    assert "CIMEDIC_JENKINS_TOKEN" in message
    assert TOKEN not in message and "\n" not in message


def test_anonymous_access_refused_asks_for_a_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_data("", status=401)
    with pytest.raises(ProviderError, match=f"needs a token \\(HTTP 401\\): set {SETTINGS} \\("):
        make(httpserver, token=None, user=None).run(ref(httpserver, FS_JOB, "57"))
    request = httpserver.log[0][0]
    assert "Authorization" not in request.headers


def test_a_token_without_its_user_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    with pytest.raises(ProviderError, match="CIMEDIC_JENKINS_USER is not"):
        make(httpserver, user=None)
    assert httpserver.log == []


def test_settings_build_an_authenticated_provider(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIMEDIC_JENKINS_USER", USER)
    monkeypatch.setenv("CIMEDIC_JENKINS_TOKEN", TOKEN)
    get_settings.cache_clear()
    serve_freestyle(httpserver)
    provider = JenkinsProvider.from_settings(httpserver.url_for("/").rstrip("/"), get_settings())
    assert provider.run(ref(httpserver, FS_JOB, "57")).number == "57"
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert all(request.headers["Authorization"] == expected for request, _ in httpserver.log)


def test_html_instead_of_json_is_a_one_line_error(httpserver: HTTPServer) -> None:
    # An SSO proxy's login page answered instead of Jenkins.
    serve_crumb(httpserver)
    httpserver.expect_request(f"{FS_BUILD}/api/json").respond_with_data("<html><body>Sign in</body></html>")
    with pytest.raises(ProviderError, match="Jenkins answered HTTP 200: Could not parse JSON info"):
        make(httpserver).run(ref(httpserver, FS_JOB, "57"))


def test_html_instead_of_a_job_page_is_a_one_line_error(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    httpserver.expect_request(GATEWAY).respond_with_data("<html><body>Sign in</body></html>")
    with pytest.raises(ProviderError, match="Jenkins answered HTTP 200: Could not parse JSON info for job/platform"):
        list(make(httpserver).runs("platform/api-gateway", RunFilter()))


# 7. streaming ---------------------------------------------------------------------------------


def test_a_64_mb_console_log_streams_to_disk_in_bounded_memory(httpserver: HTTPServer, tmp_path: Path) -> None:
    line = b"[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/example/lib/1.0/lib-1.0.jar\n"
    chunk = line * (65536 // len(line))
    count = (64 * 1024 * 1024) // len(chunk)

    def console(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(count):
                yield chunk
            yield b"Finished: FAILURE\n"

        return Response(body(), mimetype="text/plain")

    serve_crumb(httpserver)
    httpserver.expect_request(f"{FS_BUILD}/api/json", query_string={"depth": "0"}).respond_with_json(
        load("freestyle_build.json")
    )
    httpserver.expect_request(f"{FS_BUILD}/wfapi/describe/").respond_with_data("", status=404)
    httpserver.expect_request(f"{FS_BUILD}/testReport/api/json").respond_with_data("", status=404)
    httpserver.expect_request(f"{FS_BUILD}/consoleText").respond_with_handler(console)

    tracemalloc.start()
    try:
        material = make(httpserver).fetch(ref(httpserver, FS_JOB, "57"), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / "tools_nightly-report.log").stat().st_size
    assert size == count * len(chunk) + len(b"Finished: FAILURE\n")
    assert size > 60 * 1024 * 1024
    assert peak < 16 * 1024 * 1024
    assert material.warnings == []


# 8. writes -----------------------------------------------------------------------------------


def writes(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log if request.method in WRITES]


def test_dry_run_cancel_and_trigger_send_nothing(httpserver: HTTPServer) -> None:
    provider = make(httpserver)
    cancel = provider.cancel(ref(httpserver, PR_JOB, "4"))
    trigger = provider.trigger("acme/payments", "feature/ledger-export", {"DEPLOY": "false"})
    assert httpserver.log == []
    assert all(w.dry_run and not w.done and w.method == "POST" for w in (cancel, trigger))
    assert (cancel.endpoint, cancel.detail) == ("/job/acme/job/payments/job/PR-12/4/stop", "would abort build #4")
    assert trigger.endpoint == "/job/acme/job/payments/job/feature%252Fledger-export/buildWithParameters"
    assert trigger.payload == {"DEPLOY": "false"}


def test_dry_run_rerun_reads_the_build_to_name_the_exact_request(httpserver: HTTPServer) -> None:
    serve_freestyle(httpserver)
    rerun = make(httpserver).rerun_failed(ref(httpserver, FS_JOB, "57"))
    assert (rerun.dry_run, rerun.done, rerun.method) == (True, False, "POST")
    # What the real rerun sends: buildWithParameters with the failed build's parameters (the password one
    # exports no value and is not replayed).
    assert rerun.endpoint == "/job/tools/job/nightly-report/buildWithParameters"
    assert rerun.payload == {"TARGET": "staging", "DRY_RUN": "false"}
    assert rerun.detail == "would start a new build of tools/nightly-report like #57 with its parameters"
    assert [request.path for request, _ in httpserver.log] == ["/crumbIssuer/api/json", f"{FS_BUILD}/api/json"]
    assert writes(httpserver) == []


def test_dry_run_rerun_of_a_build_without_parameters_names_build(httpserver: HTTPServer) -> None:
    serve_pr(httpserver)
    rerun = make(httpserver).rerun_failed(ref(httpserver, PR_JOB, "4"))
    assert (rerun.endpoint, rerun.payload) == ("/job/acme/job/payments/job/PR-12/build", {})
    assert rerun.detail == "would start a new build of acme/payments/PR-12 like #4"
    assert writes(httpserver) == []


def test_cancel_posts_stop_with_the_crumb(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    # Jenkins answers /stop by redirecting to the build page.
    httpserver.expect_request(f"{PR_BUILD}/stop", method="POST").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for(f"{PR_BUILD}/")}
    )
    httpserver.expect_request(f"{PR_BUILD}/", method="GET").respond_with_data("<html>#4</html>")
    result = make(httpserver).cancel(ref(httpserver, PR_JOB, "4"), dry_run=False)
    assert (result.done, result.dry_run, result.endpoint) == (True, False, "/job/acme/job/payments/job/PR-12/4/stop")
    stop = requests_to(httpserver, f"{PR_BUILD}/stop")[0]
    assert stop.method == "POST"
    assert stop.headers["Jenkins-Crumb"] == load("crumb.json")["crumb"]


def test_rerun_failed_builds_again_with_the_failed_builds_parameters(httpserver: HTTPServer) -> None:
    serve_freestyle(httpserver)
    httpserver.expect_request("/job/tools/job/nightly-report/buildWithParameters", method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/912/")}
    )
    result = make(httpserver).rerun_failed(ref(httpserver, FS_JOB, "57"), dry_run=False)
    assert result.done and result.detail == "queued as item 912"
    assert result.endpoint == "/job/tools/job/nightly-report/buildWithParameters"
    # The password parameter exports no value, so it is not replayed.
    assert result.payload == {"TARGET": "staging", "DRY_RUN": "false"}
    post = requests_to(httpserver, "/job/tools/job/nightly-report/buildWithParameters")[0]
    assert (post.method, post.args.to_dict()) == ("POST", {"TARGET": "staging", "DRY_RUN": "false"})


@pytest.mark.parametrize("dry_run", [True, False])
def test_rerun_of_a_build_that_did_not_fail_is_refused(httpserver: HTTPServer, dry_run: bool) -> None:
    serve_freestyle(httpserver, load("freestyle_build.json") | {"result": "SUCCESS"})
    with pytest.raises(ProviderError, match="build #57 is success, not failed: nothing to rerun"):
        make(httpserver).rerun_failed(ref(httpserver, FS_JOB, "57"), dry_run=dry_run)
    assert all(request.method == "GET" for request, _ in httpserver.log)


def test_trigger_builds_the_branch_job_of_a_multibranch_project(httpserver: HTTPServer) -> None:
    # No CSRF protection configured: the crumb issuer is absent and no crumb header is sent.
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_data("", status=404)
    path = f"{MB}/job/feature%2Fledger-export/build"  # werkzeug decodes %25 once
    httpserver.expect_request(path, method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/913/")}
    )
    result = make(httpserver).trigger("acme/payments", "feature/ledger-export", {}, dry_run=False)
    assert (result.done, result.detail) == (True, "queued acme/payments/feature%2Fledger-export as item 913")
    post = requests_to(httpserver, path)[0]
    assert post.environ["RAW_URI"] == "/job/acme/job/payments/job/feature%252Fledger-export/build"
    assert "Jenkins-Crumb" not in post.headers


def test_trigger_with_inputs_uses_build_with_parameters(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    httpserver.expect_request("/job/tools/job/nightly-report/buildWithParameters", method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/914/")}
    )
    result = make(httpserver).trigger(FS_JOB, "", {"TARGET": "prod"}, dry_run=False)
    assert result.done and result.payload == {"TARGET": "prod"}
    post = requests_to(httpserver, "/job/tools/job/nightly-report/buildWithParameters")[0]
    assert post.args.to_dict() == {"TARGET": "prod"}


def test_a_refused_write_names_the_write_permissions(httpserver: HTTPServer) -> None:
    serve_crumb(httpserver)
    httpserver.expect_request(f"{PR_BUILD}/stop", method="POST").respond_with_data("<html>Forbidden</html>", status=403)
    with pytest.raises(ProviderError, match=r"needs Job/Build \+ Job/Cancel"):
        make(httpserver).cancel(ref(httpserver, PR_JOB, "4"), dry_run=False)


def test_comment_is_refused_without_a_request(httpserver: HTTPServer) -> None:
    for dry_run in (True, False):
        with pytest.raises(ProviderError, match="Jenkins has no comments"):
            make(httpserver).comment(ref(httpserver, PR_JOB, "4"), "flaky test", dry_run=dry_run)
    assert httpserver.log == []


# 9. no server ---------------------------------------------------------------------------------


def test_connection_refused_is_a_one_line_cannot_reach(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    sleeps: list[float] = []
    provider = JenkinsProvider(base, TOKEN, CIClient(retries=1, timeout_s=5), sleep=sleeps.append, user=USER)
    with pytest.raises(ProviderError) as err:
        provider.fetch(RunRef(platform=Platform.JENKINS, base_url=base, project=FS_JOB, run_id="57"), tmp_path)
    message = str(err.value)
    assert f"cannot reach Jenkins at {base}" in message
    assert "\n" not in message and TOKEN not in message
    assert len(sleeps) == 1  # one retry, with backoff
