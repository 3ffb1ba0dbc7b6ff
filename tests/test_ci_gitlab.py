"""GitLab CI through the real python-gitlab over real HTTP (pytest-httpserver), with documented API shapes."""

from __future__ import annotations

import json
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.datastructures import MultiDict

from cimedic.investigate import diagnose
from cimedic.models import Platform, Status
from cimedic.models import TestStatus as CaseStatus
from cimedic.settings import CIClient, Limits, get_settings
from cimedic.tools.ci import gitlab_parse
from cimedic.tools.ci.base import RunFilter, RunRef, WriteKind
from cimedic.tools.ci.gitlab import GitLabProvider
from cimedic.tools.ci.guard import ProviderError
from cimedic.tools.ci.providers import provider_for

FIX = Path(__file__).resolve().parent / "fixtures" / "ci" / "gitlab"
PROJECT = "acme/platform/billing-service"
ENCODED = "acme%2Fplatform%2Fbilling-service"
PIPELINE = 1273645190
SHA = "9f3c2e71b84d05a6c3e2f1d7a09b8c4e5f61d2a3"
JOBS = {"compile": 6745120331, "ruff": 6745120335, "pytest": 6745120338, "docs": 6745120341, "deploy": 6745120344}
TRACES = {JOBS[name]: f"trace_{name}.log" for name in ("compile", "ruff", "pytest", "docs")}
TOKEN = "glpat-Zx8Qm2Lr7Tn4Vb6Yc1Wd"
MiB = 1024 * 1024


