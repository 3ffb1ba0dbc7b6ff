"""Folding the crew's answer into the diagnosis: grounded, redacted, and in the same JSON contract."""

from __future__ import annotations

from cimedic.crew.crews import CrewResult
from cimedic.models import Diagnosis, Evidence, LLMUsage
from cimedic.redact import redact

SUMMARY_MAX = 220
# A model's own confidence is a self-report: it never reads as certainty.
LLM_CONFIDENCE_MAX = 0.95


def merged(diag: Diagnosis, result: CrewResult, spent: LLMUsage, evidence_max: int) -> Diagnosis:
    rca = result.rca
    cited = [
        Evidence(path=c.path, line=c.line, text=redact(c.text.strip())[:2000], why="cited by the model")
        for c in rca.evidence
    ]
    at = {(e.path, e.line) for e in cited}
    evidence = [*cited, *(e for e in diag.evidence if (e.path, e.line) not in at)][:evidence_max]
    summary = redact(" ".join(rca.summary.split()))
    confidence = min(rca.confidence, LLM_CONFIDENCE_MAX)
    return diag.model_copy(
        update={
            "category": rca.category,
            "confidence": confidence,
            "summary": summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
            "evidence": evidence,
            "decided_by": {**diag.decided_by, "llm": round(confidence, 3)},
            "root_cause": redact(rca.root_cause),
            "report": redact(result.report),
            "backend": "llm",
            "llm": spent,
        }
    )
