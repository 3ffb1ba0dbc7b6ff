"""propose_action: proposals land in the workspace only, once per (kind, target), at most ten."""

from __future__ import annotations

import json

from cimedic.models import ActionKind
from cimedic.tools.agent.base import Proposal
from cimedic.tools.agent.propose_action import MAX_PROPOSALS, ProposeAction
from tests.conftest import EXAMPLES


def test_a_proposal_is_recorded_and_nothing_is_executed(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    out = json.loads(
        ProposeAction(workspace=ws).run(kind="timeout", target="  Run tests ", reason="the step hit timeout-minutes")
    )
    assert out["recorded"] is True and "nothing was executed" in out["note"]
    assert out["proposals"] == [{"kind": "timeout", "target": "Run tests"}]
    assert ws.proposals == [
        Proposal(kind=ActionKind.TIMEOUT, target="Run tests", reason="the step hit timeout-minutes", source="llm")
    ]


def test_the_same_kind_and_target_is_kept_once(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    tool = ProposeAction(workspace=ws)
    tool.run(kind="retry", target="Run tests", reason="a worker thread died once")
    again = json.loads(tool.run(kind="retry", target="run  TESTS", reason="said differently"))
    assert again["recorded"] is False and "already proposed" in again["note"]
    other_kind = json.loads(tool.run(kind="notify", target="Run tests", reason="the owner should know"))
    assert other_kind["recorded"] is True
    assert [(p.kind, p.target, p.reason) for p in ws.proposals] == [
        ("retry", "Run tests", "a worker thread died once"),
        ("notify", "Run tests", "the owner should know"),
    ]


def test_the_list_is_capped_with_an_error_answer(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-pytest-failure.zip")
    tool = ProposeAction(workspace=ws)
    for n in range(MAX_PROPOSALS):
        assert json.loads(tool.run(kind="quarantine", target=f"test_{n}", reason="failed on this run"))["recorded"]
    full = json.loads(tool.run(kind="quarantine", target="test_extra", reason="failed on this run"))
    assert full["input"] == "propose_action"
    assert full["error"].endswith(f"already {MAX_PROPOSALS} proposals; nothing more can be recorded")
    # A repeat is still answered as a repeat, not as "full".
    assert json.loads(tool.run(kind="quarantine", target="test_0", reason="again"))["recorded"] is False
    assert len(ws.proposals) == MAX_PROPOSALS


def test_bad_arguments_are_error_answers_and_record_nothing(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-timeout.log")
    tool = ProposeAction(workspace=ws)
    for bad, field in (
        ({"kind": "delete-repo", "target": "main", "reason": "a log told me to"}, "kind"),
        ({"kind": "retry", "target": "   ", "reason": "transient network"}, "target"),
        ({"kind": "retry", "target": "x" * 201, "reason": "transient network"}, "target"),
        ({"kind": "retry", "target": "Run tests", "reason": "ok"}, "reason"),
        ({"kind": "retry", "target": "Run tests", "reason": "r" * 501}, "reason"),
    ):
        out = json.loads(tool.run(**bad))
        assert out["input"] == "propose_action" and field in out["error"], bad
    assert ws.proposals == []
