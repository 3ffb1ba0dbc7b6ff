"""LLM spend per investigation, for per-project budgets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_spend",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float),
    )
    op.create_index("ix_llm_spend_project_at", "llm_spend", ["project", "at"])


def downgrade() -> None:
    op.drop_index("ix_llm_spend_project_at", table_name="llm_spend")
    op.drop_table("llm_spend")
