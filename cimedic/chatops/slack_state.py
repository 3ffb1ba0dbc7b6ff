"""What a posted Slack message refers to, and what people said about its diagnosis.

A button can carry 2,000 characters, not a diagnosis: each posted diagnosis is kept as one JSON
file under ``$CIMEDIC_HOME/chatops/slack`` named by a random key, and the buttons carry that key.
The cause verdict ("Right cause" / "Wrong cause") is a second file created atomically (hard link:
it exists completely or not at all), so of two clicks exactly one is recorded.

Feedback goes where it teaches something:

* every verdict is appended to ``$CIMEDIC_HOME/chatops/feedback.jsonl`` as a ``feedback.given``
  event (:class:`cimedic.bus.events.FeedbackGiven`) and published on the event bus;
* a right cause is remembered as an incident (``cimedic learn`` would do the same), so the next
  similar failure shows it;
* a wrong cause counts every action proposed for it and not tried as a wrong proposal for the
  learner (``approvals.feedback``). A right cause does not count them as right: a confirmed cause
  says nothing about whether a fix worked, which only verification (or an explicit action
  feedback) may say.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from cimedic.bus.events import FeedbackGiven
from cimedic.heal.approvals import feedback as action_feedback
from cimedic.heal.audit import AuditLog, State
from cimedic.models import Diagnosis
from cimedic.remote import is_url
from cimedic.settings import Settings

KEY = re.compile(r"[0-9a-f]{32}")
# Actions a wrong diagnosis makes wrong proposals: those nobody tried or judged yet.
UNTRIED = (State.PROPOSED, State.AWAITING, State.DRY_RUN, State.SKIPPED)


def _now() -> datetime:
    return datetime.now(UTC)


class Post(BaseModel):
    key: str = Field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = Field(default_factory=_now)
    target: str = Field(description="what was investigated: a run URL or a path on the bot's server")
    label: str = Field(description="what the person asked for, as shown")
    requested_by: str
    diagnosis: Diagnosis
    actions: list[int] = Field(default_factory=list)


class CauseVerdict(BaseModel):
    right: bool
    by: str = Field(description="slack:<user id>")
    at: datetime = Field(default_factory=_now)


def chatops_dir(settings: Settings) -> Path:
    return settings.home / "chatops"


class PostStore:
    def __init__(self, settings: Settings) -> None:
        self.dir = chatops_dir(settings) / "slack"

    def _path(self, key: str, suffix: str) -> Path | None:
        return self.dir / f"{key}{suffix}" if KEY.fullmatch(key) else None

    def save(self, post: Post) -> None:
        path = self._path(post.key, ".json")
        assert path is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.dir, suffix=".tmp", delete=False) as fh:
            fh.write(post.model_dump_json())
        os.replace(fh.name, path)

    def load(self, key: str) -> Post | None:
        path = self._path(key, ".json")
        try:
            return Post.model_validate_json(path.read_bytes()) if path else None
        except (OSError, ValidationError):
            return None

    def verdict(self, key: str) -> CauseVerdict | None:
        path = self._path(key, ".cause.json")
        try:
            return CauseVerdict.model_validate_json(path.read_bytes()) if path else None
        except (OSError, ValidationError):
            return None

    def decide(self, key: str, verdict: CauseVerdict) -> CauseVerdict | None:
        """Record the verdict unless one exists: None when this call recorded it, else the earlier one."""
        path = self._path(key, ".cause.json")
        assert path is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.dir, suffix=".tmp", delete=False) as fh:
            fh.write(verdict.model_dump_json())
        try:
            os.link(fh.name, path)
        except FileExistsError:
            return self.verdict(key) or verdict
        finally:
            os.unlink(fh.name)
        return None

    def undecide(self, key: str) -> None:
        path = self._path(key, ".cause.json")
        if path is not None:
            path.unlink(missing_ok=True)


def append_feedback(settings: Settings, event: FeedbackGiven) -> None:
    """Keep the verdict (a local journal) and put it on the event bus for other workers."""
    path = chatops_dir(settings) / "feedback.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(event.model_dump_json() + "\n")
    from cimedic.bus.bus import Bus

    with Bus.from_settings(settings) as bus:
        bus.publish(event)


def _fix(post: Post, audit: AuditLog) -> str:
    records = [r for r in (audit.get(i) for i in post.actions) if r is not None and r.state == State.EXECUTED]
    if records:
        return "; ".join(f"{r.kind} {r.target}" + (f" ({r.verdict})" if r.verdict else "") for r in records)
    if post.diagnosis.matched_rules:
        return post.diagnosis.matched_rules[0].remediation
    return "not recorded yet (the cause was confirmed in Slack)"


def record_cause_feedback(settings: Settings, audit: AuditLog, post: Post, verdict: CauseVerdict) -> str:
    """Teach the incident memory / the learner; returns one line saying what was recorded."""
    diag = post.diagnosis
    subject = f"diagnosis:{diag.fingerprint.id}" if diag.fingerprint else f"diagnosis:slack-{post.key}"
    append_feedback(settings, FeedbackGiven(source="slack", subject=subject, right=verdict.right, by=verdict.by))
    if verdict.right:
        from cimedic.memory.store import Incident, IncidentStore
        from cimedic.recall import failure_text

        incident = Incident(
            category=diag.category,
            cause=diag.root_cause or diag.summary,
            fix=_fix(post, audit),
            outcome="cause confirmed in Slack",
            title=diag.summary,
            excerpt=failure_text(diag),
            fingerprint=diag.fingerprint.id if diag.fingerprint else None,
            links=[post.target] if is_url(post.target) else [],
            source=post.target,
        )
        stored = IncidentStore(settings).add(incident)
        return f"remembered as incident {stored.id}"
    wrong = [r.id for r in (audit.get(i) for i in post.actions) if r is not None and r.state in UNTRIED]
    for action_id in wrong:
        action_feedback(audit, action_id, False, verdict.by)
    return f"{len(wrong)} proposed action(s) counted as wrong proposals"
