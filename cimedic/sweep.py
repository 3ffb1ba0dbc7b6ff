"""Sweeps: find new failed runs, investigate each once, heal within policy, tell the bus and people.

``sweep(repos)`` lists each repository's failed runs since its last sweep and hands every one to
``process_run``, which the webhook receivers of ``cimedic serve`` call too:

    claim -> run.failed -> investigate -> diagnosis.ready -> heal -> action.proposed/executed -> notice

Once, across sweeps, webhooks and processes: before a run is investigated its key (platform, project,
run id, attempt) is claimed with an INSERT that only one writer can win. The claims live in the
history store's ``ingest_cursors`` table (source ``sweep-run:RUN:ATTEMPT``; no migration), next to
each repository's sweep watermark (source ``sweep``: the time the next listing starts from). A run
whose investigation fails is released and tried again by later sweeps, at most ``MAX_TRIES`` times;
a claim left by a process that died mid-run is taken over after ``CLAIM_TTL``.

Events and notices go through injected callables (``publish``, ``notify``); left out, they resolve
at call time to ``cimedic.bus.bus.Bus`` and ``cimedic.notify.registry``. A failure of either is
logged and counted, never allowed to stop the sweep (errors as data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, computed_field

from cimedic.bus.events import ActionExecuted, ActionProposed, DiagnosisReady, Event, RunFailed
from cimedic.bus.events import RunRef as EventRunRef
from cimedic.errors import CimedicError, one_line
from cimedic.models import Diagnosis, Platform, Status
from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.redact import redact
from cimedic.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cimedic.bus.bus import Bus
    from cimedic.heal.engine import HealReport
    from cimedic.store.history import HistoryStore
    from cimedic.tools.ci.base import RunSummary

log = logging.getLogger("cimedic.sweep")

Publish = Callable[[Event], None]
Notify = Callable[[Notice], list[Delivery]]
Investigate = Callable[[str], Diagnosis]

WATERMARK_SOURCE = "sweep"
RUN_SOURCE = "sweep-run:"
MAX_TRIES = 3
CLAIM_TTL = timedelta(hours=1)
DEFAULT_LOOKBACK = timedelta(hours=24)
DEFAULT_LIMIT = 50
TOP_FLAKY = 5
TOP_ANOMALIES = 5
ERROR_MAX = 300
# Heal states after which the failure is being dealt with without a person.
_HANDLED = {"executed"}
_PERSON = {"awaiting-approval", "failed"}


# -- what a sweep reports ----------------------------------------------------------------------------


class ActionLine(BaseModel):
    action_id: int
    kind: str
    target: str
    state: str
    level: str | None = None
    why: str | None = None
    summary: str | None = None
    verdict: str | None = None


class RunResult(BaseModel):
    """One failed run as the sweep (or a webhook) handled it."""

    platform: str
    project: str
    run_id: str
    attempt: int
    url: str
    branch: str | None = None
    by: str = Field(default="sweep", description="sweep, or webhook:<platform>")
    category: str | None = None
    confidence: float | None = None
    summary: str | None = None
    fingerprint: str | None = None
    new_fingerprint: bool = Field(default=False, description="this failure was never seen before this run")
    seen: str | None = None
    route: str | None = None
    halted: bool = False
    outage: bool = False
    actions: list[ActionLine] = Field(default_factory=list)
    needs_person: bool = False
    notified: list[Delivery] = Field(default_factory=list)
    error: str | None = Field(default=None, description="the investigation or heal failed; tried again later")
    gave_up: bool = Field(default=False, description="failed MAX_TRIES times: not tried again")


class FlakyLine(BaseModel):
    test: str
    score: float
    flake_rate: float
    failures: int
    runs: int


class AnomalyLine(BaseModel):
    job: str
    run_id: str
    metric: str
    at: datetime
    observed: float
    expected_low: float
    expected_high: float
    kind: str
    likely_causes: list[str] = Field(default_factory=list)


class RepoDigest(BaseModel):
    repo: str = Field(description="as given: OWNER/REPO, gitlab:GROUP/PROJECT, a URL...")
    platform: str | None = None
    project: str | None = None
    listed_since: datetime | None = None
    listed: int = 0
    already_handled: int = 0
    truncated: bool = Field(default=False, description="the listing hit the limit: older failures were not read")
    runs: list[RunResult] = Field(default_factory=list)
    flaky: list[FlakyLine] = Field(default_factory=list)
    anomalies: list[AnomalyLine] = Field(default_factory=list)
    error: str | None = Field(default=None, description="the repository could not be swept at all")
    warnings: list[str] = Field(default_factory=list)


class Digest(BaseModel):
    started_at: datetime
    finished_at: datetime | None = None
    dry_run: bool = True
    repos: list[RepoDigest] = Field(default_factory=list)
    publish_errors: int = Field(default=0, description="events the bus refused (logged)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    @property
    def runs(self) -> list[RunResult]:
        return [run for repo in self.repos for run in repo.runs]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def investigated(self) -> int:
        return sum(1 for run in self.runs if run.error is None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def new_fingerprints(self) -> list[str]:
        return list(dict.fromkeys(r.fingerprint for r in self.runs if r.new_fingerprint and r.fingerprint))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def actions_by_state(self) -> dict[str, int]:
        return dict(Counter(a.state for run in self.runs for a in run.actions).most_common())

    @property
    def empty(self) -> bool:
        """Nothing new: no run handled and no repository in error."""
        return not self.runs and not any(repo.error for repo in self.repos)

    def to_markdown(self) -> str:
        return render_markdown(self)


# -- the run claims and the watermark -----------------------------------------------------------------


class Candidate(BaseModel):
    """A failed run to handle, from a sweep's listing or a webhook."""

    platform: Platform
    base_url: str
    project: str
    run_id: str
    attempt: int = 1
    url: str
    branch: str | None = None
    when: datetime | None = Field(default=None, description="when the run entered the platform")

    @classmethod
    def of(cls, summary: RunSummary, base_url: str) -> Candidate:
        return cls(
            platform=Platform(summary.platform),
            base_url=base_url,
            project=summary.project,
            run_id=summary.id,
            attempt=summary.attempt or 1,
            url=summary.url or "",
            branch=summary.branch,
            when=entered(summary),
        )

    def event_ref(self) -> EventRunRef:
        return EventRunRef(
            platform=str(self.platform),
            project=self.project,
            run_id=self.run_id,
            url=self.url or None,
            branch=self.branch,
            attempt=self.attempt,
        )


