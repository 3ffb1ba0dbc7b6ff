"""Follow-up questions about one investigation, answered with the same read-only tools.

With a model: a single chat agent looks things up and answers. Without one (or over budget): the
deterministic answer is what the tools themselves say about the question: matching log lines and
known failures, so the command stays useful offline and says that it is.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from cimedic.crew import outputs, prompts
from cimedic.crew.context import llm_context
from cimedic.crew.crews import CrewFailed, agent
from cimedic.crew.llm import usage
from cimedic.crew.policy import CrewPolicy
from cimedic.models import LLMUsage
from cimedic.redact import redact
from cimedic.tools.agent.base import Workspace
from cimedic.tools.agent.registry import toolbox

if TYPE_CHECKING:
    from crewai import LLM

HISTORY_TURNS = 4
_WORD = re.compile(r"[A-Za-z_][\w.-]{3,}")
# Words that say nothing about a log: searching for them would match everything or nothing useful.
_STOP = {"what", "which", "where", "when", "does", "that", "this", "with", "from", "have", "there", "they", "about"}
_STOP |= {"failed", "failure", "fail", "why", "did", "build", "the", "run", "test", "tests", "error", "line", "log"}


def ask(
    ws: Workspace, question: str, history: list[tuple[str, str]], llm: LLM, model: str, policy: CrewPolicy
) -> tuple[str, LLMUsage]:
    """The model's answer (redacted) and what it cost; raises CrewFailed when there is none."""
    from crewai import Crew, Process, Task

    text = prompts.tasks()["chat"]
    turns = "\n".join(f"Q: {q}\nA: {a}" for q, a in history[-HISTORY_TURNS:]) or "(nothing yet)"
    # The question is the user's, yet it may paste log text: it is redacted like everything else.
    values = {"context": llm_context(ws.diagnosis), "history": redact(turns), "question": redact(question)}
    task = Task(
        name="chat",
        description=prompts.fill(text.description, values),
        expected_output=prompts.fill(text.expected_output, values),
        agent=agent(text.agent, llm, toolbox(ws), policy),
        guardrail=outputs.chat_guardrail,
        guardrail_max_retries=policy.guardrail_retries,
    )
    crew = Crew(agents=[task.agent], tasks=[task], process=Process.sequential, verbose=False, memory=False)
    try:
        result = crew.kickoff()
    except Exception as exc:  # provider errors, answers that keep failing the check
        raise CrewFailed(str(exc), usage(model, llm.get_token_usage_summary())) from exc
    return redact(str(getattr(result, "raw", result))), usage(model, llm.get_token_usage_summary())


def keywords(question: str) -> list[str]:
    words = [w for w in _WORD.findall(question) if w.casefold() not in _STOP]
    return list(dict.fromkeys(words))[:6]


def offline_answer(ws: Workspace, question: str) -> str:
    """What the tools say about the question without a model: log lines and known failures."""
    tools = toolbox(ws)
    parts = [f"Offline answer (no LLM): {ws.diagnosis.summary}"]
    words = keywords(question)
    if words:
        pattern = "|".join(re.escape(w) for w in words)
        found = json.loads(tools["search_log"].run(pattern=pattern))
        hits = found.get("hits", [])
        parts.append(f"Log lines mentioning {', '.join(words)}: {found.get('total', 0)}")
        parts += [f"- {h['path']}:{h['line']}: {h['text']}" for h in hits[:10]]
    known = json.loads(tools["match_knowledge_base"].run(text=question))
    matches = known.get("matches", []) if isinstance(known, dict) else []
    if matches:
        parts.append("Known failures matching the question:")
        parts += [f"- {m.get('id')}: {m.get('description') or m.get('title')}" for m in matches[:3]]
    return "\n".join(parts)
