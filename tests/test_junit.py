"""The JUnit report parser on real reports (see fixtures/junit/SOURCE.md) and on hostile input."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from cimedic.errors import InputError
from cimedic.models import TestResult
from cimedic.models import TestStatus as CaseStatus  # aliased: pytest would try to collect "Test*"
from cimedic.tools.ingest.junit import looks_like_junit, parse_junit, parse_junit_file

FIXTURES = Path(__file__).parent / "fixtures" / "junit"
EUTRA = FIXTURES / "publish-unit-test-result" / "junit-xml"
DORNY = FIXTURES / "dorny-test-reporter"


def load(path: Path) -> list[TestResult]:
    return parse_junit_file(path, display_path=str(path.relative_to(FIXTURES)))


def counts(results: list[TestResult]) -> tuple[int, int, int, int]:
    """(passed, failed, error, skipped)"""
    c = Counter(r.status for r in results)
    return c[CaseStatus.PASSED], c[CaseStatus.FAILED], c[CaseStatus.ERROR], c[CaseStatus.SKIPPED]


def by_name(results: list[TestResult], name: str) -> TestResult:
    [match] = [r for r in results if r.name == name]
    return match


# (passed, failed, error, skipped) = ("tests_succ", "tests_fail", "tests_error", "tests_skip") of the
# "stats" object in the upstream <name>.results.json shipped beside each report (commit c9bbcab of
# EnricoMi/publish-unit-test-result-action, python/test/files/junit-xml/).
UPSTREAM_EXPECTED = {
    "pytest/junit.fail.xml": (3, 1, 0, 1),  # pytest/junit.fail.results.json
    "junit.multiresult.xml": (1, 1, 1, 1),  # junit.multiresult.results.json
    "no-attributes.xml": (1, 1, 1, 1),  # no-attributes.results.json
    "with-xml-entities.xml": (0, 1, 1, 2),  # with-xml-entities.results.json
    "testsuite-in-testsuite.xml": (5, 0, 0, 0),  # testsuite-in-testsuite.results.json
    "testsuite-root.xml": (5, 0, 0, 0),  # testsuite-root.results.json
    "bazel/suite-logs.xml": (0, 0, 1, 0),  # bazel/suite-logs.results.json
    "scalatest/TEST-uk.co.gresearch.spark.diff.DiffOptionsSuite.xml": (5, 0, 0, 0),  # .results.json
    "xunit/xunit.xml": (2, 0, 0, 0),  # xunit/xunit.results.json
}

# dorny/test-reporter ships no expected counts beside these; counted by hand from the <testcase>s.
HAND_COUNTED = {
    "python-xunit-pytest.xml": (6, 2, 0, 2),  # header claims tests="15"; the file has 10 cases
    "jest-junit.xml": (1, 4, 0, 1),
    "external/java/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml": (0, 1, 0, 1),
}


@pytest.mark.parametrize(("name", "expected"), UPSTREAM_EXPECTED.items())
def test_counts_match_upstream_expectations(name: str, expected: tuple[int, int, int, int]) -> None:
    results = load(EUTRA / name)
    assert counts(results) == expected
    assert {r.report_path for r in results} == {f"publish-unit-test-result/junit-xml/{name}"}


@pytest.mark.parametrize(("name", "expected"), HAND_COUNTED.items())
def test_counts_of_hand_counted_reports(name: str, expected: tuple[int, int, int, int]) -> None:
    assert counts(load(DORNY / name)) == expected


def test_pytest_failure_fields() -> None:
    case = by_name(load(EUTRA / "pytest/junit.fail.xml"), "test_rsh_events")
    assert case.status is CaseStatus.FAILED
    assert case.classname == "test.test_spark.SparkTests"
    assert case.suite == "pytest"
    assert case.duration_s == pytest.approx(7.541)
    # Same message as upstream's junit.fail.results (XML turns newlines in attributes into spaces).
    assert case.message is not None
    assert case.message.startswith("self = <test_spark.SparkTests testMethod=test_rsh_events>")
    assert case.message.endswith("E   AssertionError: 143 != 0")
    assert case.details is not None
    assert case.details.startswith("self = <test_spark.SparkTests")
    assert case.details.endswith("E AssertionError: 143 != 0")


def test_java_failure_from_cdata_and_comments() -> None:
    results = load(DORNY / "external/java/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml")
    failed = next(r for r in results if r.status is CaseStatus.FAILED)
    assert failed.name == "testVersionStrings"
    assert failed.classname == "org.apache.pulsar.AddMissingPatchVersionTest"
    assert failed.suite == "org.apache.pulsar.AddMissingPatchVersionTest"
    assert failed.message == "expected [1.2.1] but found [1.2.0]"
    assert failed.details is not None
    assert failed.details.startswith("java.lang.AssertionError: expected [1.2.1] but found [1.2.0]")


def test_message_falls_back_to_first_line_of_the_trace() -> None:
    case = by_name(load(DORNY / "jest-junit.xml"), "Failing test")
    assert case.classname == "Test 1 › Test 1.1"
    assert case.suite == "__tests__\\main.test.js"
    assert case.message == "Error: expect(received).toBeTruthy()"
    assert case.details is not None and "main.test.js:10:21" in case.details


def test_error_outranks_failure_and_skip() -> None:
    # upstream junit.multiresult.results: result='error', message='test teardown failure'
    case = by_name(load(EUTRA / "junit.multiresult.xml"), "test that errors")
    assert (case.status, case.message, case.details) == (CaseStatus.ERROR, "test teardown failure", "stdout")


def test_nested_suites_name_the_innermost_suite_for_both_root_shapes() -> None:
    nested = load(EUTRA / "testsuite-in-testsuite.xml")
    rooted = load(EUTRA / "testsuite-root.xml")
    suites = {r.name: r.suite for r in nested}
    assert suites == {
        "TestCase1": "TestSuite1",
        "TestCase2": "TestSuite1",
        "TestCase3": "TestSuite2.1",
        "TestCase4": "TestSuite2",
        "TestCase5": "Project Test Suite",
    }
    assert {r.name: r.suite for r in rooted} == suites
    assert by_name(nested, "TestCase3").duration_s == pytest.approx(1.08817)


def test_predefined_entities_are_decoded_not_refused() -> None:
    results = load(EUTRA / "with-xml-entities.xml")
    assert by_name(results, 'Test with "quotes" in the test name').message == 'A message with "quotes"'
    assert by_name(results, "Test with & in the test name").details == "Content with &"


def test_missing_attributes_are_tolerated() -> None:
    results = load(EUTRA / "no-attributes.xml")
    assert all(r.classname is None and r.suite is None and r.duration_s is None for r in results)
    assert all(r.message is None and r.details is None for r in results)


def test_sloppy_report() -> None:
    xml = f"""<testsuites>
      <testcase name="loose" time="0.5"/>
      <testsuite name="s">
        <properties><property name="k" value="v"/></properties>
        <system-out>noise</system-out>
        <testcase name="big" time="1,234.5"/>
        <testcase name="bad-time" time="soon"/>
        <testcase name="nan-time" time="nan"/>
        <testcase name="twice" classname="C">
          <failure message="first">a</failure><failure message="second">b</failure>
        </testcase>
        <testcase name="long"><error>{"x" * 600}
{"y" * 5000}</error></testcase>
      </testsuite>
    </testsuites>""".encode()
    results = parse_junit(xml, "r.xml", max_bytes=1 << 20)
    assert by_name(results, "loose").suite is None
    assert by_name(results, "loose").duration_s == 0.5
    assert by_name(results, "big").duration_s == 1234.5
    assert by_name(results, "bad-time").duration_s is None
    assert by_name(results, "nan-time").duration_s is None
    twice = by_name(results, "twice")
    assert (twice.status, twice.message, twice.details, twice.suite) == (CaseStatus.FAILED, "first", "a", "s")
    long = by_name(results, "long")
    assert long.message is not None and len(long.message) == 500 and long.message.startswith("xxx")
    assert long.details is not None and len(long.details) == 4000


def test_deep_suite_nesting_does_not_recurse() -> None:
    depth = 5000  # well past Python's recursion limit
    xml = "<testsuites>" + "<testsuite name='s'>" * depth + "<testcase name='deep'/>" + "</testsuite>" * depth
    [case] = parse_junit((xml + "</testsuites>").encode(), "deep.xml", max_bytes=1 << 20)
    assert (case.name, case.suite, case.status) == ("deep", "s", CaseStatus.PASSED)


def assert_refused(exc: pytest.ExceptionInfo[InputError], report_path: str, problem: str) -> None:
    text = str(exc.value)
    assert text.startswith(f"{report_path}: ")
    assert "\n" not in text
    assert problem in exc.value.problem


def test_corrupt_report_is_one_line_input_error() -> None:
    # upstream pytest/corrupt-xml.exception: "Premature end of data in tag skipped ... line 11"
    with pytest.raises(InputError) as exc:
        parse_junit_file(EUTRA / "pytest/corrupt-xml.xml", display_path="reports/corrupt-xml.xml")
    assert_refused(exc, "reports/corrupt-xml.xml", "not well-formed XML (line 11, column 22)")


def test_non_junit_root_is_refused() -> None:
    # upstream non-junit.exception: JUnitXmlError('Invalid format.')
    with pytest.raises(InputError) as exc:
        load(EUTRA / "non-junit.xml")
    assert_refused(exc, "publish-unit-test-result/junit-xml/non-junit.xml", "root element is <suites>")
    with pytest.raises(InputError) as exc:
        parse_junit(b"<html><body/></html>", "page.xml", max_bytes=1024)
    assert_refused(exc, "page.xml", "not a JUnit report: root element is <html>")


@pytest.mark.parametrize(
    "data",
    [b"", b"  \n", b"\x00\x01binary", b'<?xml version="1.0" encoding="no-such-codec"?><testsuite/>'],
)
def test_unusable_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InputError) as exc:
        parse_junit(data, "x.xml", max_bytes=1024)
    assert_refused(exc, "x.xml", "")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>',
        '<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>',
        '<!DOCTYPE x SYSTEM "file://{secret}">',
    ],
)
def test_xxe_is_refused_and_never_resolved(tmp_path: Path, doctype: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    report = tmp_path / "xxe.xml"
    payload = doctype.format(secret=secret) + '<testsuite name="&e;"><testcase name="&e;"/></testsuite>'
    report.write_text(payload)
    with pytest.raises(InputError) as exc:
        parse_junit_file(report, display_path="xxe.xml", max_bytes=1 << 20)
    assert_refused(exc, "xxe.xml", "XML entity/DTD declarations are refused (possible XXE)")
    assert "TOP-SECRET" not in str(exc.value)


def test_billion_laughs_is_refused_quickly() -> None:
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    bomb = f"<?xml version='1.0'?><!DOCTYPE testsuite [{''.join(levels)}]><testsuite name='&lol9;'/>"
    started = time.monotonic()
    with pytest.raises(InputError) as exc:
        parse_junit(bomb.encode(), "lol.xml", max_bytes=1 << 20)
    assert time.monotonic() - started < 1.0
    assert_refused(exc, "lol.xml", "refused (possible XXE)")


def test_max_bytes_is_enforced(tmp_path: Path) -> None:
    path = EUTRA / "pytest/junit.fail.xml"
    data = path.read_bytes()
    assert len(parse_junit(data, "r.xml", max_bytes=len(data))) == 5
    with pytest.raises(InputError) as exc:
        parse_junit(data, "r.xml", max_bytes=len(data) - 1)
    assert_refused(exc, "r.xml", "limit")
    with pytest.raises(InputError) as exc:
        parse_junit_file(path, display_path="big.xml", max_bytes=1024)
    assert_refused(exc, "big.xml", f"larger than the {1024:,}-byte limit")


def test_unreadable_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        parse_junit_file(tmp_path / "missing.xml", max_bytes=1024)
    assert_refused(exc, str(tmp_path / "missing.xml"), "cannot read the file")


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(FIXTURES.rglob("*.xml")) if p.name not in ("non-junit.xml",)],
    ids=lambda p: p.name,
)
def test_sniff_accepts_every_junit_fixture(path: Path) -> None:
    # xunit.xml starts with a UTF-8 BOM; the Pulsar report has a comment before its root.
    assert looks_like_junit(path.read_bytes()[:4096])


@pytest.mark.parametrize(
    "head",
    [
        b"<testsuite/>",
        b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- generated -->\n<?pi x?>\n<testsuites name='a'>",
        "<?xml version='1.0' encoding='utf-16'?><testsuites>".encode("utf-16"),
        b"<!DOCTYPE testsuite><testsuite>",
    ],
)
def test_sniff_true(head: bytes) -> None:
    assert looks_like_junit(head)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"PK\x03\x04\x14\x00",
        b'{"testsuites": []}',
        b"<html><testsuite>",
        b"<testsuitesfoo/>",
        b"<!-- <testsuites> --><test-run>",
        b"<?xml version='1.0'?><!-- never closed <testsuites>",
        (EUTRA / "non-junit.xml").read_bytes(),
    ],
)
def test_sniff_false(head: bytes) -> None:
    assert not looks_like_junit(head)
