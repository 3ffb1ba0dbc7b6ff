"""Domain model shared by every capability: what a run is, and what a diagnosis says about it.

These are plain pydantic models so that they serialise to the stable JSON contract
(``schema_version``) and validate whatever an ingester, an SDK or (later) an LLM hands us.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field

SCHEMA_VERSION = 1


class Category(StrEnum):
    """Root-cause categories; definitions in docs/taxonomy.md."""

    TEST = "test"
    COMPILE = "compile"
    DEPENDENCY = "dependency"
    LINT = "lint"
    INFRA = "infra"
    TIMEOUT = "timeout"
    RESOURCE = "resource"
    CONFIG = "config"
    OTHER = "other"


class Platform(StrEnum):
    GITHUB_ACTIONS = "github-actions"
    GITLAB = "gitlab"
    JENKINS = "jenkins"
    AZURE_DEVOPS = "azure-devops"
    TRAVIS = "travis"
    GENERIC = "generic"


class SourceKind(StrEnum):
    FILE = "file"
    GHA_ZIP = "gha-zip"
    DIR = "dir"
    JUNIT = "junit"
    # A run fetched from a CI platform: the kind names the platform, the path is the run's URL.
    GITHUB_ACTIONS = "github-actions"
    GITLAB = "gitlab"
    JENKINS = "jenkins"
    AZURE_DEVOPS = "azure-devops"


class Status(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    RUNNING = "running"
    UNKNOWN = "unknown"


class TestStatus(StrEnum):
    __test__ = False  # not a pytest test class despite the name
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


class ActionKind(StrEnum):
    RETRY = "retry"
    QUARANTINE = "quarantine"
    TIMEOUT = "timeout"
    SCALE = "scale"
    ROLLBACK = "rollback"
    NOTIFY = "notify"
    NONE = "none"


class Source(BaseModel):
    kind: SourceKind
    path: str


class Step(BaseModel):
    name: str
    number: int | None = None
    status: Status = Status.UNKNOWN
    log_path: str | None = Field(default=None, description="path of this step's log inside the run")
    started_at: datetime | None = None
    finished_at: datetime | None = None


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Whole-run arithmetic on platform timestamps; None when either end is unknown."""
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


class Timed(BaseModel):
    """created (queued) -> started -> finished, as the platform reports them, and the two spans."""

    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def queue_s(self) -> float | None:
        return seconds_between(self.queued_at, self.started_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float | None:
        return seconds_between(self.started_at, self.finished_at)


class Job(Timed):
    name: str
    status: Status = Status.UNKNOWN
    platform: Platform = Platform.GENERIC
    runner: str | None = None
    steps: list[Step] = Field(default_factory=list)
    id: str | None = None
    url: str | None = None


class TestResult(BaseModel):
    __test__ = False  # not a pytest test class despite the name

    name: str
    classname: str | None = None
    suite: str | None = None
    status: TestStatus
    message: str | None = None
    details: str | None = None
    duration_s: float | None = None
    report_path: str | None = Field(default=None, description="the report file this result came from")


class RunInfo(Timed):
    """A run's metadata as a CI platform reports it: ids, commit, branch, people and timings."""

    model_config = ConfigDict(use_enum_values=True)

    platform: Platform
    id: str
    url: str | None = None
    project: str = Field(description="owner/repo, group/project, job full name or org/project")
    name: str | None = Field(default=None, description="workflow, pipeline or job name")
    number: str | None = Field(default=None, description="the run/build number people see, when not the id")
    attempt: int | None = None
    status: Status = Status.UNKNOWN
    commit: str | None = None
    branch: str | None = None
    pull_request: str | None = Field(default=None, description="PR/MR number, when the run belongs to one")
    actor: str | None = None
    event: str | None = Field(default=None, description="what triggered the run: push, pull_request, schedule...")
    jobs: list[Job] = Field(default_factory=list)


class Run(BaseModel):
    """One CI run as cimedic sees it, whatever platform or local material it came from."""

    source: Source
    platform: Platform = Platform.GENERIC
    id: str | None = None
    url: str | None = None
    status: Status = Status.UNKNOWN
    jobs: list[Job] = Field(default_factory=list)
    test_results: list[TestResult] = Field(default_factory=list)
    info: RunInfo | None = Field(default=None, description="platform metadata, for runs fetched from a CI provider")

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.test_results if t.status in (TestStatus.FAILED, TestStatus.ERROR)]


class Evidence(BaseModel):
    path: str
    line: int = Field(ge=1)
    text: str
    why: str


class Excerpt(BaseModel):
    path: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    text: str


