"""Frames the insight commands need beyond runs and tests: deployments, and diagnosed categories."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from cimedic.store.history import HistoryStore
from cimedic.store.history_tables import DeploymentRow, DiagnosisRow, RunRow

if TYPE_CHECKING:
    import pandas as pd

DEPLOYMENT_COLUMNS = ["project", "environment", "commit", "status", "started_at", "finished_at", "run_id"]


def deployments_frame(store: HistoryStore, project: str | None = None) -> pd.DataFrame:
    """The store's deployments in the shape ``tools.delivery.dora`` reads (started_at = created_at)."""
    import pandas as pd

    query = select(
        DeploymentRow.project,
        DeploymentRow.environment,
        DeploymentRow.commit,
        DeploymentRow.status,
        DeploymentRow.created_at,
        DeploymentRow.finished_at,
        DeploymentRow.external_id,
    )
    if project is not None:
        query = query.where(DeploymentRow.project == project)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=DEPLOYMENT_COLUMNS)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def categories_frame(store: HistoryStore, project: str | None = None, since: datetime | None = None) -> pd.DataFrame:
    """One row per diagnosed run: when it started (``at``) and the category cimedic gave it."""
    import pandas as pd

    query = select(RunRow.started_at, RunRow.finished_at, DiagnosisRow.category).join(
        DiagnosisRow, DiagnosisRow.run_pk == RunRow.id
    )
    if project is not None:
        query = query.where(RunRow.project == project)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        [(r.started_at or r.finished_at, r.category) for r in rows], columns=["at", "category"]
    ).dropna(subset=["at"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    if since is not None:
        frame = frame[frame["at"] >= pd.Timestamp(since)]
    return frame
