"""The server's one background worker (webhook runs and scheduled sweeps, in order, so investigations
never run concurrently), its metrics, the scheduler and nightly retraining.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cimedic.bus.events import Event, RunFailed
from cimedic.errors import one_line
from cimedic.notify.base import Delivery, Notice
from cimedic.redact import redact
from cimedic.serve_config import ServeConfig
from cimedic.settings import Settings
from cimedic.sweep import sweep
from cimedic.sweep_digest import Digest, RunResult
from cimedic.sweep_ledger import Candidate, Ledger
from cimedic.sweep_run import (
    BusPublisher,
    Investigate,
    Notify,
    Publish,
    default_investigate,
    default_notify,
    default_publish,
    process_run,
    safe_publish,
)

log = logging.getLogger("cimedic.serve")

PLATFORMS = ("github", "gitlab", "azure", "jenkins")
RECENT_MAX = 10_000  # run keys remembered to drop redeliveries without a database read


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