class Claim(BaseModel):
    """The state of one run in the ledger (the claim row's ``position``, as JSON)."""

    state: Literal["claimed", "done", "failed"]
    tries: int = 1
    by: str = "sweep"
    error: str | None = None

    @property
    def retryable(self) -> bool:
        return self.state == "failed" and self.tries < MAX_TRIES


class Ledger:
    """Which failed runs have been handled, and each repository's sweep watermark."""

    def __init__(self, store: HistoryStore) -> None:
        self._store = store

    @classmethod
    def open(cls, settings: Settings) -> Ledger:
        from cimedic.store.history import HistoryStore

        return cls(HistoryStore.open(settings.effective_database_url))

    @property
    def engine(self) -> Engine:
        return self._store.engine

    @staticmethod
    def _key(c: Candidate) -> dict[str, str]:
        from cimedic.store import history_tables as t
        from cimedic.store.history_write import clip_text

        return {
            "platform": clip_text(str(c.platform), t.PLATFORM_MAX) or "",
            "project": clip_text(c.project, t.PROJECT_MAX) or "",
            "source": f"{RUN_SOURCE}{c.run_id}:{c.attempt}"[: t.CURSOR_SOURCE_MAX],
        }

    def get(self, c: Candidate) -> Claim | None:
        from sqlalchemy import select

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C

        key = self._key(c)
        query = select(C.position).where(
            C.platform == key["platform"], C.project == key["project"], C.source == key["source"]
        )
        with transaction(self.engine) as conn:
            position = conn.execute(query).scalar_one_or_none()
        return _claim(position) if position is not None else None

    def handled(self, c: Candidate) -> bool:
        """Claimed by someone and not waiting for another try."""
        claim = self.get(c)
        return claim is not None and not claim.retryable

    def claim(self, c: Candidate, by: str, now: datetime | None = None) -> int:
        """Win the right to handle ``c``: which try this is (1, 2...), or 0 when it is not ours to do."""
        from sqlalchemy import select, update

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C
        from cimedic.store.history_write import dialect_insert

        now = now or datetime.now(UTC)
        key = self._key(c)
        first = Claim(state="claimed", tries=1, by=by)
        with transaction(self.engine, write=True) as conn:
            inserted = conn.execute(
                dialect_insert(conn, C)
                .values(**key, position=first.model_dump_json(), position_at=c.when, updated_at=now)
                .on_conflict_do_nothing(index_elements=["platform", "project", "source"])
            )
            if inserted.rowcount == 1:
                return 1
            where = (C.platform == key["platform"], C.project == key["project"], C.source == key["source"])
            row = conn.execute(select(C.position, C.updated_at).where(*where)).one_or_none()
            if row is None:
                return 0
            old = _claim(row.position)
            stale = old.state == "claimed" and row.updated_at is not None and now - row.updated_at > CLAIM_TTL
            if not (old.retryable or stale):
                return 0
            again = Claim(state="claimed", tries=old.tries + 1, by=by)
            # Compare-and-set on the old state: of two processes retrying at once, one wins.
            moved = conn.execute(
                update(C)
                .where(*where, C.position == row.position)
                .values(position=again.model_dump_json(), updated_at=now)
            )
            return again.tries if moved.rowcount == 1 else 0

    def finish(self, c: Candidate, tries: int, by: str, error: str | None = None) -> Claim:
        """Record how the claimed run ended: done, or failed (tried again while tries remain)."""
        from sqlalchemy import update

        from cimedic.store.db import transaction
        from cimedic.store.history_tables import IngestCursorRow as C

        key = self._key(c)
        claim = Claim(state="failed" if error else "done", tries=tries, by=by, error=error)
        with transaction(self.engine, write=True) as conn:
            conn.execute(
                update(C)
                .where(C.platform == key["platform"], C.project == key["project"], C.source == key["source"])
                .values(position=claim.model_dump_json(), updated_at=datetime.now(UTC))
            )
        return claim

    def watermark(self, platform: str, project: str) -> datetime | None:
        cursor = self._store.cursor(platform, project, WATERMARK_SOURCE)
        return cursor.position_at if cursor is not None else None

    def set_watermark(self, platform: str, project: str, at: datetime) -> None:
        from cimedic.store.history_write import Cursor

        self._store.set_cursor(Cursor(platform=platform, project=project, source=WATERMARK_SOURCE, position_at=at))