def js(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def api(root: str = "") -> str:
    # The SDK sends the project as acme%2Fplatform%2Fbilling-service; werkzeug decodes it in request.path.
    return f"{root}/api/v4/projects/{PROJECT}"


def make(
    httpserver: HTTPServer,
    sleeps: list[float],
    *,
    root: str = "",
    token: str | None = TOKEN,
    per_page: int = 100,
    **client: Any,
) -> GitLabProvider:
    """A provider on the test server; ``sleeps`` records what the guard would have waited."""
    base = httpserver.url_for(root or "/").rstrip("/")
    return GitLabProvider(base, token, CIClient(**client), sleep=sleeps.append, per_page=per_page)


def pipeline_ref(run_id: str = str(PIPELINE), job_id: str | None = None) -> RunRef:
    return RunRef(
        platform=Platform.GITLAB,
        base_url="https://gitlab.example.com",
        project=PROJECT,
        run_id=run_id,
        job_id=job_id,
        url=f"https://gitlab.example.com/{PROJECT}/-/" + (f"jobs/{job_id}" if job_id else f"pipelines/{run_id}"),
    )


def serve_run(
    httpserver: HTTPServer,
    *,
    root: str = "",
    pipeline: dict[str, Any] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    report: Any = "test_report.json",
    traces: dict[int, Callable[[Request], Response]] | None = None,
) -> None:
    """Everything one pipeline's fetch reads, as GitLab answers it."""
    base = api(root)
    for job_id, handler in (traces or {}).items():
        httpserver.expect_request(f"{base}/jobs/{job_id}/trace", method="GET").respond_with_handler(handler)
    httpserver.expect_request(f"{base}/pipelines/{PIPELINE}", method="GET").respond_with_json(
        pipeline or js("pipeline.json")
    )
    listed = jobs if jobs is not None else js("pipeline_jobs.json")
    jobs_url = httpserver.url_for(f"{root}/api/v4/projects/{ENCODED}/pipelines/{PIPELINE}/jobs")
    page_1 = f"{jobs_url}?include_retried=False&page=1&per_page=100"
    link = f'<{page_1}>; rel="first", <{page_1}>; rel="last"'
    httpserver.expect_request(
        f"{base}/pipelines/{PIPELINE}/jobs",
        method="GET",
        query_string=MultiDict([("include_retried", "False"), ("per_page", "100")]),
    ).respond_with_json(
        listed,
        headers={
            "X-Page": "1",
            "X-Per-Page": "100",
            "X-Total": str(len(listed)),
            "X-Total-Pages": "1",
            "X-Next-Page": "",
            "X-Prev-Page": "",
            "Link": link,
        },
    )
    httpserver.expect_request(f"{base}/merge_requests/57", method="GET").respond_with_json(js("merge_request.json"))
    httpserver.expect_request(f"{base}/jobs/{JOBS['pytest']}", method="GET").respond_with_json(js("job.json"))
    for job_id, name in TRACES.items():
        httpserver.expect_request(f"{base}/jobs/{job_id}/trace", method="GET").respond_with_data(
            (FIX / name).read_bytes(), content_type="text/plain; charset=utf-8"
        )
    reporting = httpserver.expect_request(f"{base}/pipelines/{PIPELINE}/test_report", method="GET")
    if report is None:
        reporting.respond_with_json({"message": "404 Not found"}, status=404)
    elif isinstance(report, str):
        reporting.respond_with_json(js(report))
    else:
        reporting.respond_with_json(report)


def requested(httpserver: HTTPServer, method: str | None = None) -> list[str]:
    return [req.path for req, _ in httpserver.log if method is None or req.method == method]


def traces_fetched(httpserver: HTTPServer) -> list[int]:
    return sorted(int(path.split("/")[-2]) for path in requested(httpserver) if path.endswith("/trace"))


# -- reading a run ------------------------------------------------------------------------------


def test_a_failed_merge_request_pipeline_end_to_end(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    sleeps: list[float] = []
    material = make(httpserver, sleeps).fetch(pipeline_ref(), tmp_path / "dl")
    diag = diagnose(material, limits=Limits())

    assert diag.category == "test"
    assert diag.excerpt is not None
    assert "E       AssertionError: assert Decimal('3.79') == Decimal('3.80')" in diag.excerpt.text
    assert "FAILED tests/test_invoice.py::test_vat_rounding_half_up" in diag.excerpt.text
    assert [t.name for t in diag.failed_tests] == ["test_vat_rounding_half_up"]

    info = material.run.info
    assert info is not None
    assert (info.platform, info.id, info.number, info.project) == ("gitlab", str(PIPELINE), "412", PROJECT)
    assert (info.commit, info.branch, info.pull_request) == (SHA, "fix/vat-rounding", "57")
    assert (info.actor, info.event, info.status) == ("mkowalski", "merge_request_event", "failure")
    assert info.url == f"https://gitlab.example.com/{PROJECT}/-/pipelines/{PIPELINE}"
    assert info.started_at == datetime(2024, 5, 1, 10, 0, 3, 894000, tzinfo=UTC)
    assert info.queue_s == pytest.approx(22.382)
    assert info.duration_s == pytest.approx(288.223)
    names = [j.name for j in info.jobs]
    assert names == ["build / compile", "test / ruff", "test / pytest: [3.11]", "test / docs", "deploy / deploy:review"]
    pytest_job = info.jobs[2]
    assert (pytest_job.status, pytest_job.runner, pytest_job.id) == (
        Status.FAILURE,
        "acme-k8s-runner-eu-west-1",
        str(JOBS["pytest"]),
    )
    assert pytest_job.url == f"https://gitlab.example.com/{PROJECT}/-/jobs/{JOBS['pytest']}"
    assert pytest_job.queue_s == pytest.approx(2.627)
    assert pytest_job.duration_s == pytest.approx(226.631)
    assert info.jobs[4].status == Status.SKIPPED and info.jobs[4].started_at is None

    assert [log.job for log in material.logs] == ["test / pytest: [3.11]"]
    assert (tmp_path / "dl" / material.logs[0].path).read_bytes() == (FIX / "trace_pytest.log").read_bytes()
    assert material.run.source.kind == "gitlab" and material.root == tmp_path / "dl"
    assert sleeps == []
    first = httpserver.log[0][0]
    assert first.headers["PRIVATE-TOKEN"] == TOKEN
    assert first.environ["REQUEST_URI"].startswith(f"/api/v4/projects/{ENCODED}/")


def test_failed_jobs_only_by_default_all_that_ran_with_full_logs(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    provider = make(httpserver, [])
    provider.fetch(pipeline_ref(), tmp_path / "a")
    # docs failed too, but allow_failure: it did not fail the pipeline while pytest did.
    assert traces_fetched(httpserver) == [JOBS["pytest"]]

    httpserver.clear_log()
    material = provider.fetch(pipeline_ref(), tmp_path / "b", full_logs=True)
    # deploy:review was skipped: no trace to read.
    assert traces_fetched(httpserver) == sorted(JOBS[n] for n in ("compile", "ruff", "pytest", "docs"))
    assert sorted(log.job or "" for log in material.logs) == [
        "build / compile",
        "test / docs",
        "test / pytest: [3.11]",
        "test / ruff",
    ]


def test_an_allowed_failure_is_read_when_nothing_else_failed(httpserver: HTTPServer, tmp_path: Path) -> None:
    jobs = js("pipeline_jobs.json")
    for job in jobs:
        if job["id"] == JOBS["pytest"]:
            job["status"] = "success"
            del job["failure_reason"]
    serve_run(httpserver, jobs=jobs)
    material = make(httpserver, []).fetch(pipeline_ref(), tmp_path)
    assert traces_fetched(httpserver) == [JOBS["docs"]]
    assert [log.job for log in material.logs] == ["test / docs"]


def test_a_job_url_narrows_to_that_job_and_its_test_suite(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    # A /-/jobs/ID URL: no pipeline id, the job names its pipeline.
    material = make(httpserver, []).fetch(pipeline_ref(run_id="", job_id=str(JOBS["pytest"])), tmp_path, full_logs=True)
    assert traces_fetched(httpserver) == [JOBS["pytest"]]
    assert material.run.info is not None and material.run.info.id == str(PIPELINE)
    # "pytest: [3.11]" reports as suite "pytest"; the ruff suite belongs to another job.
    assert {t.suite for t in material.run.test_results} == {"pytest"}


def test_the_pipeline_test_report_becomes_test_results(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    results = make(httpserver, []).fetch(pipeline_ref(), tmp_path).run.test_results
    assert len(results) == 6
    failed = [t for t in results if t.status == CaseStatus.FAILED]
    assert len(failed) == 1
    case = failed[0]
    assert (case.name, case.classname, case.suite) == ("test_vat_rounding_half_up", "tests.test_invoice", "pytest")
    assert case.message == "AssertionError: assert Decimal('3.79') == Decimal('3.80')"
    assert case.details is not None and "tests/test_invoice.py:88: AssertionError" in case.details
    assert case.duration_s == pytest.approx(0.0043)
    assert case.report_path == "gitlab test report"
    skipped = next(t for t in results if t.status == CaseStatus.SKIPPED)
    assert skipped.message == "tests/test_invoice.py:131: reverse charge lands in 2.4"


@pytest.mark.parametrize(
    "report",
    [
        None,
        {
            "total_time": 0,
            "total_count": 0,
            "success_count": 0,
            "failed_count": 0,
            "skipped_count": 0,
            "error_count": 0,
            "test_suites": [],
        },
    ],
    ids=["404", "empty"],
)
def test_no_test_report_is_not_an_error(httpserver: HTTPServer, tmp_path: Path, report: Any) -> None:
    serve_run(httpserver, report=report)
    material = make(httpserver, []).fetch(pipeline_ref(), tmp_path)
    assert material.run.test_results == []
    assert len(material.logs) == 1
    assert material.run.status == Status.FAILURE


def test_a_push_pipeline_on_a_self_hosted_server_under_a_path(httpserver: HTTPServer) -> None:
    pipeline = js("pipeline.json") | {"ref": "main", "source": "push"}
    serve_run(httpserver, root="/gitlab", pipeline=pipeline)
    info = make(httpserver, [], root="/gitlab").run(pipeline_ref())
    assert (info.branch, info.pull_request, info.event) == ("main", None, "push")
    assert all(path.startswith(f"/gitlab/api/v4/projects/{PROJECT}/") for path in requested(httpserver))
    assert not any("merge_requests" in path for path in requested(httpserver))


# -- listing runs -------------------------------------------------------------------------------


def test_runs_follow_pages_with_server_side_filters_and_stop_at_the_limit(httpserver: HTTPServer) -> None:
    query = {
        "order_by": "id",
        "sort": "desc",
        "ref": "main",
        "status": "failed",
        "updated_after": "2024-05-01T00:00:00Z",
        "per_page": "2",
    }
    listing = httpserver.url_for(f"/api/v4/projects/{ENCODED}/pipelines")

    def link(page: int) -> str:
        return f"{listing}?{urlencode({**query, 'page': str(page)})}"

    for page, next_page in ((1, 2), (2, 3)):
        sent = MultiDict(list(query.items()) + ([("page", str(page))] if page > 1 else []))
        httpserver.expect_request(f"{api()}/pipelines", method="GET", query_string=sent).respond_with_json(
            js(f"pipelines_page_{page}.json"),
            headers={
                "X-Page": str(page),
                "X-Per-Page": "2",
                "X-Next-Page": str(next_page),
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                "Link": f'<{link(next_page)}>; rel="next", <{link(1)}>; rel="first"',
            },
        )
    provider = make(httpserver, [], per_page=2)
    filters = RunFilter(branch="main", status=Status.FAILURE, since=datetime(2024, 5, 1, tzinfo=UTC), limit=3)
    found = list(provider.runs(PROJECT, filters))

    assert [r.id for r in found] == ["1273711042", "1273690517", "1273655930"]
    assert [r.number for r in found] == ["418", "416", "414"]
    assert {(r.status, r.branch, r.event, r.platform) for r in found} == {("failure", "main", "push", "gitlab")}
    assert found[0].queued_at == datetime(2024, 5, 1, 13, 12, 9, 337000, tzinfo=UTC)
    assert found[0].url == f"https://gitlab.example.com/{PROJECT}/-/pipelines/1273711042"
    # Two pages read, the third never asked for: the limit was reached.
    pages = [req.args.get("page", "1") for req, _ in httpserver.log]
    assert pages == ["1", "2"]
    assert all(resp.status_code == 200 for _, resp in httpserver.log)


def test_running_spans_several_gitlab_statuses_so_it_is_filtered_client_side(httpserver: HTTPServer) -> None:
    items = js("pipelines_page_1.json") + js("pipelines_page_2.json")
    for item, state in zip(items, ["running", "failed", "pending", "success"], strict=True):
        item["status"] = state
    httpserver.expect_request(
        f"{api()}/pipelines", query_string={"order_by": "id", "sort": "desc", "per_page": "100"}
    ).respond_with_json(items)
    found = list(make(httpserver, []).runs(PROJECT, RunFilter(status=Status.RUNNING)))
    assert [r.id for r in found] == ["1273711042", "1273655930"]


# -- test results without logs, and deployments ------------------------------------------------


def test_test_results_read_the_pipeline_report_alone(httpserver: HTTPServer) -> None:
    serve_run(httpserver)
    results = make(httpserver, []).test_results(pipeline_ref())
    assert sorted((t.suite or "", t.name, t.status) for t in results) == [
        ("pytest", "test_credit_note_negates_totals", CaseStatus.PASSED),
        ("pytest", "test_net_total_sums_lines", CaseStatus.PASSED),
        ("pytest", "test_reverse_charge_eu", CaseStatus.SKIPPED),
        ("pytest", "test_vat_rounding_half_up", CaseStatus.FAILED),
        ("ruff", "billing/invoice.py", CaseStatus.PASSED),
        ("ruff", "billing/vat.py", CaseStatus.PASSED),
    ]
    # One request: no pipeline, no job list, no trace.
    assert requested(httpserver) == [f"{api()}/pipelines/{PIPELINE}/test_report"]
    assert not any(path.endswith("/trace") for path in requested(httpserver))


def test_test_results_of_a_job_url_are_its_suite(httpserver: HTTPServer) -> None:
    serve_run(httpserver)
    results = make(httpserver, []).test_results(pipeline_ref(run_id="", job_id=str(JOBS["pytest"])))
    assert {t.suite for t in results} == {"pytest"} and len(results) == 4
    assert requested(httpserver) == [f"{api()}/jobs/{JOBS['pytest']}", f"{api()}/pipelines/{PIPELINE}/test_report"]
    assert not any(path.endswith("/trace") for path in requested(httpserver))


def test_test_results_without_a_report_are_none(httpserver: HTTPServer) -> None:
    serve_run(httpserver, report=None)
    assert make(httpserver, []).test_results(pipeline_ref()) == []


def test_test_results_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}/test_report").respond_with_json(
        js("error_401.json"), status=401
    )
    with pytest.raises(ProviderError) as err:
        make(httpserver, []).test_results(pipeline_ref())
    assert "GitLab rejected the token (HTTP 401): check CIMEDIC_GITLAB_TOKEN" in str(err.value)
    assert TOKEN not in str(err.value)


DEPLOYMENTS_QUERY = {"order_by": "updated_at", "sort": "desc"}


def serve_deployments(httpserver: HTTPServer, per_page: int, **extra: str) -> None:
    """Two pages of deployments, the second linking a third that must not be needed."""
    query = {**DEPLOYMENTS_QUERY, **extra, "per_page": str(per_page)}
    listing = httpserver.url_for(f"/api/v4/projects/{ENCODED}/deployments")

    def link(page: int) -> str:
        return f"{listing}?{urlencode({**query, 'page': str(page)})}"

    for page in (1, 2):
        sent = MultiDict(list(query.items()) + ([("page", str(page))] if page > 1 else []))
        httpserver.expect_request(f"{api()}/deployments", method="GET", query_string=sent).respond_with_json(
            js(f"deployments_page_{page}.json"),
            headers={
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Next-Page": str(page + 1),
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                "Link": f'<{link(page + 1)}>; rel="next", <{link(1)}>; rel="first"',
            },
        )


def test_deployments_follow_pages_newest_first_and_stop_at_the_limit(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver, per_page=2)
    found = list(make(httpserver, [], per_page=2).deployments(PROJECT, limit=3))

    assert [(d.id, d.environment, d.status) for d in found] == [
        ("512384117", "production", "success"),
        ("512381904", "staging", "failure"),
        ("512377032", "production", "running"),
    ]
    first = found[0]
    assert (first.platform, first.project, first.ref, first.run_id) == ("gitlab", PROJECT, "main", "1273760412")
    assert first.commit == "e7a1c93f0d5b2846a1f3c5e7d9b0a2c4e6f8a1b3"
    assert first.created_at == datetime(2024, 5, 3, 14, 2, 11, 512000, tzinfo=UTC)
    assert first.finished_at == datetime(2024, 5, 3, 14, 6, 39, 870000, tzinfo=UTC)
    assert first.url == f"https://gitlab.example.com/{PROJECT}/-/jobs/6745388120"
    # Still deploying: no end yet. A tag deploys as its name.
    assert (found[2].finished_at, found[2].ref) == (None, "v2.14.0")
    # Two pages read, the third never asked for; no job, trace or pipeline either.
    assert [req.args.get("page", "1") for req, _ in httpserver.log] == ["1", "2"]
    assert set(requested(httpserver)) == {f"{api()}/deployments"}


def test_deployments_since_is_asked_of_the_server_and_checked_on_creation(httpserver: HTTPServer) -> None:
    items = js("deployments_page_1.json") + js("deployments_page_2.json")[:1]
    # A production deploy that started before `since` and ended after it: updated after, created before.
    items[2] |= {"updated_at": "2024-05-03T12:10:31.055Z", "status": "success"}
    httpserver.expect_request(
        f"{api()}/deployments",
        query_string={**DEPLOYMENTS_QUERY, "updated_after": "2024-05-03T12:00:00Z", "per_page": "100"},
    ).respond_with_json(items)
    since = datetime(2024, 5, 3, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC, sent as UTC
    found = list(make(httpserver, []).deployments(PROJECT, since=since))
    assert [d.id for d in found] == ["512384117", "512381904"]


@pytest.mark.parametrize(
    ("state", "status", "ended"),
    [
        ("success", Status.SUCCESS, True),
        ("failed", Status.FAILURE, True),
        ("canceled", Status.CANCELLED, True),
        ("skipped", Status.CANCELLED, True),
        ("created", Status.RUNNING, False),
        ("running", Status.RUNNING, False),
        ("blocked", Status.RUNNING, False),
        ("something-new", Status.UNKNOWN, False),
    ],
)
def test_deployment_statuses_map_to_one_status(state: str, status: Status, ended: bool) -> None:
    item = js("deployments_page_1.json")[0] | {"status": state}
    found = gitlab_parse.deployment(PROJECT, item, "https://gitlab.example.com")
    assert found.status == status
    assert (found.finished_at is not None) == ended


def test_a_deployment_made_through_the_api_has_no_job(httpserver: HTTPServer) -> None:
    item = js("deployments_page_1.json")[0] | {"deployable": None}
    found = gitlab_parse.deployment(PROJECT, item, "https://gitlab.example.com")
    assert (found.run_id, found.finished_at) == (None, None)
    assert found.url == f"https://gitlab.example.com/{PROJECT}/-/environments/17452301"


def test_deployments_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{api()}/deployments").respond_with_json(js("error_403.json"), status=403)
    with pytest.raises(ProviderError) as err:
        list(make(httpserver, []).deployments(PROJECT))
    message = str(err.value)
    assert message.startswith(f"{PROJECT} deployments: GitLab refused access (HTTP 403)")
    assert "CIMEDIC_GITLAB_TOKEN needs the read_api scope" in message and TOKEN not in message


# -- rate limits and errors ---------------------------------------------------------------------


def test_a_429_waits_what_retry_after_says_then_succeeds(httpserver: HTTPServer) -> None:
    reset = int(time.time()) + 7
    httpserver.expect_oneshot_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data(
        (FIX / "error_429.txt").read_text(),
        status=429,
        content_type="text/plain",
        headers={
            "Retry-After": "7",
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": "2001",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
        },
    )
    serve_run(httpserver)
    sleeps: list[float] = []
    info = make(httpserver, sleeps).run(pipeline_ref())
    assert info.id == str(PIPELINE)
    assert sleeps == [7.0]
    assert requested(httpserver).count(f"{api()}/pipelines/{PIPELINE}") == 2


def test_a_429_with_only_ratelimit_reset_waits_until_the_reset(httpserver: HTTPServer) -> None:
    reset = int(time.time()) + 12
    httpserver.expect_oneshot_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data(
        "Retry later\n", status=429, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
    )
    serve_run(httpserver)
    sleeps: list[float] = []
    make(httpserver, sleeps).run(pipeline_ref())
    assert len(sleeps) == 1 and 11.0 <= sleeps[0] <= 14.0


def test_a_transient_502_is_retried_by_the_guard_alone(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data("Bad Gateway", status=502)
    serve_run(httpserver)
    sleeps: list[float] = []
    make(httpserver, sleeps).run(pipeline_ref())
    assert len(sleeps) == 1
    assert requested(httpserver).count(f"{api()}/pipelines/{PIPELINE}") == 2


def test_a_rate_limit_that_stays_becomes_one_clear_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data(
        "Retry later\n", status=429, headers={"Retry-After": "7", "RateLimit-Remaining": "0"}
    )
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make(httpserver, sleeps, retries=2).run(pipeline_ref())
    message = str(err.value)
    assert "rate limit exceeded (HTTP 429)" in message and "ci.retries=2" in message
    assert "\n" not in message
    # Three requests in all: python-gitlab did not sleep and retry on its own under the guard.
    assert sleeps == [7.0, 7.0]
    assert len(httpserver.log) == 3


@pytest.mark.parametrize(
    ("status", "fixture", "says"),
    [
        (401, "error_401.json", "GitLab rejected the token (HTTP 401): check CIMEDIC_GITLAB_TOKEN (the read_api scope"),
        (
            403,
            "error_403.json",
            "GitLab refused access (HTTP 403): the token in CIMEDIC_GITLAB_TOKEN needs the read_api",
        ),
        (404, "error_404.json", "not found on GitLab (HTTP 404): check the URL, or the token in CIMEDIC_GITLAB_TOKEN"),
    ],
)
def test_refusals_name_the_token_setting_never_the_token(
    httpserver: HTTPServer, status: int, fixture: str, says: str
) -> None:
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_json(js(fixture), status=status)
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make(httpserver, sleeps).run(pipeline_ref())
    message = str(err.value)
    assert says in message
    assert TOKEN not in message and "\n" not in message
    assert sleeps == [] and len(httpserver.log) == 1


def test_no_token_says_to_set_one(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_json(js("error_401.json"), status=401)
    with pytest.raises(ProviderError, match=r"needs a token \(HTTP 401\): set CIMEDIC_GITLAB_TOKEN"):
        make(httpserver, [], token=None).run(pipeline_ref())
    assert "PRIVATE-TOKEN" not in httpserver.log[0][0].headers


def test_a_write_refused_names_the_write_scope(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}/retry", method="POST").respond_with_json(
        js("error_403.json"), status=403
    )
    with pytest.raises(ProviderError, match="needs the api scope and at least the Developer role"):
        make(httpserver, []).rerun_failed(pipeline_ref(), dry_run=False)


def test_connection_refused_is_one_cannot_reach_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    provider = GitLabProvider(f"http://127.0.0.1:{port}", TOKEN, CIClient(retries=2), sleep=sleeps.append)
    with pytest.raises(ProviderError) as err:
        provider.run(pipeline_ref())
    message = str(err.value)
    assert f"cannot reach GitLab at http://127.0.0.1:{port}" in message
    assert "\n" not in message and TOKEN not in message
    assert len(sleeps) == 2


def test_a_server_that_is_not_gitlab_is_named_as_such(httpserver: HTTPServer) -> None:
    # A base URL pointing at a web page (a sign-in portal, a proxy's landing page) answers 200 with HTML.
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data(
        "<!DOCTYPE html><html><body>Sign in</body></html>", content_type="text/html"
    )
    with pytest.raises(ProviderError, match="the answer is not GitLab API JSON; check the server URL"):
        make(httpserver, []).run(pipeline_ref())
    assert len(httpserver.log) == 1


def test_from_settings_uses_the_configured_token_and_client(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIMEDIC_GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("CIMEDIC_CI__RETRIES", "0")
    get_settings.cache_clear()
    provider = provider_for(Platform.GITLAB, httpserver.url_for("").rstrip("/"), get_settings())
    assert isinstance(provider, GitLabProvider)
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_data("Bad Gateway", status=502)
    with pytest.raises(ProviderError, match=r"GitLab answered HTTP 502"):
        provider.run(pipeline_ref())
    assert len(httpserver.log) == 1
    assert httpserver.log[0][0].headers["PRIVATE-TOKEN"] == TOKEN


# -- streaming ----------------------------------------------------------------------------------


def log_block(size: int, seed: str) -> bytes:
    """``size`` bytes of pytest-like output lines, as a long test run prints them."""
    lines: list[bytes] = []
    total = 0
    n = 0
    while total < size:
        line = (f"tests/test_ledger.py::test_posting_{seed}_{n:07d} PASSED{' ' * (n % 17)}[{n % 100:3d}%]\n").encode()
        lines.append(line)
        total += len(line)
        n += 1
    block = b"".join(lines)
    return block[: size - 1] + b"\n"


def streamed_trace(chunks: int, chunk: bytes, tail: bytes) -> Callable[[Request], Response]:
    """A trace the server generates while it sends it: ``chunks`` blocks, the last ending in the failure."""
    last = chunk[: len(chunk) - len(tail)] + tail

    def body() -> Iterator[bytes]:
        for _ in range(chunks - 1):
            yield chunk
        yield last

    return lambda request: Response(body(), content_type="text/plain; charset=utf-8")


FAILURE_TAIL = (
    b"FAILED tests/test_ledger.py::test_posting_balance - AssertionError: ledger out of balance by 0.01\n"
    b"\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n"
)


def test_a_64_mb_trace_streams_to_disk_in_bounded_memory(httpserver: HTTPServer, tmp_path: Path) -> None:
    chunk = log_block(MiB, "a")
    serve_run(httpserver, traces={JOBS["pytest"]: streamed_trace(64, chunk, FAILURE_TAIL)})
    provider = make(httpserver, [])
    tracemalloc.start()
    try:
        material = provider.fetch(pipeline_ref(), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stored = tmp_path / material.logs[0].path
    assert stored.stat().st_size == 64 * MiB
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
    with stored.open("rb") as fh:
        fh.seek(-len(FAILURE_TAIL), 2)
        assert fh.read() == FAILURE_TAIL


def test_two_gigabyte_trace_streams_with_bounded_memory(httpserver: HTTPServer, tmp_path: Path) -> None:
    chunk = log_block(MiB, "b")
    serve_run(httpserver, traces={JOBS["pytest"]: streamed_trace(2048, chunk, FAILURE_TAIL)})
    provider = make(httpserver, [], log_max_bytes=3 * 1024**3)
    started = time.perf_counter()
    tracemalloc.start()
    try:
        material = provider.fetch(pipeline_ref(), tmp_path / "dl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    stored = tmp_path / "dl" / material.logs[0].path
    try:
        assert stored.stat().st_size == 2 * 1024**3
        assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB"
        assert not any("cut at" in w for w in material.warnings)
        with stored.open("rb") as fh:
            fh.seek(-len(FAILURE_TAIL), 2)
            assert fh.read() == FAILURE_TAIL
        print(f"2 GiB trace fetched in {elapsed:.1f} s, tracemalloc peak {peak / MiB:.1f} MiB")
    finally:
        stored.unlink(missing_ok=True)


# -- writes -------------------------------------------------------------------------------------


def test_dry_run_writes_send_nothing_and_say_what_they_would(httpserver: HTTPServer) -> None:
    serve_run(httpserver)
    provider = make(httpserver, [])
    ref = pipeline_ref()
    prefix = f"/api/v4/projects/{ENCODED}"

    retry = provider.rerun_failed(ref)
    cancel = provider.cancel(ref)
    job_retry = provider.rerun_failed(pipeline_ref(run_id="", job_id=str(JOBS["pytest"])))
    run = provider.trigger(PROJECT, "main", {"DEPLOY_ENV": "staging"})
    note = provider.comment(ref, "cimedic: test failure in test / pytest: [3.11]")

    assert (retry.kind, retry.dry_run, retry.done, retry.method) == (WriteKind.RERUN_FAILED, True, False, "POST")
    assert retry.endpoint == f"{prefix}/pipelines/{PIPELINE}/retry"
    assert retry.detail == f"would retry the failed jobs of pipeline {PIPELINE}"
    assert cancel.endpoint == f"{prefix}/pipelines/{PIPELINE}/cancel"
    assert job_retry.endpoint == f"{prefix}/jobs/{JOBS['pytest']}/retry"
    assert run.endpoint == f"{prefix}/pipeline"
    assert run.payload == {"ref": "main", "variables": [{"key": "DEPLOY_ENV", "value": "staging"}]}
    assert note.endpoint == f"{prefix}/merge_requests/57/notes"
    assert note.payload == {"body": "cimedic: test failure in test / pytest: [3.11]"}
    assert note.detail == "would comment on merge request !57"
    # Only the comment's target was read (which MR the pipeline belongs to); nothing was posted.
    assert requested(httpserver, "POST") == []
    assert requested(httpserver) == [f"{api()}/pipelines/{PIPELINE}"]


def test_writes_send_the_documented_requests(httpserver: HTTPServer) -> None:
    base = api()
    body = "cimedic: VAT rounding assertion failed in test / pytest: [3.11]"
    variables = [{"key": "DEPLOY_ENV", "value": "staging"}]
    httpserver.expect_request(f"{base}/pipelines/{PIPELINE}/retry", method="POST").respond_with_json(
        js("pipeline_retry.json"), status=201
    )
    httpserver.expect_request(f"{base}/pipelines/{PIPELINE}/cancel", method="POST").respond_with_json(
        js("pipeline_cancel.json")
    )
    httpserver.expect_request(f"{base}/jobs/{JOBS['pytest']}/retry", method="POST").respond_with_json(
        js("job_retry.json"), status=201
    )
    httpserver.expect_request(
        f"{base}/pipeline", method="POST", json={"ref": "main", "variables": variables}
    ).respond_with_json(js("pipeline_create.json"), status=201)
    httpserver.expect_request(f"{base}/merge_requests/57/notes", method="POST", json={"body": body}).respond_with_json(
        js("merge_request_note.json") | {"body": body}, status=201
    )
    httpserver.expect_request(f"{base}/pipelines/{PIPELINE}", method="GET").respond_with_json(js("pipeline.json"))
    provider = make(httpserver, [])
    ref = pipeline_ref()

    retry = provider.rerun_failed(ref, dry_run=False)
    assert (retry.done, retry.dry_run) == (True, False)
    assert (
        retry.detail
        == f"retried the failed jobs of pipeline {PIPELINE}: https://gitlab.example.com/{PROJECT}/-/pipelines/{PIPELINE}"
    )
    assert provider.cancel(ref, dry_run=False).done
    job = provider.rerun_failed(pipeline_ref(run_id="", job_id=str(JOBS["pytest"])), dry_run=False)
    assert job.detail.endswith("/-/jobs/6745188902")
    started = provider.trigger(PROJECT, "main", {"DEPLOY_ENV": "staging"}, dry_run=False)
    assert started.detail == f"started a pipeline on main: https://gitlab.example.com/{PROJECT}/-/pipelines/1273730655"
    assert provider.comment(ref, body, dry_run=False).detail == "commented on merge request !57"

    posts = [(req.path, req.get_json(silent=True)) for req, _ in httpserver.log if req.method == "POST"]
    assert posts == [
        (f"{base}/pipelines/{PIPELINE}/retry", {}),
        (f"{base}/pipelines/{PIPELINE}/cancel", {}),
        (f"{base}/jobs/{JOBS['pytest']}/retry", {}),
        (f"{base}/pipeline", {"ref": "main", "variables": variables}),
        (f"{base}/merge_requests/57/notes", {"body": body}),
    ]
    assert all(resp.status_code in (200, 201) for _, resp in httpserver.log)


def test_a_push_pipeline_is_commented_on_its_commit(httpserver: HTTPServer) -> None:
    body = "cimedic: dependency failure"
    httpserver.expect_request(f"{api()}/pipelines/{PIPELINE}").respond_with_json(
        js("pipeline.json") | {"ref": "main", "source": "push"}
    )
    httpserver.expect_request(
        f"{api()}/repository/commits/{SHA}/comments", method="POST", json={"note": body}
    ).respond_with_json(js("commit_comment.json") | {"note": body}, status=201)
    result = make(httpserver, []).comment(pipeline_ref(), body, dry_run=False)
    assert (result.done, result.endpoint) == (True, f"/api/v4/projects/{ENCODED}/repository/commits/{SHA}/comments")
    assert result.payload == {"note": body}
    assert httpserver.log[-1][1].status_code == 201


def test_triggering_a_named_workflow_makes_no_sense_on_gitlab(httpserver: HTTPServer) -> None:
    with pytest.raises(ProviderError, match="no workflow to choose"):
        make(httpserver, []).trigger(PROJECT, "main", {}, workflow="deploy.yml")
    assert httpserver.log == []
