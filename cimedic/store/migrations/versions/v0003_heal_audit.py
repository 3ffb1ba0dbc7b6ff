"""Self-healing audit trail: actions, their events, and execution claims.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "heal_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("run_url", sa.Text),
        sa.Column("branch", sa.String(300)),
        sa.Column("job", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("level", sa.String(16)),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("why", sa.Text),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("step", sa.JSON),
        sa.Column("outcome", sa.JSON),
        sa.Column("verdict", sa.String(16)),
        sa.Column("diagnosis", sa.Text, nullable=False),
    )
    op.create_index("ix_heal_actions_key", "heal_actions", ["key"])
    op.create_index("ix_heal_actions_project_created", "heal_actions", ["project", "created_at"])
    op.create_index("ix_heal_actions_state", "heal_actions", ["state"])
    op.create_table(
        "heal_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("action_id", sa.Integer, sa.ForeignKey("heal_actions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_heal_events_action", "heal_events", ["action_id", "at"])
    op.create_table(
        "heal_claims",
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("action_id", sa.Integer, sa.ForeignKey("heal_actions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("claimed_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("heal_claims")
    op.drop_index("ix_heal_events_action", table_name="heal_events")
    op.drop_table("heal_events")
    for name in ("ix_heal_actions_state", "ix_heal_actions_project_created", "ix_heal_actions_key"):
        op.drop_index(name, table_name="heal_actions")
    op.drop_table("heal_actions")
