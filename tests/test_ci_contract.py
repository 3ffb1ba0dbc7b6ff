"""`cimedic investigate <URL> --json`: one JSON contract for all four platforms, fetched through each
platform's real SDK from a local server that answers like the platform (fixtures per endpoint)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import test_ci_azure as azure
import test_ci_github as github
import test_ci_gitlab as gitlab
import test_ci_jenkins as jenkins
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.settings import get_settings

runner = CliRunner()


def _github(server: HTTPServer, env: dict[str, str]) -> str:
    github.serve_run(server)
    env["CIMEDIC_GITHUB_API_URL"] = github.api(server)
    env["CIMEDIC_GITHUB_TOKEN"] = github.TOKEN
    return f"https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID}"


def _gitlab(server: HTTPServer, env: dict[str, str]) -> str:
    gitlab.serve_run(server)
    env["CIMEDIC_GITLAB_TOKEN"] = gitlab.TOKEN
    return server.url_for(f"/{gitlab.PROJECT}/-/pipelines/{gitlab.PIPELINE}")


def _jenkins(server: HTTPServer, env: dict[str, str]) -> str:
    jenkins.serve_pr(server)
    env["CIMEDIC_JENKINS_USER"] = jenkins.USER
    env["CIMEDIC_JENKINS_TOKEN"] = jenkins.TOKEN
    return server.url_for(f"{jenkins.PR_BUILD}/")


def _azure(server: HTTPServer, env: dict[str, str]) -> str:
    azure.serve_build(server)
    env["CIMEDIC_AZURE_DEVOPS_URL"] = server.url_for("/")
    env["CIMEDIC_AZURE_DEVOPS_TOKEN"] = azure.TOKEN
    return server.url_for(f"{azure.ORG}/{azure.PROJECT}/_build/results") + "?buildId=1234&view=results"


PLATFORMS: dict[str, tuple[Callable[[HTTPServer, dict[str, str]], str], str]] = {
    "github-actions": (_github, "test"),
    "gitlab": (_gitlab, "test"),
    "jenkins": (_jenkins, "test"),
    "azure-devops": (_azure, "test"),
}
TOKENS = [github.TOKEN, gitlab.TOKEN, jenkins.TOKEN, azure.TOKEN]


def _investigate(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, platform: str, *args: str
) -> tuple[str, dict[str, Any]]:
    serve, _ = PLATFORMS[platform]
    env: dict[str, str] = {}
    url = serve(httpserver, env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["investigate", url, "--json", *args])
    assert result.exit_code == 0, result.output
    return url, json.loads(result.stdout)


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_a_run_url_gives_the_same_contract_on_every_platform(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    url, data = _investigate(httpserver, monkeypatch, platform)
    assert data["schema_version"] == 1
    assert data["source"] == {"kind": platform, "path": url}
    assert data["category"] == PLATFORMS[platform][1]
    assert data["excerpt"] and data["evidence"]
    assert data["failed_tests"]
    run = data["run"]
    assert run["platform"] == platform
    assert run["id"] and run["project"] and run["status"] == "failure"
    assert run["commit"] and len(run["commit"]) >= 7
    assert run["branch"]
    assert run["started_at"] and run["finished_at"]
    assert run["duration_s"] is not None and run["duration_s"] > 0
    assert run["jobs"] and all("name" in job and "status" in job for job in run["jobs"])
    assert data["timings_ms"]["fetch"] >= 0
    text = json.dumps(data)
    assert not any(token in text for token in TOKENS)


def test_the_contract_keys_do_not_depend_on_the_platform(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes = set()
    for platform in PLATFORMS:
        httpserver.clear()
        _, data = _investigate(httpserver, monkeypatch, platform, "--no-record")
        shapes.add((tuple(sorted(data)), tuple(sorted(data["run"]))))
    assert len(shapes) == 1


def test_the_fingerprint_history_counts_a_remote_run_once(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first = _investigate(httpserver, monkeypatch, "gitlab")
    _, again = _investigate(httpserver, monkeypatch, "gitlab")
    assert first["fingerprint"]["count"] == again["fingerprint"]["count"] == 1


def test_markdown_names_the_run(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    url = _gitlab(httpserver, env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["investigate", url, "--markdown"])
    assert result.exit_code == 0, result.output
    assert f"Run: gitlab {gitlab.PROJECT}" in result.stdout


def test_an_unreachable_platform_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIMEDIC_GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CIMEDIC_CI__RETRIES", "0")
    get_settings.cache_clear()
    url = "https://github.com/acme/inventory/actions/runs/1"
    result = runner.invoke(app, ["investigate", url])
    assert result.exit_code == 2
    assert f"{url}: cannot reach GitHub at http://127.0.0.1:9" in result.output


def test_runs_list_through_the_cli(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"/repos/{github.PROJECT}/actions/runs"
    httpserver.expect_request(
        path, query_string={"branch": "main", "status": "failure", "per_page": "100"}
    ).respond_with_json(github.fixture("runs-page-1.json", httpserver), content_type=github.JSON)
    monkeypatch.setenv("CIMEDIC_GITHUB_API_URL", github.api(httpserver))
    get_settings.cache_clear()
    result = runner.invoke(
        app, ["runs", "list", github.PROJECT, "--failed", "--branch", "main", "--limit", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["status"] == "failure" and r["platform"] == "github-actions" for r in rows)
    table = runner.invoke(app, ["runs", "list", github.PROJECT, "--failed", "--branch", "main", "--limit", "3"])
    assert table.exit_code == 0
    assert "failure" in table.stdout


def test_writes_from_the_cli_are_dry_runs_until_apply(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    url = _gitlab(httpserver, env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    retry_path = f"{gitlab.api()}/pipelines/{gitlab.PIPELINE}/retry"
    httpserver.expect_request(retry_path, method="POST").respond_with_json(gitlab.js("pipeline_retry.json"))
    dry = runner.invoke(app, ["runs", "rerun", url, "--json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert (planned["dry_run"], planned["method"], planned["done"]) == (True, "POST", False)
    assert not [req for req, _ in httpserver.log if req.method == "POST"]
    done = runner.invoke(app, ["runs", "rerun", url, "--apply"])
    assert done.exit_code == 0, done.output
    assert [req.path for req, _ in httpserver.log if req.method == "POST"] == [retry_path]


def test_an_investigated_pr_run_goes_into_history_with_the_change_question_answered(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, data = _investigate(httpserver, monkeypatch, "gitlab")
    assert data["run"]["pull_request"]
    verdict = data["change_cause"]
    assert verdict is not None
    assert abs(sum(verdict["probabilities"].values()) - 1.0) < 1e-3
    assert verdict["likely"] in ("change", "flaky", "infra", "broken_base")
    assert any("never seen outside this change" in why for why in verdict["evidence"])
    from cimedic.store.history import HistoryStore

    store = HistoryStore.open(get_settings().effective_database_url)
    stats = store.stats(gitlab.PROJECT)
    assert (stats.runs, stats.diagnoses) == (1, 1)
    assert stats.test_results > 0
