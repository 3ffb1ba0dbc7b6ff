"""get_failed_tests: JUnit results first, the log's failed tests without reports, bounded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.get_failed_tests import MAX_LIMIT, MESSAGE_LINES, GetFailedTests
from tests.conftest import EXAMPLES, FIXTURES


def test_junit_results_with_first_message_lines(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(GetFailedTests(workspace=workspace_of(EXAMPLES / "pytest-junit")).run())
    assert (out["source"], out["total"]) == ("junit", 2)
    first, second = out["tests"]
    assert (first["name"], first["classname"], first["status"]) == (
        "test_bulk_discount_applies_at_threshold",
        "tests.test_discounts",
        "failed",
    )
    assert first["report"] == "report.xml" and first["duration_s"] == 0.001
    # The report's message has four lines; the first three say what failed.
    assert MESSAGE_LINES == 3
    assert first["message"].splitlines() == [
        "AssertionError: assert Decimal('0.00') == Decimal('20.00')",
        " +  where Decimal('0.00') = bulk_discount(10, Decimal('200.00'))",
        " +    where Decimal('200.00') = Decimal('200.00')",
    ]
    assert second["message"] == "ValueError: invalid literal for int() with base 10: '10%'"


def test_without_reports_the_tests_the_log_names(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(GetFailedTests(workspace=workspace_of(EXAMPLES / "gha-pytest-failure.zip")).run(limit=1))
    assert (out["source"], out["total"]) == ("log", 2)
    assert out["tests"] == [
        {
            "name": "tests/test_discounts.py::test_bulk_discount_applies_at_threshold",
            "message": "AssertionError: assert Decimal('0.00') == Decimal('20.00')",
        }
    ]


def test_no_failed_tests_is_said(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(GetFailedTests(workspace=workspace_of(EXAMPLES / "gha-timeout.log")).run())
    assert (out["total"], out["tests"]) == (0, [])
    assert "no failed test found" in out["note"]


def test_many_failures_are_capped_and_fit_the_answer(workspace_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reports = tmp_path / "reports"
    reports.mkdir()
    for n in range(40):  # a sharded run: the same real Jest report from 40 shards, 4 failures each
        shutil.copy(FIXTURES / "junit" / "dorny-test-reporter" / "jest-junit.xml", reports / f"shard-{n}.xml")
    text = GetFailedTests(workspace=workspace_of(reports)).run(limit=1000)
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)
    assert out["total"] == 160
    assert 0 < len(out["tests"]) < MAX_LIMIT
    assert f"limit capped at {MAX_LIMIT}" in out["note"] and "left out to fit the answer" in out["note"]
    assert all(len(t["message"].splitlines()) <= MESSAGE_LINES for t in out["tests"])
