"""`cimedic heal` and `cimedic actions` end to end: a real GitHub Actions run (fixture payloads) served
over HTTP to PyGithub, the audit log in SQLite, and the exact writes the platform received."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_ci_github as github
from pytest_httpserver import HTTPServer
from test_heal_retry import GitHubRun
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.errors import InputError
from cimedic.settings import get_settings
from tests.http_log import writes

runner = CliRunner()
URL = f"https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID}"
RERUN = ("POST", f"{github.RUN_PATH}/rerun-failed-jobs", None)


@pytest.fixture
def run(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> GitHubRun:
    monkeypatch.setenv("CIMEDIC_GITHUB_API_URL", github.api(httpserver))
    monkeypatch.setenv("CIMEDIC_GITHUB_TOKEN", github.TOKEN)
    get_settings.cache_clear()
    return GitHubRun(httpserver)


def _heal(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["heal", URL, "--json", "--offline", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_dry_run_heal_writes_nothing_but_the_audit_log(httpserver: HTTPServer, run: GitHubRun) -> None:
    report = _heal("--action", "retry")
    [step] = [s for s in report["steps"] if s["kind"] == "retry"]
    assert report["dry_run"] and step["state"] == "awaiting-approval" and step["level"] == "approve"
    assert step["request"]["endpoint"] == f"{github.RUN_PATH}/rerun-failed-jobs"
    assert writes(httpserver) == []
    listed = runner.invoke(app, ["actions", "list", "--json"])
    assert [a["id"] for a in json.loads(listed.stdout)] == [step["action_id"]]


def test_approve_executes_once_and_verify_follows_the_rerun(httpserver: HTTPServer, run: GitHubRun) -> None:
    [step] = [s for s in _heal("--execute", "--action", "retry")["steps"] if s["kind"] == "retry"]
    assert step["state"] == "awaiting-approval" and writes(httpserver) == []  # a test failure: a person decides
    approved = runner.invoke(app, ["actions", "approve", str(step["action_id"]), "--by", "alice", "--execute"])
    assert approved.exit_code == 0, approved.output
    assert f"#{step['action_id']} executed" in approved.stdout
    assert writes(httpserver) == [RERUN]
    again = runner.invoke(app, ["actions", "approve", str(step["action_id"]), "--execute"])
    # In-process the one-line error surfaces as the exception `cimedic` prints (exit 2 in a shell).
    assert isinstance(again.exception, InputError) and "is executed, not awaiting approval" in str(again.exception)
    assert writes(httpserver) == [RERUN]
    run.attempt_ends("success")
    verified = runner.invoke(app, ["actions", "verify"])
    assert f"#{step['action_id']} retry run: fixed" in verified.stdout
    shown = json.loads(runner.invoke(app, ["actions", "show", str(step["action_id"])]).stdout)
    assert shown["verdict"] == "fixed"
    assert [e["state"] for e in shown["events"]][:4] == ["proposed", "awaiting-approval", "approved", "executing"]
    assert any(e["actor"] == "human:alice" for e in shown["events"])


def test_halt_stops_an_approved_execution(httpserver: HTTPServer, run: GitHubRun) -> None:
    [step] = [s for s in _heal("--action", "retry")["steps"] if s["kind"] == "retry"]
    assert runner.invoke(app, ["actions", "halt"]).exit_code == 0
    refused = runner.invoke(app, ["actions", "approve", str(step["action_id"]), "--execute"])
    assert isinstance(refused.exception, InputError) and "halted; nothing executed" in str(refused.exception)
    assert writes(httpserver) == []
    assert runner.invoke(app, ["actions", "resume"]).exit_code == 0


def test_a_bad_action_kind_is_a_usage_error(run: GitHubRun) -> None:
    result = runner.invoke(app, ["heal", URL, "--action", "reboot"])
    assert result.exit_code == 2 and "the kind must be one of" in result.output


def test_a_users_policy_file_is_used(run: GitHubRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("enabled: true\ndefaults: {retry: never}\n")
    monkeypatch.setenv("CIMEDIC_POLICY_FILE", str(policy))
    get_settings.cache_clear()
    [step] = [s for s in _heal("--action", "retry")["steps"] if s["kind"] == "retry"]
    assert step["state"] == "rejected" and step["rules"] == ["defaults"]
