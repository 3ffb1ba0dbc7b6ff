"""LLM spend, one row per investigation that called a model: what per-project budgets are summed from.

Append-only on purpose: concurrent investigations (a sweep's workers, the Slack bot) each insert
their own row, so no read-modify-write races over a running total.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cimedic.store.db import Base, UTCDateTime
from cimedic.store.history_tables import PROJECT_MAX

MODEL_MAX = 200


class LLMSpendRow(Base):
    __tablename__ = "llm_spend"
    __table_args__ = (Index("ix_llm_spend_project_at", "project", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(PROJECT_MAX))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    model: Mapped[str] = mapped_column(String(MODEL_MAX))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
