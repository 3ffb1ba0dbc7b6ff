"""notice_for on a real diagnosis of examples/gha-timeout.log, and notice_for_action on audit-log records
written by the real AuditLog: titles, glance text, dedup keys, severities, and redaction of what leaves."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

from cimedic.heal.audit import AuditLog, Record
from cimedic.heal.base import Outcome, Step
from cimedic.heal.policy import Decision, Level
from cimedic.investigate import investigate_path
from cimedic.models import (
    Action,
    ActionKind,
    Category,
    Diagnosis,
    Platform,
    RemediationPlan,
    RunInfo,
    SimilarIncident,
)
from cimedic.notify.base import Severity
from cimedic.notify.render import notice_for, notice_for_action
from cimedic.redact import redact
from cimedic.report import to_markdown
from cimedic.settings import get_settings

SECRET = "ghp_R8mZ2xQv7LtN4pWc9YbK3sHd6FgJ1aEuVo0i"  # a GitHub token's shape, pasted into a log
RUN_URL = "https://github.com/acme/shop/actions/runs/42"


@pytest.fixture
def timeout_diag() -> Diagnosis:
    # Recorded (the default) in this test's own $CIMEDIC_HOME: the fingerprint comes with its history.
    return investigate_path(EXAMPLES / "gha-timeout.log")


def from_ci(diag: Diagnosis) -> Diagnosis:
    """The diagnosis as a run fetched from GitHub would have it: run metadata, a plan, a similar incident."""
    run = RunInfo(platform=Platform.GITHUB_ACTIONS, id="42", url=RUN_URL, project="acme/shop", branch="main")
    plan = RemediationPlan(
        actions=[
            Action(kind=ActionKind.TIMEOUT, target="Run tests", reason="raise timeout-minutes to 2", policy="approve"),
            Action(kind=ActionKind.RETRY, target="run", reason=f"retry with token {SECRET}", policy="auto"),
        ]
    )
    similar = SimilarIncident(
        id="inc-7", score=0.83, category=Category.TIMEOUT, cause="a test waited on a server", fix="start it", title="t"
    )
    return diag.model_copy(update={"run": run, "plan": plan, "similar_incidents": [similar]})


def test_notice_for_a_real_timeout_diagnosis(timeout_diag: Diagnosis) -> None:
    diag = timeout_diag
    assert diag.fingerprint is not None and diag.category == "timeout"
    notice = notice_for(from_ci(diag))

    assert notice.title == "[cimedic] timeout failure in acme/shop main"
    assert notice.severity == Severity.WARNING  # a failure is news; callers escalate to page
    assert notice.dedup_key == diag.fingerprint.id and notice.url == RUN_URL
    lines = notice.text.splitlines()
    assert lines[0].startswith("**timeout failure** in acme/shop main: timeout failure in `pytest -v --color=yes`")
    assert lines[0].endswith("(confidence 95%)")
    evidence = diag.evidence[0]
    assert f"**Evidence** `{evidence.path}:{evidence.line}` (time limit exceeded)" in notice.text
    assert "`##[error]The action 'Run tests' has timed out after 1 minutes.`" in notice.text
    assert "- timeout `Run tests` (policy: approve): raise timeout-minutes to 2" in lines
    assert "**Similar incident** `inc-7` (0.83): t. Fix: start it" in notice.text
    assert f"Fingerprint `{diag.fingerprint.id}`: first seen now." in notice.text
    assert notice.fields == {
        "category": "timeout",
        "confidence": "95%",
        "project": "acme/shop",
        "branch": "main",
        "fingerprint": diag.fingerprint.id,
    }
    # The secret in the plan is masked in the glance and in the attached full report.
    assert SECRET not in notice.text and "[REDACTED:" in notice.text
    assert notice.attachment is not None and SECRET not in notice.attachment
    assert notice.attachment.startswith("### cimedic: timeout failure (95% confidence)")
    assert notice.attachment == redact(to_markdown(from_ci(diag)))


def test_local_diagnosis_without_run_or_fingerprint(timeout_diag: Diagnosis) -> None:
    local = timeout_diag.model_copy(update={"fingerprint": None})
    notice = notice_for(local, severity=Severity.ERROR)
    assert notice.title == "[cimedic] timeout failure in gha-timeout.log" and notice.severity == Severity.ERROR
    assert notice.dedup_key is None and notice.url is None and "Proposed actions" not in notice.text
    assert notice.fields == {"category": "timeout", "confidence": "95%", "project": "gha-timeout.log"}


def record(diag: Diagnosis, kind: ActionKind, outcome: Outcome | None, *, level: Level = Level.APPROVE) -> Record:
    """An action through the real audit log: proposed, claimed, and executed (or failed) when given an outcome."""
    audit = AuditLog(get_settings())
    action = Action(kind=kind, target="production", reason=f"the deploy broke main; token {SECRET}")
    step = Step(kind=kind, target="production", key=f"{kind}:acme/shop:42:1", summary=f"{kind} production")
    action_id = audit.propose(diag, action, step, Decision(level=level, rules=["defaults"]), dry_run=False)
    if outcome is None:
        audit.move(action_id, "awaiting-approval", "cimedic", "needs a person")
    else:
        assert audit.claim(action_id, step, "acme/shop", lambda _: None) is None
        audit.executed(action_id, outcome)
    found = audit.get(action_id)
    assert found is not None
    return found


def test_failed_rollback_is_critical(timeout_diag: Diagnosis) -> None:
    diag = from_ci(timeout_diag)
    notice = notice_for_action(record(diag, ActionKind.ROLLBACK, Outcome(done=False, detail="deploy job 500")))

    assert notice.severity == Severity.CRITICAL
    assert notice.title == "[cimedic] rollback failed in acme/shop main"
    assert notice.dedup_key == "action:rollback:acme/shop:42:1" and notice.url == RUN_URL
    assert notice.text.startswith("**rollback** `production`: failed (policy: approve)")
    assert "Detail: deploy job 500" in notice.text and SECRET not in notice.text
    assert notice.fields == {
        "action": "rollback",
        "state": "failed",
        "project": "acme/shop",
        "category": "timeout",
        "branch": "main",
        "fingerprint": diag.fingerprint.id if diag.fingerprint else "",  # the failure the action was for
    }


def test_other_action_states(timeout_diag: Diagnosis) -> None:
    diag = from_ci(timeout_diag)
    failed_retry = notice_for_action(record(diag, ActionKind.RETRY, Outcome(done=False, detail="403")))
    pr = "https://github.com/acme/shop/pull/7"
    done = record(diag, ActionKind.TIMEOUT, Outcome(done=True, detail=f"opened {pr}", data={"url": pr}))
    waiting = notice_for_action(record(diag, ActionKind.SCALE, None))

    assert failed_retry.severity == Severity.ERROR
    executed = notice_for_action(done)
    assert executed.severity == Severity.INFO and executed.url == pr  # the PR says more than the run
    assert executed.title == "[cimedic] timeout executed in acme/shop main"
    assert (
        waiting.severity == Severity.WARNING and waiting.title == "[cimedic] scale awaiting-approval in acme/shop main"
    )
