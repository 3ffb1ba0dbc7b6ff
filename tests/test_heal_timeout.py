"""RaiseTimeout end to end: a real git repository (a bare origin and a clone as the checkout), the real
PyGithub and python-gitlab over real HTTP against pytest-httpserver answering like GitHub's and GitLab's
documented pull/merge request APIs, and the real GitHub provider reading later runs for verify()."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.heal.actions.timeout import RaiseTimeout
from cimedic.heal.base import HealContext, Verdict
from cimedic.heal.change_request import GitChangeRequest
from cimedic.heal.reviews import GitHubPulls
from cimedic.models import (
    Action,
    ActionKind,
    Category,
    Diagnosis,
    Evidence,
    Job,
    Platform,
    RuleMatch,
    RunInfo,
    Source,
    SourceKind,
    Status,
    Step,
)
from cimedic.settings import CIClient, Settings
from cimedic.tools.changes.git import GitError
from cimedic.tools.ci.base import RunRef
from cimedic.tools.ci.github import GitHubProvider

CI = Path(__file__).parent / "fixtures" / "heal" / "ci"
GH_FIXTURES = Path(__file__).parent / "fixtures" / "ci" / "github"
PROJECT = "acme/inventory"
GL_PROJECT = "acme/billing"
RUN_ID = 8912345678
LATER_RUN = 8913100001
TOKEN = "ghp_T0kenValueThatMustNeverLeak00000000"
GL_TOKEN = "glpat-Zx8Qm2Lr7Tn4Vb6Yc1Wd"
LEAKED = "ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"  # a token a log printed: the PR body must not carry it
JSON = "application/json; charset=utf-8"
BRANCH = "cimedic/timeout-test-run-tests"
TITLE = "ci: raise the timeout of step 'Run tests' of job 'test' to 15 min"


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2024-05-01T{clock}+00:00")


# -- a real repository --------------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    # The developer's identity, not cimedic's: commits cimedic makes must carry its own.
    command = ["git", "-c", "user.name=Dana Dev", "-c", "user.email=dana@acme.test", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Repo:
    origin: Path
    checkout: Path

    def state(self) -> dict[str, str]:
        """Everything a change must not touch: origin's refs; the checkout's refs, HEAD, files, worktrees."""
        return {
            "origin": git("for-each-ref", cwd=self.origin),
            # Local branches and tags; remote-tracking refs are git's cache of origin, updated by any fetch.
            "refs": git("for-each-ref", "refs/heads", "refs/tags", cwd=self.checkout),
            "head": git("symbolic-ref", "HEAD", cwd=self.checkout),
            "status": git("status", "--porcelain", "--untracked-files=all", cwd=self.checkout),
            "worktrees": git("worktree", "list", "--porcelain", cwd=self.checkout),
            "workflow": (self.checkout / ".github/workflows/ci.yml").read_text(),
        }


def make_repo(tmp_path: Path, files: dict[str, str]) -> Repo:
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    seed = tmp_path / "seed"
    git("clone", "--quiet", str(origin), str(seed), cwd=tmp_path)
    git("checkout", "--quiet", "-B", "main", cwd=seed)
    for path, text in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git("add", ".", cwd=seed)
    git("commit", "--quiet", "-m", "CI definitions", cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(origin), str(checkout), cwd=tmp_path)
    # Someone's work in progress: it must survive untouched.
    (checkout / "NOTES.md").write_text("wip\n")
    (checkout / ".github/workflows/ci.yml").write_text(files[".github/workflows/ci.yml"] + "# local edit\n")
    return Repo(origin, checkout)


def github_repo(tmp_path: Path) -> Repo:
    return make_repo(
        tmp_path,
        {
            ".github/workflows/ci.yml": (CI / "github-ci.yml").read_text(),
            ".github/workflows/release.yml": (CI / "release.yml").read_text(),
            "README.md": "inventory\n",
        },
    )


# -- GitHub: pull requests as api.github.com answers them ---------------------------------------------


@dataclass
class FakePulls:
    """POST/GET /repos/{owner}/{repo}/pulls and GET .../pulls/{number}, shaped like GitHub's REST docs.

    Like GitHub it refuses (422) a pull request whose head branch is not in the repository, and a
    second open one for the same head.
    """

    server: HTTPServer
    origin: Path
    pulls: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = f"/repos/{PROJECT}/pulls"
        self.server.expect_request(base, method="GET").respond_with_handler(self.list)
        self.server.expect_request(base, method="POST").respond_with_handler(self.create)
        self.server.expect_request(re.compile(rf"^{base}/\d+$"), method="GET").respond_with_handler(self.one)

    def api(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def _json(self, value: Any, status: int = 200) -> Response:
        return Response(json.dumps(value), status=status, content_type=JSON)

    def list(self, request: Request) -> Response:
        args = request.args
        found = [
            p
            for p in self.pulls
            if args.get("state", "open") in (p["state"], "all")
            and args.get("head") in (None, p["head"]["label"])
            and args.get("base") in (None, p["base"]["ref"])
        ]
        return self._json(found)

    def create(self, request: Request) -> Response:
        sent = request.get_json()
        self.created.append(sent)
        tip = git("ls-remote", str(self.origin), f"refs/heads/{sent['head']}", cwd=self.origin).split()
        if not tip:
            errors = [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            return self._json({"message": "Validation Failed", "errors": errors}, 422)
        if any(p["head"]["ref"] == sent["head"] and p["state"] == "open" for p in self.pulls):
            message = f"A pull request already exists for acme:{sent['head']}."
            return self._json({"message": "Validation Failed", "errors": [{"message": message}]}, 422)
        number = 501 + len(self.pulls)
        api = self.api()
        pull = {
            "url": f"{api}/repos/{PROJECT}/pulls/{number}",
            "id": 1851240000 + number,
            "node_id": "PR_kwDOHx7Q3c5uXb1n",
            "html_url": f"https://github.com/{PROJECT}/pull/{number}",
            "diff_url": f"https://github.com/{PROJECT}/pull/{number}.diff",
            "issue_url": f"{api}/repos/{PROJECT}/issues/{number}",
            "number": number,
            "state": "open",
            "locked": False,
            "title": sent["title"],
            "user": {"login": "cimedic-bot", "id": 90210, "type": "Bot", "site_admin": False},
            "body": sent["body"],
            "created_at": "2024-05-01T10:30:00Z",
            "updated_at": "2024-05-01T10:30:00Z",
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "draft": False,
            "head": {"label": f"acme:{sent['head']}", "ref": sent["head"], "sha": tip[0]},
            "base": {"label": f"acme:{sent['base']}", "ref": sent["base"], "sha": "4e3d2c1b0a9f8e7d6c5b4a3928170f6e5d"},
            "author_association": "NONE",
        }
        self.pulls.append(pull)
        return self._json({**pull, "merged": False, "mergeable": None, "comments": 0, "commits": 1}, 201)

    def one(self, request: Request) -> Response:
        number = int(request.path.rsplit("/", 1)[1])
        pull = next(p for p in self.pulls if p["number"] == number)
        return self._json({**pull, "merged": pull["merged_at"] is not None, "mergeable": None})

    def merge(self, number: int, when: str) -> None:
        pull = next(p for p in self.pulls if p["number"] == number)
        pull.update(state="closed", merged_at=when, closed_at=when, merge_commit_sha="7c1d0e9f" * 5)


def provider(server: HTTPServer) -> GitHubProvider:
    # GitHub's pacing between requests is a real sleep in PyGithub; a local server needs none.
    api = server.url_for("/").rstrip("/")
    client = CIClient(timeout_s=5, retries=0)
    return GitHubProvider(api, TOKEN, client, seconds_between_requests=None, seconds_between_writes=None)


def diagnosis() -> Diagnosis:
    test_job = Job(
        name="test (3.12)",
        status=Status.FAILURE,
        platform=Platform.GITHUB_ACTIONS,
        id="24512345602",
        started_at=at("10:00:17"),
        finished_at=at("10:13:41"),
        steps=[
            Step(name="Install", status=Status.SUCCESS, started_at=at("10:00:23"), finished_at=at("10:02:57")),
            Step(name="Run tests", status=Status.FAILURE, started_at=at("10:02:57"), finished_at=at("10:12:57")),
        ],
    )
    return Diagnosis(
        source=Source(kind=SourceKind.GITHUB_ACTIONS, path=f"https://github.com/{PROJECT}/actions/runs/{RUN_ID}"),
        category=Category.TIMEOUT,
        confidence=0.93,
        summary=f"Step 'Run tests' hit its timeout-minutes limit (10 min) while curl used {LEAKED}",
        excerpt=None,
        evidence=[
            Evidence(
                path="test (3.12)/5_Run tests.txt",
                line=812,
                text="##[error]The action 'Run tests' has timed out after 10 minutes.",
                why="gha-step-timeout",
            )
        ],
        matched_rules=[
            RuleMatch(
                id="gha-step-timeout",
                title="GitHub Actions step hit its timeout-minutes",
                category=Category.TIMEOUT,
                captures={"step": "Run tests", "minutes": "10"},
                description="Step 'Run tests' hit its timeout-minutes limit (10 min)",
                remediation="Raise the step's `timeout-minutes` only if the work really takes longer.",
                action=ActionKind.TIMEOUT,
            )
        ],
        run=RunInfo(
            platform=Platform.GITHUB_ACTIONS,
            id=str(RUN_ID),
            project=PROJECT,
            name="CI",
            attempt=1,
            branch="main",
            jobs=[Job(name="lint", status=Status.SUCCESS), test_job],
        ),
    )


def context(server: HTTPServer, repo: Repo, *, dry_run: bool) -> HealContext:
    settings = Settings()
    ref = RunRef(
        platform=Platform.GITHUB_ACTIONS,
        base_url=server.url_for("/").rstrip("/"),
        project=PROJECT,
        run_id=str(RUN_ID),
    )
    gh = provider(server)
    changes = GitChangeRequest(repo.checkout, settings, ref, reviews=GitHubPulls(gh, PROJECT))
    return HealContext(diagnosis(), settings, ref=ref, dry_run=dry_run, provider=gh, changes=changes)


ACTION = Action(kind=ActionKind.TIMEOUT, target="test (3.12)", reason="GitHub Actions step hit its timeout-minutes")


def posts(server: HTTPServer) -> list[str]:
    return [req.path for req, _ in server.log if req.method == "POST"]


# -- plan ---------------------------------------------------------------------------------------------


def test_plan_reads_the_default_branch_and_proposes_a_one_line_change(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    step = RaiseTimeout().plan(ACTION, context(httpserver, repo, dry_run=True))

    req = step.request
    assert (req["path"], req["job"], req["step"], req["from_minutes"], req["to_minutes"]) == (
        ".github/workflows/ci.yml",
        "test",
        "Run tests",
        10.0,
        15,  # 1.5 × the 10 minutes it ran, rounded up to 5
    )
    assert (req["branch"], req["title"]) == (BRANCH, TITLE)
    changed = [line for line in req["diff"].splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [
        "-        timeout-minutes: '10'  # the suite takes ~6 min",
        "+        timeout-minutes: '15'  # the suite takes ~6 min",
    ]
    # The default branch's file, not the checkout's locally edited one.
    assert "# local edit" not in req["files"][".github/workflows/ci.yml"]
    assert step.key == f"timeout:github-actions:{PROJECT}:{RUN_ID}:1:test:Run tests"
    assert "Evidence: `test (3.12)/5_Run tests.txt:812`" in req["body"]
    assert "Step 'Run tests' hit its timeout-minutes limit (10 min)" in req["body"]
    assert LEAKED not in req["body"] and "[REDACTED:github-token]" in req["body"]
    assert "Note:" not in req["body"]  # 15 min fits in the job's 20
    assert httpserver.log == []  # plan reads git only


def test_a_step_limit_above_its_jobs_limit_is_called_out(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    ctx = context(httpserver, repo, dry_run=True)
    assert ctx.diagnosis.run is not None
    ctx.diagnosis.run.jobs[1].steps[1].finished_at = at("10:16:57")  # ran 14 min: 21 -> 25 min

    step = RaiseTimeout().plan(ACTION, ctx)

    assert step.request["to_minutes"] == 25
    assert step.request["body"].endswith("Note: job 'test' itself stops after 20 min; raise that too.")


def test_an_unknown_job_is_refused_naming_the_jobs(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    action = Action(kind=ActionKind.TIMEOUT, target="run", reason="r", params={"job": "e2e"})
    with pytest.raises(ValueError, match=r"'e2e' is not a job of this file; jobs: lint, test, wheel"):
        RaiseTimeout().plan(action, context(httpserver, repo, dry_run=True))


# -- dry run, execute, idempotency ---------------------------------------------------------------------


def test_a_dry_run_returns_the_diff_and_request_and_changes_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=True)
    step = RaiseTimeout().plan(ACTION, ctx)
    before = repo.state()

    outcome = RaiseTimeout().execute(step, ctx)

    assert not outcome.done
    assert outcome.data["diff"] == step.request["diff"]
    assert outcome.data["request"] == {
        "method": "POST",
        "endpoint": f"/repos/{PROJECT}/pulls",
        "payload": {"base": "main", "head": BRANCH, "title": TITLE, "body": step.request["body"]},
    }
    assert repo.state() == before
    assert posts(httpserver) == []


def test_execute_pushes_the_branch_and_opens_one_pull_request(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    pulls = FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    step = RaiseTimeout().plan(ACTION, ctx)
    before = repo.state()

    first = RaiseTimeout().execute(step, ctx)

    assert first.done and first.data["created"] and first.data["pushed"]
    assert first.data["url"] == f"https://github.com/{PROJECT}/pull/501"
    assert pulls.created == [{"base": "main", "head": BRANCH, "title": TITLE, "body": step.request["body"]}]
    pushed = git("show", f"{BRANCH}:.github/workflows/ci.yml", cwd=repo.origin)
    assert pushed == step.request["files"][".github/workflows/ci.yml"].rstrip("\n")
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", BRANCH, cwd=repo.origin) == (
        f"cimedic <cimedic@localhost>|cimedic <cimedic@localhost>|{TITLE}"
    )
    assert git("rev-parse", f"{BRANCH}~1", cwd=repo.origin) == git("rev-parse", "main", cwd=repo.origin)
    assert git("diff", "--name-only", "main", BRANCH, cwd=repo.origin) == ".github/workflows/ci.yml"
    # The checkout: same branch, files, refs and worktrees as before.
    after = repo.state()
    assert {k: v for k, v in after.items() if k != "origin"} == {k: v for k, v in before.items() if k != "origin"}

    tip = git("rev-parse", BRANCH, cwd=repo.origin)
    second = RaiseTimeout().execute(step, ctx)

    assert second.done and not second.data["created"] and not second.data["pushed"]
    assert second.data["url"] == first.data["url"]
    assert len(pulls.created) == 1 and len(pulls.pulls) == 1
    assert git("rev-parse", BRANCH, cwd=repo.origin) == tip


def push_to_main(repo: Repo, path: str, text: str, tmp_path: Path) -> None:
    """Someone else's commit on the default branch."""
    other = tmp_path / "other"
    if not other.exists():
        git("clone", "--quiet", str(repo.origin), str(other), cwd=tmp_path)
    git("pull", "--quiet", cwd=other)
    (other / path).write_text(text)
    git("commit", "--quiet", "-am", f"edit {path}", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)


