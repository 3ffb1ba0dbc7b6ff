"""The deterministic investigation: local material in, a Diagnosis out (no LLM, no network)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cimedic.errors import InputError
from cimedic.models import (
    Category,
    Diagnosis,
    Evidence,
    Excerpt,
    FailedTest,
    Fingerprint,
    RuleMatch,
    SourceKind,
    TestResult,
)
from cimedic.recall import cause_probabilities, fingerprint_history, run_key, similar_incidents
from cimedic.redact import redact
from cimedic.settings import Limits, get_settings
from cimedic.tools.cause.decide import decide
from cimedic.tools.cause.features import Signals
from cimedic.tools.ingest.base import LogFile, RunMaterial
from cimedic.tools.ingest.junit import testcase_line
from cimedic.tools.ingest.local import ingest_path
from cimedic.tools.knowledge_base import KnowledgeBase
from cimedic.tools.knowledge_base import load as load_knowledge
from cimedic.tools.logs.classify import add_knowledge_votes, tally
from cimedic.tools.logs.failed_tests import tests_from_log
from cimedic.tools.logs.localize import LogAnalysis, analyze_log
from cimedic.tools.logs.scanner import scan
from cimedic.tools.logs.sequence import build_sequence
from cimedic.tools.logs.templates import TemplateIndex, fingerprint

SUMMARY_MAX = 220


@lru_cache(maxsize=4)
def _load_knowledge(dirs: tuple[Path, ...]) -> KnowledgeBase:
    return load_knowledge(list(dirs))


def _knowledge_matches(chosen: LogAnalysis | None, log: LogFile | None, warnings: list[str]) -> list[RuleMatch]:
    """Knowledge-base entries matching the failing step's evidence and excerpt, earliest line first."""
    if chosen is None:
        return []
    try:
        kb = _load_knowledge(tuple(get_settings().knowledge_search_dirs))
    except InputError as exc:
        # A broken entry file must not stop the investigation; `cimedic kb test` shows the details.
        warnings.append(f"knowledge base not used: {exc}")
        return []
    lines = [s.line.text for s in chosen.evidence[:1]] + [ln.text for ln in chosen.excerpt]
    lines += [s.line.text for s in chosen.evidence[1:]]
    found = kb.match(lines, job=log.job if log else None, step=log.step if log else None)
    return [
        RuleMatch(
            id=m.entry.id,
            title=m.entry.title,
            category=m.entry.category,
            captures={k: redact(v) for k, v in m.captures.items()},
            description=redact(m.description),
            remediation=redact(m.entry.remediation),
            action=m.entry.action,
        )
        for m in found[:5]
    ]


def investigate_path(
    path: Path, *, baseline: Path | None = None, limits: Limits | None = None, record: bool = True
) -> Diagnosis:
    """Investigate local material; ``record`` adds this run to the fingerprint history."""
    return analyse_path(path, baseline=baseline, limits=limits, record=record)[0]


def analyse_path(
    path: Path, *, baseline: Path | None = None, limits: Limits | None = None, record: bool = False
) -> tuple[Diagnosis, Signals]:
    """The diagnosis and the classifier's view of it (what ``cimedic learn`` and ``train`` keep)."""
    settings = get_settings()
    limits = limits or settings.limits
    started = time.perf_counter()
    material = ingest_path(path, limits)
    base_index = baseline_index(baseline, limits) if baseline else None
    diag, sig = diagnose_with_signals(material, limits=limits, baseline=base_index, started=started)
    if record:
        history = fingerprint_history(settings, diag, run_key(path), diag.warnings)
        diag = diag.model_copy(update={"fingerprint": history})
    diag.timings_ms["total"] = int((time.perf_counter() - started) * 1000)
    return diag, sig


def signals_of_path(path: Path) -> Signals:
    """Only the deterministic analysis (no model, no memory): what training data is made of."""
    limits = get_settings().limits
    return signals(gather(ingest_path(path, limits), limits=limits))


def baseline_index(path: Path, limits: Limits) -> TemplateIndex:
    """Templates of every candidate line in a passing run of the same job."""
    material = ingest_path(path, limits)
    index = TemplateIndex()
    for log in material.logs:
        with log.open() as stream:
            result = scan(stream, line_max_chars=limits.line_max_chars, candidates_max=limits.candidates_max)
        for line in result.hits + result.tail:
            if line.text.strip():
                index.add(line.text)
    return index


