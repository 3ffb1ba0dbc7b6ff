"""`cimedic ci-report` inside a failed CI job: the run comes from the platform's variables, the report goes
to the job log, GitHub's job summary and ONE pull/merge request comment that re-runs edit. The real
PyGithub and python-gitlab talk over real HTTP to local servers that answer like GitHub and GitLab."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import test_ci_github as github
import test_ci_gitlab as gitlab
import typer
import yaml
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.pipeline.cli import ci_report
from cimedic.pipeline.comments import MARKER
from cimedic.pipeline.env import VARIABLES, PipelineEnv
from cimedic.pipeline.report import fit, quiet_mentions
from cimedic.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
PR = 482
GH_COMMENTS = f"/repos/{github.PROJECT}/issues/{PR}/comments"
GH_EDIT = re.compile(rf"/repos/{github.PROJECT}/issues/comments/(\d+)")
MR = 57
GL_NOTES = f"{gitlab.api()}/merge_requests/{MR}/notes"
GL_EDIT = re.compile(rf"{gitlab.api()}/merge_requests/{MR}/notes/(\d+)")
# What a person wrote earlier, quoting the marker: never ours to edit.
QUOTING = f"Is this flaky? The bot's comment starts with `{MARKER}`."

app = typer.Typer()
app.command()(ci_report)


@pytest.fixture(autouse=True)
def _no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite itself may run in CI: only the variables a test sets describe "the current run".
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run_cli(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], *args: str) -> Any:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def writes(server: HTTPServer) -> list[tuple[str, str, Any]]:
    return [(req.method, req.path, req.get_json(silent=True)) for req, _ in server.log if req.method != "GET"]


# -- GitHub Actions -----------------------------------------------------------------------------------


class PullComments:
    """The pull request's issue comments as GitHub keeps them: listed, created, edited."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.template = github.fixture("issue-comment-created.json", server)
        self.comments: list[dict[str, Any]] = []
        self.add(QUOTING)
        self.serve()

    def add(self, body: str) -> dict[str, Any]:
        number = self.template["id"] + len(self.comments)
        comment = self.template | {
            "id": number,
            "url": f"{github.api(self.server)}/repos/{github.PROJECT}/issues/comments/{number}",
            "html_url": f"https://github.com/{github.PROJECT}/pull/{PR}#issuecomment-{number}",
            "body": body,
        }
        self.comments.append(comment)
        return comment

    def serve(self) -> None:
        def post(request: Request) -> Response:
            return Response(json.dumps(self.add(request.get_json()["body"])), status=201, content_type=github.JSON)

        def patch(request: Request) -> Response:
            match = GH_EDIT.fullmatch(request.path)
            assert match is not None
            comment = next(c for c in self.comments if c["id"] == int(match[1]))
            comment["body"] = request.get_json()["body"]
            return Response(json.dumps(comment), content_type=github.JSON)

        self.server.expect_request(GH_COMMENTS, method="GET").respond_with_handler(
            lambda _: Response(json.dumps(self.comments), content_type=github.JSON)
        )
        self.server.expect_request(GH_COMMENTS, method="POST").respond_with_handler(post)
        self.server.expect_request(GH_EDIT, method="PATCH").respond_with_handler(patch)

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["body"].startswith(MARKER)]


