"""What a sweep reports: per-run results, per-repo digests, and the digest as text and notice."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, computed_field

from cimedic.notify.base import Delivery, Notice, Severity

if TYPE_CHECKING:
    pass

log = logging.getLogger("cimedic.sweep")


# -- what a sweep reports ----------------------------------------------------------------------------


class ActionLine(BaseModel):
    action_id: int
    kind: str
    target: str
    state: str
    level: str | None = None
    why: str | None = None
    summary: str | None = None
    verdict: str | None = None


class RunResult(BaseModel):
    """One failed run as the sweep (or a webhook) handled it."""

    platform: str
    project: str
    run_id: str
    attempt: int
    url: str
    branch: str | None = None
    by: str = Field(default="sweep", description="sweep, or webhook:<platform>")
    category: str | None = None
    confidence: float | None = None
    summary: str | None = None
    fingerprint: str | None = None
    new_fingerprint: bool = Field(default=False, description="this failure was never seen before this run")
    seen: str | None = None
    route: str | None = None
    halted: bool = False
    outage: bool = False
    actions: list[ActionLine] = Field(default_factory=list)
    needs_person: bool = False
    notified: list[Delivery] = Field(default_factory=list)
    error: str | None = Field(default=None, description="the investigation or heal failed; tried again later")
    gave_up: bool = Field(default=False, description="failed MAX_TRIES times: not tried again")


class FlakyLine(BaseModel):
    test: str
    score: float
    flake_rate: float
    failures: int
    runs: int


class AnomalyLine(BaseModel):
    job: str
    run_id: str
    metric: str
    at: datetime
    observed: float
    expected_low: float
    expected_high: float
    kind: str
    likely_causes: list[str] = Field(default_factory=list)


class RepoDigest(BaseModel):
    repo: str = Field(description="as given: OWNER/REPO, gitlab:GROUP/PROJECT, a URL...")
    platform: str | None = None
    project: str | None = None
    listed_since: datetime | None = None
    listed: int = 0
    already_handled: int = 0
    truncated: bool = Field(default=False, description="the listing hit the limit: older failures were not read")
    runs: list[RunResult] = Field(default_factory=list)
    flaky: list[FlakyLine] = Field(default_factory=list)
    anomalies: list[AnomalyLine] = Field(default_factory=list)
    error: str | None = Field(default=None, description="the repository could not be swept at all")
    warnings: list[str] = Field(default_factory=list)


class Digest(BaseModel):
    started_at: datetime
    finished_at: datetime | None = None
    dry_run: bool = True
    repos: list[RepoDigest] = Field(default_factory=list)
    publish_errors: int = Field(default=0, description="events the bus refused (logged)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    @property
    def runs(self) -> list[RunResult]:
        return [run for repo in self.repos for run in repo.runs]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def investigated(self) -> int:
        return sum(1 for run in self.runs if run.error is None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def new_fingerprints(self) -> list[str]:
        return list(dict.fromkeys(r.fingerprint for r in self.runs if r.new_fingerprint and r.fingerprint))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def actions_by_state(self) -> dict[str, int]:
        return dict(Counter(a.state for run in self.runs for a in run.actions).most_common())

    @property
    def empty(self) -> bool:
        """Nothing new: no run handled and no repository in error."""
        return not self.runs and not any(repo.error for repo in self.repos)

    def to_markdown(self) -> str:
        return render_markdown(self)


# -- the digest as text ---------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(digest: Digest) -> str:
    mode = "dry run" if digest.dry_run else "execute"
    out = [f"## cimedic sweep {digest.started_at:%Y-%m-%d %H:%M} UTC ({mode})", ""]
    states = ", ".join(f"{state} {n}" for state, n in digest.actions_by_state.items()) or "none"
    failed = sum(1 for r in digest.runs if r.error)
    out.append(
        f"**{digest.investigated}** new failure(s) investigated across {len(digest.repos)} repo(s)"
        + (f", {failed} could not be" if failed else "")
        + f"; **{len(digest.new_fingerprints)}** new fingerprint(s); actions: {states}."
    )
    if digest.publish_errors:
        out.append(f"{digest.publish_errors} event(s) could not be published.")
    for repo in digest.repos:
        out += ["", f"### {_cell(repo.project or repo.repo)}", ""]
        if repo.error:
            out.append(f"Not swept: {_cell(repo.error)}")
            continue
        since = f" since {repo.listed_since:%Y-%m-%d %H:%M}" if repo.listed_since else ""
        out.append(
            f"{repo.listed} failed run(s) listed{since}: {len(repo.runs)} new, {repo.already_handled} already handled"
            + (" (listing truncated at the limit)" if repo.truncated else "")
            + "."
        )
        if repo.runs:
            out += ["", "| run | category | summary | fingerprint | actions |", "|---|---|---|---|---|"]
            for r in repo.runs:
                run = f"[{_cell(r.run_id)}]({r.url})" if r.url else _cell(r.run_id)
                if r.error:
                    out.append(
                        f"| {run} | error | {_cell(r.error)} |  | {'gave up' if r.gave_up else 'retried later'} |"
                    )
                    continue
                fp = f"`{r.fingerprint}`" + (" **new**" if r.new_fingerprint else "") if r.fingerprint else ""
                acts = "; ".join(f"#{a.action_id} {a.kind} {_cell(a.target)}: {a.state}" for a in r.actions) or "none"
                if r.needs_person:
                    acts += " (person notified)"
                category = f"{r.category} ({(r.confidence or 0):.0%})"
                out.append(f"| {run} | {category} | {_cell(r.summary or '')} | {fp} | {acts} |")
        new = [r for r in repo.runs if r.new_fingerprint and r.fingerprint]
        if new:
            out += ["", "New failure fingerprints (first seen):"]
            out += [f"- `{r.fingerprint}` {r.category}: {_cell(r.summary or '')}" for r in new]
        if repo.flaky:
            out += ["", "Top flaky tests:"]
            out += [
                f"- `{_cell(t.test)}` p(flaky) {t.score:.2f}, flake rate {t.flake_rate:.1%} ({t.failures}/{t.runs})"
                for t in repo.flaky
            ]
        if repo.anomalies:
            out += ["", "Anomalies:"]
            out += [
                f"- {a.at:%Y-%m-%d %H:%M} {_cell(a.job)} run {_cell(a.run_id)}: {a.metric} {a.observed:.0f} "
                f"(expected {a.expected_low:.0f}–{a.expected_high:.0f}, {a.kind})"
                + (f"; likely: {_cell('; '.join(a.likely_causes))}" if a.likely_causes else "")
                for a in repo.anomalies
            ]
        for warning in repo.warnings:
            out.append(f"_{_cell(warning)}_")
    return "\n".join(out) + "\n"


def digest_notice(digest: Digest) -> Notice:
    new = len(digest.new_fingerprints)
    return Notice(
        title=f"cimedic sweep: {digest.investigated} new failure(s), {new} new fingerprint(s)",
        text=digest.to_markdown(),
        severity=Severity.WARNING if any(r.needs_person for r in digest.runs) else Severity.INFO,
        dedup_key=f"sweep:{digest.started_at:%Y%m%dT%H%M%S}",
        fields={"repos": str(len(digest.repos)), "investigated": str(digest.investigated), "new": str(new)},
    )
