"""Per-project LLM budgets: spend is recorded per investigation and summed per calendar month (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from cimedic.models import LLMUsage
from cimedic.settings import Settings
from cimedic.store.db import create_schema, engine_for, transaction
from cimedic.store.history_tables import PROJECT_MAX
from cimedic.store.spend_tables import MODEL_MAX, LLMSpendRow

LOCAL_PROJECT = "local"


def _month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class Budget:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.effective_database_url)
        create_schema(self.engine)

    def spent(self, project: str, now: datetime | None = None) -> tuple[float, int]:
        """(USD, tokens) spent on ``project`` this month."""
        since = _month_start(now or datetime.now(UTC))
        row = LLMSpendRow
        query = select(
            func.coalesce(func.sum(row.cost_usd), 0.0),
            func.coalesce(func.sum(row.prompt_tokens + row.completion_tokens), 0),
        ).where(row.project == project[:PROJECT_MAX], row.at >= since)
        with transaction(self.engine) as conn:
            usd, tokens = conn.execute(query).one()
        return float(usd or 0.0), int(tokens or 0)

    def exhausted(self, project: str, now: datetime | None = None) -> str | None:
        """Why ``project`` may not call a model now, or None while it is within budget."""
        usd, tokens = self.spent(project, now)
        s = self.settings
        if usd >= s.llm_budget_usd:
            return f"LLM budget for {project} used up this month (${usd:.2f} of ${s.llm_budget_usd:.2f})"
        if tokens >= s.llm_budget_tokens:
            return f"LLM token budget for {project} used up this month ({tokens} of {s.llm_budget_tokens})"
        return None

    def record(self, project: str, spent: LLMUsage, now: datetime | None = None) -> None:
        values = {
            "project": project[:PROJECT_MAX],
            "at": now or datetime.now(UTC),
            "model": spent.model[:MODEL_MAX],
            "prompt_tokens": spent.prompt_tokens,
            "completion_tokens": spent.completion_tokens,
            "cost_usd": spent.cost_usd,
        }
        with transaction(self.engine, write=True) as conn:
            conn.execute(insert(LLMSpendRow).values(**values))
