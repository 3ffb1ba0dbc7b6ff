"""Run recorded cases through investigate, aggregate the scores, write and compare reports.

``run_cases`` takes the function that turns an input path into a Diagnosis, so tests (and other
datasets) can drive it without the flow; ``flow_investigator`` is the real one (offline or with a model).
Reports hold no timestamps: two offline runs of the same code give the same scores (latency aside).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from cimedic.errors import InputError, one_line
from cimedic.evals.cases import Case
from cimedic.evals.score import QUALITY_METRICS, CaseScore, failed, score_case
from cimedic.models import Diagnosis

REPORT_SCHEMA = 1
JSON_NAME = "eval-report.json"
MD_NAME = "eval-report.md"

Investigator = Callable[[Path], Diagnosis]


class Aggregate(BaseModel):
    n: int
    passed: int
    pass_rate: float
    category_accuracy: float
    excerpt_hit: float | None = Field(description="over cases that name culprit lines")
    evidence_precision: float | None
    top_evidence: float | None
    keyword_hit: float | None
    action_ok: float | None
    forbidden_proposed: int = Field(description="cases where a forbidden action was proposed")
    fingerprint_stable: float | None
    errors: int
    tokens: int
    cost_usd: float
    latency_p50_ms: int
    latency_p95_ms: int


class Report(BaseModel):
    schema_version: int = REPORT_SCHEMA
    mode: str = Field(description="offline or llm")
    model: str | None = None
    overall: Aggregate
    by_tag: dict[str, Aggregate]
    cases: list[CaseScore]


class Change(BaseModel):
    case: str
    metric: str
    before: bool | float | None
    after: bool | float | None
    better: bool


class Comparison(BaseModel):
    better: list[Change] = Field(default_factory=list)
    worse: list[Change] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list, description="cases only in the new report")
    removed: list[str] = Field(default_factory=list, description="cases only in the baseline")

    @property
    def regressed(self) -> bool:
        return bool(self.worse)


def flow_investigator(*, offline: bool = True, model: str | None = None) -> Investigator:
    """The CLI's own flow (never recording into incident history)."""
    from cimedic.crew.flow import investigate  # CrewAI takes seconds to import

    def run(path: Path) -> Diagnosis:
        return investigate(str(path), model=model, offline=offline, record=False)

    return run


