"""Find the lines that explain a failed log: the failing step, its most specific error, the excerpt.

The approach, in order:
1. a streaming scan (``scanner``) gives candidate lines and the tail in bounded memory;
2. step structure (``$ cmd`` echoes, ``##[group]Run``, ``section_start``, ``[Pipeline] sh``) and the
   trailers that say a step failed (``exited with 1``, ``Process completed with exit code 1``, …)
   bound each *failing segment*: the output of a step that failed (up to three of them);
3. every line of a segment is scored by ``rules``; scored lines close together form report blocks,
   and the block that explains the step best (weighted toward the step's end) wins;
4. within it, the first line about as specific as its best one is the top evidence (compilers and
   runners state the cause first and summarise last); when the block is one of several alike test
   failure reports, the first report wins;
5. repeated templates and templates also present in a passing baseline are down-weighted (Drain3);
6. the excerpt is a window of at most N lines opening just before the top evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from cimedic.models import Category
from cimedic.tools.logs.classify import evidence_votes
from cimedic.tools.logs.rules import LineScore, Rule, is_chatter, is_trailer, score_line
from cimedic.tools.logs.scanner import Line, Scan, read_range, scan
from cimedic.tools.logs.templates import TemplateIndex

# A step starts here (cleaned text).
_STEP_START = re.compile(
    r"^(?:\$ \S|\+ \S|##\[group\]Run |##\[section\]Starting: |\[Pipeline\] (?:sh|bat|powershell|pwsh)\b"
    r"|Executing \"step_script\")"
)
# A step or the job failed here (only non-zero exits).
_STEP_FAILED = re.compile(
    r"exited with [1-9]\d*|Process completed with exit code [1-9]|^ERROR: Job failed|script returned exit code [1-9]"
    r"|marked build as failure|exited with code '?[1-9]|No output has been received in the last"
    r"|exceeded the maximum (?:execution )?time|has timed out|The operation was canceled"
    r"|^Finished: (?:FAILURE|ABORTED)|Your build has been stopped",
    re.IGNORECASE,
)
_NAMED_COMMAND = re.compile(r'The command "(.*?)(?:" (?:failed and )?exited with \d+|$)')
_JOB_VERDICT = re.compile(r"Your build exited with|^Done\. Your build", re.IGNORECASE)
_GO_FAIL = re.compile(r"^\s*--- FAIL: (\S+)")
MAX_FAILED_STEPS = 3
LATER_STEP = 0.9  # each later failed step's report must beat the earlier by this factor
COMMAND_LOOKBACK = 30  # lines a multi-line `The command "…"` trailer may span
SEGMENT_READ_MAX = 4000  # lines of the failing step read in full; earlier ones come from scan hits
NEAR_BEST = 0.8  # a line within this fraction of the best score counts as "as specific"
CLUSTER_GAP = 6  # quiet lines allowed inside one report block
DECAY = 0.5  # weight of a block's 2nd, 3rd, … best lines relative to the one before
RECENCY = 0.6  # how much a block at the very start of a step loses against one at its end
SIBLING_REACH = 30  # lines back an alike (non-test) report may stand and still count as the first
WEAK = 1.5  # a best line this weak (a warning, a stack frame) does not explain a failure


@dataclass
class Scored:
    line: Line
    score: float
    rule: Rule | None
    template: int = -1


@dataclass
class LogAnalysis:
    path: str
    total_lines: int
    segment: tuple[int, int]
    step_failed: bool
    evidence: list[Scored] = field(default_factory=list)
    excerpt: list[Line] = field(default_factory=list)
    command: str | None = None  # the command of the failing step, when the log shows one
    long_lines: int = 0
    dropped_hits: int = 0

    @property
    def top_score(self) -> float:
        return self.evidence[0].score if self.evidence else 0.0

    def category_votes(self) -> dict[Category, float]:
        return evidence_votes([(i.rule.category if i.rule else None, i.score) for i in self.evidence])


def _segments(
    scan_result: Scan, opener: Callable[[], BinaryIO], line_max_chars: int
) -> list[tuple[int, int, bool, str | None]]:
    """(first, last, step_failed, command) of each failing step's output, in log order.

    Runners such as Travis go on after a failed script command, so a log can hold several failed
    steps; the first MAX_FAILED_STEPS are candidates. With none, the segment runs to the end.
    """
    known = {ln.no: ln for ln in scan_result.hits}
    known.update({ln.no: ln for ln in scan_result.tail})
    ordered = sorted(known.values(), key=lambda ln: ln.no)
    markers = [ln for ln in ordered if _STEP_FAILED.search(ln.text)]
    # A job-level verdict ("Your build exited with 1") counts only when no step says it failed.
    failures = [ln.no for ln in markers if not _JOB_VERDICT.search(ln.text)] or [ln.no for ln in markers[:1]]
    if not failures:
        return [_bounds(ordered, scan_result.total_lines, None, False)]
    out = []
    for fail_at in failures[:MAX_FAILED_STEPS]:
        # `The command "X" exited with 1.` names the step: its `$ X` echo is where the step began,
        # even when X spans several lines or its output echoes other `$ ` lines.
        end, named = _named_command(opener, fail_at, line_max_chars)
        out.append(_bounds(ordered, end, named, True))
    return out


def _bounds(ordered: list[Line], end: int, named: str | None, failed: bool) -> tuple[int, int, bool, str | None]:
    starts = [ln for ln in ordered if ln.no < end and _STEP_START.search(ln.text)]
    if named:
        echo = "$ " + named[:60]
        matching = [ln for ln in starts if ln.text.startswith(echo)]
        if matching:
            return matching[-1].no, max(end, 1), failed, matching[-1].text
    if not starts:
        return 1, max(end, 1), failed, None
    return starts[-1].no, max(end, 1), failed, starts[-1].text


def _named_command(opener: Callable[[], BinaryIO], fail_at: int, line_max_chars: int) -> tuple[int, str | None]:
    """(line of the ``The command "…"`` trailer, the command) when the failure trailer names it."""
    window = read_range(opener, max(1, fail_at - COMMAND_LOOKBACK), fail_at, line_max_chars=line_max_chars)
    if not window or "exited with" not in window[-1].text:
        return fail_at, None
    for line in reversed(window):
        m = _NAMED_COMMAND.search(line.text)
        if m:
            # Only the trailer itself, or the opening line of the same multi-line trailer.
            if line.no == fail_at or "exited with" not in line.text:
                return line.no, m.group(1).strip() or None
            break
    return fail_at, None


def analyze_log(
    path: str,
    opener: Callable[[], BinaryIO],
    *,
    excerpt_lines: int = 40,
    evidence_max: int = 8,
    line_max_chars: int = 2000,
    candidates_max: int = 20000,
    baseline: TemplateIndex | None = None,
) -> LogAnalysis:
    with opener() as stream:
        result = scan(stream, line_max_chars=line_max_chars, candidates_max=candidates_max)
    best: tuple[float, LogAnalysis] | None = None
    for rank, (first, last, failed, command) in enumerate(_segments(result, opener, line_max_chars)):
        analysis = LogAnalysis(
            path,
            result.total_lines,
            (first, last),
            failed,
            command=command,
            long_lines=result.long_lines,
            dropped_hits=result.dropped_hits,
        )
        value = _analyze_segment(analysis, result, opener, baseline, excerpt_lines, evidence_max, line_max_chars)
        # A later failed step must explain the failure clearly better than the first one did.
        value *= LATER_STEP**rank
        if best is None or value > best[0]:
            best = (value, analysis)
    assert best is not None
    return best[1]


def _analyze_segment(
    analysis: LogAnalysis,
    result: Scan,
    opener: Callable[[], BinaryIO],
    baseline: TemplateIndex | None,
    excerpt_lines: int,
    evidence_max: int,
    line_max_chars: int,
) -> float:
    """Fill ``analysis`` for its segment; returns how well the segment's best report explains it."""
    first, last = analysis.segment
    read_from = max(first, last - SEGMENT_READ_MAX)
    body = read_range(opener, read_from, last, line_max_chars=line_max_chars)
    earlier = [h for h in result.hits if first <= h.no < read_from]
    scored = _score(earlier + body, first, last, baseline)
    analysis.evidence, value = _pick_evidence(scored, first, last, evidence_max)
    if analysis.top_score <= WEAK:
        # Only warnings or chatter: a warning rarely fails a step, what the step printed last does.
        fallback = _last_output(body, last)
        if fallback is not None and (not analysis.evidence or fallback.line.no > analysis.evidence[0].line.no):
            analysis.evidence = [fallback, *analysis.evidence[: evidence_max - 1]]
    if analysis.evidence:
        analysis.excerpt = _excerpt(
            analysis.evidence[0].line.no, body, opener, first, last, excerpt_lines, line_max_chars
        )
    return value