def _claim(position: str) -> Claim:
    try:
        return Claim.model_validate_json(position)
    except ValueError:  # unreadable: treat as done rather than investigate again forever
        return Claim(state="done", tries=MAX_TRIES, error="unreadable claim")


def entered(summary: RunSummary) -> datetime | None:
    """When the run entered the platform: the earliest time it has (what listings filter on)."""
    times = [t for t in (summary.queued_at, summary.started_at, summary.finished_at) if t is not None]
    return min(times) if times else None


# -- defaults resolved at call time -------------------------------------------------------------------


class BusPublisher:
    """``Bus.from_settings(settings).publish``, with one Bus per thread (a Bus is not thread-safe);
    kombu is imported on the first event. ``close`` releases every connection made."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()
        self._buses: list[Bus] = []

    def __call__(self, event: Event) -> None:
        bus: Bus | None = getattr(self._local, "bus", None)
        if bus is None:
            from cimedic.bus.bus import Bus

            bus = self._local.bus = Bus.from_settings(self._settings)
            with self._lock:
                self._buses.append(bus)
        bus.publish(event)

    def close(self) -> None:
        with self._lock:
            buses, self._buses = self._buses, []
        for bus in buses:
            try:
                bus.close()
            except Exception as exc:  # closing a connection that already broke
                log.debug("bus close: %s", exc)


def default_publish(settings: Settings) -> BusPublisher:
    """The configured bus (``settings.bus_url``; in-process memory by default)."""
    return BusPublisher(settings)


def default_notify(settings: Settings) -> Notify:
    """Every channel whose settings are complete (``cimedic.notify.registry``), told at once."""
    from cimedic.notify.registry import broadcast, notifiers

    channels = notifiers(settings)

    def notify(notice: Notice) -> list[Delivery]:
        return broadcast(notice, channels)

    return notify


def default_investigate(*, model: str | None = None, offline: bool = False) -> Investigate:
    """The investigation flow (CrewAI imported on first use), recording fingerprints and history."""

    def investigate(url: str) -> Diagnosis:
        from cimedic.crew.flow import investigate as run_flow

        return run_flow(url, model=model, offline=offline, record=True)

    return investigate


def safe_publish(publish: Publish, event: Event) -> bool:
    try:
        publish(event)
        return True
    except Exception as exc:  # the bus being down must not stop a sweep
        log.warning("event %s not published: %s", getattr(event, "type", "?"), redact(one_line(exc)))
        return False


def safe_notify(notify: Notify, notice: Notice) -> list[Delivery]:
    try:
        return list(notify(notice))
    except Exception as exc:  # a channel problem is reported, never raised
        detail = redact(one_line(exc))[:ERROR_MAX]
        log.warning("notice %r not sent: %s", notice.title, detail)
        return [Delivery(channel="notify", ok=False, detail=detail)]


# -- one run --------------------------------------------------------------------------------------------


class _Publisher:
    """Counts what the bus refused, for the digest."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.errors = 0

    def __call__(self, event: Event) -> None:
        if not safe_publish(self.publish, event):
            self.errors += 1


