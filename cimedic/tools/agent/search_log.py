"""search_log: lines of the run's logs matching a pattern, with their numbers."""

from __future__ import annotations

from typing import Any

import re2
from pydantic import BaseModel, Field

from cimedic.tools.agent.base import AgentTool, clip

MAX_HITS = 30


class Args(BaseModel):
    pattern: str = Field(min_length=1, max_length=200, description="RE2 regular expression, case-insensitive")
    path: str | None = Field(default=None, description="only this log (a path from the evidence); default all")


class SearchLog(AgentTool):
    name: str = "search_log"
    description: str = (
        "Lines matching an RE2 regular expression (case-insensitive) in the run's logs: up to 30 {path, line, "
        "text} and the total count."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        # RE2: the pattern may echo text from an untrusted log, so no backtracking blow-ups.
        regex = re2.compile(args.pattern, options=_ignore_case())
        logs = [self.workspace.log(args.path)] if args.path else self.workspace.logs
        if args.path and logs[0] is None:
            raise ValueError(f"no log named {args.path!r}; paths: {[lg.path for lg in self.workspace.logs][:20]}")
        hits: list[dict[str, Any]] = []
        total = 0
        for log in logs:
            assert log is not None
            for no, text in self.workspace.lines(log):
                if regex.search(text):
                    total += 1
                    if len(hits) < MAX_HITS:
                        hits.append({"path": log.path, "line": no, "text": clip(text)})
        return {"pattern": args.pattern, "total": total, "hits": hits}


def _ignore_case() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    return options
