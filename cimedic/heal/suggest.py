"""``cimedic policy suggest``: where outcomes say the policy is too cautious, or not cautious enough."""

from __future__ import annotations

from collections import defaultdict

from cimedic.heal.learning import from_outcomes
from cimedic.heal.policy import Level, Policy, Subject, decide
from cimedic.models import ActionKind

# Auto only when even the pessimistic end of the estimate fixes most failures.
AUTO_LOW = 0.8
# Back to a person when the action fails more often than it fixes.
APPROVE_MEAN = 0.4


def suggestions(
    policy: Policy, outcomes: list[tuple[ActionKind, str | None, str, bool]], min_outcomes: int
) -> list[str]:
    posteriors = from_outcomes(outcomes)
    seen: dict[tuple[ActionKind, str], int] = defaultdict(int)
    for kind, _, category, _ in outcomes:
        seen[(kind, category)] += 1
    found: list[str] = []
    for (kind, category), n in sorted(seen.items()):
        if n < min_outcomes:
            continue
        est = posteriors.estimate(kind, None, category)
        level = decide(policy, kind, Subject(category=category, source="knowledge-base")).level
        figures = f"{kind} fixed {est.mean:.0%} of {category} failures ({n} outcomes, 90% {est.low:.0%}-{est.high:.0%})"
        if level == Level.APPROVE and est.low >= AUTO_LOW:
            found.append(f"allow auto: {figures}. Rule: {_rule(kind, category, Level.AUTO)}")
        elif level == Level.AUTO and est.mean <= APPROVE_MEAN:
            found.append(f"require approval: {figures}. Rule: {_rule(kind, category, Level.APPROVE)}")
    return found


def _rule(kind: ActionKind, category: str, level: Level) -> str:
    return f"{{name: {level}-{kind}-{category}, categories: [{category}], levels: {{{kind}: {level}}}}}"
