"""The one base every agent tool shares: a workspace to read, bounded output, errors as data."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator
from functools import cached_property
from itertools import accumulate
from typing import TYPE_CHECKING, Any, ClassVar

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from cimedic.errors import error_record
from cimedic.models import ActionKind, Diagnosis
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.tools.ingest.base import LogFile, RunMaterial

if TYPE_CHECKING:
    from cimedic.store.history import HistoryStore
    from cimedic.tools.logs.templates import TemplateIndex

# What one tool answer may put into a prompt: enough for a page of evidence, never a whole log.
OUTPUT_MAX_CHARS = 4000
LINE_MAX_CHARS = 300


class Proposal(BaseModel):
    """An action an agent suggests. Recording it changes nothing: the policy engine decides."""

    kind: ActionKind
    target: str
    reason: str
    source: str = Field(default="llm", description="who proposed it: llm, knowledge-base, rule")


class Workspace:
    """What the tools of one investigation can see. Read-only, except the proposals list.

    A plain class, not a dataclass or model: tools hold it by reference, and pydantic must not
    copy or validate the run material it carries.
    """

    def __init__(
        self,
        diagnosis: Diagnosis,
        material: RunMaterial | None,
        settings: Settings,
        baseline: TemplateIndex | None = None,
    ) -> None:
        self.diagnosis = diagnosis
        self.material = material
        self.settings = settings
        self.baseline = baseline
        self.proposals: list[Proposal] = []

    @property
    def project(self) -> str | None:
        """The project the run belongs to, for history lookups (None for local material)."""
        return self.diagnosis.run.project if self.diagnosis.run else None

    @property
    def logs(self) -> list[LogFile]:
        return self.material.logs if self.material else []

    def log(self, path: str) -> LogFile | None:
        """The log with this path (as evidence and excerpts name it), or of this job or step.

        A job has one log per step; by name, the one the diagnosis quotes wins, then the job's last
        step (where a failure usually stops it), rather than its "Set up job" preamble.
        """
        for log in self.logs:
            if log.path == path:
                return log
        named = [log for log in self.logs if path and path in (log.job, log.step)]
        quoted = {e.path for e in self.diagnosis.evidence}
        return next((log for log in named if log.path in quoted), named[-1] if named else None)

    def lines(self, log: LogFile) -> Iterator[tuple[int, str]]:
        """(line number, redacted text) of a log, streamed: a 2 GiB log never sits in memory."""
        with log.open() as stream:
            for no, raw in enumerate(stream, start=1):
                yield no, redact(raw.decode("utf-8", "replace").rstrip("\r\n")[:LINE_MAX_CHARS])

    @cached_property
    def history(self) -> HistoryStore:
        from cimedic.store.history import HistoryStore

        return HistoryStore.open(self.settings.effective_database_url)


def clip(text: str, limit: int = LINE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(items: list[Any], budget: int) -> list[Any]:
    """The leading items whose JSON fits in ``budget`` characters: whole items, never a cut one."""
    sizes = accumulate(len(json.dumps(item, ensure_ascii=False, default=str)) + 1 for item in items)
    return [item for item, used in zip(items, sizes, strict=False) if used <= budget]


def render(data: Any, limit: int = OUTPUT_MAX_CHARS) -> str:
    """Compact JSON, redacted, cut at ``limit`` with a note telling the model how to narrow down."""
    text = redact(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str))
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: {len(text) - limit} more characters; ask for less, e.g. a narrower pattern]"


class AgentTool(BaseTool):
    """Base of every cimedic agent tool. Subclasses set name, description, args_schema, ``answer``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    workspace: Workspace = Field(exclude=True)
    output_max_chars: ClassVar[int] = OUTPUT_MAX_CHARS

    @abstractmethod
    def answer(self, args: Any) -> Any:
        """The tool's result as JSON-able data; may raise: the base turns errors into data."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        # CrewAI validates arguments in run(), before _run: a bad argument must come back as data too.
        try:
            return super().run(*args, **kwargs)
        except Exception as exc:  # the one boundary: a tool failure is an answer, never a crash
            return render(error_record(self.name, exc))

    def _run(self, *args: Any, **kwargs: Any) -> str:
        return render(self.answer(self.args_schema.model_validate(kwargs)), self.output_max_chars)