def github_variables(server: HTTPServer, tmp_path: Path, attempt: int = 1) -> dict[str, str]:
    """What the runner sets in a job of a pull_request workflow run, the API pointed at the test server."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": PR, "pull_request": {"number": PR}}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": github.api(server),
        "GITHUB_REPOSITORY": github.PROJECT,
        "GITHUB_RUN_ID": str(github.RUN_ID),
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / f"summary-{attempt}.md"),
        # Settings, as the action sets them: the provider talks to the test server with this token.
        "CIMEDIC_GITHUB_API_URL": github.api(server),
        "GITHUB_TOKEN": github.TOKEN,
    }


def serve_attempt(server: HTTPServer, attempt: int) -> None:
    # Registered before serve_run's: the first handler that matches answers.
    run = github.fixture("run-failed.json", server) | {"run_attempt": attempt}
    server.expect_request(github.RUN_PATH, method="GET").respond_with_json(run, content_type=github.JSON)
    github.serve_run(server)


def test_github_first_run_writes_the_summary_and_posts_one_comment_a_rerun_edits_it(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_attempt(httpserver, 1)
    comments = PullComments(httpserver)

    first = run_cli(monkeypatch, github_variables(httpserver, tmp_path, 1))
    assert first.exit_code == 0, first.output
    summary = (tmp_path / "summary-1.md").read_text()
    assert summary.startswith("### cimedic: test failure")
    assert "AssertionError: assert 'reserved' == 'refused'" in summary
    [(method, path, payload)] = writes(httpserver)
    assert (method, path) == ("POST", GH_COMMENTS)
    body = payload["body"]
    assert body.startswith(f"{MARKER}\n### cimedic: test failure")
    assert "test_reserve_more_than_stock_is_refused" in body
    assert f"[run {github.RUN_ID}](https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID})" in body
    assert "attempt" not in body.split("\n")[-2]
    # The report is in the log between stop-commands and its token: log text can never act as a command.
    token = re.search(r"^::stop-commands::([0-9a-f]{32})$", first.stdout, re.M)
    assert token and f"\n::{token[1]}::\n" in first.stdout
    assert "### cimedic: test failure" in first.stdout.split(f"::{token[1]}::")[0]
    assert f"cimedic: posted a comment on pull request #{PR}: https://github.com/" in first.stderr
    assert "::warning" not in first.stdout
    assert github.TOKEN not in first.output + body

    httpserver.clear_all_handlers()
    httpserver.clear_log()
    serve_attempt(httpserver, 2)
    comments.serve()
    again = run_cli(monkeypatch, github_variables(httpserver, tmp_path, 2))
    assert again.exit_code == 0, again.output
    [(method, path, payload)] = writes(httpserver)
    mine = comments.ours()
    assert len(mine) == 1 and (method, path) == ("PATCH", GH_EDIT.pattern.replace(r"(\d+)", str(mine[0]["id"])))
    assert payload["body"] == mine[0]["body"]
    assert payload["body"].startswith(f"{MARKER}\n### cimedic: test failure")
    assert payload["body"].rstrip().endswith(", attempt 2. Re-runs update this comment.</sub>")
    assert "(attempt 2)" in payload["body"]  # the run line, from the run as GitHub reports it
    assert [c["body"] for c in comments.comments] == [QUOTING, payload["body"]]
    assert f"cimedic: updated the comment on pull request #{PR}" in again.stderr
    assert (tmp_path / "summary-2.md").read_text().startswith("### cimedic: test failure")


def test_a_push_run_gets_the_summary_and_no_comment(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_attempt(httpserver, 1)
    variables = github_variables(httpserver, tmp_path)
    Path(variables["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main", "commits": []}))
    result = run_cli(monkeypatch, variables)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "summary-1.md").is_file()
    assert writes(httpserver) == []
    assert "cimedic: no comment: this run belongs to no pull request" in result.stderr


@pytest.mark.parametrize("refused", ["run", "comment"])
def test_a_failing_api_is_a_warning_and_exit_0_unless_strict(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: str
) -> None:
    denied = github.fixture("error-403.json", httpserver)
    if refused == "run":  # the token cannot read the run: nothing to report
        httpserver.expect_request(github.RUN_PATH).respond_with_json(denied, status=403, content_type=github.JSON)
    else:  # a pull request from a fork: the token reads the run and the comments, but may not comment
        github.serve_run(httpserver)
        httpserver.expect_request(GH_COMMENTS, method="POST").respond_with_json(
            denied, status=403, content_type=github.JSON
        )
    comments = PullComments(httpserver)
    variables = github_variables(httpserver, tmp_path)

    for args, code in (((), 0), (("--strict",), 1)):
        result = run_cli(monkeypatch, variables, *args)
        assert result.exit_code == code, result.output
        [warning] = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
        if refused == "run":
            run_url = f"https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID}"
            assert warning.startswith(f"::warning title=cimedic::could not investigate this run: {run_url}: ")
            assert "GitHub refused access (HTTP 403): the token in CIMEDIC_GITHUB_TOKEN needs" in warning
        else:
            assert warning.startswith(f"::warning title=cimedic::could not comment: {github.PROJECT}#{PR}: ")
            assert '"Pull requests: write"' in warning
        assert github.TOKEN not in result.output
    assert comments.ours() == []
    # What could be reported still was: the summary when only the comment was refused.
    assert (tmp_path / "summary-1.md").is_file() is (refused == "comment")


def test_outside_ci_is_a_warning_and_exit_0_unless_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = run_cli(monkeypatch, {})
    assert quiet.exit_code == 0
    assert quiet.stderr.startswith("cimedic: warning: ci-report: not inside a CI job cimedic knows")
    assert run_cli(monkeypatch, {}, "--strict").exit_code == 1


# -- GitLab CI ----------------------------------------------------------------------------------------


class MergeRequestNotes:
    """The merge request's notes as GitLab keeps them: a system note, then what is posted and edited."""

    def __init__(self, server: HTTPServer) -> None:
        template = gitlab.js("merge_request_note.json")
        system = template | {"id": 1885203300, "system": True, "body": "added 1 commit"}
        self.notes: list[dict[str, Any]] = [system]

        def post(request: Request) -> Response:
            self.notes.append(template | {"id": template["id"] + len(self.notes), "body": request.get_json()["body"]})
            return Response(json.dumps(self.notes[-1]), status=201, content_type="application/json")

        def put(request: Request) -> Response:
            match = GL_EDIT.fullmatch(request.path)
            assert match is not None
            note = next(n for n in self.notes if n["id"] == int(match[1]))
            note["body"] = request.get_json()["body"]
            return Response(json.dumps(note), content_type="application/json")

        server.expect_request(GL_NOTES, method="GET").respond_with_handler(
            lambda _: Response(json.dumps(self.notes), content_type="application/json")
        )
        server.expect_request(GL_NOTES, method="POST").respond_with_handler(post)
        server.expect_request(GL_EDIT, method="PUT").respond_with_handler(put)


