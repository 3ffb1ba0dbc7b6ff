"""The flow's spending policy, from ``config/crew.yaml`` (policy lives in YAML, not in code)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, Field


class CrewPolicy(BaseModel):
    confident: float = Field(default=0.85, ge=0.0, le=1.0)
    knowledge_base_skips: bool = True
    max_tool_calls: int = Field(default=6, ge=1, le=30)
    guardrail_retries: int = Field(default=1, ge=0, le=5)


@lru_cache(maxsize=1)
def load_policy() -> CrewPolicy:
    data = yaml.safe_load(resources.files("cimedic.config").joinpath("crew.yaml").read_text(encoding="utf-8"))
    return CrewPolicy(**data.get("router", {}), **data.get("crew", {}))
