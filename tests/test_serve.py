"""`cimedic serve`: the webhook receivers (signatures and tokens right and wrong), the background worker,
/healthz and /metrics, through FastAPI's TestClient and once through uvicorn over a real socket; the
periodic sweep against the GitHub fixture server; the bus and the channels are in-memory recorders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import test_ci_github as github
import uvicorn
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from test_history_ingest_providers import serve_github

from cimedic.models import Category, Diagnosis, Source, SourceKind
from cimedic.notify.base import Delivery, Notice
from cimedic.serve import create_app, mount_slack
from cimedic.serve_config import ServeConfig, SweepConfig, TrainConfig, load_serve_config
from cimedic.serve_worker import retrain
from cimedic.settings import Settings, get_settings

GITHUB_SECRET = "gh-hook-secret-0123456789"
GITLAB_TOKEN = "gl-hook-token-0123456789"
AZURE_SECRET = "az-hook-secret-0123456789"
JENKINS_TOKEN = "jk-hook-token-0123456789"
GH_URL = "https://github.com/acme/inventory/actions/runs/8912345678"
GL_URL = "https://gitlab.example.com/acme/shop/-/pipelines/1204"
AZ_URL = "https://dev.azure.com/acme/shop/_build/results?buildId=77"
JK_URL = "https://ci.example.com/job/shop/job/main/42/"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.notices: list[Notice] = []
        self.investigated: list[str] = []

    def publish(self, event: Any) -> None:
        self.events.append(event)

    def notify(self, notice: Notice) -> list[Delivery]:
        self.notices.append(notice)
        return [Delivery(channel="memory", ok=True)]

    def investigate(self, url: str) -> Diagnosis:
        self.investigated.append(url)
        return Diagnosis(
            source=Source(kind=SourceKind.FILE, path=url),
            category=Category.INFRA,
            confidence=0.6,
            summary="the runner lost its connection",
            excerpt=None,
        )


def _settings(monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    for name, value in {
        "CIMEDIC_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "CIMEDIC_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN,
        "CIMEDIC_AZURE_WEBHOOK_SECRET": AZURE_SECRET,
        "CIMEDIC_JENKINS_WEBHOOK_TOKEN": JENKINS_TOKEN,
        **extra,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


QUIET = ServeConfig(sweep=SweepConfig(interval_minutes=0), train=TrainConfig(enabled=False))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> Iterator[TestClient]:
    app = create_app(
        _settings(monkeypatch),
        config=QUIET,
        publish=rec.publish,
        notify=rec.notify,
        investigate=rec.investigate,
        slack=False,
    )
    with TestClient(app) as test_client:  # runs the lifespan: the worker starts and stops with it
        yield test_client


def _idle(client: TestClient) -> None:
    assert client.app.state.service.wait_idle(30)  # type: ignore[attr-defined]


def workflow_run(conclusion: str = "failure", action: str = "completed", attempt: int = 1) -> bytes:
    payload = {
        "action": action,
        "workflow_run": {
            "id": 8912345678,
            "html_url": GH_URL,
            "run_attempt": attempt,
            "head_branch": "fix/reserve-limits",
            "status": "completed",
            "conclusion": conclusion,
        },
        "repository": {"full_name": "acme/inventory"},
    }
    return json.dumps(payload).encode()


def signed(body: bytes, secret: str = GITHUB_SECRET, event: str = "workflow_run") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": event, "Content-Type": "application/json"}


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in /metrics")


# -- GitHub ---------------------------------------------------------------------------------------------


def test_a_signed_failed_workflow_run_is_accepted_and_investigated_in_the_background(
    client: TestClient, rec: Recorder
) -> None:
    body = workflow_run()
    answer = client.post("/hooks/github", content=body, headers=signed(body))

    assert answer.status_code == 202
    assert answer.json() == {"status": "queued", "run": GH_URL, "project": "acme/inventory", "run_id": "8912345678"}
    _idle(client)
    assert rec.investigated == [GH_URL]
    assert [e.type for e in rec.events] == ["run.failed", "diagnosis.ready"]
    failed = rec.events[0]
    assert (failed.source, failed.run.platform, failed.run.branch, failed.run.attempt) == (
        "webhook:github",
        "github-actions",
        "fix/reserve-limits",
        1,
    )
    assert rec.events[1].source == "webhook:github"
    [notice] = rec.notices  # no remediation proposed: a person is told
    assert notice.url == GH_URL

    # GitHub redelivers: nothing happens twice.
    again = client.post("/hooks/github", content=body, headers=signed(body))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    # A re-run is a new attempt: a new failure.
    second = workflow_run(attempt=2)
    assert client.post("/hooks/github", content=second, headers=signed(second)).status_code == 202
    _idle(client)
    assert rec.investigated == [GH_URL, GH_URL] and len(rec.events) == 4

    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert _metric(text, 'cimedic_webhooks_received_total{platform="github"}') == 3
    assert _metric(text, 'cimedic_webhooks_queued_total{platform="github"}') == 2
    assert _metric(text, 'cimedic_investigations_total{by="webhook",outcome="ok"}') == 2
    assert _metric(text, "cimedic_notices_total") == 2
    assert _metric(text, "cimedic_sweep_duration_seconds_count") == 0
    assert _metric(text, 'cimedic_webhooks_received_total{platform="gitlab"}') == 0


def test_a_bad_or_missing_signature_is_refused_and_counted(client: TestClient, rec: Recorder) -> None:
    body = workflow_run()
    wrong = client.post("/hooks/github", content=body, headers=signed(body, secret="not-the-secret"))
    assert (wrong.status_code, wrong.json()) == (401, {"status": "rejected", "reason": "bad-signature"})
    tampered = client.post("/hooks/github", content=body.replace(b"8912345678", b"8912345679"), headers=signed(body))
    assert tampered.status_code == 401
    unsigned = client.post("/hooks/github", content=body, headers={"X-GitHub-Event": "workflow_run"})
    assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "missing-signature")
    _idle(client)
    assert rec.investigated == [] and rec.events == []

    text = client.get("/metrics").text
    assert _metric(text, 'cimedic_webhooks_rejected_total{platform="github",reason="bad-signature"}') == 2
    assert _metric(text, 'cimedic_webhooks_rejected_total{platform="github",reason="missing-signature"}') == 1
    assert _metric(text, 'cimedic_webhooks_received_total{platform="github"}') == 3


def test_events_that_are_not_failures_are_ignored(client: TestClient, rec: Recorder) -> None:
    for body, event in (
        (workflow_run(conclusion="success"), "workflow_run"),
        (workflow_run(action="requested"), "workflow_run"),
        (b'{"zen": "Keep it logically awesome."}', "ping"),
        (b'{"ref": "refs/heads/main"}', "push"),
    ):
        answer = client.post("/hooks/github", content=body, headers=signed(body, event=event))
        assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    not_json = b"{nope"
    assert client.post("/hooks/github", content=not_json, headers=signed(not_json)).status_code == 400
    elsewhere = workflow_run().replace(GH_URL.encode(), b"https://example.org/some/where")
    refused = client.post("/hooks/github", content=elsewhere, headers=signed(elsewhere))
    assert (refused.status_code, refused.json()["reason"]) == (422, "unknown-run-url")
    big = b'{"pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    assert client.post("/hooks/github", content=big, headers=signed(big)).status_code == 413
    _idle(client)
    assert rec.investigated == [] and rec.events == []


# -- GitLab, Azure DevOps, Jenkins ----------------------------------------------------------------------


def pipeline_hook(status: str = "failed") -> dict[str, Any]:
    return {
        "object_kind": "pipeline",
        "object_attributes": {"id": 1204, "ref": "main", "status": status, "url": GL_URL},
        "project": {"path_with_namespace": "acme/shop", "web_url": "https://gitlab.example.com/acme/shop"},
    }


def test_gitlab_pipeline_hooks_need_the_token(client: TestClient, rec: Recorder) -> None:
    headers = {"X-Gitlab-Event": "Pipeline Hook"}
    wrong = client.post("/hooks/gitlab", json=pipeline_hook(), headers={**headers, "X-Gitlab-Token": "guess"})
    assert (wrong.status_code, wrong.json()["reason"]) == (401, "bad-token")
    assert client.post("/hooks/gitlab", json=pipeline_hook(), headers=headers).status_code == 401
    running = client.post("/hooks/gitlab", json=pipeline_hook("running"), headers={"X-Gitlab-Token": GITLAB_TOKEN})
    assert running.json()["status"] == "ignored"
    # Older GitLab sends no pipeline URL: it is built from the project's.
    hook = pipeline_hook()
    del hook["object_attributes"]["url"]
    ok = client.post("/hooks/gitlab", json=hook, headers={**headers, "X-Gitlab-Token": GITLAB_TOKEN})
    assert ok.status_code == 202 and ok.json()["project"] == "acme/shop" and ok.json()["run_id"] == "1204"
    _idle(client)
    assert rec.investigated == [GL_URL]
    assert rec.events[0].run.platform == "gitlab" and rec.events[0].run.branch == "main"


def build_complete(build_id: int = 77, result: str = "failed") -> dict[str, Any]:
    return {
        "eventType": "build.complete",
        "resource": {
            "id": build_id,
            "status": "completed",
            "result": result,
            "url": f"https://dev.azure.com/acme/6a1b7c1d/_apis/build/Builds/{build_id}",
            "_links": {"web": {"href": f"https://dev.azure.com/acme/shop/_build/results?buildId={build_id}"}},
            "sourceBranch": "refs/heads/main",
        },
    }


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_azure_service_hooks_use_basic_auth_or_the_token_header(client: TestClient, rec: Recorder) -> None:
    assert client.post("/hooks/azure", json=build_complete(), headers=_basic("cimedic", "wrong")).status_code == 401
    assert client.post("/hooks/azure", json=build_complete()).status_code == 401
    ok = client.post("/hooks/azure", json=build_complete(), headers=_basic("cimedic", AZURE_SECRET))
    assert ok.status_code == 202 and ok.json()["project"] == "shop"
    header = client.post("/hooks/azure", json=build_complete(78), headers={"X-Cimedic-Token": AZURE_SECRET})
    assert header.status_code == 202
    passed = client.post("/hooks/azure", json=build_complete(79, "succeeded"), headers=_basic("x", AZURE_SECRET))
    assert passed.json()["status"] == "ignored"
    _idle(client)
    assert rec.investigated == [AZ_URL, AZ_URL.replace("77", "78")]
    assert rec.events[0].run.branch == "main"


def notification(phase: str = "FINALIZED", status: str = "FAILURE", full: bool = True) -> dict[str, Any]:
    build: dict[str, Any] = {"number": 42, "url": "job/shop/job/main/42/", "phase": phase, "status": status}
    if full:
        build["full_url"] = JK_URL
    build["scm"] = {"branch": "origin/main", "commit": "9f1c2d3"}
    return {"name": "shop/main", "url": "job/shop/job/main/", "build": build}


def test_jenkins_notifications_carry_the_token_in_a_header_or_the_url(
    monkeypatch: pytest.MonkeyPatch, rec: Recorder
) -> None:
    settings = _settings(monkeypatch, CIMEDIC_JENKINS_URL="https://ci.example.com")
    app = create_app(settings, config=QUIET, publish=rec.publish, notify=rec.notify, investigate=rec.investigate)
    with TestClient(app) as client:
        assert client.post("/hooks/jenkins", json=notification()).status_code == 401
        assert client.post("/hooks/jenkins?token=guess", json=notification()).status_code == 401
        started = client.post(f"/hooks/jenkins?token={JENKINS_TOKEN}", json=notification("STARTED", "SUCCESS"))
        assert started.json()["status"] == "ignored"
        ok = client.post(f"/hooks/jenkins?token={JENKINS_TOKEN}", json=notification("COMPLETED"))
        assert ok.status_code == 202 and ok.json()["project"] == "shop/main" and ok.json()["run_id"] == "42"
        # FINALIZED follows COMPLETED for the same build: a repeat. Without full_url, CIMEDIC_JENKINS_URL is used.
        repeat = client.post(
            "/hooks/jenkins", json=notification(full=False), headers={"X-Cimedic-Token": JENKINS_TOKEN}
        )
        assert (repeat.status_code, repeat.json()["status"]) == (200, "duplicate")
        unstable = notification(status="UNSTABLE", full=False)
        unstable["build"]["url"] = "job/shop/job/main/43/"
        assert (
            client.post("/hooks/jenkins", json=unstable, headers={"X-Cimedic-Token": JENKINS_TOKEN}).status_code == 202
        )
        assert client.app.state.service.wait_idle(30)  # type: ignore[attr-defined]
    assert rec.investigated == [JK_URL, JK_URL.replace("/42/", "/43/")]
    assert rec.events[0].run.branch == "main"


def test_a_receiver_without_a_secret_refuses_everything(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    get_settings.cache_clear()
    app = create_app(get_settings(), config=QUIET, publish=rec.publish, investigate=rec.investigate, slack=False)
    with TestClient(app) as client:
        body = workflow_run()
        refused = client.post("/hooks/github", content=body, headers=signed(body, secret=""))
        assert (refused.status_code, refused.json()["reason"]) == (401, "not-configured")
        assert client.post("/hooks/gitlab", json=pipeline_hook(), headers={"X-Gitlab-Token": ""}).status_code == 401
        text = client.get("/metrics").text
    assert _metric(text, 'cimedic_webhooks_rejected_total{platform="gitlab",reason="not-configured"}') == 1
    assert rec.events == []


# -- health, sweeps, retraining, Slack, real HTTP -------------------------------------------------------


def test_healthz_reports_the_worker(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    app = create_app(_settings(monkeypatch), config=QUIET, investigate=rec.investigate, slack=False)
    with TestClient(app) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "queue": 0, "scheduler": False}
    # Outside the lifespan there is no worker: not healthy.
    assert TestClient(app).get("/healthz").status_code == 503


def test_a_scheduled_sweep_runs_in_the_worker_and_is_timed(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, rec: Recorder
) -> None:
    serve_github(httpserver)
    settings = _settings(monkeypatch, CIMEDIC_GITHUB_API_URL=github.api(httpserver), CIMEDIC_GITHUB_TOKEN=github.TOKEN)
    config = ServeConfig(
        sweep=SweepConfig(repos=[github.PROJECT], interval_minutes=60, lookback_hours=24 * 365 * 10),
        train=TrainConfig(enabled=False),
    )
    app = create_app(
        settings, config=config, publish=rec.publish, notify=rec.notify, investigate=rec.investigate, slack=False
    )
    with TestClient(app) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        # The scheduler queued the first sweep at start.
        assert [job.id for job in service.scheduler.get_jobs()] == ["sweep"]
        deadline = time.monotonic() + 30
        while service.last_digest is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.wait_idle(30)
        digest = service.last_digest
        assert digest is not None and [r.url for r in digest.runs] == [GH_URL]
        # The webhook for the same run comes late: already handled.
        body = workflow_run()
        late = client.post("/hooks/github", content=body, headers=signed(body))
        assert (late.status_code, late.json()["status"]) == (200, "duplicate")
        text = client.get("/metrics").text
    assert rec.investigated == [GH_URL]
    assert [e.type for e in rec.events] == ["run.failed", "diagnosis.ready"] and rec.events[0].source == "sweep"
    assert [n.title for n in rec.notices][-1] == "cimedic sweep: 1 new failure(s), 0 new fingerprint(s)"
    assert _metric(text, "cimedic_sweep_duration_seconds_count") == 1
    assert _metric(text, 'cimedic_sweeps_total{outcome="ok"}') == 1
    assert _metric(text, 'cimedic_investigations_total{by="sweep",outcome="ok"}') == 1


def test_nightly_retraining_registers_new_versions_without_promoting(monkeypatch: pytest.MonkeyPatch) -> None:
    from cimedic.registry import ModelRegistry

    settings = _settings(monkeypatch)
    config = ServeConfig(sweep=SweepConfig(repos=[github.PROJECT]), train=TrainConfig(promote=False))
    done = retrain(settings, config)
    assert done["classifier"] == "ok"
    assert "no run history" in done[f"predictor:{github.PROJECT}"]
    registry = ModelRegistry(settings.models_dir)
    assert len(registry.versions("classifier")) == 1 and registry.champion("classifier") is None


def test_the_config_file_overrides_the_shipped_one(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    shipped = load_serve_config(settings)
    assert (shipped.execute, shipped.sweep.interval_minutes, shipped.train.promote) == (False, 15, False)
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "serve.yaml").write_text("sweep:\n  repos: [acme/inventory]\n  interval_minutes: 5\n")
    own = load_serve_config(settings)
    assert own.sweep.repos == ["acme/inventory"] and own.sweep.interval_minutes == 5
    assert own.sweep.lookback_hours == 24  # the rest of the section stays the shipped one


def test_slack_is_not_mounted_without_its_settings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(monkeypatch), config=QUIET, slack=False)
    with caplog.at_level("INFO", logger="cimedic.serve"):
        assert mount_slack(app, get_settings()) is False
    assert "Slack not configured" in caplog.text
    assert not any(getattr(route, "path", "") == "/slack" for route in app.routes)


AUTH_TEST = {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "cimedic", "team_id": "T0TEAM",
             "user_id": "U0CIMEDIC", "bot_id": "B0CIMEDIC", "is_enterprise_install": False}  # fmt: skip


def _slack(monkeypatch: pytest.MonkeyPatch, api: HTTPServer) -> Settings:
    return _settings(
        monkeypatch,
        CIMEDIC_SLACK_BOT_TOKEN="xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        CIMEDIC_SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5",
        CIMEDIC_SLACK_API_URL=api.url_for("/api/"),
    )


def test_the_slack_bot_is_mounted_at_slack_when_configured(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/api/auth.test").respond_with_json(AUTH_TEST)
    app = create_app(_slack(monkeypatch, httpserver), config=QUIET)
    with TestClient(app) as client:
        # Bolt answers: the request is not signed as Slack signs them.
        unsigned = client.post("/slack/events", content=b"{}", headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert client.get("/healthz").status_code == 200


def test_a_slack_failure_leaves_the_webhooks_up(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, rec: Recorder
) -> None:
    httpserver.expect_request("/api/auth.test").respond_with_json({"ok": False, "error": "invalid_auth"})
    with caplog.at_level("ERROR", logger="cimedic.serve"):
        app = create_app(
            _slack(monkeypatch, httpserver), config=QUIET, publish=rec.publish, investigate=rec.investigate
        )
    assert "Slack bot not mounted at /slack" in caplog.text and "invalid_auth" in caplog.text
    with TestClient(app) as client:
        assert client.post("/slack/events", content=b"{}").status_code == 404
        body = workflow_run()
        assert client.post("/hooks/github", content=body, headers=signed(body)).status_code == 202


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_over_a_real_socket(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    app = create_app(
        _settings(monkeypatch),
        config=QUIET,
        publish=rec.publish,
        notify=rec.notify,
        investigate=rec.investigate,
        slack=False,
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            body = workflow_run()
            assert http.post("/hooks/github", content=body, headers=signed(body)).status_code == 202
            assert http.post("/hooks/github", content=body, headers=signed(body, "nope")).status_code == 401
            assert app.state.service.wait_idle(30)
            text = http.get("/metrics").text
    finally:
        server.should_exit = True
        thread.join(20)
    assert rec.investigated == [GH_URL]
    assert _metric(text, 'cimedic_webhooks_rejected_total{platform="github",reason="bad-signature"}') == 1