def test_gitlab_merge_request_pipeline_posts_a_note_then_edits_it(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitlab.serve_run(httpserver)
    notes = MergeRequestNotes(httpserver)
    variables = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": httpserver.url_for("/").rstrip("/"),
        "CI_PROJECT_PATH": gitlab.PROJECT,
        "CI_PIPELINE_ID": str(gitlab.PIPELINE),
        "CI_MERGE_REQUEST_IID": str(MR),
        "GITLAB_TOKEN": gitlab.TOKEN,
    }
    first = run_cli(monkeypatch, variables, "--output", str(tmp_path / "report.md"))
    assert first.exit_code == 0, first.output
    [(method, path, payload)] = writes(httpserver)
    assert (method, path) == ("POST", GL_NOTES)
    assert payload["body"].startswith(f"{MARKER}\n### cimedic: test failure")
    assert f"/{gitlab.PROJECT}/-/pipelines/{gitlab.PIPELINE})" in payload["body"]
    assert first.stdout.startswith("### cimedic: test failure")  # the job log; GitLab has no summary file
    assert (tmp_path / "report.md").read_text().startswith("### cimedic: test failure")
    assert f"cimedic: posted a comment on merge request !{MR}" in first.stderr

    httpserver.clear_log()
    again = run_cli(monkeypatch, variables)
    assert again.exit_code == 0, again.output
    [(method, path, payload)] = writes(httpserver)
    note_id = notes.notes[1]["id"]
    assert (method, path) == ("PUT", f"{GL_NOTES}/{note_id}")
    assert [n["body"][: len(MARKER)] for n in notes.notes] == ["added 1 commit"[: len(MARKER)], MARKER]
    assert f"cimedic: updated the comment on merge request !{MR}" in again.stderr


# -- the environment ------------------------------------------------------------------------------------


def test_settings_collect_every_variable_the_pipeline_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.setenv(name, f"value of {name}")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not_a_ci_variable")
    ci_env = Settings().ci_env
    assert ci_env == {name: f"value of {name}" for name in VARIABLES}


