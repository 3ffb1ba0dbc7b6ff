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

import base64
import binascii
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from cimedic.bus.events import Event, RunFailed
from cimedic.errors import CimedicError, one_line
from cimedic.notify.base import Delivery, Notice
from cimedic.redact import redact
from cimedic.serve_config import ServeConfig, load_serve_config
from cimedic.settings import Settings, quiet_third_parties
from cimedic.sweep import (
    BusPublisher,
    Candidate,
    Digest,
    Investigate,
    Ledger,
    Notify,
    Publish,
    RunResult,
    default_investigate,
    default_notify,
    default_publish,
    process_run,
    safe_publish,
    sweep,
)

log = logging.getLogger("cimedic.serve")

PLATFORMS = ("github", "gitlab", "azure", "jenkins")
TOKEN_HEADER = "x-cimedic-token"
RECENT_MAX = 10_000  # run keys remembered to drop redeliveries without a database read
GITHUB_FAILED = {"failure", "timed_out", "startup_failure"}
JENKINS_FAILED = {"FAILURE", "UNSTABLE"}
JENKINS_DONE = {"COMPLETED", "FINALIZED"}


# -- metrics --------------------------------------------------------------------------------------------


class Metrics:
    """The app's own registry, so several apps (tests) never clash in prometheus-client's global one."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.webhooks_received = Counter(
            "cimedic_webhooks_received", "Webhook requests received", ["platform"], registry=r
        )
        self.webhooks_rejected = Counter(
            "cimedic_webhooks_rejected", "Webhook requests refused", ["platform", "reason"], registry=r
        )
        self.webhooks_queued = Counter(
            "cimedic_webhooks_queued", "Failed runs queued by webhooks", ["platform"], registry=r
        )
        self.investigations = Counter(
            "cimedic_investigations", "Failed runs investigated", ["outcome", "by"], registry=r
        )
        self.actions = Counter("cimedic_actions", "Remediation actions by final state", ["kind", "state"], registry=r)
        self.notices = Counter("cimedic_notices", "Failures that needed a person", registry=r)
        self.sweeps = Counter("cimedic_sweeps", "Sweeps run", ["outcome"], registry=r)
        self.sweep_duration = Histogram(
            "cimedic_sweep_duration_seconds",
            "Duration of a sweep",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.trainings = Counter("cimedic_trainings", "Nightly retrainings", ["model", "outcome"], registry=r)
        self.queue_depth = Gauge("cimedic_queue_depth", "Work waiting for the background worker", registry=r)
        for platform in PLATFORMS:  # exposed at 0 from the start
            self.webhooks_received.labels(platform)
            self.webhooks_queued.labels(platform)

    def record(self, result: RunResult) -> None:
        outcome = "error" if result.error else "ok"
        self.investigations.labels(outcome, result.by.split(":")[0]).inc()
        for action in result.actions:
            self.actions.labels(action.kind, action.state).inc()
        if result.needs_person:
            self.notices.inc()


# -- the webhooks ---------------------------------------------------------------------------------------


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.status, self.reason, self.detail = status, reason, detail or reason


@dataclass(frozen=True)
class Hook:
    """What a verified webhook says: a failed run's URL, or why it is of no interest."""

    url: str | None = None
    attempt: int | None = None
    branch: str | None = None
    ignored: str | None = None


def _equal(given: str | None, secret: SecretStr) -> bool:
    # compare_digest on bytes: constant time over the secret's length, any characters.
    return given is not None and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())


def _secret(secret: SecretStr | None) -> SecretStr:
    if secret is None or not secret.get_secret_value():
        raise Rejected(401, "not-configured", "this receiver has no secret configured")
    return secret


def verify_github(headers: Mapping[str, str], body: bytes, secret: SecretStr | None) -> None:
    key = _secret(secret).get_secret_value().encode()
    given = headers.get("x-hub-signature-256")
    if not given:
        raise Rejected(401, "missing-signature")
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Rejected(401, "bad-signature")


def verify_token(given: str | None, secret: SecretStr | None) -> None:
    expected = _secret(secret)
    if not given:
        raise Rejected(401, "missing-token")
    if not _equal(given, expected):
        raise Rejected(401, "bad-token")