def _score(lines: list[Line], first: int, last: int, baseline: TemplateIndex | None) -> list[Scored]:
    templates = TemplateIndex()
    out: list[Scored] = []
    for line in lines:
        s: LineScore = score_line(line.text)
        if s.score <= 0 or (s.trailer and line.no != last):
            continue
        item = Scored(line, s.score, s.rule)
        item.template = templates.add(line.text)
        if baseline is not None and baseline.knows(line.text):
            item.score *= 0.3  # also printed by a passing run of the same job: not the cause
        out.append(item)
    for item in out:
        repeats = templates.counts.get(item.template, 1)
        # A line printed dozens of times is usually noise, not the cause; a test report that lists
        # dozens of failures is still the report.
        if repeats > 20 and not (item.rule is not None and item.rule.category is Category.TEST):
            item.score *= 0.7
    _demote_parent_tests(out)
    return out


def _demote_parent_tests(items: list[Scored]) -> None:
    """``--- FAIL: TestA`` only rolls up ``--- FAIL: TestA/case``: the subtest says what broke."""
    names = {m.group(1): s for s in items if (m := _GO_FAIL.match(s.line.text))}
    for name, item in names.items():
        if any(other.startswith(name + "/") for other in names):
            item.score *= 0.5


def _clusters(scored: list[Scored]) -> list[list[Scored]]:
    """Runs of scored lines with at most CLUSTER_GAP quiet lines between them: one error report."""
    groups: list[list[Scored]] = []
    for item in scored:
        if groups and item.line.no - groups[-1][-1].line.no <= CLUSTER_GAP + 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _cluster_value(group: list[Scored], first: int, last: int, *, recency: bool = True) -> float:
    # A report of several specific lines beats one stray line; decaying weights keep a long run of
    # weak lines from outvoting a short specific one.
    ranked = sorted((s.score for s in group), reverse=True)
    value = sum(v * DECAY**i for i, v in enumerate(ranked[:6]))
    if not recency:
        return value
    # Steps fail right after printing why, so output near the end of the step counts more.
    span = max(1, last - first)
    distance = (last - group[-1].line.no) / span
    return value * (1.0 - RECENCY * min(1.0, distance))