def test_an_open_pull_request_is_rebased_when_the_default_branch_moved(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    pulls = FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    RaiseTimeout().execute(RaiseTimeout().plan(ACTION, ctx), ctx)
    push_to_main(repo, "README.md", "inventory service\n", tmp_path)

    again = RaiseTimeout().execute(RaiseTimeout().plan(ACTION, ctx), ctx)

    assert again.data["pushed"] and not again.data["created"]
    assert again.detail == f"updated https://github.com/{PROJECT}/pull/501"
    assert git("rev-parse", f"{BRANCH}~1", cwd=repo.origin) == git("rev-parse", "main", cwd=repo.origin)
    assert len(pulls.created) == 1


def test_once_merged_executing_again_changes_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    pulls = FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    step = RaiseTimeout().plan(ACTION, ctx)
    first = RaiseTimeout().execute(step, ctx)
    git("update-ref", "refs/heads/main", BRANCH, cwd=repo.origin)  # the pull request merged (fast-forward)
    pulls.merge(501, "2024-05-02T09:00:00Z")
    origin = repo.state()["origin"]

    again = RaiseTimeout().execute(step, ctx)

    assert again.done and again.detail == "main already has this content: nothing to propose"
    assert "number" not in again.data and len(pulls.created) == 1
    assert repo.state()["origin"] == origin
    assert RaiseTimeout().verify(step, again, ctx)[0] == Verdict.UNKNOWN
    assert first.data["number"] == 501


def test_a_step_planned_before_the_file_changed_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    step = RaiseTimeout().plan(ACTION, ctx)
    workflow = (CI / "github-ci.yml").read_text().replace("needs: [lint, test]", "needs: [test]")
    push_to_main(repo, ".github/workflows/ci.yml", workflow, tmp_path)
    before = repo.state()

    with pytest.raises(ValueError, match="changed on the default branch since this step was planned"):
        RaiseTimeout().execute(step, ctx)

    assert repo.state() == before
    assert posts(httpserver) == []


def test_a_refused_push_leaves_the_checkout_as_it_was(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    FakePulls(httpserver, repo.origin)
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes need review' >&2\nexit 1\n")
    hook.chmod(0o755)
    ctx = context(httpserver, repo, dry_run=False)
    step = RaiseTimeout().plan(ACTION, ctx)
    before = repo.state()

    with pytest.raises(GitError, match=r"git push: remote: protected: pushes need review.*pre-receive hook declined"):
        RaiseTimeout().execute(step, ctx)

    assert repo.state() == before
    assert posts(httpserver) == []


# -- verify ---------------------------------------------------------------------------------------------


def gh_fixture(name: str, server: HTTPServer) -> Any:
    api = server.url_for("/").rstrip("/")
    return json.loads((GH_FIXTURES / name).read_text().replace("https://api.github.com", api))


def serve_later_run(server: HTTPServer, *, conclusion: str, tests_end: str) -> None:
    """After the merge: one run still going and one finished run of ci.yml on main, with its jobs."""
    listing = gh_fixture("runs-page-1.json", server)
    template = listing["workflow_runs"][0]
    going = {**template, "id": LATER_RUN + 1, "status": "in_progress", "conclusion": None}
    done = {**template, "id": LATER_RUN, "head_branch": "main", "conclusion": conclusion}
    done.update(created_at="2024-05-02T09:10:00Z", run_started_at="2024-05-02T09:10:00Z")
    server.expect_request(
        f"/repos/{PROJECT}/actions/workflows/ci.yml/runs",
        method="GET",
        query_string={"branch": "main", "created": ">=2024-05-02T09:00:00Z", "per_page": "100"},
    ).respond_with_json({"total_count": 2, "workflow_runs": [going, done]}, content_type=JSON)
    run = {**gh_fixture("run-failed.json", server), "id": LATER_RUN, "conclusion": conclusion, "pull_requests": []}
    run["jobs_url"] = server.url_for(f"/repos/{PROJECT}/actions/runs/{LATER_RUN}/jobs")
    server.expect_request(f"/repos/{PROJECT}/actions/runs/{LATER_RUN}", method="GET").respond_with_json(
        run, content_type=JSON
    )
    jobs = gh_fixture("run-jobs.json", server)
    test_job = jobs["jobs"][1]
    test_job["conclusion"] = conclusion
    tests = next(s for s in test_job["steps"] if s["name"] == "Run tests")
    tests.update(conclusion=conclusion, started_at="2024-05-01T10:02:57Z", completed_at=f"2024-05-01T{tests_end}Z")
    server.expect_request(f"/repos/{PROJECT}/actions/runs/{LATER_RUN}/jobs", method="GET").respond_with_json(
        jobs, content_type=JSON
    )


@pytest.mark.parametrize(
    ("conclusion", "tests_end", "verdict", "said"),
    [
        ("success", "10:11:57", Verdict.FIXED, "test (3.12) passed in 9.0 min, within the new 15 min limit"),
        ("failure", "10:17:57", Verdict.NOT_FIXED, "test (3.12) ran into the new 15 min limit"),
    ],
)
def test_verify_waits_for_the_merge_then_reads_the_next_finished_run(
    httpserver: HTTPServer, tmp_path: Path, conclusion: str, tests_end: str, verdict: Verdict, said: str
) -> None:
    repo = github_repo(tmp_path)
    pulls = FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    healer = RaiseTimeout()
    step = healer.plan(ACTION, ctx)
    outcome = healer.execute(step, ctx)

    assert healer.verify(step, outcome, ctx) == (
        Verdict.PENDING,
        f"{outcome.data['url']} is open: waiting for it to be merged",
    )

    pulls.merge(501, "2024-05-02T09:00:00Z")
    serve_later_run(httpserver, conclusion=conclusion, tests_end=tests_end)
    found, why = healer.verify(step, outcome, ctx)

    assert found == verdict
    assert why == f"run {LATER_RUN}: {said}"


def test_verify_of_a_pull_request_closed_unmerged(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = github_repo(tmp_path)
    pulls = FakePulls(httpserver, repo.origin)
    ctx = context(httpserver, repo, dry_run=False)
    step = RaiseTimeout().plan(ACTION, ctx)
    outcome = RaiseTimeout().execute(step, ctx)
    pulls.pulls[0]["state"] = "closed"

    assert RaiseTimeout().verify(step, outcome, ctx)[0] == Verdict.NOT_FIXED


# -- GitLab: a merge request, through the provider built from settings ----------------------------------


@dataclass
class FakeMergeRequests:
    """GET/POST /api/v4/projects/:id/merge_requests as GitLab's REST docs show them."""

    server: HTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str | None] = field(default_factory=set)

    def __post_init__(self) -> None:
        # The SDK sends the project as acme%2Fbilling; werkzeug decodes it in request.path.
        path = f"/api/v4/projects/{GL_PROJECT}/merge_requests"
        self.server.expect_request(path, method="GET").respond_with_handler(self.list)
        self.server.expect_request(path, method="POST").respond_with_handler(self.create)
        self.server.expect_request(re.compile(rf"^{path}/\d+$"), method="GET").respond_with_handler(self.one)

    def one(self, request: Request) -> Response:
        iid = int(request.path.rsplit("/", 1)[1])
        found = next(mr for mr in self.requests if mr["iid"] == iid)
        return Response(json.dumps(found), content_type="application/json")

    def list(self, request: Request) -> Response:
        self.tokens.add(request.headers.get("PRIVATE-TOKEN"))
        args = request.args
        found = [
            mr
            for mr in self.requests
            if mr["state"] == args.get("state")
            and mr["source_branch"] == args.get("source_branch")
            and mr["target_branch"] == args.get("target_branch")
        ]
        return Response(json.dumps(found), content_type="application/json")

    def create(self, request: Request) -> Response:
        self.tokens.add(request.headers.get("PRIVATE-TOKEN"))
        sent = request.get_json()
        self.created.append(sent)
        template = json.loads((Path(__file__).parent / "fixtures/ci/gitlab/merge_request.json").read_text())
        iid = 58 + len(self.requests)
        mr = {
            **template,
            "id": 301194900 + iid,
            "iid": iid,
            "title": sent["title"],
            "description": sent["description"],
            "state": "opened",
            "source_branch": sent["source_branch"],
            "target_branch": sent["target_branch"],
            "force_remove_source_branch": sent.get("remove_source_branch"),
            "merged_at": None,
            "web_url": f"https://gitlab.example.com/{GL_PROJECT}/-/merge_requests/{iid}",
        }
        self.requests.append(mr)
        return Response(json.dumps(mr), status=201, content_type="application/json")


def gitlab_diagnosis() -> Diagnosis:
    rspec = Job(
        name="test / rspec 2/3",
        status=Status.FAILURE,
        platform=Platform.GITLAB,
        id="6745120338",
        started_at=at("10:00:00"),
        finished_at=at("11:30:00"),
    )
    return Diagnosis(
        source=Source(kind=SourceKind.GITLAB, path=f"https://gitlab.example.com/{GL_PROJECT}/-/pipelines/1273645190"),
        category=Category.TIMEOUT,
        confidence=0.9,
        summary="the job ran past its time limit and was stopped by the CI platform",
        excerpt=None,
        evidence=[
            Evidence(
                path="test / rspec 2/3.log",
                line=4210,
                text="ERROR: Job failed: execution took longer than 1h30m0s seconds",
                why="ci-job-time-limit",
            )
        ],
        matched_rules=[
            RuleMatch(
                id="ci-job-time-limit",
                title="CI job exceeded the platform's maximum run time",
                category=Category.TIMEOUT,
                captures={"limit": "1h30m0s"},
                description="the job ran past its time limit and was stopped by the CI platform",
                remediation="Raise the limit (GitLab `timeout:`) if the work really takes longer.",
                action=ActionKind.TIMEOUT,
            )
        ],
        run=RunInfo(
            platform=Platform.GITLAB,
            id="1273645190",
            project=GL_PROJECT,
            jobs=[Job(name="build / compile", status=Status.SUCCESS), rspec],
        ),
    )


def test_gitlab_merge_request_end_to_end(httpserver: HTTPServer, tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {".gitlab-ci.yml": (CI / "gitlab-ci.yml").read_text(), ".github/workflows/ci.yml": "name: mirror\n"},
    )
    mrs = FakeMergeRequests(httpserver)
    server = httpserver.url_for("/").rstrip("/")
    settings = Settings(gitlab_token=GL_TOKEN)
    ref = RunRef(platform=Platform.GITLAB, base_url=server, project=GL_PROJECT, run_id="1273645190")
    # No provider and no reviews given: both are built from settings, as `cimedic heal --repo` does.
    changes = GitChangeRequest(repo.checkout, settings, ref)
    ctx = HealContext(gitlab_diagnosis(), settings, ref=ref, dry_run=False, changes=changes)
    action = Action(kind=ActionKind.TIMEOUT, target="test / rspec 2/3", reason="CI job exceeded its time limit")
    healer = RaiseTimeout(cap_minutes=180)

    step = healer.plan(action, ctx)
    assert (step.request["path"], step.request["branch"], step.request["to_minutes"]) == (
        ".gitlab-ci.yml",
        "cimedic/timeout-rspec",
        135,  # 1.5 × the 90 minutes
    )
    assert "+  timeout: 2h 15m # the slowest shard takes ~70 min\n" in step.request["diff"]

    first = healer.execute(step, ctx)
    second = healer.execute(step, ctx)

    title = "ci: raise the timeout of job 'rspec' to 135 min"
    assert mrs.created == [
        {
            "source_branch": "cimedic/timeout-rspec",
            "target_branch": "main",
            "title": title,
            "description": step.request["body"],
            "remove_source_branch": True,
        }
    ]
    assert first.data["url"] == second.data["url"] == f"https://gitlab.example.com/{GL_PROJECT}/-/merge_requests/58"
    assert second.data["created"] is False
    assert mrs.tokens == {GL_TOKEN}
    assert "timeout: 2h 15m" in git("show", "cimedic/timeout-rspec:.gitlab-ci.yml", cwd=repo.origin)
    assert git("worktree", "list", "--porcelain", cwd=repo.checkout).count("worktree ") == 1
    assert healer.verify(step, first, ctx) == (
        Verdict.PENDING,
        f"{first.data['url']} is open: waiting for it to be merged",
    )
    mrs.requests[0]["state"] = "closed"
    assert healer.verify(step, first, ctx) == (Verdict.NOT_FIXED, f"{first.data['url']} was closed without merging")
