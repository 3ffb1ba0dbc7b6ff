"""Every agent tool by name, built over one workspace."""

from __future__ import annotations

from importlib import import_module

from cimedic.tools.agent.base import AgentTool, Workspace

# name -> (module, class): modules load on first use, so listing the tools imports nothing heavy.
TOOLS = {
    "get_run": ("get_run", "GetRun"),
    "list_failed_jobs": ("list_failed_jobs", "ListFailedJobs"),
    "get_log_excerpt": ("get_log_excerpt", "GetLogExcerpt"),
    "search_log": ("search_log", "SearchLog"),
    "get_failed_tests": ("get_failed_tests", "GetFailedTests"),
    "diff_with_last_green": ("diff_with_last_green", "DiffWithLastGreen"),
    "search_incidents": ("search_incidents", "SearchIncidents"),
    "match_knowledge_base": ("match_knowledge_base", "MatchKnowledgeBase"),
    "get_test_history": ("get_test_history", "GetTestHistory"),
    "get_job_history": ("get_job_history", "GetJobHistory"),
    "flaky_score": ("flaky_score", "FlakyScore"),
    "predict_failure": ("predict_failure", "PredictFailure"),
    "propose_action": ("propose_action", "ProposeAction"),
}


def toolbox(ws: Workspace) -> dict[str, AgentTool]:
    tools: dict[str, AgentTool] = {}
    for name, (module, cls) in TOOLS.items():
        tool = getattr(import_module(f"cimedic.tools.agent.{module}"), cls)(workspace=ws)
        if tool.name != name:
            raise RuntimeError(f"cimedic.tools.agent.{module}.{cls} calls itself {tool.name!r}, not {name!r}")
        tools[name] = tool
    return tools