def process_run(
    cand: Candidate,
    *,
    settings: Settings,
    ledger: Ledger,
    execute: bool = False,
    publish: Publish,
    notify: Notify,
    investigate: Investigate,
    by: str = "sweep",
    announce: bool = True,
) -> RunResult | None:
    """Claim, investigate, heal, publish and notify one failed run; None when it was not ours to do.

    ``announce``: publish ``run.failed`` first (a webhook receiver that published it already says False).
    Errors come back in the result (and the claim is released for another try), never raised.
    """
    tries = ledger.claim(cand, by)
    if not tries:
        return None
    result = RunResult(
        platform=str(cand.platform),
        project=cand.project,
        run_id=cand.run_id,
        attempt=cand.attempt,
        url=cand.url,
        branch=cand.branch,
        by=by,
    )
    ref = cand.event_ref()
    if announce and tries == 1:  # a retried run was announced on its first try
        safe_publish(publish, RunFailed(run=ref, source=by))
    try:
        if not cand.url:
            raise CimedicError(f"run {cand.run_id}: the platform gave no URL for it")
        diag = investigate(cand.url)
        _describe(result, diag)
        safe_publish(
            publish,
            DiagnosisReady(
                run=ref,
                source=by,
                category=str(diag.category),
                confidence=diag.confidence,
                summary=result.summary or "",
                fingerprint=result.fingerprint,
                route=diag.route,
            ),
        )
        report = _heal(cand, diag, settings, execute)
    except Exception as exc:  # one run's failure is data; the others still get handled
        result.error = redact(one_line(exc))[:ERROR_MAX]
        result.gave_up = tries >= MAX_TRIES
        ledger.finish(cand, tries, by, result.error)
        log.warning("run %s of %s not handled (try %d): %s", cand.run_id, cand.project, tries, result.error)
        return result
    _record_actions(result, report, ref, by, publish)
    result.needs_person = needs_person(result)
    if result.needs_person:
        result.notified = safe_notify(notify, failure_notice(result, diag, dry_run=not execute))
    ledger.finish(cand, tries, by)
    return result