def _basic_password(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def verify_azure(headers: Mapping[str, str], secret: SecretStr | None) -> None:
    verify_token(_basic_password(headers.get("authorization")) or headers.get(TOKEN_HEADER), secret)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def github_hook(headers: Mapping[str, str], payload: Any) -> Hook:
    event = headers.get("x-github-event", "")
    if event == "ping":
        return Hook(ignored="ping")
    if event != "workflow_run":
        return Hook(ignored=f"event {event or 'unnamed'}")
    run = _get(payload, "workflow_run")
    if _get(payload, "action") != "completed" or _get(run, "conclusion") not in GITHUB_FAILED:
        return Hook(ignored=f"workflow_run {_get(payload, 'action')} {_get(run, 'conclusion')}")
    attempt = _get(run, "run_attempt")
    return Hook(
        url=_get(run, "html_url"),
        attempt=attempt if isinstance(attempt, int) else None,
        branch=_get(run, "head_branch"),
    )


def gitlab_hook(headers: Mapping[str, str], payload: Any) -> Hook:
    if _get(payload, "object_kind") != "pipeline":
        return Hook(ignored=f"event {headers.get('x-gitlab-event') or _get(payload, 'object_kind')}")
    attrs = _get(payload, "object_attributes")
    if _get(attrs, "status") != "failed":
        return Hook(ignored=f"pipeline {_get(attrs, 'status')}")
    url = _get(attrs, "url")
    web, pipeline = _get(payload, "project", "web_url"), _get(attrs, "id")
    if not url and web and pipeline is not None:
        url = f"{str(web).rstrip('/')}/-/pipelines/{pipeline}"
    return Hook(url=url, branch=_get(attrs, "ref"))


def azure_hook(payload: Any) -> Hook:
    if _get(payload, "eventType") != "build.complete":
        return Hook(ignored=f"event {_get(payload, 'eventType')}")
    build = _get(payload, "resource")
    # Build 2.0 payloads say result=failed (status=completed); older ones put the result in status.
    if "failed" not in (_get(build, "result"), _get(build, "status")):
        return Hook(ignored=f"build {_get(build, 'result') or _get(build, 'status')}")
    url = _get(build, "_links", "web", "href")
    api, build_id = _get(build, "url"), _get(build, "id")
    if not url and isinstance(api, str) and "/_apis/build/" in api and build_id is not None:
        url = f"{api.split('/_apis/build/')[0]}/_build/results?buildId={build_id}"
    branch = _get(build, "sourceBranch")
    return Hook(url=url, branch=branch.removeprefix("refs/heads/") if isinstance(branch, str) else None)


def jenkins_hook(payload: Any, jenkins_url: str | None) -> Hook:
    """The Notification plugin's JSON format::

        {"name": "app", "url": "job/app/",
         "build": {"full_url": "https://ci.example.com/job/app/42/", "number": 42, "url": "job/app/42/",
                   "phase": "FINALIZED", "status": "FAILURE", "scm": {"branch": "origin/main", "commit": "…"}}}

    ``full_url`` needs Jenkins' root URL set; without it ``url`` is joined to CIMEDIC_JENKINS_URL.
    The plugin sends COMPLETED and FINALIZED for one build: the second is a repeat and is dropped.
    """
    build = _get(payload, "build")
    phase, status = _get(build, "phase"), _get(build, "status")
    if phase not in JENKINS_DONE or status not in JENKINS_FAILED:
        return Hook(ignored=f"build {phase} {status}")
    url = _get(build, "full_url")
    relative = _get(build, "url")
    if not url and jenkins_url and isinstance(relative, str):
        url = f"{jenkins_url.rstrip('/')}/{relative.lstrip('/')}"
    branch = _get(build, "scm", "branch")
    return Hook(url=url, branch=branch.removeprefix("origin/") if isinstance(branch, str) else None)


def candidate(hook: Hook, settings: Settings) -> Candidate:
    from cimedic.tools.ci.urls import parse_run_url

    if not hook.url or not isinstance(hook.url, str):
        raise Rejected(422, "no-run-url", "the payload names no run URL")
    try:
        ref = parse_run_url(hook.url, settings)
    except CimedicError as exc:
        raise Rejected(422, "unknown-run-url", redact(one_line(exc))[:300]) from exc
    return Candidate(
        platform=ref.platform,
        base_url=ref.base_url,
        project=ref.project,
        run_id=ref.run_id,
        attempt=hook.attempt if isinstance(hook.attempt, int) and hook.attempt > 0 else 1,
        url=hook.url,
        branch=hook.branch[:300] if isinstance(hook.branch, str) else None,  # payloads are not trusted
    )


# -- the background worker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunWork:
    cand: Candidate
    by: str


@dataclass(frozen=True)
class SweepWork:
    repos: tuple[str, ...]


class Service:
    """The queue, its one worker thread, the scheduler, and what they share."""

    def __init__(
        self,
        settings: Settings,
        config: ServeConfig,
        metrics: Metrics,
        *,
        publish: Publish | None = None,
        notify: Notify | None = None,
        investigate: Investigate | None = None,
    ) -> None:
        self.settings, self.config, self.metrics = settings, config, metrics
        self._publish, self._notify = publish, notify
        self._own_bus: BusPublisher | None = None
        self.investigate = investigate or default_investigate(offline=config.offline)
        self.queue: queue.Queue[RunWork | SweepWork | None] = queue.Queue(maxsize=config.webhooks.queue_max)
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._ledger: Ledger | None = None
        self._sweep_waiting = False
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._dropped = 0
        self.scheduler: Any = None  # an APScheduler BackgroundScheduler (untyped)
        self.last_digest: Digest | None = None

    # Defaults resolve on first use, so the bus and the channels are only set up when something happens.
    def publish(self, event: Event) -> None:
        with self._lock:
            if self._publish is None:
                self._publish = self._own_bus = default_publish(self.settings)
        self._publish(event)

    def notify(self, notice: Notice) -> list[Delivery]:
        with self._lock:
            if self._notify is None:
                self._notify = default_notify(self.settings)
        return self._notify(notice)

    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger.open(self.settings)
            return self._ledger

    # -- lifecycle

    def start(self, *, scheduler: bool = True) -> None:
        self._stopping.clear()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name="cimedic-worker", daemon=True)
            self._worker.start()
        if scheduler and self.scheduler is None:
            self.scheduler = build_scheduler(self)
            if self.scheduler is not None:
                self.scheduler.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the item in hand. Runs still queued are dropped unclaimed (logged): the next
        sweep of their repository finds them, and the platforms redeliver nothing once answered."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        self._stopping.set()
        if self._worker is not None and self._worker.is_alive():
            # Wakes an idle worker; a busy one sees the flag after its current item.
            with suppress(queue.Full):
                self.queue.put_nowait(None)
            self._worker.join(timeout)
        dropped = self._dropped + sum(1 for w in _drain(self.queue) if w is not None)
        if dropped:
            log.warning("%d queued item(s) not processed at shutdown; sweeps pick up their runs", dropped)
        self._dropped = 0
        if self._own_bus is not None:
            self._own_bus.close()
        self._worker = None

    @property
    def worker_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is done; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- accepting work

    def accept(self, cand: Candidate, by: str) -> str:
        """queued, duplicate (seen lately or already handled), or full."""
        key = f"{cand.platform}:{cand.base_url}:{cand.project}:{cand.run_id}:{cand.attempt}"
        with self._lock:
            if key in self._recent:
                return "duplicate"
        if self.ledger().handled(cand):
            return "duplicate"
        with self._lock:
            if key in self._recent:
                return "duplicate"
            if self.queue.full():
                return "full"
            self._remember(key)
        safe_publish(self.publish, RunFailed(run=cand.event_ref(), source=by))
        self._put(RunWork(cand, by))
        return "queued"

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        while len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)

    def submit_sweep(self, repos: list[str] | None = None) -> bool:
        """Queue a sweep unless one is already waiting; what the scheduler calls."""
        chosen = tuple(repos if repos is not None else self.config.sweep.repos)
        with self._lock:
            if not chosen or self._sweep_waiting or self.queue.full():
                return False
            self._sweep_waiting = True
        self._put(SweepWork(chosen))
        return True

    def _put(self, work: RunWork | SweepWork) -> None:
        with self._idle:
            self._pending += 1
        self.queue.put(work)
        self.metrics.queue_depth.set(self.queue.qsize())

    # -- doing it

    def _loop(self) -> None:
        while True:
            work = self.queue.get()
            self.metrics.queue_depth.set(self.queue.qsize())
            if work is None or self._stopping.is_set():
                self._dropped += work is not None
                return
            try:
                if isinstance(work, RunWork):
                    self._run(work)
                else:
                    self._sweep(work)
            except Exception:  # a bug in one item must not stop the worker
                log.exception("background work failed: %r", work)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _run(self, work: RunWork) -> None:
        result = process_run(
            work.cand,
            settings=self.settings,
            ledger=self.ledger(),
            execute=self.config.execute,
            publish=self.publish,
            notify=self.notify,
            investigate=self.investigate,
            by=work.by,
            announce=False,  # published when the webhook was accepted
        )
        if result is not None:
            self.metrics.record(result)

    def _sweep(self, work: SweepWork) -> None:
        with self._lock:
            self._sweep_waiting = False
        began = time.perf_counter()
        try:
            digest = sweep(
                list(work.repos),
                settings=self.settings,
                execute=self.config.execute,
                publish=self.publish,
                notify=self.notify,
                investigate=self.investigate,
                limit=self.config.sweep.limit,
                lookback=timedelta(hours=self.config.sweep.lookback_hours),
                post_digest=self.config.sweep.post_digest,
                insights="new",  # every few minutes: history is only read when the digest has news
            )
        except Exception:
            self.metrics.sweeps.labels("error").inc()
            raise
        finally:
            self.metrics.sweep_duration.observe(time.perf_counter() - began)
        self.metrics.sweeps.labels("ok").inc()
        for result in digest.runs:
            self.metrics.record(result)
        self.last_digest = digest

    def retrain(self) -> dict[str, str]:
        """The nightly job: what each model's retraining came to."""
        done = retrain(self.settings, self.config)
        for model, outcome in done.items():
            self.metrics.trainings.labels(model.split(":")[0], "ok" if outcome == "ok" else "error").inc()
        return done


