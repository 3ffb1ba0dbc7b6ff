"""propose_action: record a remediation the model suggests. Nothing runs: the policy engine judges it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from cimedic.models import ActionKind
from cimedic.tools.agent.base import AgentTool, Proposal

# More proposals than this is a model flailing; a person reviews each one, so the list stays short.
MAX_PROPOSALS = 10
NOTE = "recorded as a proposal only: nothing was executed; the policy engine and a person decide what runs"


class Args(BaseModel):
    kind: ActionKind = Field(description="retry, quarantine, timeout, scale, rollback, notify or none")
    target: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="what the action is for, named as this run names it: a job, step, test, branch or run id"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=500)] = Field(
        description="one or two sentences citing the evidence"
    )


class ProposeAction(AgentTool):
    name: str = "propose_action"
    description: str = (
        "Record one remediation proposal (kind, target, reason) for the policy engine. Executes nothing. The "
        "target must be a job, step, test, branch or id of this run."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        proposals = self.workspace.proposals
        target = " ".join(args.target.split())
        # The plan dedupes on (kind, target) case-insensitively too; say so now, not silently later.
        key = (args.kind, target.casefold())
        duplicate = any((p.kind, " ".join(p.target.split()).casefold()) == key for p in proposals)
        if not duplicate:
            if len(proposals) >= MAX_PROPOSALS:
                raise ValueError(f"already {MAX_PROPOSALS} proposals; nothing more can be recorded")
            proposals.append(Proposal(kind=args.kind, target=target, reason=args.reason, source="llm"))
        return {
            "recorded": not duplicate,
            "note": f"{args.kind} {target!r} was already proposed; kept once" if duplicate else NOTE,
            "proposals": [{"kind": p.kind, "target": p.target} for p in proposals],
        }
