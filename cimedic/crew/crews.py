"""The RCA crew: four role-defined agents over read-only tools, run in sequence.

Python does the wiring only: which agent gets which tools, which checks follow each task, how many
tool calls and retries each may spend. What the agents are told lives in ``prompts/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cimedic.crew import outputs, prompts
from cimedic.crew.grounding import targets
from cimedic.crew.llm import usage
from cimedic.crew.policy import CrewPolicy
from cimedic.models import Category, LLMUsage
from cimedic.tools.agent.base import AgentTool, Workspace
from cimedic.tools.agent.registry import toolbox

if TYPE_CHECKING:
    from crewai import LLM, Agent, Crew

# Each role sees only the tools its job needs: a smaller menu is cheaper (every request carries the
# schemas) and harder to misuse. The analyst's context already holds the failed tests and the
# knowledge-base matches, so it gets the tools that look further than that context.
TOOLS_OF = {
    "rca_analyst": (
        "get_run",
        "list_failed_jobs",
        "get_log_excerpt",
        "search_log",
        "diff_with_last_green",
        "search_incidents",
        "get_job_history",
    ),
    "flakiness_investigator": ("get_failed_tests", "get_test_history", "flaky_score", "search_log"),
    "remediation_planner": ("propose_action", "get_job_history", "flaky_score", "predict_failure"),
    "reporter": (),
}
# Chat answers questions; it proposes nothing, so it gets every tool but propose_action.
TOOLS_OF["chat_assistant"] = tuple(dict.fromkeys(t for ts in TOOLS_OF.values() for t in ts if t != "propose_action"))
RCA_TASKS = ("rca", "flakiness", "plan", "report")


@dataclass
class CrewResult:
    rca: outputs.RcaOutput
    flakiness: outputs.FlakinessOutput | None
    plan: outputs.PlanOutput
    report: str


class CrewFailed(Exception):
    """The crew gave no usable answer; carries what its calls cost so the budget still counts them."""

    def __init__(self, message: str, spent: LLMUsage) -> None:
        super().__init__(message)
        self.spent = spent


def _embedder(ws: Workspace) -> dict[str, Any]:
    # Passed explicitly so CrewAI never falls back to its OpenAI embedder (memory is off anyway).
    from cimedic.memory.embed import default_model_dir

    return {"provider": "sentence-transformer", "config": {"model_name": str(default_model_dir(ws.settings))}}


def agent(name: str, llm: LLM, tools: dict[str, AgentTool], policy: CrewPolicy) -> Agent:
    from crewai import Agent

    role = prompts.agents()[name]
    return Agent(
        role=role.role,
        goal=role.goal,
        backstory=role.backstory,
        llm=llm,
        tools=[tools[t] for t in TOOLS_OF[name]],
        allow_delegation=False,
        verbose=False,
        max_iter=policy.max_tool_calls,
        max_retry_limit=1,
        cache=False,
    )


def build_crew(ws: Workspace, llm: LLM, context: str, policy: CrewPolicy) -> Crew:
    from crewai import Crew, Process, Task

    tools: dict[str, AgentTool] = toolbox(ws)
    texts = prompts.tasks()
    failed = [t.name for t in ws.diagnosis.failed_tests[:20]]
    values = {
        "context": context,
        "categories": " | ".join(f'"{c.value}"' for c in Category),
        "failed_tests": ", ".join(failed) or "none",
        "targets": ", ".join(f'"{t}"' for t in targets(ws)[:40]),
    }
    checks = {
        "rca": outputs.rca_guardrail(ws),
        "flakiness": outputs.flakiness_guardrail,
        "plan": outputs.plan_guardrail,
        "report": outputs.report_guardrail,
    }
    agents = {texts[t].agent: agent(texts[t].agent, llm, tools, policy) for t in RCA_TASKS}
    tasks: list[Task] = []
    for name in RCA_TASKS:
        text = texts[name]
        if name == "flakiness" and not failed:
            continue  # no failed tests: nothing for the flakiness investigator to judge
        tasks.append(
            Task(
                name=name,
                description=prompts.fill(text.description, values),
                expected_output=prompts.fill(text.expected_output, values),
                agent=agents[text.agent],
                guardrail=checks[name],
                guardrail_max_retries=policy.guardrail_retries,
            )
        )
    return Crew(
        agents=list(agents.values()),
        tasks=tasks,
        process=Process.sequential,
        verbose=False,
        memory=False,
        embedder=_embedder(ws),
    )


def run_crew(ws: Workspace, llm: LLM, model: str, context: str, policy: CrewPolicy) -> tuple[CrewResult, LLMUsage]:
    """Run the crew; raises CrewFailed (with the spend) when it gives no valid answer."""
    from crewai.crews.crew_output import CrewOutput

    crew = build_crew(ws, llm, context, policy)
    # Spend is read off the one LLM object: CrewAI's crew totals add a shared LLM's count once per agent.
    try:
        result = crew.kickoff()
    except Exception as exc:  # guardrail exhaustion, provider errors: the flow falls back offline
        raise CrewFailed(str(exc), usage(model, llm.get_token_usage_summary())) from exc
    spent = usage(model, llm.get_token_usage_summary())
    if not isinstance(result, CrewOutput):  # streaming is never switched on here
        raise CrewFailed("the crew streamed instead of answering", spent)
    by_name = {t.name: t.raw for t in result.tasks_output}
    flaky = by_name.get("flakiness")
    return (
        CrewResult(
            rca=outputs.RcaOutput.model_validate_json(by_name["rca"]),
            flakiness=outputs.FlakinessOutput.model_validate_json(flaky) if flaky else None,
            plan=outputs.PlanOutput.model_validate_json(by_name["plan"]),
            report=by_name["report"],
        ),
        spent,
    )
