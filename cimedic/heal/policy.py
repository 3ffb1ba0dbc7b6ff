"""The self-healing policy (``config/policy.yaml``, user-overridable) and the level it gives an action.

A level comes from the defaults, replaced by the strictest matching rule; restricting rules (release
branches, model proposals) then only ever tighten it (never > approve > auto), so no rule can relax
what a restricting rule forbids. Log text cannot reach any of this: selectors read the diagnosis's
category, fingerprint and knowledge-base ids, the run's repo and branch, and who proposed the action.
"""

from __future__ import annotations

from enum import StrEnum
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from cimedic.errors import InputError
from cimedic.models import Action, ActionKind, Diagnosis


class Level(StrEnum):
    AUTO = "auto"
    APPROVE = "approve"
    NEVER = "never"


STRICTNESS = {Level.AUTO: 0, Level.APPROVE: 1, Level.NEVER: 2}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    repos: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    fingerprints: list[str] = Field(default_factory=list)
    knowledge_base: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    levels: dict[ActionKind, Level]
    # A restricting rule only ever tightens (never loosens) the level the other rules and defaults give.
    restrict: bool = False


class Budgets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries_per_run: int = Field(default=2, ge=0)
    retries_per_job_per_day: int = Field(default=6, ge=0)
    actions_per_project_per_hour: int = Field(default=20, ge=0)


class Cooldown(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_minutes: float = Field(default=5, ge=0)
    max_minutes: float = Field(default=240, ge=0)

    def minutes(self, recent_executions: int) -> float:
        """The wait after ``recent_executions`` (>= 1) executions today: doubling, capped."""
        if recent_executions <= 0:
            return 0.0
        return float(min(self.base_minutes * 2 ** (recent_executions - 1), self.max_minutes))


class Outage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_failed_jobs: int = Field(default=5, ge=1)


class Learning(BaseModel):
    """When outcomes overrule an `auto` level: the action keeps failing on this kind of failure."""

    model_config = ConfigDict(extra="forbid")

    # What a failure left to people costs in minutes (time to the first human action); a remediation
    # is worth automating while its chance to fix beats its own minutes over this (break-even).
    human_minutes: float = Field(default=240, gt=0)
    min_outcomes: int = Field(default=5, ge=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    defaults: dict[ActionKind, Level]
    rules: list[Rule] = Field(default_factory=list)
    budgets: Budgets = Field(default_factory=Budgets)
    cooldown: Cooldown = Field(default_factory=Cooldown)
    outage: Outage = Field(default_factory=Outage)
    learning: Learning = Field(default_factory=Learning)


class Subject(BaseModel):
    """What the selectors look at, taken from the diagnosis and the action (never from log text)."""

    repo: str | None = None
    branch: str | None = None
    environment: str | None = None
    category: str
    fingerprint: str | None = None
    knowledge_base: list[str] = Field(default_factory=list)
    source: str

    @classmethod
    def of(cls, diag: Diagnosis, action: Action) -> Subject:
        run = diag.run
        return cls(
            repo=run.project if run else None,
            branch=run.branch if run else None,
            environment=action.params.get("environment") or (action.target if action.kind == "rollback" else None),
            category=str(diag.category),
            fingerprint=diag.fingerprint.id if diag.fingerprint else None,
            knowledge_base=[m.id for m in diag.matched_rules],
            source=action.source,
        )


class Decision(BaseModel):
    level: Level
    rules: list[str] = Field(description="the rules that set the level, or ['defaults']")


def _any(patterns: list[str], value: str | None) -> bool:
    return value is not None and any(fnmatchcase(value, p) for p in patterns)


def matches(rule: Rule, s: Subject) -> bool:
    checks = (
        (rule.repos, [s.repo]),
        (rule.branches, [s.branch]),
        (rule.environments, [s.environment]),
        (rule.categories, [s.category]),
        (rule.fingerprints, [s.fingerprint]),
        (rule.knowledge_base, list(s.knowledge_base)),
        (rule.sources, [s.source]),
    )
    return all(not patterns or any(_any(patterns, v) for v in values) for patterns, values in checks)


def _strictest(found: list[tuple[Level, str]]) -> tuple[Level, list[str]] | None:
    if not found:
        return None
    top = max(STRICTNESS[level] for level, _ in found)
    names = [name for level, name in found if STRICTNESS[level] == top]
    return next(level for level, _ in found if STRICTNESS[level] == top), names


def decide(policy: Policy, kind: ActionKind, subject: Subject) -> Decision:
    """Defaults, replaced by the strictest matching setting rule, then tightened by restricting rules."""
    matching = [r for r in policy.rules if kind in r.levels and matches(r, subject)]
    level, decided_by = policy.defaults.get(kind, Level.NEVER), ["defaults"]
    setting = _strictest([(r.levels[kind], r.name) for r in matching if not r.restrict])
    if setting is not None:
        level, decided_by = setting
    restricting = _strictest([(r.levels[kind], r.name) for r in matching if r.restrict])
    if restricting is not None and STRICTNESS[restricting[0]] > STRICTNESS[level]:
        level, decided_by = restricting
    return Decision(level=level, rules=decided_by)


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path`` (a user's), else the shipped one; a bad file is a one-line error."""
    if path is None:
        text, name = resources.files("cimedic.config").joinpath("policy.yaml").read_text(encoding="utf-8"), "policy"
    else:
        try:
            text, name = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InputError(str(path), f"cannot read the policy file ({exc.strerror or exc})") from exc
    try:
        data = YAML(typ="safe").load(text)
        return Policy.model_validate(data)
    except YAMLError as exc:
        raise InputError(name, f"not valid YAML ({' '.join(str(exc).split())[:200]})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(name, f"{where}: {first['msg']}") from exc