def _analyze_all(material: RunMaterial, limits: Limits, baseline: TemplateIndex | None) -> list[LogAnalysis]:
    out: list[LogAnalysis] = []
    for log in material.logs:
        try:
            out.append(
                analyze_log(
                    log.path,
                    log.open,
                    excerpt_lines=limits.excerpt_max_lines,
                    evidence_max=limits.evidence_max,
                    line_max_chars=limits.line_max_chars,
                    candidates_max=limits.candidates_max,
                    baseline=baseline,
                )
            )
        except (OSError, EOFError, ValueError) as exc:
            # Name what the user passed; inside an archive or folder, also which log broke.
            source = material.run.source
            subject = source.path if source.kind == SourceKind.FILE else f"{source.path} ({log.path})"
            raise InputError(subject, f"unreadable log data ({exc})") from exc
    return out


def _pick(analyses: list[LogAnalysis]) -> LogAnalysis | None:
    """The log that best explains the run: one whose step failed, then the most specific error."""
    if not analyses:
        return None
    return max(analyses, key=lambda a: (a.step_failed and bool(a.evidence), a.top_score))


@dataclass
class Findings:
    """What the deterministic analysis found, before any classifier or memory is consulted."""

    material: RunMaterial
    chosen: LogAnalysis | None
    chosen_log: LogFile | None
    tests: list[TestResult]
    matches: list[RuleMatch]
    votes: dict[Category, float]
    warnings: list[str]


def gather(material: RunMaterial, *, limits: Limits, baseline: TemplateIndex | None = None) -> Findings:
    analyses = _analyze_all(material, limits, baseline)
    chosen = _pick(analyses)
    warnings = list(material.warnings)
    tests = material.run.failed_tests
    if not tests and chosen is not None:
        tests = tests_from_log(chosen)
    votes = chosen.category_votes() if chosen else {}
    # The log the chosen analysis came from: its job and step name the failure and scope KB rules.
    chosen_log = next((lg for lg in material.logs if chosen is not None and lg.path == chosen.path), None)
    matches = _knowledge_matches(chosen, chosen_log, warnings)
    add_knowledge_votes(votes, [m.category for m in matches])
    if chosen is not None:
        if chosen.long_lines:
            warnings.append(f"{chosen.path}: {chosen.long_lines} over-long line(s) analysed truncated")
        if chosen.dropped_hits:
            warnings.append(f"{chosen.path}: {chosen.dropped_hits} candidate lines beyond the limit were skipped")
    return Findings(material, chosen, chosen_log, tests, matches, votes, warnings)


def signals(f: Findings) -> Signals:
    """The classifier's view of the findings; every line is redacted first (it may be stored)."""
    chosen = f.chosen
    return Signals(
        command=redact(chosen.command) if chosen and chosen.command else None,
        evidence=[redact(s.line.text.strip()) for s in chosen.evidence] if chosen else [],
        evidence_rules=[s.rule.name if s.rule else "last-output" for s in chosen.evidence] if chosen else [],
        excerpt=[redact(ln.text) for ln in chosen.excerpt] if chosen else [],
        kb_ids=[m.id for m in f.matches],
        kb_categories=[str(m.category) for m in f.matches],
        votes={str(k): round(v, 3) for k, v in f.votes.items()},
        failed_tests=len(f.tests),
    )


def diagnose(
    material: RunMaterial, *, limits: Limits, baseline: TemplateIndex | None = None, started: float | None = None
) -> Diagnosis:
    return diagnose_with_signals(material, limits=limits, baseline=baseline, started=started)[0]


