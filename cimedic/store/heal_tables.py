"""Self-healing's audit trail: every action proposed, decided, executed and verified, in that order.

``heal_actions`` holds one row per planned action and its current state; ``heal_events`` the
append-only history of how it got there (who decided, which rule, what happened); ``heal_claims``
holds one row per executed idempotency key: inserting it is how a process wins the right to
execute, so concurrent heals of the same run execute once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cimedic.store.db import Base, UTCDateTime
from cimedic.store.history_tables import (
    BRANCH_MAX,
    CATEGORY_MAX,
    FINGERPRINT_MAX,
    PLATFORM_MAX,
    PROJECT_MAX,
    RUN_ID_MAX,
)

KEY_MAX = 500
KIND_MAX = 16
STATE_MAX = 24
ACTOR_MAX = 200


class HealActionRow(Base):
    __tablename__ = "heal_actions"
    __table_args__ = (
        Index("ix_heal_actions_key", "key"),
        Index("ix_heal_actions_project_created", "project", "created_at"),
        Index("ix_heal_actions_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    platform: Mapped[str] = mapped_column(String(PLATFORM_MAX))
    project: Mapped[str] = mapped_column(String(PROJECT_MAX))
    run_id: Mapped[str] = mapped_column(String(RUN_ID_MAX))
    run_url: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(BRANCH_MAX))
    job: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    target: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(KEY_MAX))
    source: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(STATE_MAX))
    level: Mapped[str | None] = mapped_column(String(KIND_MAX))
    rules: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    why: Mapped[str | None] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(CATEGORY_MAX))
    fingerprint: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX))
    step: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verdict: Mapped[str | None] = mapped_column(String(KIND_MAX))
    diagnosis: Mapped[str] = mapped_column(Text)


class HealEventRow(Base):
    __tablename__ = "heal_events"
    __table_args__ = (Index("ix_heal_events_action", "action_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(Integer, ForeignKey("heal_actions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(STATE_MAX))
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX))
    detail: Mapped[str] = mapped_column(Text)


class HealClaimRow(Base):
    __tablename__ = "heal_claims"

    key: Mapped[str] = mapped_column(String(KEY_MAX), primary_key=True)
    action_id: Mapped[int] = mapped_column(Integer, ForeignKey("heal_actions.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
