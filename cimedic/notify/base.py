"""One interface for every channel that tells people something.

A ``Notice`` is what to say (already redacted by whoever made it: it goes outside); each channel
renders it its own way. ``send`` never raises for a channel failure: it returns a ``Delivery``
saying what happened, so one broken channel cannot stop the others (errors as data).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"  # e.g. a failed rollback: pages someone


class Notice(BaseModel):
    title: str = Field(max_length=300)
    text: str = Field(description="markdown body")
    severity: Severity = Severity.INFO
    # Deduplication: the same failure (fingerprint) or the same action updates instead of repeating.
    dedup_key: str | None = None
    url: str | None = Field(default=None, description="the run, or the PR/MR")
    fields: dict[str, str] = Field(default_factory=dict, description="short facts: category, confidence, repo...")
    attachment: str | None = Field(default=None, description="the full RCA report (markdown), for Jira/email")


class Delivery(BaseModel):
    channel: str
    ok: bool
    detail: str = ""
    ref: str | None = Field(default=None, description="message ts, ticket key, incident dedup key...")


class Notifier(Protocol):
    name: str

    def send(self, notice: Notice) -> Delivery: ...
