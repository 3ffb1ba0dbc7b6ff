"""get_failed_tests: the failed tests, from the JUnit reports when there are any, else from the log."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from cimedic.redact import redact
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, AgentTool, clip

MAX_LIMIT = 50
MESSAGE_LINES = 3
MESSAGE_CHARS = 240
# Room for the tests inside the bounded answer; the rest is counts, notes and punctuation.
BUDGET = OUTPUT_MAX_CHARS - 300


class Args(BaseModel):
    limit: int = Field(default=20, ge=1, description=f"how many failed tests to return; at most {MAX_LIMIT}")


class GetFailedTests(AgentTool):
    name: str = "get_failed_tests"
    description: str = (
        "The failed tests: name, class, status, first lines of the message, duration, report file. From JUnit "
        "reports, else from the log."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        ws = self.workspace
        limit = min(args.limit, MAX_LIMIT)
        reported = ws.material.run.failed_tests if ws.material else []
        tests: list[dict[str, Any]]
        if reported:
            source = "junit"
            tests = [
                {
                    "name": t.name,
                    "classname": t.classname,
                    "status": t.status,
                    "message": t.message,
                    "duration_s": t.duration_s,
                    "report": t.report_path,
                }
                for t in reported
            ]
        else:
            # The diagnosis already pulled these out of the failing log (pytest, JUnit console, ...).
            source = "log"
            tests = [{"name": t.name, "message": t.message} for t in ws.diagnosis.failed_tests]
        shown = _fit([_compact(t) for t in tests[:limit]])
        out: dict[str, Any] = {"source": source, "total": len(tests), "tests": shown}
        notes = [f"limit capped at {MAX_LIMIT}"] if limit < args.limit else []
        if len(shown) < min(len(tests), limit):
            notes.append(f"{min(len(tests), limit) - len(shown)} more left out to fit the answer")
        if not tests:
            notes.append("no failed test found in the reports or the log")
        if notes:
            out["note"] = "; ".join(notes)
        return out


def _compact(test: dict[str, Any]) -> dict[str, Any]:
    message = (test.get("message") or "").strip()
    # The first lines say what failed; the traceback below them is search_log's job.
    test["message"] = clip("\n".join(message.splitlines()[:MESSAGE_LINES]), MESSAGE_CHARS) or None
    test["name"] = clip(test["name"], 200)
    return {k: redact(v) if isinstance(v, str) else v for k, v in test.items() if v is not None}


def _fit(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    used = 0
    for test in tests:
        used += len(json.dumps(test, ensure_ascii=False, default=str)) + 1
        if used > BUDGET:
            break
        kept.append(test)
    return kept
