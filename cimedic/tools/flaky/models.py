"""What ``rank_flaky`` returns: one ``FlakyTest`` per test, serialisable as the JSON contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FlakyEvidence(BaseModel):
    """One failing execution that shows the flakiness (same-commit disagreements first)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    attempt: int
    job: str
    commit: str
    message: str | None = None
    same_commit_passed: bool = Field(description="the test also passed on this commit and job: definitive")


class FlakyImpact(BaseModel):
    """What the test's failures cost."""

    model_config = ConfigDict(frozen=True)

    runs_failed: int = Field(description="distinct (run, attempt) pairs in which the test failed")
    ci_minutes_wasted: float = Field(description="minutes of the failed jobs, or of the failing executions")
    minutes_basis: Literal["job_duration", "test_duration"] = Field(
        description="job_duration: the frame carried job_duration_s; test_duration: summed duration_s of the "
        "failing executions, a lower bound on what the failures cost"
    )


class RunnerFailures(BaseModel):
    model_config = ConfigDict(frozen=True)

    runner: str
    failures: int
    runs: int


class FlakySignals(BaseModel):
    """The secondary signals: reported for diagnosis, see ``rank`` for how each enters the score."""

    model_config = ConfigDict(frozen=True)

    flip_rate: float = Field(description="status changes between consecutive executions of a job, per step")
    runner_log_factor: float = Field(description="log evidence factor from how failures fall on runners (0: none)")
    failing_runners: list[RunnerFailures] = Field(default_factory=list, description="runners with the most failures")
    duration_bimodality: float | None = Field(
        default=None, description="Sarle's bimodality coefficient of log durations; > 5/9 suggests two modes"
    )
    failure_duration_z: float | None = Field(
        default=None, description="median robust z of failing vs passing log durations; z >= 3 (far slower): timing"
    )
    kind: Literal["timing", "machine", "unknown"] = Field(
        default="unknown", description="the likely mechanism the signals point to"
    )


class FlakyTest(BaseModel):
    """A test and how sure we are that it is flaky (see ``cimedic.tools.flaky.rank``)."""

    model_config = ConfigDict(frozen=True)

    test: str
    project: str
    score: float = Field(ge=0.0, le=1.0, description="posterior probability that the test is flaky")
    flake_rate: float = Field(description="posterior mean failure rate over eligible executions (Jeffreys)")
    interval: tuple[float, float] = Field(description="95% equal-tailed credible interval of flake_rate")
    runs: int = Field(description="eligible executions: not skipped, not in a broken build, in the window")
    failures: int
    commits_with_both: int = Field(description="(commit, job) pairs on which the test both passed and failed")
    flips: int
    definitive: bool = Field(description="passed and failed on one commit and job (incl. a pass on rerun)")
    excluded_broken: int = Field(default=0, description="executions left out because their build was broken")
    evidence: list[FlakyEvidence] = Field(default_factory=list)
    impact: FlakyImpact
    signals: FlakySignals
