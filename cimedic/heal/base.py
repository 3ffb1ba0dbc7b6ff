"""What every remediation action implements, and what it is given.

An action never decides whether it may run: the policy does, and the audit row is written before
``execute`` is called. ``plan`` only reads (it may ask the platform what the write would send), so
a dry run shows the exact request, diff or capacity change without making it.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, Field

from cimedic.models import Action, ActionKind, Diagnosis
from cimedic.settings import Settings

if TYPE_CHECKING:
    from cimedic.tools.ci.base import CIProvider, RunRef


class Step(BaseModel):
    """A planned action, concrete enough to audit: what exactly would be sent or changed."""

    kind: ActionKind
    target: str
    # The same remediation of the same run attempt always has the same key: executing it twice is refused.
    key: str = Field(max_length=500)
    summary: str = Field(description="one line a person can approve or reject")
    request: dict[str, Any] = Field(default_factory=dict, description="endpoint and payload, diff, or capacity")


class Outcome(BaseModel):
    done: bool
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict, description="e.g. the new run id, the PR URL")


class Verdict(StrEnum):
    FIXED = "fixed"  # the retried run passed, the timeout PR's run finished, the queue drained
    NOT_FIXED = "not-fixed"
    PENDING = "pending"  # not known yet: verify again later
    UNKNOWN = "unknown"  # this action cannot be verified (a notification)


class ChangeRequester(Protocol):
    """Proposes file changes to the run's repository as a branch plus a PR/MR (timeout, quarantine)."""

    def propose(self, files: dict[str, str], *, branch: str, title: str, body: str, dry_run: bool) -> Outcome:
        """Commit ``files`` (path in the repo -> new full content) on ``branch`` and open a PR/MR.

        Idempotent: an open PR/MR for the same branch with the same content is returned, not duplicated.
        A dry run returns the diff it would commit and the request it would send, and changes nothing.
        """
        ...

    def read(self, path: str) -> str | None:
        """A file of the repository's default branch, or None when it does not exist."""
        ...


class HealContext:
    """What an action may use: the diagnosis, the run's platform (lazily), settings, dry-run or not."""

    def __init__(
        self,
        diagnosis: Diagnosis,
        settings: Settings,
        *,
        ref: RunRef | None = None,
        dry_run: bool = True,
        provider: CIProvider | None = None,
        changes: ChangeRequester | None = None,
    ) -> None:
        self.diagnosis = diagnosis
        self.settings = settings
        self.ref = ref
        self.dry_run = dry_run
        self._provider = provider
        self._changes = changes

    @cached_property
    def provider(self) -> CIProvider:
        if self._provider is not None:
            return self._provider
        if self.ref is None:
            raise ValueError("this action needs the run's CI platform: investigate it by URL")
        from cimedic.tools.ci.providers import provider_for

        return provider_for(self.ref.platform, self.ref.base_url, self.settings)

    @property
    def changes(self) -> ChangeRequester:
        if self._changes is None:
            raise ValueError("this action changes the repository: give cimedic a checkout (--repo PATH)")
        return self._changes


class Healer(Protocol):
    """One remediation kind. ``execute`` is only called for an approved, audited, non-dry-run step."""

    kind: ClassVar[ActionKind]

    def plan(self, action: Action, ctx: HealContext) -> Step:
        """The concrete step for ``action`` (reads only; raises ValueError when it cannot apply here)."""
        ...

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        """Make the change. Idempotent: the platform state after two calls equals that after one."""
        ...

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        """Did it work? Called after execution, possibly repeatedly while PENDING."""
        ...


def run_key(ctx: HealContext) -> str:
    """The run attempt an action belongs to, for idempotency keys."""
    diag = ctx.diagnosis
    if diag.run is not None:
        info = diag.run
        return f"{info.platform}:{info.project}:{info.id}:{info.attempt or 1}"
    return f"local:{diag.source.path}"
