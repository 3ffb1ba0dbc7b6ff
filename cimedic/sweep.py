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
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from cimedic.errors import CimedicError, one_line
from cimedic.models import Status
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.sweep_digest import AnomalyLine, Digest, FlakyLine, RepoDigest, digest_notice
from cimedic.sweep_ledger import Candidate, Ledger
from cimedic.sweep_run import (
    ERROR_MAX,
    CountingPublisher,
    Investigate,
    Notify,
    Publish,
    default_investigate,
    default_notify,
    default_publish,
    process_run,
    safe_notify,
)

if TYPE_CHECKING:
    from cimedic.tools.ci.base import RunSummary

log = logging.getLogger("cimedic.sweep")


DEFAULT_LOOKBACK = timedelta(hours=24)
DEFAULT_LIMIT = 50
TOP_FLAKY = 5
TOP_ANOMALIES = 5


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
    publisher = CountingPublisher(publish)
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
