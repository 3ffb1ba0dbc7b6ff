"""Baseline: fingerprints, run history (runs, jobs, steps, test results), deployments, diagnoses, cursors.

Idempotent on purpose: databases made before migrations existed (``create_all`` of the fingerprint
tables only, no version table) run this revision too, which creates only the tables they lack.
Those fingerprint tables were created from the same model definitions, so they match these.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Creation order: every table after the ones its foreign keys point at.
TABLES = (
    "fingerprints",
    "fingerprint_sightings",
    "runs",
    "jobs",
    "steps",
    "test_results",
    "deployments",
    "diagnoses",
    "ingest_cursors",
)


def _create(name: str, *elements: sa.schema.SchemaItem, indexes: Sequence[tuple[str, list[str]]] = ()) -> None:
    if name in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(name, *elements)
    for index_name, columns in indexes:
        op.create_index(index_name, name, columns)


def upgrade() -> None:
    _create(
        "fingerprints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        indexes=[("ix_fingerprints_last_seen", ["last_seen"]), ("ix_fingerprints_count", ["count"])],
    )
    _create(
        "fingerprint_sightings",
        sa.Column(
            "fingerprint_id", sa.String(64), sa.ForeignKey("fingerprints.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("run_key", sa.String(500), primary_key=True),
        sa.Column("seen_at", _TIME, nullable=False),
        indexes=[("ix_fingerprint_sightings_seen", ["fingerprint_id", "seen_at"])],
    )
    _create(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("number", sa.String(64)),
        sa.Column("name", sa.String(300)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64)),
        sa.Column("branch", sa.String(300)),
        sa.Column("pull_request", sa.String(64)),
        sa.Column("actor", sa.String(200)),
        sa.Column("event", sa.String(64)),
        sa.Column("url", sa.Text),
        sa.Column("queued_at", _TIME),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("duration_s", sa.Float),
        sa.Column("queue_s", sa.Float),
        sa.Column("tests_passed", sa.Integer),
        sa.Column("tests_failed", sa.Integer),
        sa.Column("tests_skipped", sa.Integer),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("content_sha", sa.String(64), nullable=False),
        sa.Column("ingested_at", _TIME, nullable=False),
        sa.UniqueConstraint("platform", "project", "run_id", "attempt", name="uq_runs_key"),
        indexes=[("ix_runs_project_started", ["project", "started_at"])],
    )
    _create(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String(200)),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runner", sa.String(200)),
        sa.Column("queued_at", _TIME),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("duration_s", sa.Float),
        sa.Column("queue_s", sa.Float),
        indexes=[("ix_jobs_run_pk", ["run_pk"])],
    )
    _create(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_pk", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        indexes=[("ix_steps_job_pk", ["job_pk"])],
    )
    _create(
        "test_results",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("job_pk", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE")),
        sa.Column("suite", sa.Text),
        sa.Column("classname", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("message", sa.Text),
        sa.Column("runner", sa.String(200)),
        indexes=[("ix_test_results_run_pk", ["run_pk"]), ("ix_test_results_job_pk", ["job_pk"])],
    )
    _create(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(200)),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("commit", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("url", sa.Text),
        sa.UniqueConstraint("platform", "project", "external_id", name="uq_deployments_key"),
        indexes=[("ix_deployments_project_created", ["project", "created_at"]), ("ix_deployments_run_pk", ["run_pk"])],
    )
    _create(
        "diagnoses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("fingerprint_id", sa.String(64)),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("payload", sa.JSON),
        indexes=[("ix_diagnoses_run_pk", ["run_pk"]), ("ix_diagnoses_fingerprint_id", ["fingerprint_id"])],
    )
    _create(
        "ingest_cursors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("position", sa.Text),
        sa.Column("position_at", _TIME),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.UniqueConstraint("platform", "project", "source", name="uq_ingest_cursors_key"),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