def _drain(q: queue.Queue[RunWork | SweepWork | None]) -> list[RunWork | SweepWork | None]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def build_scheduler(service: Service) -> Any:
    """Periodic sweeps (the first one at start) and the nightly retraining; None when neither is on."""
    # APScheduler 3 ships no type information.
    from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

    config = service.config
    scheduler = BackgroundScheduler(timezone=UTC)
    if config.sweep.interval_minutes > 0 and config.sweep.repos:
        scheduler.add_job(
            service.submit_sweep,
            IntervalTrigger(minutes=config.sweep.interval_minutes, timezone=UTC),
            id="sweep",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )
    if config.train.enabled:
        scheduler.add_job(
            service.retrain,
            CronTrigger(hour=config.train.hour, minute=config.train.minute, timezone=UTC),
            id="train",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler if scheduler.get_jobs() else None


def retrain(settings: Settings, config: ServeConfig) -> dict[str, str]:
    """Retrain the cause classifier (knowledge base + incident memory) and each swept repository's
    failure predictor, as ``cimedic train classifier`` and ``cimedic train predictor`` do; new
    versions are promoted only when ``train.promote`` says so."""
    done: dict[str, str] = {}
    if config.train.classifier:
        try:
            from cimedic.train_cli import train

            train(dataset=None, knowledge=True, incidents=True, out=None, promote=config.train.promote, jobs=1)
            done["classifier"] = "ok"
        except Exception as exc:  # one model's failure leaves the others
            done["classifier"] = redact(one_line(exc))[:300]
    if config.train.predictor:
        from cimedic.insights_cli import train_predictor
        from cimedic.tools.ci.urls import parse_project

        for repo in config.sweep.repos:
            name = f"predictor:{repo}"
            try:
                project = parse_project(repo, settings)[2]
                train_predictor(project=project, promote=config.train.promote)
                done[name] = "ok"
            except Exception as exc:  # no history yet, too few runs...
                done[name] = redact(one_line(exc))[:300]
    for model, outcome in done.items():
        log.info("retrained %s: %s", model, outcome)
    return done


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
