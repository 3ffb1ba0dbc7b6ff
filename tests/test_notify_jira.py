"""JiraNotifier through the real `jira` library over HTTP to a local Jira REST v2 (Server/DC and Cloud):
one issue per fingerprint, a comment for each repeat while it is open, a new issue once it is closed,
the report attached as rca.md, errors as data."""

from __future__ import annotations

import base64
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.notify.base import Notice, Severity
from cimedic.notify.jira import JiraNotifier, label
from cimedic.settings import Settings

API = "/rest/api/2"
FP = "06dfd2e1e0926264"
REPORT = "### cimedic: timeout failure (95% confidence)\n\nStep 'Run tests' hit its timeout-minutes limit.\n"
TOKEN = "ATATT3xFfGF0T4kEnV4lu3f0rT3st1nG"
TODO = {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"}
DONE = {"id": 3, "key": "done", "colorName": "green", "name": "Done"}
FIELDS = [
    {"id": i, "key": i, "name": n, "custom": False, "orderable": True, "navigable": True, "searchable": True}
    | {"clauseNames": [i], "schema": {"type": t, "system": i}}
    for i, n, t in (("summary", "Summary", "string"), ("status", "Status", "status"), ("labels", "Labels", "array"))
]
JSON = "application/json;charset=UTF-8"


def reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=JSON)


class FakeJira:
    """The REST v2 endpoints the library calls, answering with the shapes Atlassian documents."""

    def __init__(self, server: HTTPServer, deployment: str) -> None:
        self.base = server.url_for("").rstrip("/")
        self.deployment = deployment
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: list[tuple[str, str]] = []
        self.attachments: list[tuple[str, str, bytes, str | None]] = []
        self.searches: list[str] = []
        self.auth: set[str] = set()
        self.create_error: dict[str, Any] | None = None
        self.attach_error: dict[str, Any] | None = None
        version = [9, 12, 2] if deployment == "Server" else [1001, 0, 0]
        info: dict[str, Any] = {"baseUrl": self.base, "version": ".".join(map(str, version)), "versionNumbers": version}
        info |= {"deploymentType": deployment, "buildNumber": 9120002, "buildDate": "2024-01-30T00:00:00.000+0000"}
        info |= {"serverTime": "2026-11-25T22:00:00.000+0000", "scmInfo": "4e5a3b1", "serverTitle": "Jira"}
        server.expect_request(f"{API}/serverInfo").respond_with_handler(lambda r: self.seen(r, info))
        server.expect_request(f"{API}/field").respond_with_handler(lambda r: self.seen(r, FIELDS))
        search = f"{API}/search/jql" if deployment == "Cloud" else f"{API}/search"
        server.expect_request(search, method="GET").respond_with_handler(self.search)
        server.expect_request(f"{API}/issue", method="POST").respond_with_handler(self.create)
        comment = re.compile(rf"^{API}/issue/([A-Z]+-\d+)/comment$")
        server.expect_request(comment, method="POST").respond_with_handler(self.comment)
        attach = re.compile(rf"^{API}/issue/([A-Z]+-\d+)/attachments$")
        server.expect_request(attach, method="POST").respond_with_handler(self.attach)

    def seen(self, request: Request, body: Any) -> Response:
        self.auth.add(request.headers.get("Authorization", ""))
        return reply(body)

    def issue(self, key: str) -> dict[str, Any]:
        item = self.issues[key]
        fields = {k: item[k] for k in ("summary", "status", "labels")}
        link = f"{self.base}{API}/issue/{item['id']}"
        return {"expand": "operations,renderedFields", "id": item["id"], "self": link, "key": key, "fields": fields}

    def search(self, request: Request) -> Response:
        jql = request.args["jql"]
        self.searches.append(jql)
        project = re.search(r'project = "([^"]+)"', jql)
        wanted = re.search(r'labels = "([^"]+)"', jql)
        open_only = "statusCategory != Done" in jql
        found = [
            key
            for key, item in reversed(self.issues.items())  # ORDER BY created DESC
            if project and key.startswith(project[1] + "-") and wanted and wanted[1] in item["labels"]
            if not (open_only and item["status"]["statusCategory"]["key"] == "done")
        ][: int(request.args.get("maxResults", 50))]
        issues = [self.issue(k) for k in found]
        if self.deployment == "Cloud":
            return reply({"issues": issues, "isLast": True})
        return reply({"expand": "names,schema", "startAt": 0, "maxResults": 1, "total": len(found), "issues": issues})

    def create(self, request: Request) -> Response:
        if self.create_error is not None:
            return reply(self.create_error, 400)
        fields = request.get_json()["fields"]
        key = f"{fields['project']['key']}-{len(self.issues) + 1}"
        status = {"self": f"{self.base}{API}/status/1", "name": "Open", "id": "1", "statusCategory": TODO}
        self.issues[key] = fields | {"id": str(10000 + len(self.issues)), "status": status}
        return reply({"id": self.issues[key]["id"], "key": key, "self": f"{self.base}{API}/issue/{key}"}, 201)

    def close(self, key: str) -> None:
        self.issues[key]["status"] = {"name": "Closed", "id": "6", "statusCategory": DONE}

    def comment(self, request: Request) -> Response:
        key = request.path.split("/")[-2]
        body = request.get_json()["body"]
        self.comments.append((key, body))
        author = {"name": "ci-bot", "displayName": "CI bot", "active": True}
        created = "2026-11-25T22:05:00.000+0000"
        comment = {"self": f"{self.base}{API}/issue/{key}/comment/10100", "id": "10100", "author": author}
        return reply(comment | {"body": body, "updateAuthor": author, "created": created, "updated": created}, 201)

    def attach(self, request: Request) -> Response:
        if self.attach_error is not None:
            return reply(self.attach_error, 403)
        if request.headers.get("X-Atlassian-Token") != "no-check":
            return Response("XSRF check failed", status=403)  # what Jira answers without the header
        key = request.path.split("/")[-2]
        upload = request.files["file"]
        content = upload.read()
        self.attachments.append((key, upload.filename or "", content, upload.mimetype))
        meta: dict[str, Any] = {
            "self": f"{self.base}{API}/attachment/10200",
            "id": "10200",
            "filename": upload.filename,
        }
        meta |= {"author": {"name": "ci-bot"}, "created": "2026-11-25T22:05:00.000+0000", "size": len(content)}
        meta |= {"mimeType": "text/markdown", "content": f"{self.base}/secure/attachment/10200/rca.md"}
        return reply([meta])


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest, httpserver: HTTPServer) -> FakeJira:
    return FakeJira(httpserver, request.param)


