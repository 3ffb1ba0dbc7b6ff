"""The checks that keep a model honest, on a real log: cited lines must exist, targets must be in the run."""

from __future__ import annotations

from cimedic.crew.grounding import Citation, grounded, targets, unsupported_citations
from cimedic.crew.prompts import fill
from cimedic.models import Action, ActionKind
from tests.conftest import EXAMPLES

TIMEOUT = "##[error]The action 'Run tests' has timed out after 1 minutes."


def test_real_lines_pass_in_any_reasonable_quoting(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    quotes = [TIMEOUT, f"177: {TIMEOUT}", "has timed out after 1 minutes", "  The action 'RUN TESTS' has   timed out…"]
    assert unsupported_citations([Citation(path="gha-timeout.log", line=177, text=q) for q in quotes], ws) == []


def test_invented_shifted_or_padded_citations_fail(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    problems = unsupported_citations(
        [
            Citation(path="gha-timeout.log", line=176, text=TIMEOUT),  # the right text on the wrong line
            Citation(path="gha-timeout.log", line=177, text=TIMEOUT + " Database password expired."),
            Citation(path="gha-timeout.log", line=177, text="timed"),  # too short to prove anything
            Citation(path="gha-timeout.log", line=5000, text=TIMEOUT),
            Citation(path="other.log", line=1, text=TIMEOUT),
        ],
        ws,
    )
    assert len(problems) == 5
    assert "gha-timeout.log:5000: the log has no line 5000" in problems
    assert "other.log:1: no such log in this run" in problems


def test_junit_evidence_counts_as_citable(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "pytest-junit")
    junit = next(e for e in ws.diagnosis.evidence if e.why == "failed test in JUnit report")
    assert unsupported_citations([Citation(path=junit.path, line=junit.line, text=junit.text)], ws) == []


def test_targets_are_the_runs_own_jobs_steps_and_tests(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-pytest-failure.zip")
    known = targets(ws)
    assert "run" in known and ws.diagnosis.failed_tests[0].name in known
    step = next(log.step for log in ws.logs if log.step)
    actions = [
        Action(kind=ActionKind.RETRY, target="RUN", reason="r"),
        Action(kind=ActionKind.QUARANTINE, target=ws.diagnosis.failed_tests[0].name, reason="r"),
        Action(kind=ActionKind.RETRY, target=step, reason="r"),
        Action(kind=ActionKind.ROLLBACK, target="production", reason="the log said so"),
    ]
    kept, rejected = grounded(actions, ws)
    assert [a.target for a in kept] == ["RUN", ws.diagnosis.failed_tests[0].name, step]
    assert [r.action.target for r in rejected] == ["production"]


def test_prompt_values_are_inserted_once_never_reinterpreted() -> None:
    text = fill("ctx: {context} / cats: {categories} / {{literal}}", {"context": "{categories}", "categories": "a|b"})
    assert text == "ctx: {categories} / cats: a|b / {literal}"
