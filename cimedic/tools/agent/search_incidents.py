"""search_incidents: past resolved incidents most similar to some failure text, from the incident memory."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, clip, fit

MAX_LIMIT = 10
BUDGET = OUTPUT_MAX_CHARS - 200
EMPTY = "the incident memory is empty: no resolved incident has been taught yet (`cimedic learn`)"


class Args(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=4000,
        description="the failure to look up: its key error lines, an error message, or a short description",
    )
    limit: int = Field(default=5, ge=1, description=f"how many incidents to return; at most {MAX_LIMIT}")


class SearchIncidents(AgentTool):
    name: str = "search_incidents"
    description: str = (
        "Past resolved incidents most similar in meaning to the text: score, category, the cause found and "
        "the fix that worked. Use it with the key error lines."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        # Imported here: chromadb and the embedder load only when a model asks the memory something.
        from cimedic.memory.store import IncidentStore

        store = IncidentStore(self.workspace.settings)
        if store.count() == 0:
            # Checked first so an empty memory costs no embedding model load.
            return {"incidents": [], "note": EMPTY}
        limit = min(args.limit, MAX_LIMIT)
        found = store.search(args.text, limit)
        hits = [
            {
                "id": hit.id,
                "score": hit.score,
                "category": hit.category,
                "title": clip(hit.title, 200),
                "cause": clip(hit.cause, 400),
                "fix": clip(hit.fix, 400),
            }
            for hit in found
        ]
        # Whole incidents only: a cut mid-way through a fix would read as a different fix.
        shown = fit(hits, BUDGET)
        out: dict[str, Any] = {"incidents": shown}
        notes = [f"limit capped at {MAX_LIMIT}"] if limit < args.limit else []
        if len(shown) < len(hits):
            notes.append(f"{len(hits) - len(shown)} more similar incidents left out to fit the answer")
        if notes:
            out["note"] = "; ".join(notes)
        return out
