"""The crew's prose: roles and tasks from ``cimedic/prompts/*.yaml``, filled in one pass.

CrewAI's own interpolation replaces placeholders one after another, so a value holding ``{name}``
(log text can) would be filled again by a later placeholder. Here each template is filled once,
``{{``/``}}`` stand for literal braces, and a missing value is an error rather than a silent gap.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")


class AgentText(BaseModel):
    role: str
    goal: str
    backstory: str


class TaskText(BaseModel):
    agent: str
    description: str
    expected_output: str


def _yaml(name: str) -> dict[str, Any]:
    data = yaml.safe_load(resources.files("cimedic.prompts").joinpath(name).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"prompts/{name}: expected a mapping of names to entries")
    return data


@lru_cache(maxsize=1)
def agents() -> dict[str, AgentText]:
    return {name: AgentText.model_validate(entry) for name, entry in _yaml("agents.yaml").items()}


@lru_cache(maxsize=1)
def tasks() -> dict[str, TaskText]:
    found = {name: TaskText.model_validate(entry) for name, entry in _yaml("tasks.yaml").items()}
    unknown = {t.agent for t in found.values()} - set(agents())
    if unknown:
        raise ValueError(f"prompts/tasks.yaml names agents not in agents.yaml: {sorted(unknown)}")
    return found


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]`` in a single pass; inserted text is never re-read."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in values:
            raise KeyError(f"prompt placeholder {{{name}}} has no value")
        return values[name]

    return _PLACEHOLDER.sub(one, template)
