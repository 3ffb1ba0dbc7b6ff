"""Failed test names read from the log itself, for runs that came without a JUnit report.

Only the excerpt and evidence of the failing step are read, and only shapes that name a test
unambiguously across the common runners are used.
"""

from __future__ import annotations

import re

from cimedic.models import TestResult, TestStatus
from cimedic.tools.logs.localize import LogAnalysis

_SHAPES: tuple[re.Pattern[str], ...] = (
    re.compile(r"^FAILED (?P<name>\S+::\S+?)(?: - (?P<msg>.*))?$"),  # pytest -ra summary
    re.compile(r"^_{3,} (?P<name>[\w.\[\]-]+(?:::\w+)?) _{3,}$"),  # pytest failure header
    re.compile(r"^\s*--- FAIL: (?P<name>\S+)"),  # go test
    re.compile(r"^(?:FAIL|ERROR): (?P<name>test\w*) \((?P<cls>[\w.]+)\)"),  # unittest / nose
    re.compile(r"^rspec (?P<name>\./\S+:\d+)(?: # (?P<msg>.*))?$"),  # rspec rerun lines
    re.compile(r"^\s*\d+\) (?P<name>test .+ \([\w.]+\))$"),  # ExUnit
    re.compile(r"^\s*\d+\) (?P<name>[\w\\]+::\w+)$"),  # PHPUnit
    re.compile(r"^\s*\u25cf (?P<name>.+ \u203a .+)$"),  # jest
    re.compile(r"^not ok \d+ - (?P<name>.+)$"),  # TAP
)
MAX_TESTS = 50


def tests_from_log(analysis: LogAnalysis) -> list[TestResult]:
    lines = {ln.no: ln.text for ln in analysis.excerpt}
    lines.update({s.line.no: s.line.text for s in analysis.evidence})
    found: dict[str, TestResult] = {}
    for _, text in sorted(lines.items()):
        for shape in _SHAPES:
            m = shape.search(text.strip())
            if not m:
                continue
            groups = m.groupdict()
            name = groups["name"].strip()
            if groups.get("cls"):
                name = f"{groups['cls']}.{name}"
            found.setdefault(
                name,
                TestResult(
                    name=name,
                    status=TestStatus.FAILED,
                    message=(groups.get("msg") or "")[:500],
                    report_path=analysis.path,
                ),
            )
            break
        if len(found) >= MAX_TESTS:
            break
    # A runner often names a test twice (a failure header, then a summary with the full id):
    # keep the fuller name.
    names = list(found)
    return [t for n, t in found.items() if not any(o != n and o.endswith(("::" + n, "." + n)) for o in names)]
