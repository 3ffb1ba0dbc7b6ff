"""One way to reach a model: litellm, chosen by settings, and what its calls cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cimedic.models import LLMUsage
from cimedic.settings import Settings, quiet_third_parties

if TYPE_CHECKING:
    from crewai import LLM


def build_llm(settings: Settings, model: str | None = None) -> LLM:
    """The crew's LLM for ``model`` (default: settings.llm_model), always routed through litellm.

    ``is_litellm`` matters: CrewAI otherwise swaps in its own native client for known providers,
    and a base URL pointing at a local OpenAI-compatible server would go to a different code path.
    """
    name = model or settings.llm_model
    if not name:
        raise ValueError("no LLM model configured (set CIMEDIC_LLM_MODEL or pass --llm)")
    quiet_third_parties(settings)
    from crewai import LLM

    options: dict[str, Any] = {
        "temperature": 0.0,
        "timeout": settings.llm_timeout_s,
        "max_tokens": settings.llm_max_tokens,
    }
    if settings.llm_base_url:
        options["base_url"] = settings.llm_base_url
    if settings.llm_api_key is not None:
        options["api_key"] = settings.llm_api_key.get_secret_value()
    return LLM(model=name, is_litellm=True, **options)


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for these tokens from litellm's bundled price map; None when the model has no price."""
    import litellm

    try:
        cost_in, cost_out = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # litellm raises plain Exception for models missing from its map
        return None
    return round(float(cost_in) + float(cost_out), 6)


def usage(model: str, metrics: Any) -> LLMUsage:
    """An ``LLMUsage`` from CrewAI's UsageMetrics (one crew run) priced by litellm."""
    prompt = int(getattr(metrics, "prompt_tokens", 0) or 0)
    completion = int(getattr(metrics, "completion_tokens", 0) or 0)
    return LLMUsage(
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        requests=int(getattr(metrics, "successful_requests", 0) or 0),
        cost_usd=price(model, prompt, completion),
    )


def add(a: LLMUsage | None, b: LLMUsage) -> LLMUsage:
    if a is None:
        return b
    cost = None if a.cost_usd is None and b.cost_usd is None else (a.cost_usd or 0.0) + (b.cost_usd or 0.0)
    return LLMUsage(
        model=b.model,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        requests=a.requests + b.requests,
        cost_usd=cost,
    )
