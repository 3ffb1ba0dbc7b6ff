"""JUnit/xUnit XML test reports turned into :class:`~cimedic.models.TestResult` records.

Reports come from CI artifacts, i.e. from anyone who can push a commit, so the bytes go through
defusedxml (DTDs and entity declarations refused: no XXE, no billion laughs) and only the
resulting element tree is handed to junitparser; junitparser's own loaders use the unguarded
stdlib parser and are never called here.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element as XmlElement
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ErrorString

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from cimedic.errors import InputError
from cimedic.models import TestResult, TestStatus
from cimedic.settings import get_settings

__all__ = ["looks_like_junit", "parse_junit", "parse_junit_file", "testcase_line"]

MESSAGE_MAX_CHARS = 500
DETAILS_MAX_CHARS = 4000
SNIFF_BYTES = 4096
UNNAMED = "(unnamed)"

_ROOT_TAGS = ("testsuites", "testsuite")

# What may precede the root element: XML declaration / processing instructions, comments, and a
# DOCTYPE. A DOCTYPE'd report is still routed here so that it is refused with a clear reason
# instead of being silently ignored as "not a report".
_PROLOG_ITEM = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.DOTALL)
_JUNIT_ROOT = re.compile(r"\s*<(?:testsuites|testsuite)[\s/>]")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# An <error> outranks a <failure>, which outranks <skipped>: pytest reports a teardown crash after
# a failed assertion as both, and the upstream expectations of publish-unit-test-result-action
# (junit.multiresult) count such a case as an error.
_PRECEDENCE: tuple[tuple[type[Error] | type[Failure] | type[Skipped], TestStatus], ...] = (
    (Error, TestStatus.ERROR),
    (Failure, TestStatus.FAILED),
    (Skipped, TestStatus.SKIPPED),
)


def looks_like_junit(head: bytes) -> bool:
    """Cheap sniff of the first ~4 KB of a file: XML whose root is <testsuites> or <testsuite>
    (a BOM, the XML declaration and comments may come first)."""
    text = _decode_head(head[:SNIFF_BYTES])
    pos = 0
    while (item := _PROLOG_ITEM.match(text, pos)) is not None:
        pos = item.end()
    return _JUNIT_ROOT.match(text, pos) is not None


def parse_junit(data: bytes, report_path: str, *, max_bytes: int | None = None) -> list[TestResult]:
    """All test cases of a JUnit/xUnit-style report (root <testsuites> or <testsuite>, nested
    suites too). Raises :class:`InputError` naming ``report_path`` for anything unusable."""
    limit = _limit(max_bytes)
    if len(data) > limit:
        raise InputError(report_path, _too_big(limit))
    root = _parse_xml(data, report_path)
    if root.tag not in _ROOT_TAGS:
        raise InputError(report_path, f"not a JUnit report: root element is <{root.tag}>")
    # fromroot wraps a bare <testsuite> root in <testsuites>, so both shapes walk the same way.
    # It takes an ElementTree element; its annotation names junitparser's own Element by mistake.
    report = JUnitXml.fromroot(root)  # type: ignore[arg-type]
    return [_to_result(case, suite, report_path) for case, suite in _walk(report)]


def parse_junit_file(path: Path, display_path: str | None = None, max_bytes: int | None = None) -> list[TestResult]:
    """:func:`parse_junit` on a file; ``display_path`` is how errors and results name it."""
    report_path = display_path or str(path)
    limit = _limit(max_bytes)
    try:
        if path.stat().st_size > limit:
            raise InputError(report_path, _too_big(limit))
        with path.open("rb") as stream:
            # Reading one byte past the limit is enough to refuse a file that grew after stat() (or
            # a pipe that never ends) without reading the rest of it.
            data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(report_path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from exc
    return parse_junit(data, report_path, max_bytes=limit)


def _limit(max_bytes: int | None) -> int:
    return get_settings().limits.junit_max_bytes if max_bytes is None else max_bytes


def _too_big(limit: int) -> str:
    return f"larger than the {limit:,}-byte limit for JUnit reports (setting limits.junit_max_bytes)"


def _decode_head(head: bytes) -> str:
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    # Tag names are ASCII, so any ASCII-compatible encoding sniffs correctly as UTF-8.
    return head.decode("utf-8", errors="ignore")


def _parse_xml(data: bytes, report_path: str) -> XmlElement:
    if not data.strip():
        raise InputError(report_path, "empty file, not a JUnit report")
    try:
        root: XmlElement = SafeElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InputError(report_path, "XML entity/DTD declarations are refused (possible XXE)") from exc
    except ParseError as exc:
        line, column = exc.position
        # expat counts columns from 0; editors and people count from 1.
        where = f"line {line}, column {column + 1}"
        raise InputError(report_path, f"not well-formed XML ({where}): {ErrorString(exc.code)}") from exc
    except (ValueError, LookupError) as exc:
        # Declared encodings that Python cannot decode end up here rather than in ParseError.
        raise InputError(report_path, f"not well-formed XML: {' '.join(str(exc).split())}") from exc
    return root


def _walk(report: JUnitXml) -> Iterator[tuple[TestCase, str | None]]:
    """Every test case with the name of its innermost enclosing suite.

    (junitparser leaves ``iterchildren``/``testsuites`` unannotated, hence the ignores.)"""
    # Off-schema, but some tools put cases straight under <testsuites>.
    for case in report.iterchildren(TestCase):  # type: ignore[no-untyped-call]
        yield case, None
    # An explicit stack rather than recursion: nesting depth is chosen by whoever wrote the file.
    stack: list[TestSuite] = list(reversed(list(report)))
    while stack:
        suite = stack.pop()
        suite_name = _text_or_none(suite.name)
        for case in suite.iterchildren(TestCase):  # type: ignore[no-untyped-call]
            yield case, suite_name
        stack.extend(reversed(list(suite.testsuites())))  # type: ignore[no-untyped-call]


def _to_result(case: TestCase, suite: str | None, report_path: str) -> TestResult:
    status, message, details = TestStatus.PASSED, None, None
    outcome = _outcome(case)
    if outcome is not None:
        status, element = outcome
        body = (element.text or "").strip()
        message = _clip(_text_or_none(element.message) or _first_line(body), MESSAGE_MAX_CHARS)
        if status in (TestStatus.FAILED, TestStatus.ERROR):
            details = _clip(body, DETAILS_MAX_CHARS)
    return TestResult(
        name=_text_or_none(case.name) or UNNAMED,
        classname=_text_or_none(case.classname),
        suite=suite,
        status=status,
        message=message,
        details=details,
        duration_s=_duration(case),
        report_path=report_path,
    )


def _outcome(case: TestCase) -> tuple[TestStatus, Error | Failure | Skipped] | None:
    results = case.result  # walks the case's subtree; read it once
    for kind, status in _PRECEDENCE:
        # Several elements of one kind (retries, sloppy reporters): the first one is the report.
        first = next((r for r in results if isinstance(r, kind)), None)
        if first is not None:
            return status, first
    return None


def _duration(case: TestCase) -> float | None:
    try:
        # junitparser drops thousands separators, so time="1,234.5" reads as 1234.5.
        value = case.time
    except ValueError:
        return None
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _text_or_none(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return stripped or None


def _first_line(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def _clip(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def testcase_line(path: Path, name: str) -> int:
    """1-based line of the ``<testcase name="…">`` element in the report, so a failed case can be
    cited like any log line (1 when the element cannot be found as written)."""
    try:
        data = path.read_bytes()
    except OSError:
        return 1
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    pos = data.find(f'name="{escaped}"'.encode())
    return data.count(b"\n", 0, pos) + 1 if pos >= 0 else 1