class FailedTest(BaseModel):
    name: str
    message: str


class Action(BaseModel):
    """A remediation cimedic proposes; nothing here executes it."""

    kind: ActionKind
    target: str
    reason: str
    params: dict[str, str] = Field(default_factory=dict)
    source: str = Field(default="knowledge-base", description="knowledge-base, rule or llm")
    policy: str | None = Field(default=None, description="auto, approve or never, as the healing policy rules")


class RejectedAction(BaseModel):
    action: Action
    why: str


class RemediationPlan(BaseModel):
    """What could be done about the failure: proposals only; the policy engine decides what runs."""

    actions: list[Action] = Field(default_factory=list)
    # Model proposals refused before they reached the plan (ungrounded target, unknown kind...).
    rejected: list[RejectedAction] = Field(default_factory=list)
    note: str | None = None


class LLMUsage(BaseModel):
    """What the model calls of one investigation cost."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = Field(default=None, description="None: litellm knows no price for the model")


class RuleMatch(BaseModel):
    """A knowledge-base entry whose indications matched the failing step's lines."""

    id: str
    title: str
    category: Category
    captures: dict[str, str] = Field(default_factory=dict)
    description: str
    remediation: str
    action: ActionKind


class Fingerprint(BaseModel):
    """Identity of "the same failure" across runs: a hash of the masked templates of the top evidence
    (paths, numbers, hashes and ids masked), so a re-run of the same failure gets the same ``id``.
    The history fields are filled from the fingerprint store (absent when recording is off)."""

    id: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int | None = Field(default=None, description="distinct runs that failed this way")
    count_30d: int | None = None
    seen: str | None = Field(default=None, description='e.g. "first seen 3 days ago, seen 14 times"')


class SimilarIncident(BaseModel):
    """A past resolved incident whose failure looks like this one (incident memory)."""

    id: str
    score: float = Field(ge=0.0, le=1.0, description="1 - cosine distance of the best-matching chunk")
    category: Category
    cause: str
    fix: str
    title: str


class SequenceItem(BaseModel):
    """One link of the chain that led to the failure: a step, or a log template inside the failing step."""

    kind: str = Field(description="step | template")
    name: str
    status: Status = Status.UNKNOWN
    line: int | None = None
    count: int = 1
    new: bool | None = Field(default=None, description="absent from the baseline run (None: no baseline)")


class Sequence(BaseModel):
    items: list[SequenceItem] = Field(default_factory=list)
    divergence: SequenceItem | None = Field(
        default=None, description="the first item the passing baseline run did not have"
    )


class Cause(StrEnum):
    """What made a PR/MR run fail, as "is this my change?" weighs it."""

    CHANGE = "change"
    FLAKY = "flaky"
    INFRA = "infra"
    BROKEN_BASE = "broken_base"


class ChangeVerdict(BaseModel):
    probabilities: dict[Cause, float]
    likely: Cause
    p_change: float = Field(description="probability that the change under test caused the failure")
    evidence: list[str] = Field(default_factory=list, description="what moved the estimate, in plain words")


class Diagnosis(BaseModel):
    """The JSON contract of ``cimedic investigate`` (schema_version 1); additive changes only."""

    model_config = ConfigDict(use_enum_values=True)

    schema_version: int = SCHEMA_VERSION
    source: Source
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str
    excerpt: Excerpt | None
    evidence: list[Evidence] = Field(default_factory=list)
    failed_tests: list[FailedTest] = Field(default_factory=list)
    backend: str = "offline"
    timings_ms: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    fingerprint: Fingerprint | None = None
    matched_rules: list[RuleMatch] = Field(default_factory=list)
    similar_incidents: list[SimilarIncident] = Field(default_factory=list)
    sequence: Sequence | None = None
    # How the category was decided: each source's probability for the chosen category.
    decided_by: dict[str, float] = Field(default_factory=dict)
    # For runs fetched from a CI platform: ids, commit, branch, people, queue time and duration.
    run: RunInfo | None = None
    # Which trained models took part, by kind: a registry version, "shipped", or "file:<name>".
    model_versions: dict[str, str] = Field(default_factory=dict)
    # For a failed PR/MR run with history: change vs flaky vs infra vs broken base branch.
    change_cause: ChangeVerdict | None = None
    # Which way the investigation flow went: offline, confident (LLM skipped), budget, crew, llm-failed.
    route: str = "offline"
    # The model's account of the cause and its human summary (None on the deterministic path).
    root_cause: str | None = None
    report: str | None = None
    plan: RemediationPlan | None = None
    llm: LLMUsage | None = None
