"""`cimedic ingest` end to end through the real GitHub (PyGithub) and GitLab (python-gitlab) providers
over real HTTP (pytest-httpserver), answered with the same fixtures as the provider tests."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import test_ci_github as github
import test_ci_gitlab as gitlab
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.settings import get_settings
from cimedic.store.history import HistoryStore

SINCE = "2024-04-01"  # the fixtures are from May 2024
runner = CliRunner()


def _ingest(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], repo: str, *args: str) -> str:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["ingest", repo, "--since", SINCE, *args])
    assert result.exit_code == 0, result.output
    return result.output


def _store() -> HistoryStore:
    return HistoryStore.open(get_settings().effective_database_url)


def _deployments(store: HistoryStore) -> list[tuple[Any, ...]]:
    """(id, environment, status, linked to a stored run) of every stored deployment."""
    from sqlalchemy import select

    from cimedic.store.history_tables import DeploymentRow as D

    with store.engine.connect() as conn:
        rows = conn.execute(select(D.external_id, D.environment, D.status, D.run_pk).order_by(D.created_at.desc()))
        return [(external_id, env, status, run_pk is not None) for external_id, env, status, run_pk in rows]


def _requested(server: HTTPServer) -> list[str]:
    return [req.path for req, _ in server.log]


def _snapshot(store: HistoryStore, project: str) -> tuple[Any, ...]:
    return store.stats(project).model_dump(), store.runs_frame(project), store.tests_frame(project), _deployments(store)


def _assert_unchanged(before: tuple[Any, ...], after: tuple[Any, ...]) -> None:
    assert after[0] == before[0]
    pd.testing.assert_frame_equal(after[1], before[1])
    pd.testing.assert_frame_equal(after[2], before[2])
    assert after[3] == before[3]


# -- GitHub Actions -------------------------------------------------------------------------------

GH_RUNS = f"/repos/{github.PROJECT}/actions/runs"
GH_RUN = github.RUN_PATH
GH_REQUESTS = [
    GH_RUNS,
    GH_RUN,
    f"{GH_RUN}/jobs",
    f"{GH_RUN}/artifacts",
    f"/repos/{github.PROJECT}/actions/artifacts/{github.REPORT_ARTIFACT}/zip",
    f"/blobs/artifact-{github.REPORT_ARTIFACT}.zip",
]
GH_DEPLOYMENT_REQUESTS = [github.DEPLOYMENTS] + [
    f"{github.DEPLOYMENTS}/{deployment_id}/statuses" for deployment_id in github.DEPLOYMENT_IDS
]


def serve_github(server: HTTPServer) -> dict[str, str]:
    """The runs listing (the failed run of serve_run alone), that run, and every deployment on one page."""
    listing = {"total_count": 1, "workflow_runs": [github.fixture("run-failed.json", server)]}
    server.expect_request(GH_RUNS, method="GET").respond_with_json(listing, content_type=github.JSON)
    github.serve_run(server)
    everything = [d for page in (1, 2, 3) for d in github.fixture(f"deployments-page-{page}.json", server)]
    server.expect_request(github.DEPLOYMENTS, method="GET", query_string={"per_page": "100"}).respond_with_json(
        everything, content_type=github.JSON
    )
    for deployment_id in github.DEPLOYMENT_IDS:
        server.expect_request(f"{github.DEPLOYMENTS}/{deployment_id}/statuses", method="GET").respond_with_json(
            github.fixture(f"deployment-{deployment_id}-statuses.json", server), content_type=github.JSON
        )
    return {"CIMEDIC_GITHUB_API_URL": github.api(server), "CIMEDIC_GITHUB_TOKEN": github.TOKEN}


def test_github_ingest_stores_the_run_its_jobs_tests_and_deployments_and_again_adds_nothing(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = serve_github(httpserver)
    first = _ingest(monkeypatch, env, github.PROJECT)

    assert f"{github.PROJECT}: listed 1 runs since 2024-04-01 00:00: 1 added, 0 updated, 0 unchanged" in first
    assert "next ingest starts from 2024-05-01 10:00" in first
    assert "5 deployments stored" in first
    # The listing, the run with its jobs, its test-report artifact; no job log; then the deployments.
    assert _requested(httpserver) == GH_REQUESTS + GH_DEPLOYMENT_REQUESTS
    assert httpserver.log[0][0].args["created"] == ">=2024-04-01T00:00:00Z"

    store = _store()
    stats = store.stats(github.PROJECT)
    assert (stats.runs, stats.by_status, stats.jobs, stats.test_results) == (1, {"failure": 1}, 2, 14)
    [run] = store.runs_frame(github.PROJECT).to_dict("records")
    assert (run["run_id"], run["attempt"], run["status"], run["branch"], run["pull_request"]) == (
        str(github.RUN_ID),
        1,
        "failure",
        "fix/reserve-limits",
        "482",
    )
    assert run["commit"] == "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert (run["duration_s"], run["queue_s"]) == (212.0, 9.0)
    assert (run["tests_passed"], run["tests_failed"], run["tests_skipped"]) == (12, 2, 0)
    tests = store.tests_frame(github.PROJECT)
    assert len(tests) == 14 and set(tests["run_id"]) == {str(github.RUN_ID)}
    assert tests["status"].value_counts().to_dict() == {"passed": 12, "failed": 2}
    assert set(tests.loc[tests["status"] == "failed", "test"]) == {
        "tests.test_reservations.test_reserve_more_than_stock_is_refused",
        "tests.test_reservations.test_release_unknown_reservation",
    }
    assert "tests.test_catalog.test_sku_lookup" in set(tests.loc[tests["status"] == "passed", "test"])
    # The deployments' runs (8913100021, ...) were not ingested: stored unlinked.
    assert _deployments(store) == [
        ("1502260113", "production", "success", False),
        ("1502255871", "staging", "success", False),
        ("1502231144", "production", "failure", False),
        ("1502198020", "production", "failure", False),
        ("1502150333", "staging", "unknown", False),
    ]

    before = _snapshot(store, github.PROJECT)
    httpserver.clear_log()
    again = _ingest(monkeypatch, env, github.PROJECT)

    # Listed from the cursor; nothing added or changed.
    assert f"{github.PROJECT}: listed 1 runs since 2024-05-01 10:00: 0 added, 0 updated" in again
    assert "next ingest starts from 2024-05-01 10:00" in again
    assert httpserver.log[0][0].args["created"] == ">=2024-05-01T10:00:00Z"
    _assert_unchanged(before, _snapshot(_store(), github.PROJECT))


def test_github_second_ingest_skips_the_stored_run_without_fetching_it(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = serve_github(httpserver)
    _ingest(monkeypatch, env, github.PROJECT, "--no-deployments")
    httpserver.clear_log()
    again = _ingest(monkeypatch, env, github.PROJECT, "--no-deployments")
    assert "0 added, 0 updated, 0 unchanged, 1 already stored" in again
    assert _requested(httpserver) == [GH_RUNS]


# -- GitLab -------------------------------------------------------------------------------------------

GL = gitlab.api()
GL_RUN_REQUESTS = [
    f"{GL}/pipelines",
    f"{GL}/pipelines/{gitlab.PIPELINE}",
    f"{GL}/pipelines/{gitlab.PIPELINE}/jobs",
    f"{GL}/merge_requests/57",
    f"{GL}/pipelines/{gitlab.PIPELINE}/test_report",
]


def _one_page(items: list[dict[str, Any]]) -> dict[str, str]:
    return {"X-Page": "1", "X-Per-Page": "100", "X-Total": str(len(items)), "X-Total-Pages": "1", "X-Next-Page": ""}


def serve_gitlab(server: HTTPServer) -> dict[str, str]:
    """The pipelines listing (the failed MR pipeline of serve_run alone), that pipeline, and the deployments."""
    pipelines = [gitlab.js("pipeline.json")]
    server.expect_request(f"{GL}/pipelines", method="GET").respond_with_json(pipelines, headers=_one_page(pipelines))
    gitlab.serve_run(server)
    deployments = gitlab.js("deployments_page_1.json") + gitlab.js("deployments_page_2.json")
    server.expect_request(f"{GL}/deployments", method="GET").respond_with_json(
        deployments, headers=_one_page(deployments)
    )
    return {"CIMEDIC_GITLAB_URL": server.url_for("/").rstrip("/"), "CIMEDIC_GITLAB_TOKEN": gitlab.TOKEN}


def test_gitlab_ingest_stores_the_pipeline_its_jobs_tests_and_deployments_and_again_adds_nothing(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = serve_gitlab(httpserver)
    repo = f"gitlab:{gitlab.PROJECT}"
    first = _ingest(monkeypatch, env, repo)

    assert f"{gitlab.PROJECT}: listed 1 runs since 2024-04-01 00:00: 1 added, 0 updated, 0 unchanged" in first
    assert "next ingest starts from 2024-05-01 09:59" in first
    assert "4 deployments stored" in first
    # No job trace read: ingest takes the pipeline, its jobs, the MR (for the branch) and the test report.
    assert _requested(httpserver) == [*GL_RUN_REQUESTS, f"{GL}/deployments"]
    assert httpserver.log[0][0].args["updated_after"] == "2024-04-01T00:00:00Z"

    store = _store()
    stats = store.stats(gitlab.PROJECT)
    assert (stats.runs, stats.by_status, stats.jobs, stats.test_results) == (1, {"failure": 1}, 5, 6)
    [run] = store.runs_frame(gitlab.PROJECT).to_dict("records")
    assert (run["run_id"], run["status"], run["branch"], run["pull_request"], run["commit"]) == (
        str(gitlab.PIPELINE),
        "failure",
        "fix/vat-rounding",
        "57",
        gitlab.SHA,
    )
    assert run["duration_s"] == pytest.approx(288.223)
    assert (run["tests_passed"], run["tests_failed"], run["tests_skipped"]) == (4, 1, 1)
    tests = store.tests_frame(gitlab.PROJECT)
    assert tests["status"].value_counts().to_dict() == {"passed": 4, "failed": 1, "skipped": 1}
    assert list(tests.loc[tests["status"] == "failed", "test"]) == ["tests.test_invoice.test_vat_rounding_half_up"]
    assert {"tests.test_invoice.test_net_total_sums_lines", "ruff.billing/vat.py"} <= set(
        tests.loc[tests["status"] == "passed", "test"]
    )
    # The review-app deployment came from the ingested pipeline: linked to it.
    assert _deployments(store) == [
        ("512384117", "production", "success", False),
        ("512381904", "staging", "failure", False),
        ("512377032", "production", "running", False),
        ("512360518", "review/fix-vat-rounding", "cancelled", True),
    ]

    before = _snapshot(store, gitlab.PROJECT)
    httpserver.clear_log()
    again = _ingest(monkeypatch, env, repo)

    assert (
        f"{gitlab.PROJECT}: listed 1 runs since 2024-05-01 09:59: 0 added, 0 updated, 0 unchanged, 1 already" in again
    )
    # Stored complete and unchanged in the listing: not fetched again (the deployments are listed again).
    assert _requested(httpserver) == [f"{GL}/pipelines", f"{GL}/deployments"]
    assert httpserver.log[0][0].args["updated_after"] == "2024-05-01T09:59:41Z"
    _assert_unchanged(before, _snapshot(_store(), gitlab.PROJECT))
