"""Notify through the real PyGithub and python-gitlab over real HTTP: the comment lands on the run's pull or
merge request (or its commit), says what was found and proposed, carries its key, and leaks no secret."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import test_ci_github as github
import test_ci_gitlab as gitlab
import test_ci_jenkins as jenkins
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.heal.actions.notify import Notify, marker
from cimedic.heal.base import HealContext, Verdict
from cimedic.investigate import diagnose
from cimedic.models import Action, ActionKind, Diagnosis, Platform, RemediationPlan, RunInfo, Source, SourceKind
from cimedic.settings import CIClient, Limits, get_settings
from cimedic.tools.ci.base import CIProvider, RunRef
from cimedic.tools.ci.github import GitHubProvider
from tests.http_log import calls, writes

GL = gitlab.api()
SECRET = "ghp_R8mZ2xQv7LtN4pWc9YbK3sHd6FgJ1aEuVo0i"  # a GitHub token's shape, pasted into a log
GH_NOTES = f"/repos/{github.PROJECT}/issues/482/comments"


def diagnosed(provider: CIProvider, ref: RunRef, tmp_path: Path) -> Diagnosis:
    # As cimedic.remote does (fetch, diagnose, attach the run), plus the plan the planner would add.
    material = provider.fetch(ref, tmp_path / "run")
    diag = diagnose(material, limits=Limits())
    plan = RemediationPlan(
        actions=[
            Action(kind=ActionKind.RETRY, target="run", reason="seen flaky 3 times this week; ask @platform-team"),
            Action(kind=ActionKind.NOTIFY, target="run", reason="tell the author"),
        ]
    )
    summary = f"{diag.summary} (the job printed {SECRET})"
    return diag.model_copy(update={"run": material.run.info, "plan": plan, "summary": summary})


def notify() -> Action:
    return Action(kind=ActionKind.NOTIFY, target="run", reason="tell the author")


def context(diag: Diagnosis, ref: RunRef | None, provider: CIProvider | None) -> HealContext:
    return HealContext(diag, get_settings(), ref=ref, dry_run=False, provider=provider)


# -- GitHub ------------------------------------------------------------------------------------------


class GitHubComments:
    """The pull request's comments: a POST adds one, a GET lists them."""

    def __init__(self, server: HTTPServer) -> None:
        self.created: list[dict[str, Any]] = []
        template = github.fixture("issue-comment-created.json", server)

        def post(request: Request) -> Response:
            self.created.append(template | {"id": template["id"] + len(self.created), **request.get_json()})
            return Response(json.dumps(self.created[-1]), status=201, content_type=github.JSON)

        server.expect_request(GH_NOTES, method="POST").respond_with_handler(post)
        server.expect_request(GH_NOTES, method="GET").respond_with_handler(
            lambda _: Response(json.dumps(self.created), content_type=github.JSON)
        )


class ListingGitHub(GitHubProvider):
    """A provider with the comment listing the CIProvider protocol lacks, as PyGithub would read it."""

    def comments(self, ref: RunRef) -> Iterable[str]:
        number = int(self.run(ref).pull_request or 0)
        issue = self.gh.get_repo(ref.project).get_issue(number)  # lazy: no request
        return self.guard.call(ref.url, lambda: [c.body for c in issue.get_comments()])


@pytest.fixture
def gh(httpserver: HTTPServer, tmp_path: Path) -> tuple[GitHubComments, HealContext]:
    github.serve_run(httpserver)
    comments = GitHubComments(httpserver)
    provider = github.make_provider(httpserver)
    ref = github.make_ref(httpserver)
    ctx = context(diagnosed(provider, ref, tmp_path), ref, provider)
    httpserver.clear_log()
    return comments, ctx


def test_github_plan_reads_the_run_and_shows_the_exact_comment(
    httpserver: HTTPServer, gh: tuple[GitHubComments, HealContext]
) -> None:
    ctx = gh[1]
    step = Notify().plan(notify(), ctx)
    key = f"notify:github-actions:{github.PROJECT}:{github.RUN_ID}:1:run"
    assert step.key == key
    assert (step.request["method"], step.request["endpoint"]) == ("POST", GH_NOTES)
    assert step.request["target"] == f"{github.PROJECT}#482"
    assert step.summary == "Comment on pull request #482"
    body = step.request["body"]
    assert step.request["payload"] == {"body": body}
    assert body.startswith(f"<!-- cimedic:{key} -->\n### cimedic: test failure\n")
    top = ctx.diagnosis.evidence[0]
    assert f"**Evidence** `{top.path}:{top.line}`\n```text\n" in body
    assert "test_reserve_more_than_stock_is_refused" in body
    assert "- retry `run`: seen flaky 3 times this week; ask @\u2060platform-team" in body
    assert "- notify" not in body  # the comment itself is not a proposal to announce
    assert SECRET not in body and "[REDACTED:github-token]" in body
    # Where the comment goes needs the run (its pull request): one read, no write.
    assert calls(httpserver) == [("GET", github.RUN_PATH, None)]


