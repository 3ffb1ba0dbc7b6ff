"""End-to-end deterministic investigation of the shipped example runs (real tool output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cimedic.investigate import investigate_path
from cimedic.models import Category, SourceKind

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# (example, category, file inside the run, the line that states the root cause, text on that line)
CASES = [
    ("gha-pytest-failure.zip", Category.TEST, "test/4_Run tests.txt", 31, "AssertionError"),
    ("pytest-junit", Category.TEST, "console.log", 7, "AssertionError"),
    ("jenkins-gcc-compile-error", Category.COMPILE, "consoleText", 56, "undeclared"),
    ("gitlab-pip-dependency.log", Category.DEPENDENCY, "gitlab-pip-dependency.log", 62, "Could not find a version"),
    ("azure-npm-e404.log", Category.DEPENDENCY, "azure-npm-e404.log", 14, "E404"),
    ("gha-timeout.log", Category.TIMEOUT, "gha-timeout.log", 177, "timed out"),
    ("javac-compile-error.log.gz", Category.COMPILE, "javac-compile-error.log.gz", 53, "cannot find symbol"),
    ("tsc-compile-error.log", Category.COMPILE, "tsc-compile-error.log", 139, "TS2322"),
    ("oom-killed.log", Category.RESOURCE, "oom-killed.log", 62, "Killed"),
]


@pytest.mark.parametrize(("name", "category", "path", "line", "needle"), CASES, ids=[c[0] for c in CASES])
def test_example_is_diagnosed_at_its_root_cause(
    name: str, category: Category, path: str, line: int, needle: str
) -> None:
    diag = investigate_path(EXAMPLES / name)
    assert diag.category == category
    assert diag.backend == "offline"
    top = diag.evidence[0]
    assert (top.path, top.line) == (path, line)
    assert needle in top.text
    assert diag.excerpt is not None
    assert diag.excerpt.path == path
    assert diag.excerpt.start_line <= line <= diag.excerpt.end_line
    assert diag.excerpt.end_line - diag.excerpt.start_line < 40
    assert needle in diag.summary or category.value in diag.summary


def test_reported_line_numbers_are_lines_of_the_original_file() -> None:
    # The GitLab trace has \r inside lines (section markers): numbering must follow \n only.
    diag = investigate_path(EXAMPLES / "gitlab-pip-dependency.log")
    raw = (EXAMPLES / "gitlab-pip-dependency.log").read_bytes().split(b"\n")
    for ev in diag.evidence:
        assert ev.text.split()[0].encode() in raw[ev.line - 1], ev


def test_junit_failures_are_reported_as_failed_tests() -> None:
    diag = investigate_path(EXAMPLES / "pytest-junit")
    assert diag.source.kind == SourceKind.DIR
    names = [t.name for t in diag.failed_tests]
    assert len(names) == 2
    assert any("bulk_discount" in n for n in names)


def test_failed_tests_are_read_from_a_log_without_junit() -> None:
    diag = investigate_path(EXAMPLES / "gha-pytest-failure.zip")
    assert len(diag.failed_tests) == 2


def test_baseline_downweights_lines_a_passing_run_also_printed(tmp_path: Path) -> None:
    filler = [f"step {i} ok" for i in range(40)]
    noise = "Error: telemetry endpoint not configured"
    failing = tmp_path / "fail.log"
    failing.write_text(
        "\n".join(
            [
                "$ ./ci.sh",
                "Error: database migration 0042 failed",
                *filler,
                noise,
                'The command "./ci.sh" exited with 1.',
            ]
        )
        + "\n"
    )
    passing = tmp_path / "pass.log"
    passing.write_text("\n".join(["$ ./ci.sh", *filler, noise, 'The command "./ci.sh" exited with 0.']) + "\n")
    # Alone, the later error line looks like the cause (steps fail right after saying why) ...
    assert investigate_path(failing).evidence[0].line == 43
    # ... but a passing run prints it too, so the migration failure is the one that explains it.
    assert investigate_path(failing, baseline=passing).evidence[0].line == 2


def test_junit_failures_are_evidence_with_report_lines() -> None:
    diag = investigate_path(EXAMPLES / "pytest-junit")
    junit = [e for e in diag.evidence if e.path == "report.xml"]
    assert [e.line for e in junit] == [1, 8]  # the lines holding each failed <testcase>
    assert junit[1].text.startswith("tests.test_totals.test_total_with_percent_coupon: ValueError")
    assert diag.evidence[0].path == "console.log"  # the log's own top line stays first


def test_fingerprint_is_stable_for_the_same_failure(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    a.write_text("$ make\nsrc/x.c:12:5: error: 'n' undeclared (first use in this function)\nmake: *** [x.o] Error 1\n")
    b.write_text(
        "$ make\n+ cc -O2\nsrc/x.c:14:9: error: 'n' undeclared (first use in this function)\nmake: *** [x.o] Error 1\n"
    )
    first, second = investigate_path(a).fingerprint, investigate_path(b).fingerprint
    assert first is not None and second is not None
    assert first.id == second.id
    # The store counts distinct runs: b is a second sighting, a re-investigation of b is not a third.
    assert (first.count, first.seen) == (1, "first seen now")
    assert second.count == 2 and second.first_seen == first.first_seen
    again = investigate_path(b).fingerprint
    assert again is not None and again.count == 2


def test_fingerprint_history_is_not_recorded_when_asked_not_to(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("$ make\nsrc/x.c:12:5: error: 'n' undeclared (first use in this function)\n")
    diag = investigate_path(log, record=False)
    assert diag.fingerprint is not None and diag.fingerprint.count is None
    assert not (tmp_path / "home" / "cimedic.db").exists()


def test_warnings_quoting_untrusted_names_are_redacted(tmp_path: Path) -> None:
    import zipfile

    token = "glpat-" + "Ab3dEf6hIj9kLm2nOp5q"
    archive = tmp_path / "run.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"../{token}.txt", "x\n")
        zf.writestr("job/1_Run tests.txt", "$ make\nsrc/a.c:1:1: error: boom\n")
    diag = investigate_path(archive)
    assert diag.warnings
    assert all(token not in w for w in diag.warnings)
