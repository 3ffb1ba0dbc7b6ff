"""The investigation flow: one CrewAI Flow behind the CLI, sweeps and the Slack bot.

    ingest -> analyse (deterministic) -> choose -> [reason: the crew] -> plan

``choose`` is the router: with no model configured, with the project's budget used up, or when the
deterministic verdict is already confident, the crew never runs and the answer costs nothing. A
crew that fails (a provider error, answers that keep failing their checks) leaves the deterministic
diagnosis in place with a warning: an LLM adds to the result, it is never required for one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path

from crewai.flow.flow import Flow, listen, or_, router, start
from pydantic import BaseModel, PrivateAttr

from cimedic.crew.budget import LOCAL_PROJECT, Budget
from cimedic.crew.context import llm_context
from cimedic.crew.crews import CrewFailed, run_crew
from cimedic.crew.llm import build_llm
from cimedic.crew.merge import merged
from cimedic.crew.outputs import plan_actions
from cimedic.crew.planning import knowledge_base_actions, rule_actions
from cimedic.crew.policy import load_policy
from cimedic.heal.policy import Subject, decide
from cimedic.heal.policy import load_policy as load_healing_policy
from cimedic.investigate import baseline_index, diagnose_with_signals
from cimedic.models import Diagnosis, RemediationPlan
from cimedic.recall import fingerprint_history, run_key
from cimedic.redact import redact
from cimedic.remote import Fetched, conclude, fetch_run, is_url, scratch_dir
from cimedic.settings import get_settings, quiet_third_parties
from cimedic.tools.agent.base import Workspace
from cimedic.tools.ingest.base import RunMaterial
from cimedic.tools.ingest.local import ingest_path

PLAN_NOTE = "Proposals only: nothing has been executed; each action must pass the policy before it can run."


class Route(StrEnum):
    OFFLINE = "offline"  # no model configured, or --offline
    CONFIDENT = "confident"  # the deterministic verdict is trusted as it is
    BUDGET = "budget"  # the project's LLM budget is used up this month
    CREW = "crew"  # the crew reasons over the findings
    LLM_FAILED = "llm-failed"  # the crew ran but gave no valid answer (not a router label)


class InvestigationState(BaseModel):
    target: str = ""
    baseline: str | None = None
    full_logs: bool = False
    record: bool = True
    model: str | None = None  # None: the deterministic path
    diagnosis: Diagnosis | None = None
    route: Route = Route.OFFLINE


class InvestigationFlow(Flow[InvestigationState]):
    """Run with ``investigate()`` below, which also releases the fetched logs afterwards."""

    # CrewAI gives every Flow a LanceDB memory with an OpenAI embedder unless told not to: ours keeps
    # its own incident memory (local MiniLM), and the LanceDB import alone costs seconds per process.
    _skip_auto_memory: bool = True
    _stack: ExitStack = PrivateAttr(default_factory=ExitStack)
    _material: RunMaterial | None = PrivateAttr(default=None)
    _workspace: Workspace | None = PrivateAttr(default=None)
    _fetched: Fetched | None = PrivateAttr(default=None)
    _started: float = PrivateAttr(default_factory=time.perf_counter)

    @property
    def workspace(self) -> Workspace:
        assert self._workspace is not None, "analyse has not run"
        return self._workspace

    @start()
    def ingest(self) -> None:
        settings = get_settings()
        target = self.state.target
        if is_url(target):
            scratch = self._stack.enter_context(scratch_dir(settings, target))
            self._fetched = fetch_run(target, Path(scratch), full_logs=self.state.full_logs, settings=settings)
            self._material = self._fetched.material
        else:
            self._material = ingest_path(Path(target), settings.limits)

    @listen(ingest)
    def analyse(self) -> None:
        settings = get_settings()
        material = self._material
        assert material is not None, "ingest has not run"
        base = baseline_index(Path(self.state.baseline), settings.limits) if self.state.baseline else None
        diag, _ = diagnose_with_signals(material, limits=settings.limits, baseline=base, started=self._started)
        if self._fetched is not None:
            diag = conclude(diag, self._fetched, record=self.state.record, settings=settings)
        elif self.state.record:
            history = fingerprint_history(settings, diag, run_key(Path(self.state.target)), diag.warnings)
            diag = diag.model_copy(update={"fingerprint": history})
        self._workspace = Workspace(diagnosis=diag, material=material, settings=settings, baseline=base)
        self.state.diagnosis = diag

    @router(analyse)
    def choose(self) -> Route:
        route = self._route()
        self.state.route = route
        return route

    def _route(self) -> Route:
        diag = self.workspace.diagnosis
        policy = load_policy()
        if not self.state.model:
            return Route.OFFLINE
        kb_agrees = any(m.category == diag.category for m in diag.matched_rules)
        if diag.confidence >= policy.confident or (policy.knowledge_base_skips and kb_agrees):
            return Route.CONFIDENT
        if not diag.evidence and not diag.failed_tests:
            return Route.CONFIDENT  # nothing failed: nothing for a model to explain
        why = Budget(get_settings()).exhausted(self._project())
        if why:
            diag.warnings.append(f"{why}; ran offline")
            return Route.BUDGET
        return Route.CREW

    @listen(Route.CREW)
    def reason(self) -> None:
        settings = get_settings()
        ws = self.workspace
        model = self.state.model
        assert model is not None
        llm = build_llm(settings, model)
        began = time.perf_counter()
        try:
            result, spent = run_crew(ws, llm, model, llm_context(ws.diagnosis), load_policy())
        except CrewFailed as exc:
            Budget(settings).record(self._project(), exc.spent)
            ws.diagnosis.warnings.append(redact(f"LLM gave no usable answer, kept the offline diagnosis: {exc}")[:400])
            ws.diagnosis = ws.diagnosis.model_copy(update={"llm": exc.spent})
            self.state.route = Route.LLM_FAILED
            return
        Budget(settings).record(self._project(), spent)
        plan = RemediationPlan()
        kept, rejected = plan_actions(result.plan, ws)
        plan.actions, plan.rejected = kept, rejected
        ws.diagnosis = merged(ws.diagnosis, result, spent, settings.limits.evidence_max)
        ws.diagnosis.plan = plan
        ws.diagnosis.timings_ms["llm"] = int((time.perf_counter() - began) * 1000)
        self.state.route = Route.CREW

    @listen(or_(Route.OFFLINE, Route.CONFIDENT, Route.BUDGET, reason))
    def plan(self) -> None:
        ws = self.workspace
        diag = ws.diagnosis
        from_model = diag.plan or RemediationPlan()
        ours = knowledge_base_actions(ws)
        seen = {(a.kind, a.target.casefold()) for a in ours}
        for a in rule_actions(ws) + from_model.actions:
            if (a.kind, a.target.casefold()) not in seen:
                seen.add((a.kind, a.target.casefold()))
                ours.append(a)
        actions = ours
        # What `cimedic heal` would do with each: the policy's level, shown, not acted on.
        policy = load_healing_policy(get_settings().policy_path)
        for a in actions:
            a.policy = decide(policy, a.kind, Subject.of(diag, a)).level
        diag.plan = RemediationPlan(actions=actions, rejected=from_model.rejected, note=PLAN_NOTE)
        diag.route = self.state.route.value
        diag.timings_ms["total"] = int((time.perf_counter() - self._started) * 1000)
        self.state.diagnosis = diag

    def _project(self) -> str:
        return self.workspace.project or LOCAL_PROJECT

    def close(self) -> None:
        self._stack.close()


def _new_flow() -> InvestigationFlow:
    # Library callers (sweeps, the bot, benches) get the CLI's switches: no telemetry, no version check.
    # CrewAI creates its storage folder when imported, so entry points call this before importing it.
    quiet_third_parties(get_settings())
    # CrewAI logs a failing step before re-raising it; the caller reports that error itself, once.
    logger = logging.getLogger("crewai.flow.runtime")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return InvestigationFlow(suppress_flow_events=True)


@contextmanager
def opened(target: str, *, full_logs: bool = False) -> Iterator[InvestigationFlow]:
    """The offline investigation of ``target``, kept open (fetched logs on disk) for follow-up tools."""
    flow = _new_flow()
    try:
        flow.kickoff(inputs={"target": target, "full_logs": full_logs, "record": False, "model": None})
        yield flow
    finally:
        flow.close()


def investigate(
    target: str,
    *,
    baseline: str | None = None,
    full_logs: bool = False,
    record: bool = True,
    model: str | None = None,
    offline: bool = False,
) -> Diagnosis:
    """Investigate a run URL or local material through the flow.

    ``model`` defaults to the configured one; with none configured, or ``offline``, the flow takes
    its deterministic path.
    """
    model = None if offline else (model or get_settings().llm_model)
    flow = _new_flow()
    try:
        flow.kickoff(
            inputs={"target": target, "baseline": baseline, "full_logs": full_logs, "record": record, "model": model}
        )
    finally:
        flow.close()
    diag: Diagnosis | None = flow.state.diagnosis
    assert diag is not None
    return diag