def _describe(result: RunResult, diag: Diagnosis) -> None:
    fp = diag.fingerprint
    result.category = str(diag.category)
    result.confidence = diag.confidence
    result.summary = redact(diag.summary)
    result.fingerprint = fp.id if fp else None
    result.new_fingerprint = fp is not None and fp.count == 1
    result.seen = fp.seen if fp else None
    result.route = diag.route
    if diag.run is not None:
        result.branch = diag.run.branch or result.branch


def _heal(cand: Candidate, diag: Diagnosis, settings: Settings, execute: bool) -> HealReport:
    from cimedic.heal.audit import AuditLog
    from cimedic.heal.base import HealContext
    from cimedic.heal.engine import heal
    from cimedic.heal.policy import load_policy
    from cimedic.tools.ci.urls import parse_run_url

    ctx = HealContext(diag, settings, ref=parse_run_url(cand.url, settings), dry_run=not execute)
    return heal(diag, ctx, load_policy(settings.policy_path), AuditLog(settings))


def _record_actions(result: RunResult, report: HealReport, ref: EventRunRef, by: str, publish: Publish) -> None:
    result.halted, result.outage = report.halted, report.outage
    for step in report.steps:
        line = ActionLine(
            action_id=step.action_id,
            kind=str(step.kind),
            target=step.target,
            state=step.state,
            level=step.level,
            why=step.why,
            summary=step.summary,
            verdict=step.verdict,
        )
        result.actions.append(line)
        safe_publish(
            publish,
            ActionProposed(
                action_id=line.action_id,
                run=ref,
                source=by,
                kind=line.kind,
                target=line.target,
                level=line.level,
                state=line.state,
            ),
        )
        if line.state in ("executed", "failed"):
            detail = line.why or (step.outcome or {}).get("detail", "") or ""
            safe_publish(
                publish,
                ActionExecuted(
                    action_id=line.action_id,
                    source=by,
                    kind=line.kind,
                    target=line.target,
                    state=line.state,
                    verdict=line.verdict,
                    detail=str(detail)[:ERROR_MAX],
                ),
            )


def needs_person(result: RunResult) -> bool:
    """Nothing automatic is dealing with it: no remediation executed, one failed or awaits approval,
    an outage, or self-healing halted. A dry run handles nothing, so it always tells a person."""
    remediations = [a for a in result.actions if a.kind != "notify"]
    if result.outage or result.halted or any(a.state in _PERSON for a in remediations):
        return True
    return not any(a.state in _HANDLED for a in remediations)


def failure_notice(result: RunResult, diag: Diagnosis, *, dry_run: bool) -> Notice:
    from cimedic.report import to_markdown

    failed_rollback = any(a.kind == "rollback" and a.state == "failed" for a in result.actions)
    awaiting = [a for a in result.actions if a.state == "awaiting-approval"]
    severity = Severity.CRITICAL if failed_rollback else Severity.WARNING if awaiting else Severity.ERROR
    lines = [f"**{result.category}** failure ({(result.confidence or 0):.0%}): {result.summary}"]
    if result.seen:
        lines.append(
            f"Fingerprint `{result.fingerprint}`: {result.seen}" + (" (new)" if result.new_fingerprint else "")
        )
    if diag.evidence:
        top = diag.evidence[0]
        lines += ["", f"`{top.path}:{top.line}`", "```text", redact(top.text.strip())[:ERROR_MAX], "```"]
    if result.outage:
        lines.append("Outage: too many jobs failed for a flake; only notifications go out.")
    if result.halted:
        lines.append("Self-healing is halted: nothing is executed.")
    if result.actions:
        lines += ["", "Actions" + (" (dry run)" if dry_run else "") + ":"]
        for a in result.actions:
            lines.append(f"- #{a.action_id} {a.kind} `{a.target}`: {a.state}" + (f" ({a.why})" if a.why else ""))
        lines += [f"Approve #{a.action_id}: `cimedic actions approve {a.action_id} --execute`" for a in awaiting]
    else:
        lines.append("No remediation proposed: a person has to look.")
    fields = {"repo": result.project, "category": str(result.category), "confidence": f"{result.confidence or 0:.2f}"}
    if result.branch:
        fields["branch"] = result.branch
    if result.fingerprint:
        fields["fingerprint"] = result.fingerprint
    return Notice(
        title=redact(f"CI failure in {result.project}: {result.category} (run {result.run_id})")[:300],
        text=redact("\n".join(lines)),
        severity=severity,
        dedup_key=f"fingerprint:{result.fingerprint}"
        if result.fingerprint
        else f"run:{result.project}:{result.run_id}",
        url=result.url or None,
        fields=fields,
        attachment=redact(to_markdown(diag)),
    )


