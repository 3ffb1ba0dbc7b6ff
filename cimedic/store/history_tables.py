"""The run-history tables: runs with their jobs, steps and test results, deployments, diagnoses, and
ingest cursors. Created and evolved by the Alembic migrations in ``cimedic/store/migrations``; the
models here are what the code reads and writes, and a test checks the two agree.

Times are ``UTCDateTime`` (aware UTC in Python on every backend). Text that platforms bound (ids,
names, statuses) uses bounded ``String`` columns, and the writer clips to these lengths so SQLite
(which ignores them) and PostgreSQL (which enforces them) store the same thing; free text (URLs,
messages, test names, which parametrised tests make arbitrarily long) is ``Text``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cimedic.store.db import Base, UTCDateTime

PLATFORM_MAX = 32
PROJECT_MAX = 300
RUN_ID_MAX = 200
NAME_MAX = 300
NUMBER_MAX = 64
STATUS_MAX = 16
COMMIT_MAX = 64
BRANCH_MAX = 300
PR_MAX = 64
PERSON_MAX = 200
EVENT_MAX = 64
SOURCE_MAX = 32
RUNNER_MAX = 200
CATEGORY_MAX = 32
FINGERPRINT_MAX = 64
MODEL_VERSION_MAX = 100
CURSOR_SOURCE_MAX = 500
ENVIRONMENT_MAX = 200
# Failure messages can be whole stack traces; the first lines are what grouping and reports use.
MESSAGE_MAX = 2000

# Test results are the one table that can outgrow a 32-bit key (65k tests x 30k runs); SQLite only
# auto-increments a column declared exactly INTEGER, hence the variant.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class RunRow(Base):
    """One attempt of one CI run (a GitHub re-run is a new attempt of the same run id)."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("platform", "project", "run_id", "attempt", name="uq_runs_key"),
        Index("ix_runs_project_started", "project", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(PLATFORM_MAX))
    project: Mapped[str] = mapped_column(String(PROJECT_MAX))
    run_id: Mapped[str] = mapped_column(String(RUN_ID_MAX))
    attempt: Mapped[int] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(String(NUMBER_MAX))
    name: Mapped[str | None] = mapped_column(String(NAME_MAX))
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    commit: Mapped[str | None] = mapped_column(String(COMMIT_MAX))
    branch: Mapped[str | None] = mapped_column(String(BRANCH_MAX))
    pull_request: Mapped[str | None] = mapped_column(String(PR_MAX))
    actor: Mapped[str | None] = mapped_column(String(PERSON_MAX))
    event: Mapped[str | None] = mapped_column(String(EVENT_MAX))
    url: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    queue_s: Mapped[float | None] = mapped_column(Float)
    tests_passed: Mapped[int | None] = mapped_column(Integer)
    tests_failed: Mapped[int | None] = mapped_column(Integer)
    tests_skipped: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(SOURCE_MAX))
    # sha256 of everything stored for the run (row and children): re-ingesting identical data is a no-op.
    content_sha: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order within the run, as the platform listed them
    job_id: Mapped[str | None] = mapped_column(String(RUN_ID_MAX))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    runner: Mapped[str | None] = mapped_column(String(RUNNER_MAX))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    queue_s: Mapped[float | None] = mapped_column(Float)


class StepRow(Base):
    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TestResultRow(Base):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest test class despite the name

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    job_pk: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    suite: Mapped[str | None] = mapped_column(Text)
    classname: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    duration_s: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(RUNNER_MAX))


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("platform", "project", "external_id", name="uq_deployments_key"),
        Index("ix_deployments_project_created", "project", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(PLATFORM_MAX))
    project: Mapped[str] = mapped_column(String(PROJECT_MAX))
    external_id: Mapped[str] = mapped_column(String(RUN_ID_MAX))  # the platform's deployment id
    environment: Mapped[str | None] = mapped_column(String(ENVIRONMENT_MAX))
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    commit: Mapped[str | None] = mapped_column(String(COMMIT_MAX))
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    url: Mapped[str | None] = mapped_column(Text)


class DiagnosisRow(Base):
    __tablename__ = "diagnoses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(CATEGORY_MAX))
    confidence: Mapped[float] = mapped_column(Float)
    # Not a foreign key: a diagnosis made with fingerprint recording off names one the fingerprints
    # table never saw.
    fingerprint_id: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX), index=True)
    summary: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(MODEL_VERSION_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IngestCursorRow(Base):
    """How far an ingest source got: written in the same transaction as the data it covers."""

    __tablename__ = "ingest_cursors"
    __table_args__ = (UniqueConstraint("platform", "project", "source", name="uq_ingest_cursors_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(PLATFORM_MAX))
    project: Mapped[str] = mapped_column(String(PROJECT_MAX))
    source: Mapped[str] = mapped_column(String(CURSOR_SOURCE_MAX))
    position: Mapped[str | None] = mapped_column(Text)  # opaque to the store; each source defines it
    position_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