def _alike(a: Scored, b: Scored) -> bool:
    """Two report lines of the same kind: the same rule, or both about failed tests."""
    if a.rule is b.rule:
        return True
    return a.rule is not None and b.rule is not None and a.rule.category is b.rule.category is Category.TEST


def _pick_evidence(scored: list[Scored], first: int, last: int, limit: int) -> tuple[list[Scored], float]:
    candidates = [s for s in scored if s.rule is not None]
    if not candidates:
        return [], 0.0
    groups = _clusters(candidates)
    best = max(groups, key=lambda g: _cluster_value(g, first, last))
    # Failed steps are compared on what their reports say, not on where in the step they stand.
    value = _cluster_value(best, first, last, recency=False)
    peak_item = max(best, key=lambda s: s.score)
    # Runners report each failure alike (one block per failed test, one per compile error); an
    # earlier sibling of the same kind close enough to share the excerpt is the first failure.
    for group in groups:
        if group is best:
            break
        # Test runners print every failure the same way and the first one is where people start;
        # other siblings must be close, since earlier look-alikes are often retried or tolerated.
        reach = None if peak_item.rule is not None and peak_item.rule.category is Category.TEST else SIBLING_REACH
        if reach is not None and best[0].line.no - group[-1].line.no > reach:
            continue
        if any(_alike(s, peak_item) and s.score >= peak_item.score * NEAR_BEST for s in group):
            best = group
            break
    peak = max(s.score for s in best)
    # Within the report, the first line about as specific as its best one: runners and compilers
    # name the cause first and summarise after.
    top = next(s for s in best if s.score >= peak * NEAR_BEST)
    # The same error printed earlier (a runner's live output, before its end-of-run recap) is
    # where the failure first showed, and where people look.
    text = top.line.text.strip()
    top = next((s for s in candidates if s.line.text.strip() == text), top)
    rest = sorted((s for s in candidates if s is not top), key=lambda s: (s not in best, -s.score, s.line.no))
    picked, seen = [top], {top.template}
    for s in rest:
        if len(picked) >= limit:
            break
        if s.template in seen:
            continue
        seen.add(s.template)
        picked.append(s)
    return picked, value


def _last_output(body: list[Line], last: int) -> Scored | None:
    """When nothing in the failing step looks like an error, its last output line is the best
    lead we have (formatters and link checkers often just list the offending items)."""
    for line in reversed(body):
        text = line.text.strip()
        if line.no == last or not any(c.isalnum() for c in text) or _STEP_START.search(text) or is_chatter(text):
            continue
        if is_trailer(text):
            continue
        return Scored(line, 0.5, None)
    return None


def _excerpt(
    top: int,
    body: list[Line],
    opener: Callable[[], BinaryIO],
    first: int,
    last: int,
    size: int,
    line_max_chars: int,
) -> list[Line]:
    before = min(5, size // 8)  # a few lines of lead-in: the test or command the error belongs to
    start = max(first, top - before)
    end = min(max(last, top), start + size - 1)
    # When the step ends right after the error (a timeout, a kill), show what led up to it instead.
    start = max(first, min(start, end - size // 2 + 1))
    have = {ln.no: ln for ln in body}
    if all(n in have for n in range(start, end + 1)):
        return [have[n] for n in range(start, end + 1)]
    return read_range(opener, start, end, line_max_chars=line_max_chars)