def test_github_variables(tmp_path: Path) -> None:
    def env(event: Any, **extra: str) -> PipelineEnv:
        path = tmp_path / "event.json"
        path.write_text(event if isinstance(event, str) else json.dumps(event))
        base = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/inventory", "GITHUB_RUN_ID": "77"}
        return PipelineEnv.from_mapping(base | {"GITHUB_EVENT_PATH": str(path)} | extra)

    pr = env({"pull_request": {"number": 9}}, GITHUB_RUN_ATTEMPT="3", GITHUB_SERVER_URL="https://ghe.example.com/")
    assert (pr.platform, pr.run_url, pr.attempt, pr.pull_request, pr.summary_path) == (
        Platform.GITHUB_ACTIONS,
        "https://ghe.example.com/acme/inventory/actions/runs/77",
        3,
        9,
        None,
    )
    assert env({"issue": {"number": 12, "pull_request": {"url": "x"}}}).pull_request == 12  # a PR comment
    assert env({"issue": {"number": 12}}).pull_request is None  # an issue comment
    assert env({"ref": "refs/heads/main"}).pull_request is None  # a push
    assert env("not json").pull_request is None
    assert env({"pull_request": {"number": True}}).run_url == "https://github.com/acme/inventory/actions/runs/77"
    with pytest.raises(InputError, match="GITHUB_REPOSITORY is not OWNER/REPO"):
        PipelineEnv.from_mapping({"GITHUB_REPOSITORY": "acme/x/../y", "GITHUB_RUN_ID": "1"})
    with pytest.raises(InputError, match="GITHUB_RUN_ID is not set"):
        PipelineEnv.from_mapping({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/inventory"})


def test_gitlab_and_jenkins_variables() -> None:
    gl = PipelineEnv.from_mapping(
        {
            "GITLAB_CI": "true",
            "CI_SERVER_URL": "https://gitlab.example.com/",
            "CI_PROJECT_PATH": "acme/platform/billing",
            "CI_PIPELINE_ID": "1273645190",
            "CI_MERGE_REQUEST_IID": "",  # a branch pipeline: GitLab leaves it unset
        }
    )
    assert (gl.platform, gl.run_url, gl.pull_request) == (
        Platform.GITLAB,
        "https://gitlab.example.com/acme/platform/billing/-/pipelines/1273645190",
        None,
    )
    jenkins = PipelineEnv.from_mapping({"BUILD_URL": "https://ci.example.com/job/app/job/main/41/"})
    assert (jenkins.platform, jenkins.run_url, jenkins.pull_request) == (
        Platform.JENKINS,
        "https://ci.example.com/job/app/job/main/41/",
        None,
    )
    with pytest.raises(InputError, match="CI_PROJECT_PATH is not set"):
        PipelineEnv.from_mapping({"GITLAB_CI": "true", "CI_SERVER_URL": "https://g.example", "CI_PIPELINE_ID": "1"})


# -- what a comment may hold --------------------------------------------------------------------------


def test_a_long_report_is_cut_at_a_line_with_its_code_fence_closed() -> None:
    text = "### cimedic\n\n```text\n" + "\n".join(f"{i} | " + "x" * 90 for i in range(2000)) + "\n```\n"
    cut = fit(text, 10_000, where="the job summary")
    assert len(cut.encode()) <= 10_000
    assert cut.endswith("```\n_(report cut to fit; the full report is in the job summary)_\n")
    assert cut.count("```") == 2
    assert fit("short", 10, where="x") == "short"


def test_mentions_are_quieted_outside_code_only() -> None:
    markdown = "ping @platform-team\n- `@pytest.mark.slow` by @alice\n```text\n@decorator\n```\n"
    assert quiet_mentions(markdown) == (
        "ping @\u2060platform-team\n- `@pytest.mark.slow` by @\u2060alice\n```text\n@decorator\n```\n"
    )


# -- the templates ------------------------------------------------------------------------------------


def test_action_yml_is_a_composite_action_that_runs_ci_report() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {"version", "llm-model", "comment", "github-token"} <= set(action["inputs"])
    assert action["inputs"]["comment"]["default"] == "true"
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@")
    runs = [s for s in steps if "run" in s]
    assert all(s["shell"] == "bash" for s in runs)  # composite run steps must name their shell
    assert "${{ github.action_path }}" in str(runs[0]["env"].values())
    assert '"$cimedic" ci-report' in runs[-1]["run"]
    # Inputs reach the scripts through env, never pasted into them.
    assert all("${{" not in s["run"] for s in runs)


def test_gitlab_template_is_a_hidden_job_that_runs_on_failure() -> None:
    template = yaml.safe_load((ROOT / "ci-templates" / "gitlab-ci.yml").read_text())
    job = template[".cimedic"]
    assert (job["when"], job["stage"], job["allow_failure"]) == ("on_failure", ".post", True)
    assert any(line.startswith("cimedic ci-report") for line in job["script"])
    jenkins = (ROOT / "ci-templates" / "Jenkinsfile.post-failure").read_text()
    assert re.search(r"post \{\s+failure \{", jenkins) and "cimedic ci-report" in jenkins
