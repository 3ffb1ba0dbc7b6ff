"""The journal: the incident memory's source of truth, one incident as JSON per line, append-only.

Plain text a person can read, back up, diff and repair; the Chroma index is only derived from it.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from cimedic.errors import CimedicError, one_line
from cimedic.models import Category
from cimedic.redact import redact
from cimedic.tools.cause.features import Signals


class StoreError(CimedicError):
    """The incident memory cannot be used as it is; the one-line message says how to repair it."""


def new_incident_id() -> str:
    return f"inc-{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC)


class Incident(BaseModel):
    """A resolved CI failure: what it looked like, what caused it, what fixed it."""

    id: str = Field(default_factory=new_incident_id)
    created_at: datetime = Field(default_factory=_now)
    category: Category
    cause: str
    fix: str
    outcome: str = "resolved"
    title: str = Field(description="the diagnosis summary")
    excerpt: str = Field(description="top evidence and excerpt of the failed run, redacted")
    fingerprint: str | None = None
    links: list[str] = Field(default_factory=list)
    source: str = Field(description="what the incident was learned from")
    # The classifier's view of the failure (already redacted), so `cimedic train` can learn from it.
    signals: Signals | None = None

    def redacted(self) -> Incident:
        """A copy safe to store: whoever built it, no secret in free text reaches the disk or the index."""
        text = {name: redact(getattr(self, name)) for name in ("cause", "fix", "outcome", "title", "excerpt", "source")}
        return self.model_copy(update=text | {"links": [redact(link) for link in self.links]})


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Incident]:
        """Incidents by id in journal order; a later line for the same id replaces the earlier one."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"{self.path}: unreadable ({one_line(exc)})") from exc
        incidents: dict[str, Incident] = {}
        # What follows the last newline is a write still in progress (or torn by a crash): never acknowledged.
        for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
            if not raw.strip():
                continue
            try:
                inc = Incident.model_validate_json(raw)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
                raise StoreError(
                    f"{self.path}:{number}: malformed incident record ({' '.join(reason.split())}); "
                    "fix or delete that line, then run `cimedic incidents reindex`"
                ) from exc
            incidents[inc.id] = inc
        return incidents

    def append(self, incident: Incident) -> None:
        """Append one line, durably (fsync) before returning. The caller holds the store's lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("a+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        # A torn tail from an interrupted write (no other writer can be active under the
                        # lock): never acknowledged, and the new record must start its own line.
                        fh.seek(0)
                        fh.truncate(fh.read().rfind(b"\n") + 1)
                fh.write(incident.model_dump_json().encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot append ({one_line(exc)})") from exc
