import pytest

from cimedic.models import Category
from cimedic.tools.logs.rules import is_trailer, score_line

SPECIFIC = [
    ("src/main.c:12:5: error: 'count' undeclared (first use in this function)", Category.COMPILE),
    ("src/lib.rs:3:5: error[E0425]: cannot find value `x` in this scope", Category.COMPILE),
    ("src/app.ts(4,7): error TS2322: Type 'string' is not assignable to type 'number'.", Category.COMPILE),
    ("E       assert 1 == 2", Category.TEST),
    ("--- FAIL: TestSeparator (0.03s)", Category.TEST),
    ("ERROR: No matching distribution found for requests==0.0.999", Category.DEPENDENCY),
    ("npm ERR! code E404", Category.DEPENDENCY),
    ("fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com", Category.INFRA),
    ("No output has been received in the last 10m0s, this potentially indicates a stalled build", Category.TIMEOUT),
    ("/home/runner/work/_temp/x.sh: line 3:  4242 Killed                  python alloc.py", Category.RESOURCE),
    ("bash: line 1: pytset: command not found", Category.CONFIG),
    ("app/models/user.rb:3:1: C: Layout/EmptyLines: Extra blank line detected.", Category.LINT),
]


@pytest.mark.parametrize(("line", "category"), SPECIFIC)
def test_specific_lines_score_high_with_their_category(line: str, category: Category) -> None:
    s = score_line(line)
    assert s.score >= 7, line
    assert s.rule is not None and s.rule.category is category


@pytest.mark.parametrize(
    "line",
    [
        "Process completed with exit code 1.",
        'The command "bundle exec rake" exited with 1.',
        "make: *** [Makefile:4: main.o] Error 1",
        "npm ERR! A complete log of this run can be found in:",
        "ERROR: Job failed: exit code 1",
        "[ERROR] -> [Help 1]",
    ],
)
def test_trailers_are_recognised_and_never_outrank_causes(line: str) -> None:
    assert is_trailer(line)
    assert score_line(line).score <= 2


@pytest.mark.parametrize(
    "line",
    [
        "Tests run: 12, Failures: 0, Errors: 0, Skipped: 0",
        "tests/test_x.py::test_error_path PASSED [ 50%]",
        "--- PASS: TestErrors (0.00s)",
        "gcc -Werror -c error.c -o error.o",
        "$ npm test",
        "",
    ],
)
def test_success_and_noise_lines_score_zero(line: str) -> None:
    assert score_line(line).score == 0


def test_warnings_and_stack_frames_are_capped_below_errors() -> None:
    assert score_line("[warn] Could not find an implicit value").score < 2
    assert score_line("    at com.example.Foo.bar(Foo.java:12)").score <= 1
    assert score_line("src/x.c:1:1: error: boom").score > 5