# -- the sweep ------------------------------------------------------------------------------------------


def sweep(
    repos: Sequence[str],
    *,
    settings: Settings,
    execute: bool = False,
    publish: Publish | None = None,
    notify: Notify | None = None,
    since: datetime | None = None,
    investigate: Investigate | None = None,
    offline: bool = False,
    model: str | None = None,
    limit: int = DEFAULT_LIMIT,
    lookback: timedelta = DEFAULT_LOOKBACK,
    post_digest: bool = False,
    insights: Literal["always", "new", "never"] = "always",
) -> Digest:
    """Handle every new failed run of ``repos``; the digest of what was found and done.

    ``since`` lists from that time (runs already handled are still skipped); by default each
    repository lists from its watermark, or ``lookback`` ago on its first sweep. ``post_digest``
    sends the digest to the notification channels when the sweep handled anything. ``insights``:
    the flaky tests and anomalies of every repository swept, of those with new failures only (what
    a frequent sweep whose digest is only posted when something is new needs), or none.
    """
    started = datetime.now(UTC)
    own_bus = None
    if publish is None:
        publish = own_bus = default_publish(settings)
    try:
        return _sweep_all(
            repos,
            settings=settings,
            execute=execute,
            publish=publish,
            notify=notify if notify is not None else default_notify(settings),
            since=since,
            investigate=investigate or default_investigate(model=model, offline=offline),
            limit=limit,
            lookback=lookback,
            post_digest=post_digest,
            insights=insights,
            started=started,
        )
    finally:
        if own_bus is not None:
            own_bus.close()


def _sweep_all(
    repos: Sequence[str],
    *,
    settings: Settings,
    execute: bool,
    publish: Publish,
    notify: Notify,
    since: datetime | None,
    investigate: Investigate,
    limit: int,
    lookback: timedelta,
    post_digest: bool,
    insights: Literal["always", "new", "never"],
    started: datetime,
) -> Digest:
    publisher = _Publisher(publish)
    tell = notify
    digest = Digest(started_at=started, dry_run=not execute)
    ledger = Ledger.open(settings)
    for repo in dict.fromkeys(repos):
        began = time.perf_counter()
        entry = _sweep_repo(
            repo,
            settings=settings,
            ledger=ledger,
            execute=execute,
            publish=publisher,
            notify=tell,
            investigate=investigate,
            since=since,
            limit=limit,
            lookback=lookback,
            now=started,
        )
        wanted = insights == "always" or (insights == "new" and bool(entry.runs))
        if wanted and entry.project is not None and entry.error is None:
            _insights(entry, settings)
        digest.repos.append(entry)
        log.info("swept %s in %.1f s: %d new failed run(s)", repo, time.perf_counter() - began, len(entry.runs))
    digest.publish_errors = publisher.errors
    digest.finished_at = datetime.now(UTC)
    if post_digest and not digest.empty:
        safe_notify(tell, digest_notice(digest))
    return digest


