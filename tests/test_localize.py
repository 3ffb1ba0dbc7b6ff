"""Localisation choices on small logs shaped like real runner output."""

from __future__ import annotations

import io

from cimedic.tools.logs.localize import analyze_log


def _analyze(text: str):  # type: ignore[no-untyped-def]
    data = text.encode()
    return analyze_log("job.log", lambda: io.BytesIO(data))


def test_first_of_several_test_failures_wins_over_the_recap() -> None:
    lines = ["$ go test ./...", "=== RUN   TestA", "--- FAIL: TestA (0.01s)", "    a_test.go:9: expected 1, got 2"]
    lines += [f"=== RUN   TestOk{i}\n--- PASS: TestOk{i} (0.00s)" for i in range(60)]
    lines += [
        "--- FAIL: TestB (0.01s)",
        "    b_test.go:3: expected x, got y",
        "FAIL",
        "FAIL\texample.com/m\t0.1s",
        'The command "go test ./..." exited with 1.',
    ]
    result = _analyze("\n".join(lines) + "\n")
    assert result.evidence[0].line.no == 3


def test_go_parent_test_defers_to_its_failing_subtest() -> None:
    lines = ["$ go test -v ./...", "--- FAIL: TestAlpha (0.02s)"]
    lines += [f"    --- PASS: TestAlpha/ok_{i} (0.00s)" for i in range(30)]
    lines += [
        "    --- FAIL: TestAlpha/sorted (0.00s)",
        "        repo_test.go:131: expected 'a' but actual is 'b'",
        "FAIL",
        'The command "go test -v ./..." exited with 1.',
    ]
    result = _analyze("\n".join(lines) + "\n")
    assert result.evidence[0].line.text.strip().startswith("--- FAIL: TestAlpha/sorted")


def test_summary_lines_do_not_outrank_the_failure_they_summarise() -> None:
    text = (
        "\n".join(
            [
                "$ vendor/bin/phpunit",
                "PHPUnit 7.5.0",
                "",
                "There was 1 failure:",
                "",
                "1) Tests\\InflectorTest::test_plural",
                "Failed asserting that two strings are equal.",
                "",
                "FAILURES!",
                "Tests: 127, Assertions: 310, Failures: 1.",
                'The command "vendor/bin/phpunit" exited with 1.',
            ]
        )
        + "\n"
    )
    result = _analyze(text)
    assert result.evidence[0].line.no == 6


def test_warnings_alone_defer_to_the_last_output_of_the_step() -> None:
    # `prettier --list-different` prints only the names of unformatted files, with no error word.
    text = (
        "\n".join(
            [
                "$ npx prettier --list-different 'app/**/*.js'",
                "(node:1) [DEP0005] DeprecationWarning: Buffer() is deprecated",
                "",
                "app/assets/javascripts/routes/about.js",
                'The command "npx prettier --list-different" exited with 1.',
            ]
        )
        + "\n"
    )
    result = _analyze(text)
    assert result.evidence[0].line.no == 4


def test_a_later_failed_step_with_a_clearer_report_is_chosen() -> None:
    text = (
        "\n".join(
            [
                "$ ./lint.sh",
                "some output",
                "warning: style",
                'The command "./lint.sh" exited with 1.',
                "$ pytest",
                "tests/test_a.py F",
                "E       assert 1 == 2",
                "FAILED tests/test_a.py::test_x - assert 1 == 2",
                'The command "pytest" exited with 1.',
            ]
        )
        + "\n"
    )
    result = _analyze(text)
    assert result.segment == (5, 9)
    assert result.evidence[0].line.no == 7
