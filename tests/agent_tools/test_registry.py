"""The registry: every tool builds, is named as registered, and none can reach a CI write path."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from cimedic.crew.crews import TOOLS_OF
from cimedic.tools.agent.base import AgentTool
from cimedic.tools.agent.registry import TOOLS, toolbox
from tests.conftest import EXAMPLES

# Modules through which cimedic writes to CI platforms (rerun, cancel, trigger, comment).
WRITE_PATHS = ("cimedic.tools.ci", "cimedic.runs_cli", "cimedic.remote")


def test_every_tool_builds_with_a_schema_and_a_description(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tools = toolbox(workspace_of(EXAMPLES / "gha-timeout.log"))
    assert sorted(tools) == sorted(TOOLS)
    for name, tool in tools.items():
        assert isinstance(tool, AgentTool) and tool.name == name
        assert len(tool.description) > 80, name
        for field, info in tool.args_schema.model_fields.items():
            assert info.description, f"{name}.{field} has no description for the model"


def test_each_role_gets_only_registered_tools_and_only_the_planner_proposes() -> None:
    for role, names in TOOLS_OF.items():
        assert set(names) <= set(TOOLS), role
    assert [role for role, names in TOOLS_OF.items() if "propose_action" in names] == ["remediation_planner"]


def test_no_tool_module_imports_a_ci_write_path() -> None:
    for module, _ in TOOLS.values():
        spec = importlib.util.find_spec(f"cimedic.tools.agent.{module}")
        assert spec is not None and spec.origin is not None
        tree = ast.parse(Path(spec.origin).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith(WRITE_PATHS)], module