def _sweep_repo(
    repo: str,
    *,
    settings: Settings,
    ledger: Ledger,
    execute: bool,
    publish: Publish,
    notify: Notify,
    investigate: Investigate,
    since: datetime | None,
    limit: int,
    lookback: timedelta,
    now: datetime,
) -> RepoDigest:
    from cimedic.tools.ci.base import RunFilter
    from cimedic.tools.ci.providers import provider_for
    from cimedic.tools.ci.urls import parse_project

    entry = RepoDigest(repo=repo)
    try:
        platform, base_url, project = parse_project(repo, settings)
        entry.platform, entry.project = str(platform), project
        mark = ledger.watermark(str(platform), project)
        # ``lookback`` before the watermark too: a run that started before the newest failure seen
        # may still have been running then. Runs listed again are skipped by their claims.
        start = since or (mark or now) - lookback
        entry.listed_since = start
        provider = provider_for(platform, base_url, settings)
        listed = list(_take(provider.runs(project, RunFilter(status=Status.FAILURE, since=start, limit=limit)), limit))
    except CimedicError as exc:
        entry.error = redact(one_line(exc))[:ERROR_MAX]
        log.warning("cannot sweep %s: %s", repo, entry.error)
        return entry
    entry.listed = len(listed)
    entry.truncated = len(listed) >= limit
    candidates = sorted((Candidate.of(s, base_url) for s in listed), key=lambda c: (c.when or start, c.run_id))
    retry_from: datetime | None = None
    for cand in candidates:
        result = process_run(
            cand,
            settings=settings,
            ledger=ledger,
            execute=execute,
            publish=publish,
            notify=notify,
            investigate=investigate,
        )
        if result is None:
            entry.already_handled += 1
            continue
        entry.runs.append(result)
        if result.error and not result.gave_up and retry_from is None:
            retry_from = cand.when or start
    # The watermark: the oldest run to try again, else the newest run listed; a truncated listing
    # does not move it, so the runs it did not reach are listed again.
    newest = max((c.when for c in candidates if c.when is not None), default=None)
    moved = None if entry.truncated else (retry_from or newest)
    if moved is not None and moved != mark:
        ledger.set_watermark(str(platform), project, moved)
    return entry


def _take(items: Iterable[RunSummary], limit: int) -> Iterable[RunSummary]:
    for count, item in enumerate(items, start=1):
        yield item
        if count >= limit:
            return


def _insights(entry: RepoDigest, settings: Settings) -> None:
    """Top flaky tests and recent anomalies of the repository, when it has history."""
    from cimedic.store.history import HistoryStore

    assert entry.project is not None
    try:
        store = HistoryStore.open(settings.effective_database_url)
        tests = store.tests_frame(entry.project)
        if not tests.empty:
            from cimedic.tools.flaky import rank_flaky

            entry.flaky = [
                FlakyLine(test=t.test, score=t.score, flake_rate=t.flake_rate, failures=t.failures, runs=t.runs)
                for t in rank_flaky(tests)[:TOP_FLAKY]
            ]
        runs = store.runs_frame(entry.project)
        if not runs.empty:
            from cimedic.tools.anomaly import find_anomalies

            found = find_anomalies(runs)
            since = entry.listed_since
            recent = [a for a in found if since is None or a.at >= since] if found else []
            entry.anomalies = [
                AnomalyLine(
                    job=a.job,
                    run_id=a.run_id,
                    metric=a.metric,
                    at=a.at,
                    observed=a.observed,
                    expected_low=a.expected_low,
                    expected_high=a.expected_high,
                    kind=a.kind,
                    likely_causes=a.likely_causes,
                )
                for a in sorted(recent, key=lambda a: a.at, reverse=True)[:TOP_ANOMALIES]
            ]
    except Exception as exc:  # insights decorate the digest; their failure must not lose it
        entry.warnings.append(redact(f"insights not computed: {one_line(exc)}")[:ERROR_MAX])


