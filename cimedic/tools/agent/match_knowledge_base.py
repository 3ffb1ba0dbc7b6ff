"""match_knowledge_base: the known-failure entries whose indications match some log lines."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import AgentTool, clip
from cimedic.tools.knowledge_base import load
from cimedic.tools.logs.normalize import clean_line

MAX_MATCHES = 5
MAX_LINES = 200


class Args(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=20_000,
        description="log lines to check, one per line, e.g. the error lines search_log or get_log_excerpt found",
    )


class MatchKnowledgeBase(AgentTool):
    name: str = "match_knowledge_base"
    description: str = (
        "Known CI failures whose patterns match the given log lines: id, category, description, remediation "
        "and suggested action."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        # The lines an investigation matches are cleaned the same way: colour codes and runner
        # timestamps would otherwise hide a known failure in a line pasted raw from a log.
        raw = args.text.split("\n")  # as log lines are counted: a bare \r is a redraw, not a new line
        lines = [clean_line(line) for line in raw[:MAX_LINES]]
        # Read on every call: an entry a person adds under $CIMEDIC_HOME/knowledge counts at once.
        found = load(self.workspace.settings.knowledge_search_dirs).match(lines)
        matches = [
            {
                "id": m.entry.id,
                "title": m.entry.title,
                "category": m.entry.category,
                "description": clip(m.description.strip(), 400),
                "captures": {k: clip(v, 120) for k, v in m.captures.items()},
                "remediation": clip(m.entry.remediation.strip(), 600),
                "action": m.entry.action,
                "matched": clip(m.text, 200),
            }
            for m in found[:MAX_MATCHES]
        ]
        out: dict[str, Any] = {"lines_checked": len(lines), "matches": matches}
        notes = [] if found else ["no known-failure entry matches these lines"]
        if len(found) > MAX_MATCHES:
            notes.append(f"{len(found) - MAX_MATCHES} more entries match; pass fewer lines to narrow down")
        if len(raw) > MAX_LINES:
            notes.append(f"only the first {MAX_LINES} lines were checked")
        if notes:
            out["note"] = "; ".join(notes)
        return out
