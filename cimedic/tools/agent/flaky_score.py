"""flaky_score: the evidence that one test is flaky, from the flaky-test ranking over its project's history."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cimedic.tools.agent.base import AgentTool, clip
from cimedic.tools.agent.get_test_history import find_test, no_tests

# rank_flaky's own default: with fewer usable executions a flaky test and a stable one look alike.
MIN_RUNS = 5
MAX_EVIDENCE = 3


class Args(BaseModel):
    test: str = Field(
        min_length=1,
        max_length=500,
        description="the test: classname.name as a JUnit report gives it, or a unique end of it (e.g. Class.method)",
    )


class FlakyScore(AgentTool):
    name: str = "flaky_score"
    description: str = (
        "Whether a test is flaky from its history: verdict, posterior flake probability with interval, "
        "same-commit pass+fail proof, flip rate, cost. Use before proposing retry or quarantine."
    )
    args_schema: type[BaseModel] = Args

    def answer(self, args: Args) -> Any:
        from cimedic.tools.flaky import rank_flaky  # numpy, scipy: only when a model asks

        ws = self.workspace
        frame = ws.history.tests_frame(ws.project)
        if frame.empty:
            return {"test": args.test, "verdict": "unknown", "note": no_tests(ws.project)}
        name, _ = find_test(frame, args.test, ws.project)
        # Ranked over the whole frame: the test's class siblings and the project set its prior.
        ranked = [t for t in rank_flaky(frame, min_runs=1, min_score=0.0) if t.test == name]
        best = max(ranked, key=lambda t: t.runs, default=None)
        if best is None or best.runs < MIN_RUNS:
            runs = best.runs if best else 0
            return {
                "test": name,
                "verdict": "unknown",
                "runs": runs,
                "failures": best.failures if best else 0,
                "note": f"too little history: {runs} usable execution(s) (not skipped, not in a broken build); "
                f"at least {MIN_RUNS} are needed to tell flaky from stable",
            }
        out: dict[str, Any] = {
            "test": name,
            "project": best.project,
            "verdict": _verdict(best.score, best.definitive),
            "p_flaky": round(best.score, 3),
            "flake_rate": round(best.flake_rate, 4),
            "interval_95": [round(best.interval[0], 4), round(best.interval[1], 4)],
            "runs": best.runs,
            "failures": best.failures,
            "definitive": best.definitive,
            "commits_with_both": best.commits_with_both,
            "flips": best.flips,
            "flip_rate": round(best.signals.flip_rate, 4),
            "kind": best.signals.kind,
            "failing_runners": [
                {"runner": clip(r.runner, 80), "failures": r.failures, "runs": r.runs}
                for r in best.signals.failing_runners[:3]
            ],
            "impact": {
                "runs_failed": best.impact.runs_failed,
                "ci_minutes_wasted": round(best.impact.ci_minutes_wasted, 1),
                "basis": best.impact.minutes_basis,
            },
            "evidence": [
                {
                    "run_id": e.run_id,
                    "attempt": e.attempt,
                    "commit": e.commit[:12],
                    "same_commit_passed": e.same_commit_passed,
                    **({"message": clip(e.message.strip(), 200)} if e.message else {}),
                }
                for e in best.evidence[:MAX_EVIDENCE]
            ],
        }
        if best.excluded_broken:
            out["excluded_broken"] = best.excluded_broken
        notes = []
        if best.failures == best.runs:
            # A low p_flaky could read as "healthy"; this one is broken on every run.
            notes.append("failed in every usable execution: a persistent failure, not flakiness")
        if len(ranked) > 1:
            notes.append(f"also stored in {len(ranked) - 1} other project(s); shown: the one with the most runs")
        if notes:
            out["note"] = "; ".join(notes)
        return out


def _verdict(score: float, definitive: bool) -> str:
    if definitive:
        return "flaky"  # passed and failed on one commit and job: the code alone cannot explain it
    return "likely flaky" if score >= 0.5 else "likely not flaky"
