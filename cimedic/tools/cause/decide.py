"""One category from three opinions: the rules, the trained classifier, and similar past incidents.

Each source gives a distribution over categories; the decision is their weighted mixture and the
confidence is the mixture's mass on the chosen category, so agreement raises it and disagreement
lowers it. Rules weigh most: across unseen repositories they generalise best (bench/rca_logchunks.py
measures each source alone and the mixture). A past incident counts only when it is close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cimedic.models import Category, SimilarIncident
from cimedic.tools.logs.classify import distribution

MODEL_WEIGHT = 0.25
NEIGHBOUR_WEIGHT = 1.0
# Below this cosine similarity a past incident is shown but does not vote.
NEIGHBOUR_MIN_SCORE = 0.6


@dataclass(frozen=True)
class Decision:
    category: Category
    confidence: float
    # Each source's probability for the chosen category (what the report shows as "decided by").
    parts: dict[str, float] = field(default_factory=dict)


def neighbour_distribution(similar: Sequence[SimilarIncident]) -> dict[Category, float]:
    close = [s for s in similar if s.score >= NEIGHBOUR_MIN_SCORE]
    if not close:
        return {}
    total = sum(s.score for s in close)
    out: dict[Category, float] = {}
    for s in close:
        out[Category(s.category)] = out.get(Category(s.category), 0.0) + s.score / total
    # A single weak neighbour is a hint, several close ones are a precedent.
    strength = min(1.0, max(s.score for s in close))
    return {k: v * strength for k, v in out.items()}


def decide(
    rule_tally: dict[Category, float],
    model: dict[str, float] | None,
    similar: Sequence[SimilarIncident] = (),
    *,
    model_weight: float = MODEL_WEIGHT,
    neighbour_weight: float = NEIGHBOUR_WEIGHT,
) -> Decision:
    sources: list[tuple[str, float, dict[Category, float]]] = [("rules", 1.0, distribution(rule_tally))]
    if model:
        sources.append(("classifier", model_weight, {Category(k): v for k, v in model.items()}))
    neighbours = neighbour_distribution(similar)
    if neighbours:
        sources.append(("similar_incidents", neighbour_weight, neighbours))
    weight = sum(w for _, w, _ in sources)
    mixture: dict[Category, float] = {}
    for _, w, dist in sources:
        for category, p in dist.items():
            mixture[category] = mixture.get(category, 0.0) + w * p / weight
    if not mixture:
        return Decision(Category.OTHER, 0.2, {})
    category = max(mixture, key=lambda c: mixture[c])
    parts = {name: round(dist.get(category, 0.0), 3) for name, _, dist in sources}
    return Decision(category, round(max(0.05, min(0.97, mixture[category])), 2), parts)
