"""get_test_history: how one test fared in the stored run history, its newest executions last."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import AgentTool, clip

if TYPE_CHECKING:
    import pandas as pd

MAX_LIMIT = 50
MAX_FAILURES = 5
NO_TESTS = "no test results are stored{where}; `cimedic ingest` stores them with each run's test reports"
OUTCOME = {"passed": "P", "failed": "F", "error": "E", "skipped": "S"}


class Args(BaseModel):
    test: str = Field(
        min_length=1,
        max_length=500,
        description="the test: classname.name as a JUnit report gives it, or a unique end of it (e.g. Class.method)",
    )
    limit: int = Field(default=20, ge=1, description=f"how many of its newest executions to show; at most {MAX_LIMIT}")


class GetTestHistory(AgentTool):
    name: str = "get_test_history"
    description: str = (
        "One test's stored history: pass/fail counts, failure rate, recent outcomes (P/F/E/S, oldest first), "
        "latest failures with commit and message, durations."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        ws = self.workspace
        frame = ws.history.tests_frame(ws.project)
        if frame.empty:
            return {"test": args.test, "executions": 0, "note": no_tests(ws.project)}
        name, rows = find_test(frame, args.test, ws.project)
        limit = min(args.limit, MAX_LIMIT)
        counts = rows["status"].value_counts()
        failed = int(counts.get("failed", 0) + counts.get("error", 0))
        passed = int(counts.get("passed", 0))
        failures = rows[rows["status"].isin(["failed", "error"])].iloc[::-1]
        out: dict[str, Any] = {
            "test": name,
            "projects": sorted(rows["project"].unique().tolist()),
            "executions": len(rows),
            "passed": passed,
            "failed": failed,
            "skipped": int(counts.get("skipped", 0)),
            "failure_rate": round(failed / (passed + failed), 4) if passed + failed else None,
            "first_seen": _when(rows["finished_at"].min()),
            "last_seen": _when(rows["finished_at"].max()),
            "recent": "".join(OUTCOME.get(s, "?") for s in rows["status"].iloc[-limit:]),
            "last_failures": [_failure(row) for _, row in failures.head(MAX_FAILURES).iterrows()],
            "duration_s": _durations(rows),
        }
        if limit < args.limit:
            out["note"] = f"limit capped at {MAX_LIMIT}"
        return out


def no_tests(project: str | None) -> str:
    return NO_TESTS.format(where=f" for {project}" if project else "")


def find_test(frame: pd.DataFrame, text: str, project: str | None) -> tuple[str, pd.DataFrame]:
    """The stored name ``text`` means and that test's rows; a miss names the nearest candidates."""
    # A model may quote a test the way pytest or a path shows it; the store keeps classname.name.
    dotted = re.sub(r"\.py(?=::|$)", "", text.strip()).replace("::", ".").replace("/", ".")
    names = frame["test"].astype(str)
    for wanted in (text, dotted):
        if (names == wanted).any():
            return wanted, frame[names == wanted]
    tails = sorted(set(names[names.str.endswith("." + dotted)]))
    if len(tails) == 1:
        return tails[0], frame[names == tails[0]]
    if tails:
        raise ValueError(f"{text!r} could be any of {len(tails)} tests; pass the full name: {tails[:10]}")
    leaf = dotted.rsplit(".", 1)[-1].lower()
    near = sorted(set(names[names.str.lower().str.contains(leaf, regex=False)]))[:10]
    where = f" in {project}" if project else ""
    raise ValueError(f"no stored results for test {text!r}{where}; names containing {leaf!r}: {near}")


def _when(value: Any) -> str | None:
    return None if value is None or value != value else f"{value:%Y-%m-%dT%H:%MZ}"


def _num(value: Any, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(float(value)) else round(float(value), digits)


def _failure(row: pd.Series) -> dict[str, Any]:
    message = str(row["message"] or "").strip().splitlines()
    fields = {
        "run_id": row["run_id"],
        "attempt": int(row["attempt"]),
        "job": row["job"],
        "commit": str(row["commit"])[:12] if row["commit"] else None,
        "finished_at": _when(row["finished_at"]),
        "status": row["status"],
        "message": clip(message[0], 200) if message else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _durations(rows: pd.DataFrame) -> dict[str, float | None]:
    took = rows["duration_s"]
    failing = took[rows["status"].isin(["failed", "error"])]
    return {
        "median": _num(took.median()),
        "p90": _num(took.quantile(0.9)),
        "median_failed": _num(failing.median()) if len(failing) else None,
    }