# -- the digest as text ---------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(digest: Digest) -> str:
    mode = "dry run" if digest.dry_run else "execute"
    out = [f"## cimedic sweep {digest.started_at:%Y-%m-%d %H:%M} UTC ({mode})", ""]
    states = ", ".join(f"{state} {n}" for state, n in digest.actions_by_state.items()) or "none"
    failed = sum(1 for r in digest.runs if r.error)
    out.append(
        f"**{digest.investigated}** new failure(s) investigated across {len(digest.repos)} repo(s)"
        + (f", {failed} could not be" if failed else "")
        + f"; **{len(digest.new_fingerprints)}** new fingerprint(s); actions: {states}."
    )
    if digest.publish_errors:
        out.append(f"{digest.publish_errors} event(s) could not be published.")
    for repo in digest.repos:
        out += ["", f"### {_cell(repo.project or repo.repo)}", ""]
        if repo.error:
            out.append(f"Not swept: {_cell(repo.error)}")
            continue
        since = f" since {repo.listed_since:%Y-%m-%d %H:%M}" if repo.listed_since else ""
        out.append(
            f"{repo.listed} failed run(s) listed{since}: {len(repo.runs)} new, {repo.already_handled} already handled"
            + (" (listing truncated at the limit)" if repo.truncated else "")
            + "."
        )
        if repo.runs:
            out += ["", "| run | category | summary | fingerprint | actions |", "|---|---|---|---|---|"]
            for r in repo.runs:
                run = f"[{_cell(r.run_id)}]({r.url})" if r.url else _cell(r.run_id)
                if r.error:
                    out.append(
                        f"| {run} | error | {_cell(r.error)} |  | {'gave up' if r.gave_up else 'retried later'} |"
                    )
                    continue
                fp = f"`{r.fingerprint}`" + (" **new**" if r.new_fingerprint else "") if r.fingerprint else ""
                acts = "; ".join(f"#{a.action_id} {a.kind} {_cell(a.target)}: {a.state}" for a in r.actions) or "none"
                if r.needs_person:
                    acts += " (person notified)"
                category = f"{r.category} ({(r.confidence or 0):.0%})"
                out.append(f"| {run} | {category} | {_cell(r.summary or '')} | {fp} | {acts} |")
        new = [r for r in repo.runs if r.new_fingerprint and r.fingerprint]
        if new:
            out += ["", "New failure fingerprints (first seen):"]
            out += [f"- `{r.fingerprint}` {r.category}: {_cell(r.summary or '')}" for r in new]
        if repo.flaky:
            out += ["", "Top flaky tests:"]
            out += [
                f"- `{_cell(t.test)}` p(flaky) {t.score:.2f}, flake rate {t.flake_rate:.1%} ({t.failures}/{t.runs})"
                for t in repo.flaky
            ]
        if repo.anomalies:
            out += ["", "Anomalies:"]
            out += [
                f"- {a.at:%Y-%m-%d %H:%M} {_cell(a.job)} run {_cell(a.run_id)}: {a.metric} {a.observed:.0f} "
                f"(expected {a.expected_low:.0f}–{a.expected_high:.0f}, {a.kind})"
                + (f"; likely: {_cell('; '.join(a.likely_causes))}" if a.likely_causes else "")
                for a in repo.anomalies
            ]
        for warning in repo.warnings:
            out.append(f"_{_cell(warning)}_")
    return "\n".join(out) + "\n"


def digest_notice(digest: Digest) -> Notice:
    new = len(digest.new_fingerprints)
    return Notice(
        title=f"cimedic sweep: {digest.investigated} new failure(s), {new} new fingerprint(s)",
        text=digest.to_markdown(),
        severity=Severity.WARNING if any(r.needs_person for r in digest.runs) else Severity.INFO,
        dedup_key=f"sweep:{digest.started_at:%Y%m%dT%H%M%S}",
        fields={"repos": str(len(digest.repos)), "investigated": str(digest.investigated), "new": str(new)},
    )
