"""Per-project LLM budgets on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cimedic.crew.budget import Budget
from cimedic.models import LLMUsage
from cimedic.settings import Settings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _budget(db_url: str, usd: float = 1.0, tokens: int = 10_000) -> Budget:
    return Budget(Settings(database_url=db_url, llm_budget_usd=usd, llm_budget_tokens=tokens))


def test_spend_is_summed_per_project_and_calendar_month(db_url: str) -> None:
    budget = _budget(db_url)
    spent = LLMUsage(model="openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=200, requests=3, cost_usd=0.4)
    budget.record("acme/app", spent, now=NOW)
    budget.record("acme/app", spent, now=NOW)
    budget.record("acme/other", spent, now=NOW)
    budget.record("acme/app", spent, now=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))  # last month
    assert budget.spent("acme/app", NOW) == (pytest.approx(0.8), 2400)
    assert budget.exhausted("acme/app", NOW) is None
    budget.record("acme/app", spent, now=NOW)
    assert budget.exhausted("acme/app", NOW) == "LLM budget for acme/app used up this month ($1.20 of $1.00)"
    assert budget.exhausted("acme/other", NOW) is None
    assert budget.exhausted("acme/app", datetime(2026, 12, 1, tzinfo=UTC)) is None  # a new month


def test_models_without_a_price_count_tokens(db_url: str) -> None:
    budget = _budget(db_url, tokens=5000)
    local = LLMUsage(model="ollama/llama3.1", prompt_tokens=4000, completion_tokens=1500, requests=2, cost_usd=None)
    budget.record("local", local, now=NOW)
    assert budget.exhausted("local", NOW) == "LLM token budget for local used up this month (5500 of 5000)"