def settings(jira: FakeJira, **extra: Any) -> Settings:
    base: dict[str, Any] = {"home": Path("home"), "jira_url": jira.base, "jira_project": "CI", "jira_token": TOKEN}
    return Settings(**(base | extra))


def notice(key: str | None = FP) -> Notice:
    return Notice(
        title="[cimedic] timeout failure in acme/shop main",
        text="**timeout failure**: `Run tests` hit its limit [ERROR] {code}\n\n- retry `run` (policy: approve)",
        severity=Severity.WARNING,
        dedup_key=key,
        url="https://github.com/acme/shop/actions/runs/42",
        fields={"category": "timeout", "project": "acme/shop"},
        attachment=REPORT,
    )


def test_first_notice_creates_an_issue_with_the_report(jira: FakeJira) -> None:
    delivery = JiraNotifier(settings(jira)).send(notice())

    assert delivery.ok and delivery.channel == "jira" and delivery.ref == "CI-1" and delivery.detail == "created CI-1"
    issue = jira.issues["CI-1"]
    assert issue["project"] == {"key": "CI"} and issue["issuetype"] == {"name": "Bug"}
    assert issue["summary"] == "[cimedic] timeout failure in acme/shop main"
    assert issue["labels"] == ["cimedic", f"cimedic-fp-{FP}"]
    description = issue["description"]
    # Wiki markup; the log's brackets and braces are escaped so they form no link and no macro.
    assert description.startswith("*timeout failure*: {{Run tests}} hit its limit \\[ERROR\\] \\{code\\}")
    assert (
        "* retry {{run}}" in description
        and "[Open the run|https://github.com/acme/shop/actions/runs/42]" in description
    )
    assert jira.attachments == [("CI-1", "rca.md", REPORT.encode(), "application/octet-stream")]
    assert jira.searches == [
        f'project = "CI" AND labels = "cimedic-fp-{FP}" AND statusCategory != Done ORDER BY created DESC'
    ]
    assert jira.auth == {f"Bearer {TOKEN}"}  # no user: a Server/DC personal access token