def test_github_execute_posts_the_planned_body(httpserver: HTTPServer, gh: tuple[GitHubComments, HealContext]) -> None:
    ctx = gh[1]
    step = Notify().plan(notify(), ctx)
    httpserver.clear_log()
    outcome = Notify().execute(step, ctx)
    assert (outcome.done, outcome.detail, outcome.data) == (
        True,
        "comment on pull request #482",
        {"endpoint": GH_NOTES},
    )
    assert calls(httpserver) == [("GET", github.RUN_PATH, None), ("POST", GH_NOTES, {"body": step.request["body"]})]
    assert Notify().verify(step, outcome, ctx) == (
        Verdict.UNKNOWN,
        "a comment informs people; whether it helped cannot be verified",
    )
    assert len(httpserver.log) == 2  # verify asks nothing


def test_without_a_comment_listing_only_the_audit_key_stops_a_second_comment(
    httpserver: HTTPServer, gh: tuple[GitHubComments, HealContext]
) -> None:
    # The CIProvider protocol lists no comments: a second execute of one step posts again, which is why
    # the audit log refuses a key that already ran.
    ctx = gh[1]
    step = Notify().plan(notify(), ctx)
    Notify().execute(step, ctx)
    Notify().execute(step, ctx)
    assert [path for method, path, _ in writes(httpserver)] == [GH_NOTES, GH_NOTES]


def test_a_provider_that_lists_comments_is_not_asked_to_post_twice(
    httpserver: HTTPServer, gh: tuple[GitHubComments, HealContext]
) -> None:
    comments, planned = gh
    base = github.api(httpserver)
    provider = ListingGitHub(
        base, github.TOKEN, CIClient(timeout_s=5), seconds_between_requests=None, seconds_between_writes=None
    )
    ctx = context(planned.diagnosis, planned.ref, provider)
    step = Notify().plan(notify(), ctx)
    assert Notify().execute(step, ctx).done
    again = Notify().execute(step, ctx)
    assert (again.done, again.data) == (True, {"already": True})
    assert writes(httpserver) == [("POST", GH_NOTES, {"body": step.request["body"]})]
    assert comments.created[0]["body"].startswith(marker(step.key))
    # Another step (another run attempt or target) still gets its own comment.
    other = Notify().plan(notify().model_copy(update={"target": "test (3.12)"}), ctx)
    Notify().execute(other, ctx)
    assert len(writes(httpserver)) == 2


# -- GitLab ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("push", [False, True], ids=["merge-request", "push"])
def test_gitlab_notes_the_merge_request_or_comments_on_the_commit(
    httpserver: HTTPServer, tmp_path: Path, push: bool
) -> None:
    if push:  # answered before serve_run's merge request pipeline
        pipeline = gitlab.js("pipeline.json") | {"ref": "main", "source": "push"}
        httpserver.expect_request(f"{GL}/pipelines/{gitlab.PIPELINE}", method="GET").respond_with_json(pipeline)
    gitlab.serve_run(httpserver)
    path, field, fixture = (
        (f"{GL}/repository/commits/{gitlab.SHA}/comments", "note", "commit_comment.json")
        if push
        else (f"{GL}/merge_requests/57/notes", "body", "merge_request_note.json")
    )
    httpserver.expect_request(path, method="POST").respond_with_json(gitlab.js(fixture), status=201)
    provider = gitlab.make(httpserver, [])
    ref = gitlab.pipeline_ref()
    ctx = context(diagnosed(provider, ref, tmp_path), ref, provider)
    httpserver.clear_log()

    step = Notify().plan(notify(), ctx)
    body = step.request["body"]
    assert step.request["payload"] == {field: body}
    assert step.request["endpoint"] == path.replace(f"/projects/{gitlab.PROJECT}/", f"/projects/{gitlab.ENCODED}/")
    assert body.startswith(f"<!-- cimedic:notify:gitlab:{gitlab.PROJECT}:{gitlab.PIPELINE}:1:run -->\n")
    assert "### cimedic: test failure" in body and "AssertionError" in body and SECRET not in body
    assert calls(httpserver) == [("GET", f"{GL}/pipelines/{gitlab.PIPELINE}", None)]

    httpserver.clear_log()
    assert Notify().execute(step, ctx).done
    assert calls(httpserver) == [("GET", f"{GL}/pipelines/{gitlab.PIPELINE}", None), ("POST", path, {field: body})]


# -- where there is nothing to comment on ------------------------------------------------------------


def test_jenkins_and_local_runs_are_refused_before_any_request(httpserver: HTTPServer) -> None:
    ref = jenkins.ref(httpserver, jenkins.FS_JOB, "57")
    info = RunInfo(platform=Platform.JENKINS, id="57", project=jenkins.FS_JOB, status="failure")
    diag = Diagnosis(
        source=Source(kind=SourceKind.JENKINS, path="57"), category="test", confidence=0.9, summary="x", excerpt=None
    )
    with pytest.raises(ValueError, match="jenkins has no pull request or commit comments"):
        Notify().plan(notify(), context(diag.model_copy(update={"run": info}), ref, jenkins.make(httpserver)))
    with pytest.raises(ValueError, match="investigate the run by URL"):
        Notify().plan(notify(), context(diag, None, None))
    assert httpserver.log == []
