"""What each task must return, and the guardrails that reject anything else.

A guardrail that returns ``(False, why)`` makes CrewAI show the agent why and let it try again (up
to the task's retry limit); past that the crew fails and the flow keeps the deterministic result.

No ``from __future__ import annotations`` here: CrewAI inspects each guardrail's return annotation
at runtime and accepts only a real ``tuple[bool, Any]``, not its string form.
"""

import json
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from cimedic.crew.grounding import Citation, grounded, unsupported_citations
from cimedic.models import Action, ActionKind, Category, RejectedAction
from cimedic.tools.agent.base import Workspace

_FENCED = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL)
REPORT_MAX_CHARS = 1500
CHAT_MAX_CHARS = 3000
M = TypeVar("M", bound=BaseModel)


class RcaOutput(BaseModel):
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = Field(min_length=1, max_length=300)
    root_cause: str = Field(min_length=1, max_length=1500)
    evidence: list[Citation] = Field(min_length=1, max_length=8)


class TestVerdict(BaseModel):
    __test__ = False  # not a pytest test class despite the name
    name: str = Field(max_length=500)
    verdict: Literal["flaky", "real", "unknown"]
    reason: str = Field(max_length=500)


class FlakinessOutput(BaseModel):
    tests: list[TestVerdict] = Field(default_factory=list, max_length=50)


class ProposedAction(BaseModel):
    kind: ActionKind
    target: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=500)


class PlanOutput(BaseModel):
    actions: list[ProposedAction] = Field(default_factory=list, max_length=10)
    note: str | None = Field(default=None, max_length=500)


def json_object(raw: str) -> Any:
    """The JSON object in a model's answer: bare, or in a ```json fence, or the outermost braces."""
    text = raw.strip()
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1)
    elif not text.startswith("{") and "{" in text:
        text = text[text.index("{") : text.rindex("}") + 1]
    return json.loads(text)


def _parse(model: type[M], raw: str) -> M | str:
    try:
        return model.model_validate(json_object(raw))
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        return f"the answer is not the JSON object asked for: {' '.join(str(exc).split())[:400]}"


def _raw(output: Any) -> str:
    return str(getattr(output, "raw", output))


def rca_guardrail(ws: Workspace) -> Callable[[Any], tuple[bool, Any]]:
    def check(output: Any) -> tuple[bool, Any]:
        parsed = _parse(RcaOutput, _raw(output))
        if isinstance(parsed, str):
            return False, parsed
        problems = unsupported_citations(parsed.evidence, ws)
        if problems:
            return False, "cited lines not found in the log (cite only lines you have seen): " + "; ".join(problems[:5])
        return True, parsed.model_dump_json()

    return check


def flakiness_guardrail(output: Any) -> tuple[bool, Any]:
    parsed = _parse(FlakinessOutput, _raw(output))
    return (False, parsed) if isinstance(parsed, str) else (True, parsed.model_dump_json())


def plan_guardrail(output: Any) -> tuple[bool, Any]:
    # Ungrounded targets are not retried: plan_actions drops them into the plan's `rejected` list.
    parsed = _parse(PlanOutput, _raw(output))
    return (False, parsed) if isinstance(parsed, str) else (True, parsed.model_dump_json())


def _prose(output: Any, limit: int) -> tuple[bool, Any]:
    text = _raw(output).strip()
    if not text:
        return False, "the answer is empty"
    if len(text) > limit:
        return False, f"the answer has {len(text)} characters; keep it under {limit}"
    return True, text


def report_guardrail(output: Any) -> tuple[bool, Any]:
    return _prose(output, REPORT_MAX_CHARS)


def chat_guardrail(output: Any) -> tuple[bool, Any]:
    return _prose(output, CHAT_MAX_CHARS)


def plan_actions(plan: PlanOutput, ws: Workspace) -> tuple[list[Action], list[RejectedAction]]:
    """The model's proposals (from its answer and the propose_action tool), grounded in the run."""
    proposed = [Action(kind=a.kind, target=a.target, reason=a.reason, source="llm") for a in plan.actions]
    proposed += [Action(kind=p.kind, target=p.target, reason=p.reason, source="llm") for p in ws.proposals]
    unique = list({(a.kind, a.target.casefold()): a for a in proposed}.values())
    return grounded(unique, ws)
