"""The audit log: every action is written down before anything runs, and every change after.

``claim`` is the one gate to execution. Inside a single serialised transaction (SQLite's write
lock, a PostgreSQL advisory lock per project) it re-checks the budgets and the cooldown against
what has actually been executed, then inserts the step's idempotency key; only the process that
inserts it may execute. A hundred concurrent heals of one run therefore make one retry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, func, insert, select, text, update

from cimedic.heal.base import Outcome, Step
from cimedic.heal.policy import Decision, Policy
from cimedic.models import Action, ActionKind, Diagnosis
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.store.db import create_schema, engine_for, transaction
from cimedic.store.heal_tables import ACTOR_MAX, KEY_MAX, HealActionRow, HealClaimRow, HealEventRow
from cimedic.store.history_tables import BRANCH_MAX, PROJECT_MAX, RUN_ID_MAX


class State:
    PROPOSED = "proposed"
    AWAITING = "awaiting-approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"  # refused by a guard: kill switch, outage, budget, cooldown, cannot apply
    DRY_RUN = "dry-run"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"


class Record(BaseModel):
    id: int
    created_at: datetime
    project: str
    run_id: str
    run_url: str | None
    branch: str | None
    kind: str
    target: str
    key: str
    source: str
    state: str
    level: str | None
    rules: list[str]
    reason: str
    why: str | None
    dry_run: bool
    category: str
    fingerprint: str | None
    step: dict[str, Any] | None
    outcome: dict[str, Any] | None
    verdict: str | None
    diagnosis: str


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, settings: Settings) -> None:
        self.engine = engine_for(settings.effective_database_url)
        create_schema(self.engine)

    def propose(
        self,
        diag: Diagnosis,
        action: Action,
        step: Step | None,
        decision: Decision | None,
        *,
        dry_run: bool,
        job: str | None = None,
    ) -> int:
        """Write the proposal (and the policy's decision) down; returns its id."""
        run, now = diag.run, _now()
        key = step.key if step else f"{action.kind}:{diag.source.path}:{action.target}"
        values = {
            "created_at": now,
            "updated_at": now,
            "platform": str(run.platform) if run else "local",
            "project": (run.project if run else "local")[:PROJECT_MAX],
            "run_id": (run.id if run else diag.source.path)[:RUN_ID_MAX],
            "run_url": (run.url if run and run.url else diag.source.path),
            "branch": run.branch[:BRANCH_MAX] if run and run.branch else None,
            "job": job,
            "kind": str(action.kind),
            "target": redact(action.target),
            "key": key[:KEY_MAX],
            "source": action.source,
            "state": State.PROPOSED,
            "level": decision.level if decision else None,
            "rules": decision.rules if decision else [],
            "reason": redact(action.reason),
            "why": None,
            "dry_run": dry_run,
            "category": str(diag.category),
            "fingerprint": diag.fingerprint.id if diag.fingerprint else None,
            "step": step.model_dump(mode="json") if step else None,
            "outcome": None,
            "verdict": None,
            "diagnosis": diag.model_dump_json(),
        }
        with transaction(self.engine, write=True) as conn:
            inserted = conn.execute(insert(HealActionRow).values(**values)).inserted_primary_key
            assert inserted is not None
            action_id = int(inserted[0])
            detail = f"proposed by {action.source}: {values['reason']}"
            if decision:
                detail += f"; policy: {decision.level} ({', '.join(decision.rules)})"
            _event(conn, action_id, State.PROPOSED, "cimedic", detail)
        return action_id

    def move(self, action_id: int, state: str, actor: str, detail: str, **fields: Any) -> None:
        """Change an action's state (and fields), with the event that says who and why."""
        with transaction(self.engine, write=True) as conn:
            _move(conn, action_id, state, actor, detail, **fields)

    def move_from(self, action_id: int, expected: str, state: str, actor: str, detail: str, **fields: Any) -> bool:
        """Move only if the action is still in ``expected``: of two concurrent approvals one wins."""
        with transaction(self.engine, write=True) as conn:
            moved = conn.execute(
                update(HealActionRow)
                .where(HealActionRow.id == action_id, HealActionRow.state == expected)
                .values(state=state, updated_at=_now(), **fields)
            ).rowcount
            if moved:
                _event(conn, action_id, state, actor, detail)
        return bool(moved)

    def note(self, action_id: int, kind: str, actor: str, detail: str) -> None:
        """An event that changes no state: a person's feedback on an action."""
        with transaction(self.engine, write=True) as conn:
            _event(conn, action_id, kind, actor, detail)

    def claim(self, action_id: int, step: Step, project: str, check: Callable[[Connection], str | None]) -> str | None:
        """Win the right to execute ``step``: None when won, else why not (recorded as skipped)."""
        with transaction(self.engine, write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:scope))"), {"scope": f"heal:{project}"})
            taken = conn.execute(select(HealClaimRow.action_id).where(HealClaimRow.key == step.key)).first()
            why = f"already executed as action {taken[0]} (same key)" if taken else check(conn)
            if why:
                _move(conn, action_id, State.SKIPPED, "guard", why, why=why)
                return why
            conn.execute(insert(HealClaimRow).values(key=step.key, action_id=action_id, claimed_at=_now()))
            _move(conn, action_id, State.EXECUTING, "cimedic", "claimed; executing")
        return None

    def executed(self, action_id: int, outcome: Outcome) -> None:
        state = State.EXECUTED if outcome.done else State.FAILED
        self.move(action_id, state, "cimedic", redact(outcome.detail)[:2000], outcome=outcome.model_dump(mode="json"))

    def get(self, action_id: int) -> Record | None:
        with transaction(self.engine) as conn:
            row = conn.execute(select(HealActionRow).where(HealActionRow.id == action_id)).first()
        return Record.model_validate(row._mapping, from_attributes=True) if row else None

    def events(self, action_id: int) -> list[dict[str, Any]]:
        e = HealEventRow
        query = select(e.at, e.state, e.actor, e.detail).where(e.action_id == action_id).order_by(e.id)
        with transaction(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def recent(self, *, state: str | None = None, project: str | None = None, limit: int = 50) -> list[Record]:
        a = HealActionRow
        query = select(HealActionRow).order_by(a.id.desc()).limit(limit)
        if state:
            query = query.where(a.state == state)
        if project:
            query = query.where(a.project == project)
        with transaction(self.engine) as conn:
            return [Record.model_validate(r._mapping, from_attributes=True) for r in conn.execute(query)]

    def outcomes(self) -> list[tuple[ActionKind, str | None, str, bool]]:
        """(action, fingerprint, category, fixed) for every verified action and every human verdict on one."""
        a, e = HealActionRow, HealEventRow
        verified = select(a.kind, a.fingerprint, a.category, a.verdict).where(a.verdict.in_(("fixed", "not-fixed")))
        feedback = (
            select(a.kind, a.fingerprint, a.category, e.state)
            .join(e, e.action_id == a.id)
            .where(e.state.in_(("feedback-right", "feedback-wrong")))
        )
        with transaction(self.engine) as conn:
            rows = [(k, f, c, v == "fixed") for k, f, c, v in conn.execute(verified)]
            rows += [(k, f, c, s == "feedback-right") for k, f, c, s in conn.execute(feedback)]
        return [(ActionKind(k), f, c, fixed) for k, f, c, fixed in rows]


def _event(conn: Connection, action_id: int, state: str, actor: str, detail: str) -> None:
    values = {"action_id": action_id, "at": _now(), "state": state, "actor": actor[:ACTOR_MAX], "detail": detail}
    conn.execute(insert(HealEventRow).values(**values))


def _move(conn: Connection, action_id: int, state: str, actor: str, detail: str, **fields: Any) -> None:
    conn.execute(
        update(HealActionRow).where(HealActionRow.id == action_id).values(state=state, updated_at=_now(), **fields)
    )
    _event(conn, action_id, state, actor, detail)


def budget_check(
    policy: Policy, step: Step, project: str, run_id: str, job: str | None
) -> Callable[[Connection], str | None]:
    """The budgets and the cooldown, counted from executed claims inside the claim's transaction."""

    def check(conn: Connection) -> str | None:
        a, c = HealActionRow, HealClaimRow
        now = _now()
        claimed = select(func.count()).select_from(c).join(a, a.id == c.action_id).where(a.project == project)
        b = policy.budgets
        if conn.execute(claimed.where(c.claimed_at >= now - timedelta(hours=1))).scalar_one() >= (
            b.actions_per_project_per_hour
        ):
            return f"budget: {b.actions_per_project_per_hour} actions per hour for {project} used up"
        if step.kind == ActionKind.RETRY:
            retries = claimed.where(a.kind == "retry")
            if conn.execute(retries.where(a.run_id == run_id)).scalar_one() >= b.retries_per_run:
                return f"budget: {b.retries_per_run} retries per run used up"
            day = retries.where(a.job == job, c.claimed_at >= now - timedelta(days=1))
            if job and conn.execute(day).scalar_one() >= b.retries_per_job_per_day:
                return f"budget: {b.retries_per_job_per_day} retries of job {job} per day used up"
        same = (
            select(c.claimed_at)
            .join(a, a.id == c.action_id)
            .where(a.project == project, a.kind == str(step.kind), a.target == step.target)
            .where(c.claimed_at >= now - timedelta(days=1))
            .order_by(c.claimed_at.desc())
        )
        recent = [r[0] for r in conn.execute(same)]
        wait = policy.cooldown.minutes(len(recent))
        if recent and now - recent[0] < timedelta(minutes=wait):
            return f"cooldown: {step.kind} on {step.target} waits {wait:g} min after {len(recent)} execution(s) today"
        return None

    return check
