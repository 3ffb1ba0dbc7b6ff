"""DORA's four keys from CI history: deployment frequency, lead time for changes, change failure
rate and time to restore, each with the performance band of the 2023 State of DevOps report.

Deployments come from the store's deployments (platform environments) when it has them, else from
runs whose name matches the deploy pattern in ``config/dora.yaml`` on a production branch. The
estimates CI data allows, and the ones used here:

- lead time: from the first CI run on the deployed commit (the change reaching CI) to the end of the
  deployment that shipped it; commit timestamps are not in CI data and can be rewritten anyway;
- change failure rate: failed deployments over all deployments;
- time to restore: from a failed deployment to the next successful one of the same project.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd

DEPLOY_COLUMNS = ["project", "environment", "commit", "status", "started_at", "finished_at", "run_id"]


class DeployRule(BaseModel):
    job_pattern: str
    branches: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)


class Bands(BaseModel):
    deployment_frequency_per_day: dict[str, float]
    lead_time_hours: dict[str, float]
    change_failure_rate: dict[str, float]
    time_to_restore_hours: dict[str, float]


class DoraPolicy(BaseModel):
    deployments: DeployRule
    bands: Bands


class Key(BaseModel):
    """One of the four keys: its value (None when the history cannot say), band and what it rests on."""

    value: float | None
    unit: str
    band: str | None
    basis: int = Field(description="how many deployments or restorations the figure rests on")


class DoraReport(BaseModel):
    project: str | None
    window_start: datetime
    window_end: datetime
    deployments: int
    source: str = Field(description="store deployments | runs matching the deploy pattern")
    deployment_frequency: Key
    lead_time: Key
    change_failure_rate: Key
    time_to_restore: Key


@lru_cache(maxsize=4)
def load_policy(path: Path | None = None) -> DoraPolicy:
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = resources.files("cimedic.config").joinpath("dora.yaml").read_text(encoding="utf-8")
    return DoraPolicy.model_validate(yaml.safe_load(text))


def _band(value: float | None, bands: dict[str, float], *, higher_is_better: bool) -> str | None:
    if value is None:
        return None
    for name in ("elite", "high", "medium"):
        limit = bands[name]
        if (value >= limit) if higher_is_better else (value <= limit):
            return name
    return "low"


def deployments_from_runs(runs: pd.DataFrame, rule: DeployRule) -> pd.DataFrame:
    """Runs that are deployments: a deploy-like name on a production branch (not a PR build)."""
    import pandas as pd

    if runs.empty:
        return pd.DataFrame(columns=DEPLOY_COLUMNS)
    pattern = re.compile(rule.job_pattern, re.IGNORECASE)
    named = runs["job"].fillna("").map(lambda name: bool(pattern.search(str(name))))
    mask = named & runs["pull_request"].isna()
    if rule.branches:
        mask &= runs["branch"].isin(rule.branches)
    picked = runs[mask & runs["status"].isin(["success", "failure"])]
    out = picked.assign(environment=None)[
        ["project", "environment", "commit", "status", "started_at", "finished_at", "run_id"]
    ]
    return out.reset_index(drop=True)


def _hours(delta: Any) -> float:
    return float(delta.total_seconds()) / 3600.0


def dora(
    runs: pd.DataFrame,
    deployments: pd.DataFrame | None = None,
    *,
    project: str | None = None,
    days: int = 30,
    now: datetime | None = None,
    policy: DoraPolicy | None = None,
) -> DoraReport:
    """The four keys over the last ``days`` days (deployments finished in the window)."""
    import pandas as pd

    policy = policy or load_policy()
    now = now or datetime.now(UTC)
    start = now - timedelta(days=days)
    if project is not None:
        runs = runs[runs["project"] == project]
        if deployments is not None:
            deployments = deployments[deployments["project"] == project]
    source = "store deployments"
    known = deployments is not None and not deployments.empty
    if deployments is None or deployments.empty:
        deployments = deployments_from_runs(runs, policy.deployments)
        source = "runs matching the deploy pattern"
    elif policy.deployments.environments:
        envs = {e.lower() for e in policy.deployments.environments}
        deployments = deployments[deployments["environment"].fillna("").str.lower().isin(envs)]
    deps = deployments[(deployments["finished_at"] >= start) & (deployments["finished_at"] <= now)]
    deps = deps.sort_values("finished_at")
    bands = policy.bands
    count = len(deps)

    per_day = count / days if days else None
    frequency = Key(
        value=round(per_day, 4) if per_day is not None else None,
        unit="deployments/day",
        # No deployment found at all may mean deployments happen outside CI: no band, rather than "low".
        band=_band(per_day, bands.deployment_frequency_per_day, higher_is_better=True) if count or known else None,
        basis=count,
    )

    ok = deps[deps["status"] == "success"]
    first_ci = runs.dropna(subset=["commit"]).groupby("commit")["started_at"].min()
    leads = [
        _hours(row.finished_at - first_ci[row.commit])
        for row in ok.itertuples()
        if row.commit in first_ci.index and pd.notna(row.finished_at)
    ]
    lead = float(pd.Series(leads).median()) if leads else None
    lead_time = Key(
        value=round(lead, 2) if lead is not None else None,
        unit="hours (median)",
        band=_band(lead, bands.lead_time_hours, higher_is_better=False),
        basis=len(leads),
    )

    failed = deps[deps["status"] == "failure"]
    cfr = len(failed) / count if count else None
    failure_rate = Key(
        value=round(cfr, 4) if cfr is not None else None,
        unit="fraction of deployments",
        band=_band(cfr, bands.change_failure_rate, higher_is_better=False),
        basis=count,
    )

    restores: list[float] = []
    for row in failed.itertuples():
        later = ok[(ok["project"] == row.project) & (ok["finished_at"] > row.finished_at)]
        if not later.empty:
            restores.append(_hours(later["finished_at"].min() - row.finished_at))
    ttr = float(pd.Series(restores).median()) if restores else None
    restore = Key(
        value=round(ttr, 2) if ttr is not None else None,
        unit="hours (median)",
        band=_band(ttr, bands.time_to_restore_hours, higher_is_better=False),
        basis=len(restores),
    )
    return DoraReport(
        project=project,
        window_start=start,
        window_end=now,
        deployments=count,
        source=source,
        deployment_frequency=frequency,
        lead_time=lead_time,
        change_failure_rate=failure_rate,
        time_to_restore=restore,
    )
