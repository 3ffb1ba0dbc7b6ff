"""The typed events cimedic's parts exchange; every event is JSON on the wire, validated on receipt.

An event carries ids and small facts, not logs: consumers that need more read the store. ``id``
makes redelivery harmless: a consumer that has seen an id can drop the repeat.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


def _id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    id: str = Field(default_factory=_id)
    at: datetime = Field(default_factory=_now)
    source: str = Field(default="cimedic", description="who emitted it: sweep, webhook:github, slack, heal...")


class RunRef(BaseModel):
    platform: str
    project: str
    run_id: str
    url: str | None = None
    branch: str | None = None
    attempt: int | None = None


class RunCompleted(EventBase):
    type: Literal["run.completed"] = "run.completed"
    run: RunRef
    status: str


class RunFailed(EventBase):
    type: Literal["run.failed"] = "run.failed"
    run: RunRef


class DiagnosisReady(EventBase):
    type: Literal["diagnosis.ready"] = "diagnosis.ready"
    run: RunRef
    category: str
    confidence: float
    summary: str
    fingerprint: str | None = None
    route: str = "offline"


class ActionProposed(EventBase):
    type: Literal["action.proposed"] = "action.proposed"
    action_id: int
    run: RunRef | None = None
    kind: str
    target: str
    level: str | None = None
    state: str


class ActionExecuted(EventBase):
    type: Literal["action.executed"] = "action.executed"
    action_id: int
    kind: str
    target: str
    state: str
    verdict: str | None = None
    detail: str = ""


class FeedbackGiven(EventBase):
    type: Literal["feedback.given"] = "feedback.given"
    subject: str = Field(description="action:<id> or diagnosis:<fingerprint>")
    right: bool
    by: str


Event = Annotated[
    RunCompleted | RunFailed | DiagnosisReady | ActionProposed | ActionExecuted | FeedbackGiven,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse(data: str | bytes | dict[str, Any]) -> Event:
    """An event from JSON (or its dict); raises pydantic.ValidationError for anything else."""
    if isinstance(data, dict):
        return _ADAPTER.validate_python(data)
    return _ADAPTER.validate_json(data)
