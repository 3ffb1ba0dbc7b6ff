"""One failed run: claim, investigate, heal within policy, publish events, tell a person when needed.

Events and notices go through injected callables (``publish``, ``notify``); left out, they resolve at
call time to ``cimedic.bus.bus.Bus`` and ``cimedic.notify.registry``. A failure of either is logged
and counted, never allowed to stop the sweep (errors as data).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cimedic.bus.events import ActionExecuted, ActionProposed, DiagnosisReady, Event, RunFailed
from cimedic.bus.events import RunRef as EventRunRef
from cimedic.errors import CimedicError, one_line
from cimedic.models import Diagnosis
from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.sweep_digest import ActionLine, RunResult
from cimedic.sweep_ledger import MAX_TRIES, Candidate, Ledger

if TYPE_CHECKING:
    from cimedic.bus.bus import Bus
    from cimedic.heal.engine import HealReport

log = logging.getLogger("cimedic.sweep")

Publish = Callable[[Event], None]
Notify = Callable[[Notice], list[Delivery]]
Investigate = Callable[[str], Diagnosis]

ERROR_MAX = 300
# Heal states after which the failure is being dealt with without a person.
_HANDLED = {"executed"}
_PERSON = {"awaiting-approval", "failed"}


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


class CountingPublisher:
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