def diagnose_with_signals(
    material: RunMaterial, *, limits: Limits, baseline: TemplateIndex | None = None, started: float | None = None
) -> tuple[Diagnosis, Signals]:
    started = started if started is not None else time.perf_counter()
    settings = get_settings()
    f = gather(material, limits=limits, baseline=baseline)
    sig = signals(f)
    chosen, tests, matches, warnings = f.chosen, f.tests, f.matches, f.warnings
    excerpt = None
    evidence: list[Evidence] = []
    if chosen is not None:
        if chosen.excerpt:
            excerpt = Excerpt(
                path=chosen.path,
                start_line=chosen.excerpt[0].no,
                end_line=chosen.excerpt[-1].no,
                text=redact("\n".join(ln.text for ln in chosen.excerpt)),
            )
        evidence = [
            Evidence(
                path=chosen.path,
                line=s.line.no,
                text=redact(s.line.text.strip()),
                why=s.rule.why if s.rule else "last output of the failing step",
            )
            for s in chosen.evidence
        ]
    evidence = _with_junit_evidence(evidence, material, limits.evidence_max)
    if not evidence and not tests:
        warnings.append("no error lines found; the run may not have failed")
    diag = Diagnosis(
        source=material.run.source,
        category=Category.OTHER,
        confidence=0.05,
        summary="",
        excerpt=excerpt,
        evidence=evidence,
        failed_tests=[FailedTest(name=redact(t.name), message=redact(t.message or "")) for t in tests[:50]],
        backend="offline",
        matched_rules=matches,
        fingerprint=Fingerprint(id=fingerprint([e.text for e in evidence[:3]])) if evidence else None,
    )
    sequence = build_sequence(
        material.run,
        chosen,
        job=f.chosen_log.job if f.chosen_log else None,
        step=f.chosen_log.step if f.chosen_log else None,
        baseline=baseline,
    )
    # Retrieval looks at the evidence, so it runs before the decision it takes part in.
    similar = similar_incidents(settings, diag, warnings)
    classified = cause_probabilities(settings, sig, warnings) if evidence or tests else None
    model, versions = (classified[0], {"classifier": classified[1]}) if classified else (None, {})
    decision = decide(tally(f.votes, chosen.command if chosen else None, len(tests)), model, similar)
    summary = _summary(decision.category.value, evidence, tests, _where(chosen, f.chosen_log), matches)
    diag = diag.model_copy(
        update={
            "category": decision.category,
            "confidence": decision.confidence if evidence or tests else 0.05,
            "summary": summary,
            "similar_incidents": similar,
            "decided_by": decision.parts,
            "model_versions": versions,
            "sequence": sequence,
            "warnings": [redact(w) for w in warnings],
            "timings_ms": {"total": int((time.perf_counter() - started) * 1000)},
        }
    )
    return diag, sig


def _with_junit_evidence(evidence: list[Evidence], material: RunMaterial, limit: int) -> list[Evidence]:
    """Failed JUnit cases are evidence too: right after the log's top line, or first without one."""
    source = material.run.source
    found: list[Evidence] = []
    for test in material.run.failed_tests[:3]:
        if not test.report_path:
            continue
        report = Path(source.path)
        if material.root is not None:
            report = material.root / test.report_path
        elif source.kind == SourceKind.DIR:
            report = report / test.report_path
        first_line = (test.message or "").strip().splitlines()[:1] or [str(test.status)]
        name = f"{test.classname}.{test.name}" if test.classname else test.name
        found.append(
            Evidence(
                path=test.report_path,
                line=testcase_line(report, test.name),
                text=redact(f"{name}: {first_line[0]}"),
                why="failed test in JUnit report",
            )
        )
    merged = [*evidence[:1], *found, *evidence[1:]]
    return merged[:limit]


def _where(chosen: LogAnalysis | None, log: LogFile | None) -> str:
    """Name the failing step the way the platform does when we know it, else by its command."""
    if chosen is None:
        return ""
    if log is not None and log.step:
        return f" in step `{log.job} / {log.step}`" if log.job else f" in step `{log.step}`"
    if chosen.command:
        command = re.sub(r"^(?:\$ |\+ |##\[group\]Run |##\[section\]Starting: )", "", chosen.command).strip()
        return f" in `{redact(command)[:80]}`"
    return ""


def _summary(
    category: str, evidence: list[Evidence], tests: list[TestResult], where: str, matches: list[RuleMatch]
) -> str:
    if matches and matches[0].category == category:
        text = f"{category} failure{where}: {matches[0].description}"
    elif evidence:
        # Runner padding (pytest's "E       ") says nothing; one space reads the same.
        lead = " ".join(evidence[0].text.split())
        text = f"{category} failure{where}: {lead}"
    elif tests:
        text = f"{len(tests)} test(s) failed: {tests[0].name}"
    else:
        text = "no failure found in the given material"
    if tests and evidence and category == "test":
        text += f" ({len(tests)} failed test(s), first: {tests[0].name})"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"