def percentile(values: list[int], p: float) -> int:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _rate(values: list[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def aggregate(scores: list[CaseScore]) -> Aggregate:
    n = len(scores)
    precisions = [s.evidence_precision for s in scores if s.evidence_precision is not None]
    latencies = [s.latency_ms for s in scores]
    return Aggregate(
        n=n,
        passed=sum(s.passed for s in scores),
        pass_rate=round(sum(s.passed for s in scores) / n, 4) if n else 0.0,
        category_accuracy=round(sum(s.category_ok for s in scores) / n, 4) if n else 0.0,
        excerpt_hit=_rate([s.excerpt_ok for s in scores]),
        evidence_precision=round(sum(precisions) / len(precisions), 4) if precisions else None,
        top_evidence=_rate([s.top_evidence_ok for s in scores]),
        keyword_hit=_rate([s.keyword_ok for s in scores]),
        action_ok=_rate([s.action_ok for s in scores]),
        forbidden_proposed=sum(bool(s.forbidden_actions) for s in scores),
        fingerprint_stable=_rate([s.fingerprint_ok for s in scores]),
        errors=sum(s.error is not None for s in scores),
        tokens=sum(s.tokens for s in scores),
        cost_usd=round(sum(s.cost_usd for s in scores), 6),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
    )


def build_report(scores: list[CaseScore], *, mode: str, model: str | None = None) -> Report:
    tags = sorted({t for s in scores for t in s.tags})
    return Report(
        mode=mode,
        model=model,
        overall=aggregate(scores),
        by_tag={t: aggregate([s for s in scores if t in s.tags]) for t in tags},
        cases=scores,
    )


def run_cases(
    cases: list[Case],
    investigate: Investigator,
    *,
    mode: str = "offline",
    model: str | None = None,
    all_cases: list[Case] | None = None,
    on_case: Callable[[CaseScore], None] | None = None,
) -> Report:
    """Investigate and score every case. A ``same_failure_as`` case outside ``cases`` is looked up in
    ``all_cases`` and investigated too (for its fingerprint only, not scored)."""
    by_id = {c.id: c for c in (all_cases or cases)}
    selected = {c.id for c in cases}
    extra = [
        by_id[c.same_failure_as]
        for c in cases
        if c.same_failure_as and c.same_failure_as not in selected and c.same_failure_as in by_id
    ]
    results: dict[str, tuple[Diagnosis | None, str | None, int]] = {}
    for case in [*cases, *{c.id: c for c in extra}.values()]:
        started = time.perf_counter()
        try:
            diag: Diagnosis | None = investigate(case.input_path)
            error = None
        except Exception as exc:  # one broken case must not lose the others
            diag, error = None, one_line(exc)
        results[case.id] = (diag, error, int((time.perf_counter() - started) * 1000))
    scores: list[CaseScore] = []
    for case in cases:
        diag, error, latency = results[case.id]
        if diag is None:
            score = failed(case, error or "no diagnosis", latency)
        else:
            ref = results.get(case.same_failure_as or "")
            ref_fp = ref[0].fingerprint.id if ref and ref[0] and ref[0].fingerprint else None
            score = score_case(case, diag, latency_ms=latency, same_failure_fingerprint=ref_fp)
        scores.append(score)
        if on_case:
            on_case(score)
    return build_report(scores, mode=mode, model=model)


def compare(report: Report, baseline: Report) -> Comparison:
    """Per case and quality metric, what got better or worse than ``baseline``.

    Booleans: True is better; evidence precision: higher is better; a metric that does not apply on
    either side (None) is not a change. Latency, tokens and cost are aggregate figures, not compared here.
    """
    before = {s.id: s for s in baseline.cases}
    after = {s.id: s for s in report.cases}
    out = Comparison(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
    )
    for case_id in sorted(set(after) & set(before)):
        old, new = before[case_id], after[case_id]
        for metric in QUALITY_METRICS:
            a, b = old.metric(metric), new.metric(metric)
            if a is None or b is None or a == b:
                continue
            change = Change(case=case_id, metric=metric, before=a, after=b, better=float(b) > float(a))
            (out.better if change.better else out.worse).append(change)
    return out


def load_report(path: Path) -> Report:
    try:
        return Report.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise InputError(str(path), f"not an eval report: {exc.errors()[0]['msg']}") from exc


def _fmt(value: float | None, pct: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value}"


def _agg_row(name: str, a: Aggregate) -> str:
    return (
        f"| {name} | {a.n} | {a.passed} ({_fmt(a.pass_rate)}) | {_fmt(a.category_accuracy)} | {_fmt(a.excerpt_hit)} "
        f"| {_fmt(a.evidence_precision)} | {_fmt(a.keyword_hit)} | {a.forbidden_proposed} | {a.tokens} "
        f"| {a.cost_usd:.4f} | {a.latency_p50_ms} | {a.latency_p95_ms} |"
    )


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def to_markdown(report: Report, comparison: Comparison | None = None) -> str:
    lines = [
        f"# cimedic eval ({report.mode}{', ' + report.model if report.model else ''})",
        "",
        "A case passes when the category is right, the excerpt overlaps the culprit lines (when the case "
        "names them) and no forbidden action is proposed.",
        "",
        "| scope | cases | passed | category | excerpt | evidence precision | keyword | forbidden "
        "| tokens | cost $ | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        _agg_row("**all**", report.overall),
        *(_agg_row(tag, agg) for tag, agg in report.by_tag.items()),
        "",
        "| case | passed | category (expected) | excerpt | precision | top evidence | keyword | actions "
        "| fingerprint | ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.cases:
        if s.error:
            lines.append(f"| {s.id} | **no** | error: {s.error.replace('|', '/')} | | | | | | | {s.latency_ms} |")
            continue
        actions = ", ".join(s.actions) or "-"
        if s.forbidden_actions:
            actions += f" (forbidden: {', '.join(s.forbidden_actions)})"
        lines.append(
            f"| {s.id} | {_mark(s.passed)} | {s.category} ({s.expected_category}) | {_mark(s.excerpt_ok)} "
            f"| {_fmt(s.evidence_precision)} | {_mark(s.top_evidence_ok)} | {_mark(s.keyword_ok)} | {actions} "
            f"| {_mark(s.fingerprint_ok)} | {s.latency_ms} |"
        )
    if comparison is not None:
        lines += ["", "## Against the baseline", ""]
        for title, changes in (("Worse", comparison.worse), ("Better", comparison.better)):
            lines.append(f"{title}: {len(changes)}")
            lines += [f"- {c.case} {c.metric}: {c.before} -> {c.after}" for c in changes]
        if comparison.added:
            lines.append(f"New cases: {', '.join(comparison.added)}")
        if comparison.removed:
            lines.append(f"Cases no longer run: {', '.join(comparison.removed)}")
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path, comparison: Comparison | None = None) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / JSON_NAME, out / MD_NAME
    json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report, comparison), encoding="utf-8")
    return json_path, md_path
