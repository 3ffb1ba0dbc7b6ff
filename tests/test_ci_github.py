"""GitHub Actions provider: the real PyGithub over real HTTP against a local server that answers
like api.github.com (fixtures shaped like the documented responses)."""

from __future__ import annotations

import io
import json
import socket
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from cimedic.investigate import diagnose
from cimedic.models import Platform, Status
from cimedic.settings import CIClient, Limits, get_settings
from cimedic.tools.ci.base import RunFilter, RunRef
from cimedic.tools.ci.github import READ_SCOPES, TOKEN_SETTING, WRITE_SCOPES, GitHubProvider
from cimedic.tools.ci.github_convert import status_of
from cimedic.tools.ci.guard import ProviderError

FIXTURES = Path(__file__).parent / "fixtures" / "ci" / "github"
PROJECT = "acme/inventory"
RUN_ID = 8912345678
LINT_JOB = 24512345601
TEST_JOB = 24512345602
REPORT_ARTIFACT = 1450021977
DIST_ARTIFACT = 1450021978
JSON = "application/json; charset=utf-8"  # as api.github.com declares it
TOKEN = "ghp_T0kenValueThatMustNeverLeak00000000"
RUN_PATH = f"/repos/{PROJECT}/actions/runs/{RUN_ID}"


def api(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def fixture(name: str, server: HTTPServer) -> Any:
    # Fixtures carry api.github.com URLs, as GitHub writes them; the SDK follows them to the test server.
    return json.loads((FIXTURES / name).read_text().replace("https://api.github.com", api(server)))


def make_provider(
    server: HTTPServer | str,
    *,
    token: str | None = TOKEN,
    sleeps: list[float] | None = None,
    retries: int = 2,
    max_wait: float = 60.0,
    per_page: int = 100,
) -> GitHubProvider:
    base = server if isinstance(server, str) else api(server)
    recorded: list[float] = [] if sleeps is None else sleeps
    return GitHubProvider(
        base,
        token,
        CIClient(timeout_s=5, retries=retries, max_wait_s=max_wait),
        sleep=recorded.append,
        per_page=per_page,
        # GitHub's pacing between requests is real time.sleep in PyGithub; a local server needs none.
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def make_ref(server: HTTPServer | str, job_id: int | None = None) -> RunRef:
    base = server if isinstance(server, str) else api(server)
    return RunRef(
        platform=Platform.GITHUB_ACTIONS,
        base_url=base,
        project=PROJECT,
        run_id=str(RUN_ID),
        job_id=str(job_id) if job_id else None,
        url=f"https://github.com/{PROJECT}/actions/runs/{RUN_ID}",
    )


def blob(server: HTTPServer, name: str) -> str:
    # GitHub answers log and artifact downloads with a signed URL on another host; here the same server.
    return server.url_for(f"/blobs/{name}") + "?sv=2021-08-06&se=2024-05-01T10%3A10%3A00Z&sig=c2lnbmF0dXJl"


def serve_run(server: HTTPServer, *, artifacts: dict[str, Any] | None = None) -> None:
    server.expect_request(RUN_PATH, method="GET").respond_with_json(
        fixture("run-failed.json", server), content_type=JSON
    )
    server.expect_request(
        f"{RUN_PATH}/jobs", method="GET", query_string={"filter": "latest", "per_page": "100"}
    ).respond_with_json(fixture("run-jobs.json", server), content_type=JSON)
    for job in (LINT_JOB, TEST_JOB):
        server.expect_request(f"/repos/{PROJECT}/actions/jobs/{job}/logs", method="GET").respond_with_data(
            "", status=302, headers={"Location": blob(server, f"job-{job}.txt")}
        )
        server.expect_request(f"/blobs/job-{job}.txt", method="GET").respond_with_data(
            (FIXTURES / f"job-{job}.log").read_bytes(), content_type="text/plain"
        )
    server.expect_request(f"{RUN_PATH}/artifacts", method="GET").respond_with_json(
        artifacts if artifacts is not None else fixture("run-artifacts.json", server), content_type=JSON
    )
    server.expect_request(f"/repos/{PROJECT}/actions/artifacts/{REPORT_ARTIFACT}/zip", method="GET").respond_with_data(
        "", status=302, headers={"Location": blob(server, f"artifact-{REPORT_ARTIFACT}.zip")}
    )
    server.expect_request(f"/blobs/artifact-{REPORT_ARTIFACT}.zip", method="GET").respond_with_data(
        (FIXTURES / f"artifact-{REPORT_ARTIFACT}.zip").read_bytes(), content_type="application/zip"
    )


def requested(server: HTTPServer, method: str | None = None) -> list[str]:
    return [req.path for req, _ in server.log if method is None or req.method == method]


def no_artifacts() -> dict[str, Any]:
    return {"total_count": 0, "artifacts": []}


# 1. a failed run end to end ------------------------------------------------------------------------


def test_a_failed_run_is_fetched_and_diagnosed_with_its_metadata(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    material = make_provider(httpserver).fetch(make_ref(httpserver), tmp_path / "run")
    diagnosis = diagnose(material, limits=Limits())

    assert diagnosis.category == "test"
    assert diagnosis.excerpt is not None
    assert "AssertionError: assert 'reserved' == 'refused'" in diagnosis.excerpt.text
    assert "test_reserve_more_than_stock_is_refused" in diagnosis.summary
    assert {t.name for t in diagnosis.failed_tests} == {
        "test_reserve_more_than_stock_is_refused",
        "test_release_unknown_reservation",
    }

    info = material.run.info
    assert info is not None
    assert (info.id, info.number, info.attempt, info.name) == (str(RUN_ID), "1287", 1, "CI")
    assert info.url == f"https://github.com/{PROJECT}/actions/runs/{RUN_ID}"
    assert info.status == Status.FAILURE
    assert info.commit == "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert info.branch == "fix/reserve-limits"
    assert info.pull_request == "482"
    assert (info.actor, info.event) == ("mlindqvist", "pull_request")
    # Created 10:00:00, first runner picked up at 10:00:09 (lint), last job ended at 10:03:41 (test).
    assert info.queued_at == datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert info.queue_s == 9.0
    assert info.duration_s == 212.0

    lint, test = info.jobs
    assert (lint.name, lint.status, lint.runner) == ("lint", Status.SUCCESS, "GitHub Actions 16")
    assert (test.name, test.status, test.runner, test.id) == (
        "test (3.12)",
        Status.FAILURE,
        "GitHub Actions 17",
        str(TEST_JOB),
    )
    assert test.url == f"https://github.com/{PROJECT}/actions/runs/{RUN_ID}/job/{TEST_JOB}"
    assert (test.queue_s, test.duration_s) == (15.0, 204.0)
    failing = [s for s in test.steps if s.status == Status.FAILURE]
    assert [(s.number, s.name) for s in failing] == [(5, "Run tests")]
    assert failing[0].started_at == datetime(2024, 5, 1, 10, 2, 57, tzinfo=UTC)
    assert test.steps[-1].name == "Complete job" and len(test.steps) == 9

    assert [log.path for log in material.logs] == ["test _3.12_.log"]
    assert (tmp_path / "run" / "test _3.12_.log").read_bytes() == (FIXTURES / f"job-{TEST_JOB}.log").read_bytes()
    assert material.root == tmp_path / "run"
    assert material.warnings == []


def test_the_token_goes_to_the_api_and_never_to_the_blob_host(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    make_provider(httpserver).fetch(make_ref(httpserver), tmp_path)
    auth = {req.path: req.headers.get("Authorization") for req, _ in httpserver.log}
    assert auth[RUN_PATH] == f"token {TOKEN}"
    assert auth[f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/logs"] == f"token {TOKEN}"
    assert auth[f"/blobs/job-{TEST_JOB}.txt"] is None


def test_from_settings_reads_the_token_setting(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(TOKEN_SETTING, TOKEN)
    get_settings.cache_clear()
    httpserver.expect_request(RUN_PATH).respond_with_json(fixture("run-failed.json", httpserver), content_type=JSON)
    httpserver.expect_request(f"{RUN_PATH}/jobs").respond_with_json(
        fixture("run-jobs.json", httpserver), content_type=JSON
    )
    info = GitHubProvider.from_settings(api(httpserver), get_settings()).run(make_ref(httpserver))
    assert info.pull_request == "482"
    assert httpserver.log[0][0].headers["Authorization"] == f"token {TOKEN}"


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("completed", "success", Status.SUCCESS),
        ("completed", "neutral", Status.SUCCESS),
        ("completed", "failure", Status.FAILURE),
        ("completed", "timed_out", Status.FAILURE),
        ("completed", "startup_failure", Status.FAILURE),
        ("completed", "cancelled", Status.CANCELLED),
        ("completed", "skipped", Status.SKIPPED),
        ("completed", "action_required", Status.UNKNOWN),
        ("in_progress", None, Status.RUNNING),
        ("queued", None, Status.RUNNING),
        ("waiting", None, Status.RUNNING),
    ],
)
def test_github_statuses_and_conclusions_map_to_one_status(
    status: str, conclusion: str | None, expected: Status
) -> None:
    assert status_of(status, conclusion) == expected


# 2. which logs ------------------------------------------------------------------------------------


def test_only_failed_jobs_logs_by_default(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    material = make_provider(httpserver).fetch(make_ref(httpserver), tmp_path)
    assert [log.job for log in material.logs] == ["test (3.12)"]
    paths = requested(httpserver)
    assert f"/blobs/job-{TEST_JOB}.txt" in paths
    assert f"/repos/{PROJECT}/actions/jobs/{LINT_JOB}/logs" not in paths


def test_full_logs_fetches_every_job(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    material = make_provider(httpserver).fetch(make_ref(httpserver), tmp_path, full_logs=True)
    assert sorted(log.job or "" for log in material.logs) == ["lint", "test (3.12)"]
    assert (tmp_path / "lint.log").read_bytes() == (FIXTURES / f"job-{LINT_JOB}.log").read_bytes()


def test_job_id_narrows_to_that_job_even_when_it_passed(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    material = make_provider(httpserver).fetch(make_ref(httpserver, job_id=LINT_JOB), tmp_path)
    assert [log.job for log in material.logs] == ["lint"]
    assert f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/logs" not in requested(httpserver)


def test_a_job_of_an_earlier_attempt_is_read_on_its_own(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    old_job = dict(fixture("run-jobs.json", httpserver)["jobs"][1], id=24500000001, run_attempt=1)
    old_job["url"] = f"{api(httpserver)}/repos/{PROJECT}/actions/jobs/24500000001"
    httpserver.expect_request(f"/repos/{PROJECT}/actions/jobs/24500000001").respond_with_json(
        old_job, content_type=JSON
    )
    httpserver.expect_request(f"/repos/{PROJECT}/actions/jobs/24500000001/logs").respond_with_data(
        "", status=302, headers={"Location": blob(httpserver, f"job-{TEST_JOB}.txt")}
    )
    material = make_provider(httpserver).fetch(make_ref(httpserver, job_id=24500000001), tmp_path)
    assert [log.job for log in material.logs] == ["test (3.12)"]


# 3. test reports from artifacts -------------------------------------------------------------------


def test_junit_artifacts_become_failed_test_results(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver)
    material = make_provider(httpserver).fetch(make_ref(httpserver), tmp_path)
    results = material.run.test_results
    assert len(results) == 14
    failed = {t.name: t for t in material.run.failed_tests}
    assert set(failed) == {"test_reserve_more_than_stock_is_refused", "test_release_unknown_reservation"}
    refused = failed["test_reserve_more_than_stock_is_refused"]
    assert refused.classname == "tests.test_reservations"
    assert refused.message is not None and refused.message.startswith("AssertionError: assert 'reserved' == 'refused'")
    assert refused.report_path == "test-reports/test-results-3.12/junit.xml"
    assert (tmp_path / refused.report_path).is_file()
    # coverage.xml travels in the same artifact and is not a test report; "dist" is never downloaded.
    assert {t.report_path for t in results} == {"test-reports/test-results-3.12/junit.xml"}
    assert f"/repos/{PROJECT}/actions/artifacts/{DIST_ARTIFACT}/zip" not in requested(httpserver)
    assert not (tmp_path / ".artifacts").exists()
    assert material.warnings == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_unsafe_artifact_members_are_skipped_and_expired_artifacts_warned(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    listing = fixture("run-artifacts.json", httpserver)
    expired = dict(listing["artifacts"][0], id=1450020001, name="junit-3.11", expired=True)
    listing["artifacts"].append(expired)
    serve_run(httpserver, artifacts=listing)
    report = (FIXTURES / f"artifact-{REPORT_ARTIFACT}.zip").read_bytes()
    junit = zipfile.ZipFile(io.BytesIO(report)).read("junit.xml")
    hostile = _zip({"../../escaped.xml": junit, "/etc/abs.xml": junit, "nested/ok.xml": junit})
    # One-shot handlers answer before permanent ones: this zip replaces the fixture's.
    httpserver.expect_oneshot_request(f"/blobs/artifact-{REPORT_ARTIFACT}.zip").respond_with_data(hostile)
    dest = tmp_path / "run"
    material = make_provider(httpserver).fetch(make_ref(httpserver), dest)

    assert {t.report_path for t in material.run.test_results} == {"test-reports/test-results-3.12/nested/ok.xml"}
    assert not (tmp_path / "escaped.xml").exists()
    assert sorted(p.name for p in tmp_path.rglob("*.xml")) == ["ok.xml"]
    assert any("'../../escaped.xml' skipped (unsafe path)" in w for w in material.warnings)
    assert any("'/etc/abs.xml' skipped (unsafe path)" in w for w in material.warnings)
    assert any("'junit-3.11' has expired" in w for w in material.warnings)
    assert "/repos/acme/inventory/actions/artifacts/1450020001/zip" not in requested(httpserver)


# 3b. test results without logs --------------------------------------------------------------------


def test_test_results_read_the_report_artifacts_alone(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_run(httpserver)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    results = make_provider(httpserver).test_results(make_ref(httpserver))

    assert len(results) == 14
    assert sum(1 for t in results if t.status == "passed") == 12
    assert {t.name for t in results if t.status == "failed"} == {
        "test_reserve_more_than_stock_is_refused",
        "test_release_unknown_reservation",
    }
    assert {t.report_path for t in results} == {"test-reports/test-results-3.12/junit.xml"}
    # The artifacts listing and the report download: no run, no jobs, no job log.
    assert requested(httpserver) == [
        f"{RUN_PATH}/artifacts",
        f"/repos/{PROJECT}/actions/artifacts/{REPORT_ARTIFACT}/zip",
        f"/blobs/artifact-{REPORT_ARTIFACT}.zip",
    ]
    assert not [path for path in requested(httpserver) if "/logs" in path or "/blobs/job-" in path]
    # The scratch folder the reports were unpacked in is gone.
    assert list(scratch.iterdir()) == []


def test_test_results_of_a_run_without_report_artifacts_are_none(httpserver: HTTPServer) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    assert make_provider(httpserver).test_results(make_ref(httpserver)) == []
    assert requested(httpserver) == [f"{RUN_PATH}/artifacts"]


def test_test_results_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{RUN_PATH}/artifacts").respond_with_json(
        fixture("error-401.json", httpserver), status=401, content_type=JSON
    )
    with pytest.raises(ProviderError) as caught:
        make_provider(httpserver).test_results(make_ref(httpserver))
    assert f"GitHub rejected the token (HTTP 401): check {TOKEN_SETTING}" in str(caught.value)
    assert TOKEN not in str(caught.value)


# 3c. deployments -----------------------------------------------------------------------------------

DEPLOYMENTS = f"/repos/{PROJECT}/deployments"
DEPLOYMENT_IDS = [1502260113, 1502255871, 1502231144, 1502198020, 1502150333]


def serve_deployments(server: HTTPServer, per_page: int = 2) -> None:
    for page in (1, 2, 3):
        query = {"per_page": str(per_page)} | ({"page": str(page)} if page > 1 else {})
        server.expect_request(DEPLOYMENTS, method="GET", query_string=query).respond_with_json(
            fixture(f"deployments-page-{page}.json", server), content_type=JSON
        )
    for deployment_id in DEPLOYMENT_IDS:
        server.expect_request(f"{DEPLOYMENTS}/{deployment_id}/statuses", method="GET").respond_with_json(
            fixture(f"deployment-{deployment_id}-statuses.json", server), content_type=JSON
        )


def statuses_read(server: HTTPServer) -> list[int]:
    return [int(path.split("/")[-2]) for path in requested(server) if path.endswith("/statuses")]


def test_deployments_follow_pages_with_their_latest_status_and_stop_at_the_limit(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    found = list(make_provider(httpserver, per_page=2).deployments(PROJECT, limit=3))

    assert [(d.id, d.environment, d.status) for d in found] == [
        ("1502260113", "production", "success"),
        ("1502255871", "staging", "success"),  # inactive now: superseded after it succeeded
        ("1502231144", "production", "failure"),
    ]
    first = found[0]
    assert (first.platform, first.project, first.ref, first.run_id) == ("github-actions", PROJECT, "main", "8913100021")
    assert first.commit == "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
    assert first.created_at == datetime(2024, 5, 3, 16, 31, 2, tzinfo=UTC)
    assert first.finished_at == datetime(2024, 5, 3, 16, 34, 40, tzinfo=UTC)
    assert first.url == f"https://github.com/{PROJECT}/actions/runs/8913100021/job/24590000311"
    assert found[1].finished_at == datetime(2024, 5, 3, 16, 30, 12, tzinfo=UTC)
    # Two pages and three status lists: the third page and the fourth deployment's statuses were not needed.
    assert [req.args.get("page", "1") for req, _ in httpserver.log if req.path == DEPLOYMENTS] == ["1", "2"]
    assert statuses_read(httpserver) == DEPLOYMENT_IDS[:3]
    assert all(req.headers["Authorization"] == f"token {TOKEN}" for req, _ in httpserver.log)


def test_deployments_map_every_status_to_one(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    found = list(make_provider(httpserver, per_page=2).deployments(PROJECT))
    assert [(d.id, d.status, d.run_id) for d in found] == [
        ("1502260113", "success", "8913100021"),
        ("1502255871", "success", "8913100020"),
        ("1502231144", "failure", "8913100017"),
        ("1502198020", "failure", None),  # "error", from a deploy tool outside Actions
        ("1502150333", "unknown", None),  # no status yet
    ]
    external = found[3]
    assert (external.ref, external.url) == ("v3.8.1", "https://deploy.acme.example/jobs/71842")
    assert external.finished_at == datetime(2024, 5, 2, 15, 3, 54, tzinfo=UTC)
    assert (found[4].finished_at, found[4].url) == (None, None)
    # A short third page ends the listing.
    assert [req.args.get("page", "1") for req, _ in httpserver.log if req.path == DEPLOYMENTS] == ["1", "2", "3"]


def test_deployments_stop_at_the_first_older_than_since(httpserver: HTTPServer) -> None:
    serve_deployments(httpserver)
    since = datetime(2024, 5, 3, tzinfo=UTC)
    found = list(make_provider(httpserver, per_page=2).deployments(PROJECT, since=since))
    assert [d.id for d in found] == ["1502260113", "1502255871", "1502231144"]
    # The older deployment on page 2 ends the listing before its statuses are read.
    assert statuses_read(httpserver) == DEPLOYMENT_IDS[:3]
    assert "3" not in [req.args.get("page") for req, _ in httpserver.log]


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("success", Status.SUCCESS),
        ("failure", Status.FAILURE),
        ("error", Status.FAILURE),
        ("queued", Status.RUNNING),
        ("pending", Status.RUNNING),
        ("in_progress", Status.RUNNING),
        ("inactive", Status.UNKNOWN),  # set directly, with no outcome before it
    ],
)
def test_deployment_states_map_to_one_status(httpserver: HTTPServer, state: str, status: Status) -> None:
    statuses = fixture("deployment-1502260113-statuses.json", httpserver)[:1]
    statuses[0]["state"] = state
    httpserver.expect_request(DEPLOYMENTS).respond_with_json(
        fixture("deployments-page-1.json", httpserver)[:1], content_type=JSON
    )
    httpserver.expect_request(f"{DEPLOYMENTS}/1502260113/statuses").respond_with_json(statuses, content_type=JSON)
    [found] = make_provider(httpserver).deployments(PROJECT)
    assert found.status == status
    assert (found.finished_at is not None) == (status in (Status.SUCCESS, Status.FAILURE))


def test_deployments_refused_name_the_token_setting(httpserver: HTTPServer) -> None:
    httpserver.expect_request(DEPLOYMENTS).respond_with_json(
        fixture("error-403.json", httpserver), status=403, content_type=JSON
    )
    with pytest.raises(ProviderError) as caught:
        list(make_provider(httpserver).deployments(PROJECT))
    message = str(caught.value)
    assert message.startswith(f"{PROJECT} deployments: GitHub refused access (HTTP 403)")
    assert f"the token in {TOKEN_SETTING} needs" in message and TOKEN not in message


# 4. listing runs ----------------------------------------------------------------------------------


def test_runs_follow_pages_with_server_side_filters(httpserver: HTTPServer) -> None:
    path = f"/repos/{PROJECT}/actions/runs"
    query = {"branch": "main", "status": "failure", "created": ">=2024-05-01T00:00:00Z", "per_page": "2"}
    httpserver.expect_request(path, query_string=query).respond_with_json(
        fixture("runs-page-1.json", httpserver), content_type=JSON
    )
    httpserver.expect_request(path, query_string={**query, "page": "2"}).respond_with_json(
        fixture("runs-page-2.json", httpserver), content_type=JSON
    )
    httpserver.expect_request(path, query_string={**query, "page": "3"}).respond_with_json(
        {"total_count": 4, "workflow_runs": []}, content_type=JSON
    )
    filters = RunFilter(branch="main", status=Status.FAILURE, since=datetime(2024, 5, 1, tzinfo=UTC), limit=10)
    rows = list(make_provider(httpserver, per_page=2).runs(PROJECT, filters))

    assert [r.id for r in rows] == ["8913000004", "8913000003", "8913000002", "8913000001"]
    first = rows[0]
    assert (first.number, first.status, first.branch, first.event, first.actor) == (
        "1299",
        Status.FAILURE,
        "main",
        "push",
        "okafor-c",
    )
    assert first.commit == "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
    assert first.url == f"https://github.com/{PROJECT}/actions/runs/8913000004"
    assert first.duration_s == 286.0
    sent = [dict(req.args) for req, _ in httpserver.log]
    assert sent == [query, {**query, "page": "2"}, {**query, "page": "3"}]


def test_runs_stop_at_the_limit_without_reading_further_pages(httpserver: HTTPServer) -> None:
    path = f"/repos/{PROJECT}/actions/workflows/ci.yml/runs"
    httpserver.expect_request(path, query_string={"per_page": "2"}).respond_with_json(
        fixture("runs-page-1.json", httpserver), content_type=JSON
    )
    httpserver.expect_request(path, query_string={"per_page": "2", "page": "2"}).respond_with_json(
        fixture("runs-page-2.json", httpserver), content_type=JSON
    )
    rows = list(make_provider(httpserver, per_page=2).runs(PROJECT, RunFilter(workflow="ci.yml", limit=3)))
    assert [r.number for r in rows] == ["1299", "1296", "1291"]
    assert len(httpserver.log) == 2


def test_runs_drop_older_runs_than_since_even_if_the_server_sends_them(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/repos/{PROJECT}/actions/runs").respond_with_json(
        fixture("runs-page-1.json", httpserver), content_type=JSON
    )
    since = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    rows = list(make_provider(httpserver).runs(PROJECT, RunFilter(since=since)))
    assert [r.id for r in rows] == ["8913000004"]


# 5. rate limits -----------------------------------------------------------------------------------


def _serve_run_only(server: HTTPServer) -> None:
    server.expect_request(RUN_PATH).respond_with_json(fixture("run-failed.json", server), content_type=JSON)
    server.expect_request(f"{RUN_PATH}/jobs").respond_with_json(fixture("run-jobs.json", server), content_type=JSON)


def test_429_retry_after_is_waited_then_the_call_succeeds(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_oneshot_request(RUN_PATH).respond_with_json(
        fixture("error-secondary-rate-limit.json", httpserver),
        status=429,
        headers={"Retry-After": "7"},
        content_type=JSON,
    )
    _serve_run_only(httpserver)
    info = make_provider(httpserver, sleeps=sleeps).run(make_ref(httpserver))
    assert info.pull_request == "482"
    assert sleeps == [7.0]
    assert requested(httpserver).count(RUN_PATH) == 2


def test_403_primary_rate_limit_waits_until_the_reset(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    reset = int(time.time()) + 20
    headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    httpserver.expect_oneshot_request(RUN_PATH).respond_with_json(
        fixture("error-rate-limit.json", httpserver), status=403, headers=headers, content_type=JSON
    )
    _serve_run_only(httpserver)
    make_provider(httpserver, sleeps=sleeps).run(make_ref(httpserver))
    assert len(sleeps) == 1
    assert 18.0 <= sleeps[0] <= 22.0  # reset - now, plus a second of margin


def test_a_rate_limit_that_persists_becomes_a_provider_error(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_request(RUN_PATH).respond_with_json(
        fixture("error-secondary-rate-limit.json", httpserver),
        status=429,
        headers={"Retry-After": "7"},
        content_type=JSON,
    )
    with pytest.raises(ProviderError) as caught:
        make_provider(httpserver, sleeps=sleeps, retries=2).run(make_ref(httpserver))
    assert "rate limit exceeded (HTTP 429)" in str(caught.value)
    assert sleeps == [7.0, 7.0]


def test_a_reset_beyond_max_wait_fails_at_once(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3000)}
    httpserver.expect_request(RUN_PATH).respond_with_json(
        fixture("error-rate-limit.json", httpserver), status=403, headers=headers, content_type=JSON
    )
    with pytest.raises(ProviderError, match=r"rate limit exceeded \(HTTP 403\); it resets in \d+ s"):
        make_provider(httpserver, sleeps=sleeps, max_wait=60).run(make_ref(httpserver))
    assert sleeps == []


def test_server_errors_are_retried_by_the_guard_not_the_sdk(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_oneshot_request(RUN_PATH).respond_with_data("<html>Bad Gateway</html>", status=502)
    _serve_run_only(httpserver)
    make_provider(httpserver, sleeps=sleeps).run(make_ref(httpserver))
    assert len(sleeps) == 1
    assert requested(httpserver).count(RUN_PATH) == 2


# 6. authentication and permission errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, "error-401.json", f"GitHub rejected the token (HTTP 401): check {TOKEN_SETTING} ({READ_SCOPES})"),
        (403, "error-403.json", f"GitHub refused access (HTTP 403): the token in {TOKEN_SETTING} needs {READ_SCOPES}"),
        (404, "error-404.json", f"not found on GitHub (HTTP 404): check the URL, or the token in {TOKEN_SETTING}"),
    ],
)
def test_refusals_name_the_token_setting_and_never_the_token(
    httpserver: HTTPServer, status: int, body: str, expected: str
) -> None:
    httpserver.expect_request(RUN_PATH).respond_with_json(fixture(body, httpserver), status=status, content_type=JSON)
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as caught:
        make_provider(httpserver, sleeps=sleeps).run(make_ref(httpserver))
    message = str(caught.value)
    assert expected in message
    assert message.startswith(f"https://github.com/{PROJECT}/actions/runs/{RUN_ID}: ")
    assert "\n" not in message
    assert TOKEN not in message and TOKEN[4:] not in message
    assert sleeps == []  # refusals are not retried


def test_no_token_says_which_setting_to_set(httpserver: HTTPServer) -> None:
    httpserver.expect_request(RUN_PATH).respond_with_json(
        fixture("error-401.json", httpserver), status=401, content_type=JSON
    )
    with pytest.raises(ProviderError, match=f"GitHub needs a token \\(HTTP 401\\): set {TOKEN_SETTING}"):
        make_provider(httpserver, token=None).run(make_ref(httpserver))
    assert "Authorization" not in httpserver.log[0][0].headers


def test_a_refused_write_names_the_write_permissions(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{RUN_PATH}/cancel", method="POST").respond_with_json(
        fixture("error-403.json", httpserver), status=403, content_type=JSON
    )
    with pytest.raises(ProviderError) as caught:
        make_provider(httpserver).cancel(make_ref(httpserver), dry_run=False)
    assert WRITE_SCOPES in str(caught.value)
    assert '"Actions: write"' in WRITE_SCOPES and '"workflow"' in WRITE_SCOPES


# 7. bounded memory --------------------------------------------------------------------------------

LOG_MB = 64


def _huge_log() -> Iterator[bytes]:
    line = b"2024-05-01T10:01:00.0000000Z collecting ... tests/test_catalog.py::test_sku_lookup PASSED\n"
    block = line * (64 * 1024 // len(line))
    block += b"x" * (64 * 1024 - len(block) - 1) + b"\n"
    for _ in range(LOG_MB * 16):
        yield block


def test_a_64_mb_log_streams_to_disk_in_bounded_memory(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    httpserver.expect_oneshot_request(f"/blobs/job-{TEST_JOB}.txt").respond_with_handler(
        lambda request: Response(_huge_log(), mimetype="text/plain")
    )
    provider = make_provider(httpserver)
    tracemalloc.start()
    try:
        material = provider.fetch(make_ref(httpserver), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "test _3.12_.log").stat().st_size == LOG_MB * 1024 * 1024
    assert [log.job for log in material.logs] == ["test (3.12)"]
    # The test server runs in this process and werkzeug drains each connection with a 10 MB read
    # buffer; the client side stays well under 1 MB. A log held in memory would be 64 MB and more.
    assert peak < 16 * 1024 * 1024


# 8. writes ----------------------------------------------------------------------------------------


def test_dry_run_writes_send_nothing(httpserver: HTTPServer) -> None:
    httpserver.expect_request(RUN_PATH).respond_with_json(fixture("run-failed.json", httpserver), content_type=JSON)
    provider = make_provider(httpserver)
    ref = make_ref(httpserver)
    rerun = provider.rerun_failed(ref)
    rerun_job = provider.rerun_failed(make_ref(httpserver, job_id=TEST_JOB))
    cancel = provider.cancel(ref)
    trigger = provider.trigger(PROJECT, "main", {"python": "3.12"}, workflow="ci.yml")
    comment = provider.comment(ref, "cimedic: test failure")

    assert requested(httpserver, "POST") == []
    assert all(r.dry_run and not r.done and r.detail.startswith("would ") for r in (rerun, cancel, trigger, comment))
    assert (rerun.method, rerun.endpoint) == ("POST", f"{RUN_PATH}/rerun-failed-jobs")
    assert rerun_job.endpoint == f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/rerun"
    assert cancel.endpoint == f"{RUN_PATH}/cancel"
    assert trigger.endpoint == f"/repos/{PROJECT}/actions/workflows/ci.yml/dispatches"
    assert trigger.payload == {"ref": "main", "inputs": {"python": "3.12"}}
    assert comment.endpoint == f"/repos/{PROJECT}/issues/482/comments"
    assert comment.payload == {"body": "cimedic: test failure"}
    assert comment.detail == "would comment on pull request #482"
    assert comment.target == f"{PROJECT}#482"


def test_rerun_failed_and_cancel_post_to_the_documented_endpoints(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{RUN_PATH}/rerun-failed-jobs", method="POST").respond_with_json(
        {}, status=201, content_type=JSON
    )
    httpserver.expect_request(f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/rerun", method="POST").respond_with_json(
        {}, status=201, content_type=JSON
    )
    httpserver.expect_request(f"{RUN_PATH}/cancel", method="POST").respond_with_json({}, status=202, content_type=JSON)
    provider = make_provider(httpserver)
    results = [
        provider.rerun_failed(make_ref(httpserver), dry_run=False),
        provider.rerun_failed(make_ref(httpserver, job_id=TEST_JOB), dry_run=False),
        provider.cancel(make_ref(httpserver), dry_run=False),
    ]
    assert all(r.done and not r.dry_run for r in results)
    assert requested(httpserver, "POST") == [
        f"{RUN_PATH}/rerun-failed-jobs",
        f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/rerun",
        f"{RUN_PATH}/cancel",
    ]
    assert all(req.headers["Authorization"] == f"token {TOKEN}" for req, _ in httpserver.log)


def test_trigger_dispatches_the_workflow_with_ref_and_inputs(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        f"/repos/{PROJECT}/actions/workflows/ci.yml/dispatches",
        method="POST",
        json={"ref": "main", "inputs": {"python": "3.12"}},
    ).respond_with_data("", status=204)
    result = make_provider(httpserver).trigger(PROJECT, "main", {"python": "3.12"}, workflow="ci.yml", dry_run=False)
    assert result.done
    assert requested(httpserver, "POST") == [f"/repos/{PROJECT}/actions/workflows/ci.yml/dispatches"]


def test_trigger_without_a_workflow_is_refused(httpserver: HTTPServer) -> None:
    with pytest.raises(ProviderError, match="name its file or id"):
        make_provider(httpserver).trigger(PROJECT, "main", {}, dry_run=False)
    assert httpserver.log == []


def test_comment_goes_to_the_runs_pull_request(httpserver: HTTPServer) -> None:
    httpserver.expect_request(RUN_PATH).respond_with_json(fixture("run-failed.json", httpserver), content_type=JSON)
    httpserver.expect_request(
        f"/repos/{PROJECT}/issues/482/comments", method="POST", json={"body": "cimedic: test failure"}
    ).respond_with_json(fixture("issue-comment-created.json", httpserver), status=201, content_type=JSON)
    result = make_provider(httpserver).comment(make_ref(httpserver), "cimedic: test failure", dry_run=False)
    assert result.done and result.detail == "comment on pull request #482"
    assert requested(httpserver, "POST") == [f"/repos/{PROJECT}/issues/482/comments"]


def test_comment_without_a_pull_request_goes_to_the_commit(httpserver: HTTPServer) -> None:
    push_run = fixture("runs-page-1.json", httpserver)["workflow_runs"][0]
    sha = push_run["head_sha"]
    httpserver.expect_request(RUN_PATH).respond_with_json(push_run, content_type=JSON)
    httpserver.expect_request(
        f"/repos/{PROJECT}/commits/{sha}/comments", method="POST", json={"body": "flaky again"}
    ).respond_with_json(fixture("commit-comment-created.json", httpserver), status=201, content_type=JSON)
    result = make_provider(httpserver).comment(make_ref(httpserver), "flaky again", dry_run=False)
    assert result.done and result.endpoint == f"/repos/{PROJECT}/commits/{sha}/comments"
    assert requested(httpserver, "POST") == [f"/repos/{PROJECT}/commits/{sha}/comments"]


def test_cancelling_a_finished_run_reports_githubs_reason(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{RUN_PATH}/cancel", method="POST").respond_with_json(
        fixture("error-409-cancel.json", httpserver), status=409, content_type=JSON
    )
    with pytest.raises(ProviderError, match="HTTP 409: Cannot cancel a workflow run that is completed"):
        make_provider(httpserver).cancel(make_ref(httpserver), dry_run=False)


# 9. unreachable -----------------------------------------------------------------------------------


def test_connection_refused_is_one_line_cannot_reach() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as caught:
        make_provider(base, sleeps=sleeps, retries=1).run(make_ref(base))
    message = str(caught.value)
    assert f"cannot reach GitHub at {base}" in message
    assert "\n" not in message and TOKEN not in message
    assert len(sleeps) == 1


def test_blob_signatures_stay_out_of_messages(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_run(httpserver, artifacts=no_artifacts())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/blobs/job.txt?sig=SIGNATURE-SECRET"
    httpserver.expect_oneshot_request(f"/repos/{PROJECT}/actions/jobs/{TEST_JOB}/logs").respond_with_data(
        "", status=302, headers={"Location": dead}
    )
    with pytest.raises(ProviderError) as caught:
        make_provider(httpserver, retries=0).fetch(make_ref(httpserver), tmp_path)
    assert "cannot reach GitHub" in str(caught.value)
    assert "SIGNATURE-SECRET" not in str(caught.value)
