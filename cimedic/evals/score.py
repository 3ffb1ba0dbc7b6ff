"""Deterministic per-case scores of one diagnosis against a case's expectations.

Metrics (``None`` where the case states nothing to check):

- ``category_ok``: the category equals the expected one.
- ``excerpt_ok``: the excerpt is at most ``MAX_EXCERPT_LINES`` lines (as in bench/rca_logchunks.py, so a
  whole-log excerpt cannot hit by size) and overlaps an expected range of the same file.
- ``evidence_precision``: share of evidence lines inside an expected range of their file.
- ``top_evidence_ok``: the first evidence line is inside an expected range.
- ``keyword_ok``: the summary or an evidence line contains one of ``cause_keywords`` (case-insensitive).
- ``action_ok``: every proposed action kind is in ``actions_ok`` (when that list is given).
- ``forbidden_actions``: proposed kinds listed in ``actions_forbidden`` (any is a failure).
- ``fingerprint_ok``: the fingerprint equals that of the ``same_failure_as`` case.

**Pass rule**: ``passed = category_ok and excerpt_ok is not False and not forbidden_actions``: the right
category, an excerpt on the culprit (when the case names culprit lines) and no forbidden action. The other
metrics are reported and compared between runs but do not decide a pass.

Files match when the names are equal or one ends with ``/`` + the other (a case may name ``job.log``
where the diagnosis says ``recorded/job.log``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from cimedic.evals.cases import Case, Range
from cimedic.models import Diagnosis

MAX_EXCERPT_LINES = 40

QUALITY_METRICS = (
    "passed",
    "category_ok",
    "excerpt_ok",
    "evidence_precision",
    "top_evidence_ok",
    "keyword_ok",
    "action_ok",
    "forbidden_ok",
    "fingerprint_ok",
)


class CaseScore(BaseModel):
    id: str
    tags: list[str]
    passed: bool
    error: str | None = Field(default=None, description="investigate failed: one line, no traceback")
    expected_category: str
    category: str | None = None
    category_ok: bool = False
    excerpt: str | None = Field(default=None, description="path:start-end")
    excerpt_ok: bool | None = None
    evidence_precision: float | None = None
    top_evidence_ok: bool | None = None
    keyword_ok: bool | None = None
    actions: list[str] = Field(default_factory=list)
    action_ok: bool | None = None
    forbidden_actions: list[str] = Field(default_factory=list)
    fingerprint: str | None = None
    fingerprint_ok: bool | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0

    @property
    def forbidden_ok(self) -> bool:
        return not self.forbidden_actions

    def metric(self, name: str) -> bool | float | None:
        value = getattr(self, name)
        assert value is None or isinstance(value, bool | float | int)
        return value


def same_file(a: str, b: str) -> bool:
    a, b = a.replace("\\", "/"), b.replace("\\", "/")
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def ranges_for(expected: dict[str, list[Range]], path: str) -> list[Range]:
    return [r for name, rs in expected.items() if same_file(name, path) for r in rs]


def inside(expected: dict[str, list[Range]], path: str, line: int) -> bool:
    return any(lo <= line <= hi for lo, hi in ranges_for(expected, path))


def failed(case: Case, error: str, latency_ms: int = 0) -> CaseScore:
    """The score of a case whose investigation raised."""
    return CaseScore(
        id=case.id,
        tags=case.tags,
        passed=False,
        error=error,
        expected_category=str(case.expected.category),
        latency_ms=latency_ms,
    )


def score_case(
    case: Case, diag: Diagnosis, *, latency_ms: int, same_failure_fingerprint: str | None = None
) -> CaseScore:
    exp = case.expected
    category_ok = diag.category == exp.category

    excerpt_ok: bool | None = None
    excerpt = None
    if diag.excerpt is not None:
        ex = diag.excerpt
        excerpt = f"{ex.path}:{ex.start_line}-{ex.end_line}"
    if exp.lines:
        excerpt_ok = diag.excerpt is not None and (
            diag.excerpt.end_line - diag.excerpt.start_line < MAX_EXCERPT_LINES
            and any(
                lo <= diag.excerpt.end_line and hi >= diag.excerpt.start_line
                for lo, hi in ranges_for(exp.lines, diag.excerpt.path)
            )
        )

    precision: float | None = None
    top_ok: bool | None = None
    if exp.lines:
        hits = [inside(exp.lines, e.path, e.line) for e in diag.evidence]
        precision = round(sum(hits) / len(hits), 4) if hits else 0.0
        top_ok = bool(hits) and hits[0]

    keyword_ok: bool | None = None
    if exp.cause_keywords:
        haystack = "\n".join([diag.summary, *(e.text for e in diag.evidence)]).lower()
        keyword_ok = any(k.lower() in haystack for k in exp.cause_keywords)

    kinds = [str(a.kind) for a in diag.plan.actions] if diag.plan else []
    action_ok = all(k in exp.actions_ok for k in kinds) if exp.actions_ok else None
    forbidden = sorted({k for k in kinds if k in exp.actions_forbidden})

    fingerprint = diag.fingerprint.id if diag.fingerprint else None
    fingerprint_ok: bool | None = None
    if case.same_failure_as is not None:
        fingerprint_ok = fingerprint is not None and fingerprint == same_failure_fingerprint

    tokens, cost = 0, 0.0
    if diag.llm is not None:
        tokens = diag.llm.prompt_tokens + diag.llm.completion_tokens
        cost = diag.llm.cost_usd or 0.0

    return CaseScore(
        id=case.id,
        tags=case.tags,
        passed=category_ok and excerpt_ok is not False and not forbidden,
        expected_category=str(exp.category),
        category=str(diag.category),
        category_ok=category_ok,
        excerpt=excerpt,
        excerpt_ok=excerpt_ok,
        evidence_precision=precision,
        top_evidence_ok=top_ok,
        keyword_ok=keyword_ok,
        actions=kinds,
        action_ok=action_ok,
        forbidden_actions=forbidden,
        fingerprint=fingerprint,
        fingerprint_ok=fingerprint_ok,
        tokens=tokens,
        cost_usd=cost,
        latency_ms=latency_ms,
    )
