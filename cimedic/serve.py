"""``cimedic serve``: webhook receivers, periodic sweeps and nightly retraining in one process.

    POST /hooks/github   X-Hub-Signature-256: HMAC-SHA256 of the body with CIMEDIC_GITHUB_WEBHOOK_SECRET;
                         ``workflow_run`` events, action ``completed``, conclusion failure/timed_out/startup_failure
    POST /hooks/gitlab   X-Gitlab-Token equal to CIMEDIC_GITLAB_WEBHOOK_TOKEN; Pipeline Hook, status ``failed``
    POST /hooks/azure    Basic auth whose password is CIMEDIC_AZURE_WEBHOOK_SECRET (the service hook's
                         "basic authentication" fields), or an X-Cimedic-Token header with it (its
                         "HTTP headers" field); ``build.complete`` with result ``failed``
    POST /hooks/jenkins  X-Cimedic-Token header, or ``?token=`` in the URL (the Notification plugin can
                         only set a URL), equal to CIMEDIC_JENKINS_WEBHOOK_TOKEN; the plugin's JSON
                         format, phase COMPLETED/FINALIZED, status FAILURE/UNSTABLE (see ``jenkins_hook``)
    GET  /healthz        the worker and scheduler are alive
    GET  /metrics        Prometheus text format

A verified webhook for a failed run publishes ``run.failed`` and queues the run; the request answers
202 at once. One background worker takes the queue in order (webhook runs and scheduled sweeps alike,
so investigations never run concurrently) through ``cimedic.sweep.process_run``: a run is handled
once whether a webhook, a redelivery or a sweep saw it first. Secrets are compared in constant time;
a receiver whose secret is not configured refuses every request. Run one process per database: the
scheduler lives in it (uvicorn ``--workers`` > 1 would sweep several times, though runs stay once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from cimedic.errors import one_line
from cimedic.redact import redact
from cimedic.serve_config import ServeConfig, load_serve_config
from cimedic.serve_hooks import (
    TOKEN_HEADER,
    Hook,
    Rejected,
    azure_hook,
    candidate,
    github_hook,
    gitlab_hook,
    jenkins_hook,
    verify_azure,
    verify_github,
    verify_token,
)
from cimedic.serve_worker import Metrics, Service
from cimedic.settings import Settings, quiet_third_parties
from cimedic.sweep_run import (
    Investigate,
    Notify,
    Publish,
)

log = logging.getLogger("cimedic.serve")


# -- the app --------------------------------------------------------------------------------------------


def mount_slack(app: FastAPI, settings: Settings) -> bool:
    """Mount the Slack bot at /slack when Slack is configured and ``cimedic.chatops`` exists.

    ``cimedic.chatops.asgi_app(settings)`` serves Slack's events, commands and interactions at
    /slack/events. Slack (and its SDK) are imported only when configured.
    """
    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        log.info("Slack not configured (CIMEDIC_SLACK_BOT_TOKEN, CIMEDIC_SLACK_SIGNING_SECRET): /slack not mounted")
        return False
    from cimedic.chatops import asgi_app

    try:
        slack = asgi_app(settings)  # checks the bot token with Slack's auth.test
    except Exception as exc:  # a Slack problem must not take the webhooks down with it
        log.error("Slack bot not mounted at /slack: %s", redact(one_line(exc))[:300])
        return False
    app.mount("/slack", slack)
    log.info("Slack bot mounted at /slack (Slack's request URL: /slack/events)")
    return True


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "too-large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too-large")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: Settings,
    *,
    config: ServeConfig | None = None,
    publish: Publish | None = None,
    notify: Notify | None = None,
    investigate: Investigate | None = None,
    scheduler: bool = True,
    slack: bool = True,
) -> FastAPI:
    """The app; its worker (and with ``scheduler`` the sweeps and retraining) runs while the app does."""
    config = config or load_serve_config(settings)
    metrics = Metrics()
    service = Service(settings, config, metrics, publish=publish, notify=notify, investigate=investigate)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start(scheduler=scheduler)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(title="cimedic", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.service = service
    app.state.metrics = metrics

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        alive = service.worker_alive
        body = {
            "status": "ok" if alive else "worker-down",
            "queue": service.queue.qsize(),
            "scheduler": service.scheduler is not None and service.scheduler.running,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def receive(request: Request, platform: str, check: Callable[[bytes], Hook]) -> JSONResponse:
        metrics.webhooks_received.labels(platform).inc()
        try:
            body = await _body(request, config.webhooks.max_body_bytes)
            hook = check(body)
            if hook.ignored:
                return JSONResponse({"status": "ignored", "reason": hook.ignored[:200]}, status_code=200)
            cand = candidate(hook, settings)
            status = await run_in_threadpool(service.accept, cand, f"webhook:{platform}")
        except Rejected as exc:
            metrics.webhooks_rejected.labels(platform, exc.reason).inc()
            log.warning("%s webhook refused (%d): %s", platform, exc.status, exc.detail)
            return JSONResponse({"status": "rejected", "reason": exc.reason}, status_code=exc.status)
        if status == "full":
            metrics.webhooks_rejected.labels(platform, "queue-full").inc()
            return JSONResponse({"status": "busy"}, status_code=503, headers={"Retry-After": "60"})
        if status == "queued":
            metrics.webhooks_queued.labels(platform).inc()
        body_out = {"status": status, "run": cand.url, "project": cand.project, "run_id": cand.run_id}
        return JSONResponse(body_out, status_code=202 if status == "queued" else 200)

    def payload(body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected(400, "bad-json", "the body is not JSON") from exc

    @app.post("/hooks/github")
    async def github(request: Request) -> JSONResponse:
        def check(body: bytes) -> Hook:
            verify_github(request.headers, body, settings.github_webhook_secret)
            return github_hook(request.headers, payload(body))

        return await receive(request, "github", check)

    @app.post("/hooks/gitlab")
    async def gitlab(request: Request) -> JSONResponse:
        def check(body: bytes) -> Hook:
            verify_token(request.headers.get("x-gitlab-token"), settings.gitlab_webhook_token)
            return gitlab_hook(request.headers, payload(body))

        return await receive(request, "gitlab", check)

    @app.post("/hooks/azure")
    async def azure(request: Request) -> JSONResponse:
        def check(body: bytes) -> Hook:
            verify_azure(request.headers, settings.azure_webhook_secret)
            return azure_hook(payload(body))

        return await receive(request, "azure", check)

    @app.post("/hooks/jenkins")
    async def jenkins(request: Request) -> JSONResponse:
        def check(body: bytes) -> Hook:
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
            verify_token(given, settings.jenkins_webhook_token)
            return jenkins_hook(payload(body), settings.jenkins_url)

        return await receive(request, "jenkins", check)

    if slack:
        mount_slack(app, settings)
    return app


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8080, config_path: Path | None = None) -> None:
    """Serve until interrupted (uvicorn, one process: the worker and the scheduler live in it)."""
    import uvicorn

    # The process's entry point: cimedic's own log lines (webhooks refused, sweeps, retraining) go to stderr.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_parties(settings)  # before CrewAI/litellm are imported by the first investigation
    app = create_app(settings, config=load_serve_config(settings, config_path))
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