def test_repeat_comments_on_the_open_issue(jira: FakeJira) -> None:
    JiraNotifier(settings(jira)).send(notice())
    again = JiraNotifier(settings(jira)).send(notice())

    assert again.ok and again.ref == "CI-1" and again.detail == "commented on CI-1"
    assert list(jira.issues) == ["CI-1"] and len(jira.attachments) == 1
    [(key, body)] = jira.comments
    assert body.startswith("Seen again: \\[cimedic\\] timeout failure in acme/shop main\n\n*timeout")
    assert key == "CI-1" and body.endswith("The full report is attached (rca.md).")


def test_a_closed_issue_gets_a_new_one(jira: FakeJira) -> None:
    notifier = JiraNotifier(settings(jira))
    notifier.send(notice())
    jira.close("CI-1")
    reopened = notifier.send(notice())
    repeat = notifier.send(notice())

    assert reopened.ref == "CI-2" and reopened.detail == "created CI-2"
    assert repeat.ref == "CI-2" and jira.comments[0][0] == "CI-2"  # the open one, not the closed one
    assert jira.issues["CI-2"]["labels"] == ["cimedic", f"cimedic-fp-{FP}"]


def test_other_fingerprints_and_keyless_notices_get_their_own_issues(jira: FakeJira) -> None:
    notifier = JiraNotifier(settings(jira))
    refs = [notifier.send(notice(k)).ref for k in (FP, "aaaabbbbccccdddd", None, None)]
    assert refs == ["CI-1", "CI-2", "CI-3", "CI-4"] and jira.comments == []
    assert jira.issues["CI-3"]["labels"] == ["cimedic"] and len(jira.searches) == 2  # no key, no search


def test_cloud_style_user_and_api_token_use_basic_auth(jira: FakeJira) -> None:
    JiraNotifier(settings(jira, jira_user="bot@acme.example")).send(notice())
    assert jira.auth == {"Basic " + base64.b64encode(f"bot@acme.example:{TOKEN}".encode()).decode()}


def test_a_refused_issue_is_a_failed_delivery(jira: FakeJira) -> None:
    jira.create_error = {"errorMessages": [], "errors": {"issuetype": "Specify a valid issue type"}}
    delivery = JiraNotifier(settings(jira, jira_issue_type="Incident")).send(notice())
    assert not delivery.ok and "Specify a valid issue type" in delivery.detail and TOKEN not in delivery.detail


def test_an_issue_whose_report_cannot_be_attached_is_still_reported(jira: FakeJira) -> None:
    jira.attach_error = {"errorMessages": ["You do not have permission to create attachments for this issue."]}
    jira.attach_error |= {"errors": {}}
    delivery = JiraNotifier(settings(jira)).send(notice())
    assert delivery.ok and delivery.ref == "CI-1" and delivery.detail.startswith("created CI-1; rca.md not attached")
    assert "permission to create attachments" in delivery.detail


def test_unreachable_jira_is_a_failed_delivery() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(jira_url=f"http://127.0.0.1:{port}", jira_project="CI", jira_token=TOKEN)
    delivery = JiraNotifier(s, max_retries=0).send(notice())
    assert not delivery.ok and "ConnectionError" in delivery.detail


def test_labels_hold_any_dedup_key() -> None:
    assert label("action:retry:acme/shop:42:1") == "cimedic-fp-action:retry:acme-shop:42:1"  # no "/" or spaces
    long_a, long_b = label("x" * 300 + "a"), label("x" * 300 + "b")
    assert long_a != long_b and len(long_a) <= 255  # hashed, not cut
