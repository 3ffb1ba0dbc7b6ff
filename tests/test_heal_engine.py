"""Self-healing guardrails, each able to fail if broken: audit before execution, one execution under
concurrency, budgets, cooldowns, `never`, release branches, the kill switch, the outage guard.

The diagnosis is a real one (a bundled GitHub Actions timeout log) given run metadata; the action
is an in-memory Healer double that counts executions and checks the audit row exists when it runs
(like Drain3's in-memory persistence doubles); real provider writes are tested per action.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import pytest
from sqlalchemy import select

from cimedic.heal.audit import AuditLog, State
from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.heal.engine import halt_file, heal
from cimedic.heal.policy import Policy, load_policy
from cimedic.investigate import investigate_path
from cimedic.models import Action, ActionKind, Diagnosis, Job, Platform, RemediationPlan, RunInfo, Status
from cimedic.settings import Settings
from cimedic.store.db import transaction
from cimedic.store.heal_tables import HealActionRow
from tests.conftest import EXAMPLES


class CountingHealer:
    """Executes nothing real; records what ran and that its audit row said `executing` first."""

    kind: ClassVar[ActionKind] = ActionKind.RETRY

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.executed: list[str] = []
        self.lock = threading.Lock()

    def plan(self, action: Action, ctx: HealContext) -> Step:
        key = f"{action.kind}:{run_key(ctx)}:{action.target}"
        return Step(kind=action.kind, target=action.target, key=key, summary=f"{action.kind} {action.target}")

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        with transaction(self.audit.engine) as conn:
            states = conn.execute(select(HealActionRow.state).where(HealActionRow.key == step.key)).scalars().all()
        assert State.EXECUTING in states, "executed without an audit row saying so"
        with self.lock:
            self.executed.append(step.key)
        return Outcome(done=True, detail="ok")

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        return Verdict.FIXED, "the re-run passed"


def _diag(branch: str = "main", run_id: str = "9001", failed_jobs: int = 1) -> Diagnosis:
    diag = investigate_path(EXAMPLES / "gha-timeout.log", record=False)
    jobs = [Job(name=f"test-{i}", status=Status.FAILURE) for i in range(failed_jobs)]
    run = RunInfo(platform=Platform.GITHUB_ACTIONS, id=run_id, project="acme/app", branch=branch, attempt=1, jobs=jobs)
    return diag.model_copy(update={"run": run})


def _plan(diag: Diagnosis, *actions: tuple[ActionKind, str, str]) -> Diagnosis:
    plan = RemediationPlan(actions=[Action(kind=k, target=t, reason="r", source=s) for k, t, s in actions])
    return diag.model_copy(update={"plan": plan})


@pytest.fixture
def settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=db_url, home=tmp_path / "home")


def _run(diag: Diagnosis, settings: Settings, policy: Policy | None = None, *, dry_run: bool = False):  # type: ignore[no-untyped-def]
    audit = AuditLog(settings)
    double = CountingHealer(audit)
    ctx = HealContext(diag, settings, dry_run=dry_run)
    report = heal(diag, ctx, policy or load_policy(), audit, rng=np.random.default_rng(1), healers=lambda k: double)
    return report, double, audit


RETRY = (ActionKind.RETRY, "run", "knowledge-base")


def test_auto_retry_is_audited_then_executed_then_verified(settings: Settings) -> None:
    report, double, audit = _run(_plan(_diag(), RETRY), settings)
    [step] = report.steps
    assert (step.level, step.state, step.verdict) == ("auto", State.EXECUTED, "fixed")
    assert step.rules == ["transient-infra-retries-itself"]
    assert len(double.executed) == 1
    states = [e["state"] for e in audit.events(step.action_id)]
    assert states == [State.PROPOSED, State.EXECUTING, State.EXECUTED, State.EXECUTED]


def test_dry_run_records_and_executes_nothing(settings: Settings) -> None:
    report, double, _ = _run(_plan(_diag(), RETRY), settings, dry_run=True)
    assert report.steps[0].state == State.DRY_RUN and double.executed == []


def test_hundred_concurrent_heals_of_one_run_retry_once(settings: Settings) -> None:
    diag = _plan(_diag(), RETRY)
    audit = AuditLog(settings)
    double = CountingHealer(audit)
    policy = load_policy()

    def one(_: int) -> str:
        report = heal(diag, HealContext(diag, settings, dry_run=False), policy, audit, healers=lambda k: double)
        return report.steps[0].state

    with ThreadPoolExecutor(max_workers=16) as pool:
        states = list(pool.map(one, range(100)))
    assert len(double.executed) == 1
    assert states.count(State.EXECUTED) == 1 and states.count(State.SKIPPED) == 99


def test_retry_budget_per_run_holds_across_attempts(settings: Settings) -> None:
    policy = load_policy().model_copy(deep=True)
    policy.cooldown.base_minutes = 0  # the budget alone
    executed = 0
    for attempt in range(1, 5):  # each attempt is a new key; the per-run budget (2) still holds
        diag = _plan(_diag(), RETRY)
        assert diag.run is not None
        diag.run.attempt = attempt
        report, double, _ = _run(diag, settings, policy)
        executed += len(double.executed)
        if attempt > 2:
            assert report.steps[0].why == "budget: 2 retries per run used up"
    assert executed == 2


def test_cooldown_backs_off_the_same_target(settings: Settings) -> None:
    policy = load_policy().model_copy(deep=True)
    policy.budgets.retries_per_run = 10
    first, _, _ = _run(_plan(_diag(run_id="1"), RETRY), settings, policy)
    again, double, _ = _run(_plan(_diag(run_id="2"), RETRY), settings, policy)
    assert first.steps[0].state == State.EXECUTED
    # Another run, same kind and target ("run") within the 5-minute cooldown.
    assert again.steps[0].state == State.SKIPPED and double.executed == []
    assert again.steps[0].why is not None and again.steps[0].why.startswith("cooldown: retry on run waits 5 min")


def test_never_is_never_executed_even_when_a_model_proposes_it(settings: Settings) -> None:
    policy = load_policy().model_copy(deep=True)
    policy.defaults[ActionKind.ROLLBACK] = policy.defaults[ActionKind.NONE]  # never
    report, double, _ = _run(_plan(_diag(), (ActionKind.ROLLBACK, "main", "llm")), settings, policy)
    assert report.steps[0].state == State.REJECTED and double.executed == []


def test_a_model_alone_never_executes(settings: Settings) -> None:
    report, double, _ = _run(_plan(_diag(), (ActionKind.RETRY, "run", "llm")), settings)
    assert report.steps[0].state == State.AWAITING and double.executed == []
    assert "a-model-never-acts-alone" in report.steps[0].rules


def test_release_branches_respect_their_policy(settings: Settings) -> None:
    report, double, _ = _run(_plan(_diag(branch="release/2.4"), RETRY), settings)
    assert (report.steps[0].level, report.steps[0].state) == ("approve", State.AWAITING)
    assert report.steps[0].rules == ["release-branches-are-never-automatic"] and double.executed == []


def test_kill_switch_stops_everything(settings: Settings) -> None:
    halt_file(settings.home).parent.mkdir(parents=True, exist_ok=True)
    halt_file(settings.home).write_text("halt\n")
    report, double, _ = _run(_plan(_diag(), RETRY), settings)
    assert report.halted and report.steps[0].state == State.SKIPPED and double.executed == []
    halt_file(settings.home).unlink()
    disabled = load_policy().model_copy(update={"enabled": False})
    report, double, _ = _run(_plan(_diag(run_id="2"), RETRY), settings, disabled)
    assert report.halted and double.executed == []


def test_too_many_failed_jobs_is_an_outage_not_a_flake(settings: Settings) -> None:
    report, double, _ = _run(_plan(_diag(failed_jobs=8), RETRY), settings)
    assert report.outage and report.steps[0].state == State.SKIPPED and double.executed == []


def test_outcomes_teach_the_planner(settings: Settings) -> None:
    _run(_plan(_diag(), RETRY), settings)
    outcomes = AuditLog(settings).outcomes()
    assert outcomes == [(ActionKind.RETRY, _diag().fingerprint.id if _diag().fingerprint else None, "timeout", True)]


def test_shipped_policy_names_real_knowledge_base_entries() -> None:
    from cimedic.tools.knowledge_base import load

    ids = {e.id for e in load().entries}
    named = {kb for rule in load_policy().rules for kb in rule.knowledge_base}
    assert named and named <= ids, named - ids


def test_a_bad_policy_file_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cimedic.errors import InputError

    bad = tmp_path / "policy.yaml"
    bad.write_text("enabled: true\ndefaults: {retry: sometimes}\n")
    with pytest.raises(InputError, match=r"policy.yaml: defaults.retry: Input should be 'auto', 'approve' or 'never'"):
        load_policy(bad)


def test_an_auto_action_that_keeps_failing_goes_to_a_person(settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    diag = _plan(_diag(), RETRY)
    assert diag.run is not None
    # A two-hour run: a retry is only worth it when it fixes at least half the time (120 of 240 minutes).
    diag.run.started_at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    diag.run.finished_at = diag.run.started_at + timedelta(hours=2)
    audit = AuditLog(settings)
    for i in range(6):  # six verified retries of this very failure that did not fix it
        action_id = audit.propose(
            diag, Action(kind=ActionKind.RETRY, target=f"old-{i}", reason="r"), None, None, dry_run=False
        )
        audit.move(action_id, State.EXECUTED, "verify", "not-fixed: failed again", verdict="not-fixed")
    report, double, _ = _run(diag, settings)
    assert report.steps[0].state == State.AWAITING and double.executed == []
    assert report.steps[0].why is not None and report.steps[0].why.startswith("learned: retry fixed")


def test_one_remediation_per_heal_and_the_next_best_when_a_budget_refuses(settings: Settings) -> None:
    policy = load_policy().model_copy(deep=True)
    policy.defaults[ActionKind.QUARANTINE] = policy.defaults[ActionKind.NOTIFY]  # auto
    policy.cooldown.base_minutes = 0
    actions = (RETRY, (ActionKind.QUARANTINE, "tests/test_x.py::test_y", "knowledge-base"))
    report, double, audit = _run(_plan(_diag(), *actions), settings, policy)
    assert sorted(s.state for s in report.steps) == [State.AWAITING, State.EXECUTED]
    assert len(double.executed) == 1
    # Retries have fixed this failure many times, so the learner ranks the retry first; the budget
    # refuses it, and the quarantine (no longer an alternative to anything that ran) executes.
    diag = _plan(_diag(run_id="2"), *actions)
    for i in range(12):
        old = audit.propose(
            diag, Action(kind=ActionKind.RETRY, target=f"old-{i}", reason="r"), None, None, dry_run=False
        )
        audit.move(old, State.EXECUTED, "verify", "fixed", verdict="fixed")
    policy.budgets.retries_per_run = 0
    report, double, _ = _run(diag, settings, policy)
    assert [(s.kind, s.state) for s in report.steps] == [("retry", State.SKIPPED), ("quarantine", State.EXECUTED)]
    assert report.steps[0].why == "budget: 0 retries per run used up"
