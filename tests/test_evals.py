"""The eval harness: case loading, scoring, reports, comparison and the dataset adapters."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from cimedic.errors import InputError
from cimedic.eval_cli import eval_cmd
from cimedic.evals.cases import Case, load_case, load_cases, select
from cimedic.evals.cidiff import parse_groundtruth, to_newline_ranges
from cimedic.evals.harness import Report, compare, flow_investigator, load_report, run_cases, write_report
from cimedic.evals.logchunks import chunk_in_newline_lines, evaluate
from cimedic.evals.score import score_case
from cimedic.models import Action, ActionKind, Category, Diagnosis, RemediationPlan

ROOT = Path(__file__).resolve().parents[1]
EVALS = Path(__file__).resolve().parent / "fixtures" / "evals"
CASES = EVALS / "cases"


@pytest.fixture(scope="module")
def investigate_offline():  # type: ignore[no-untyped-def]
    return flow_investigator(offline=True)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(CASES)


@pytest.fixture(scope="module")
def diagnosis(investigate_offline, cases: list[Case]) -> Diagnosis:  # type: ignore[no-untyped-def]
    return investigate_offline(cases[0].input_path)  # type: ignore[no-any-return]


def _copy_cases(tmp_path: Path) -> Path:
    dest = tmp_path / "cases"
    shutil.copytree(CASES, dest)
    return dest


def _edit(case_yaml: Path, old: str, new: str) -> None:
    text = case_yaml.read_text()
    assert old in text
    case_yaml.write_text(text.replace(old, new))


# -- loader ---------------------------------------------------------------------------------------


def test_loader_reads_cases_and_filters(cases: list[Case]) -> None:
    assert [c.id for c in cases] == ["001_pytest_assert", "002_pytest_assert_again"]
    assert cases[0].expected.category is Category.TEST
    assert cases[0].expected.lines == {"job.log": [(13, 18)]}
    assert cases[1].same_failure_as == "001_pytest_assert"
    assert [c.id for c in select(cases, tags=["easy"])] == ["001_pytest_assert"]
    assert [c.id for c in select(cases, tags=["test", "rerun"])] == ["002_pytest_assert_again"]
    assert [c.id for c in select(cases, ids=["002"])] == ["002_pytest_assert_again"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("category: test", "category: testing", "expected.category: Input should be"),
        ("actions_forbidden: [rollback]", "actions_forbidden: [rollback, explode]", "expected.actions_forbidden.1"),
        ("[[13, 18]]", "[[18, 13]]", "bad range [18, 13]"),
        ("tags: [easy, test]", "tags: [test]", "tags: Value error, needs exactly one difficulty tag"),
        ('id: "001_pytest_assert"', 'id: "001_other"', "id '001_other' differs from the folder name"),
        ("input: job.log", "input: missing.log", "input 'missing.log' does not exist"),
        ("same_failure_as: null", "same_failure_as: null\nsurprise: 1", "surprise: Extra inputs are not permitted"),
    ],
)
def test_loader_error_is_one_line_naming_the_case(tmp_path: Path, old: str, new: str, problem: str) -> None:
    root = _copy_cases(tmp_path)
    _edit(root / "001_pytest_assert" / "case.yaml", old, new)
    with pytest.raises(InputError) as info:
        load_cases(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(root / "001_pytest_assert") + ": ")
    assert problem in message


def test_loader_rejects_a_dangling_same_failure_reference(tmp_path: Path) -> None:
    root = _copy_cases(tmp_path)
    shutil.rmtree(root / "001_pytest_assert")
    with pytest.raises(InputError, match=r"002_pytest_assert_again: same_failure_as '001_pytest_assert'"):
        load_cases(root)


def test_loader_rejects_broken_yaml(tmp_path: Path) -> None:
    root = _copy_cases(tmp_path)
    (root / "001_pytest_assert" / "case.yaml").write_text("id: [unclosed\n")
    with pytest.raises(InputError, match=r"case\.yaml is not valid YAML"):
        load_case(root / "001_pytest_assert")


# -- scoring --------------------------------------------------------------------------------------


def test_fixture_cases_pass_offline(investigate_offline, cases: list[Case]) -> None:  # type: ignore[no-untyped-def]
    report = run_cases(cases, investigate_offline)
    by_id = {s.id: s for s in report.cases}
    first, again = by_id["001_pytest_assert"], by_id["002_pytest_assert_again"]
    assert first.passed and first.category_ok and first.excerpt_ok and first.top_evidence_ok and first.keyword_ok
    assert again.fingerprint_ok is True  # the same failure a week later keeps its fingerprint
    assert report.overall.n == 2 and report.overall.passed == 2
    assert set(report.by_tag) == {"easy", "hard", "test", "rerun"}


def test_wrong_expected_category_fails(tmp_path: Path, investigate_offline) -> None:  # type: ignore[no-untyped-def]
    root = _copy_cases(tmp_path)
    _edit(root / "001_pytest_assert" / "case.yaml", "category: test", "category: infra")
    report = run_cases(select(load_cases(root), ids=["001"]), investigate_offline)
    (score,) = report.cases
    assert score.category == "test" and score.expected_category == "infra"
    assert not score.category_ok and not score.passed
    assert report.overall.passed == 0


def test_excerpt_off_the_culprit_fails(cases: list[Case], diagnosis: Diagnosis) -> None:
    case = cases[0].model_copy(
        update={"expected": cases[0].expected.model_copy(update={"lines": {"other.log": [(13, 18)]}})}
    )
    score = score_case(case, diagnosis, latency_ms=1)
    assert score.category_ok and score.excerpt_ok is False and not score.passed
    assert score.evidence_precision == 0.0 and score.top_evidence_ok is False


def test_forbidden_action_is_caught(cases: list[Case], diagnosis: Diagnosis) -> None:
    plan = RemediationPlan(
        actions=[
            Action(kind=ActionKind.RETRY, target="job", reason="flaky?"),
            Action(kind=ActionKind.ROLLBACK, target="main", reason="bad commit", source="llm"),
        ]
    )
    score = score_case(cases[1], diagnosis.model_copy(update={"plan": plan}), latency_ms=1)
    assert score.category_ok and score.excerpt_ok
    assert score.forbidden_actions == ["rollback"]
    assert score.action_ok is False  # rollback is not among actions_ok [retry, none]
    assert not score.passed
    ok = score_case(
        cases[1],
        diagnosis.model_copy(update={"plan": RemediationPlan(actions=plan.actions[:1])}),
        latency_ms=1,
    )
    assert ok.passed and ok.action_ok is True and ok.forbidden_actions == []


def test_scores_identical_across_two_runs(investigate_offline, cases: list[Case]) -> None:  # type: ignore[no-untyped-def]
    def scores() -> list[dict[str, object]]:
        report = run_cases(cases, investigate_offline)
        return [s.model_dump(exclude={"latency_ms"}) for s in report.cases]

    assert scores() == scores()


def test_an_investigation_error_is_a_failed_case(cases: list[Case]) -> None:
    def boom(path: Path) -> Diagnosis:
        raise InputError(str(path), "cannot read\nat all")

    report = run_cases(cases[:1], boom)
    (score,) = report.cases
    assert not score.passed and score.error is not None and "\n" not in score.error
    assert report.overall.errors == 1


# -- reports and compare --------------------------------------------------------------------------


def test_report_round_trip_and_compare(tmp_path: Path, cases: list[Case], diagnosis: Diagnosis) -> None:
    good = run_cases(cases, lambda _p: diagnosis)
    worse_diag = diagnosis.model_copy(
        update={
            "category": Category.INFRA,
            "plan": RemediationPlan(actions=[Action(kind=ActionKind.ROLLBACK, target="main", reason="x")]),
        }
    )
    bad = run_cases(cases, lambda p: worse_diag if p.parent.name.startswith("002") else diagnosis)
    json_path, md_path = write_report(good, tmp_path / "out")
    baseline = load_report(json_path)
    assert baseline == good
    assert "| 001_pytest_assert | yes |" in md_path.read_text()

    comparison = compare(bad, baseline)
    assert comparison.regressed
    worse = {(c.case, c.metric) for c in comparison.worse}
    assert worse == {
        ("002_pytest_assert_again", "passed"),
        ("002_pytest_assert_again", "category_ok"),
        ("002_pytest_assert_again", "action_ok"),
        ("002_pytest_assert_again", "forbidden_ok"),
    }
    assert comparison.better == []
    back = compare(good, bad)
    assert {(c.case, c.metric) for c in back.better} == worse and not back.regressed
    assert compare(good, good).worse == [] and compare(good, good).better == []

    fewer = Report.model_validate(good.model_dump() | {"cases": [good.model_dump()["cases"][0]]})
    assert compare(fewer, good).removed == ["002_pytest_assert_again"]
    assert compare(good, fewer).added == ["002_pytest_assert_again"]


def test_load_report_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="not an eval report"):
        load_report(path)


# -- the CLI --------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_cmd)

    @app.command("other")
    def _other() -> None:  # a second command keeps `eval` a subcommand
        pass

    return app


def test_cli_gate_and_regression(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    ok = runner.invoke(app, ["eval", str(CASES), "--out", str(tmp_path / "a"), "--gate"])
    assert ok.exit_code == 0, ok.output
    assert "passed 2/2" in ok.output
    baseline = tmp_path / "a" / "eval-report.json"
    assert baseline.exists() and (tmp_path / "a" / "eval-report.md").exists()

    root = _copy_cases(tmp_path)
    _edit(root / "001_pytest_assert" / "case.yaml", "category: test", "category: lint")
    args = ["eval", str(root), "--out", str(tmp_path / "b"), "--compare", str(baseline)]
    assert runner.invoke(app, args).exit_code == 0  # reporting only
    gated = runner.invoke(app, [*args, "--gate"])
    assert gated.exit_code == 1 and "passed 1/2" in gated.output
    regressed = runner.invoke(app, [*args, "--fail-on-regression"])
    assert regressed.exit_code == 1 and "001_pytest_assert category_ok: True -> False" in regressed.output
    only_hard = runner.invoke(app, ["eval", str(root), "--tags", "hard", "--out", str(tmp_path / "c"), "--gate"])
    assert only_hard.exit_code == 0, only_hard.output

    broken = runner.invoke(app, ["eval", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d")])
    assert broken.exit_code == 2 and "not a folder of eval cases" in broken.output


# -- datasets -------------------------------------------------------------------------------------


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rca_logchunks", ROOT / "bench" / "rca_logchunks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_logchunks_chunk_lines_follow_universal_newlines() -> None:
    text = "a\r\nb\rc\r\nd\ne\n"  # universal lines: a b c d e; \n lines: a\r, b\rc\r, d, e
    assert chunk_in_newline_lines(text, 1, 1) == (1, 1)
    assert chunk_in_newline_lines(text, 2, 3) == (2, 2)
    assert chunk_in_newline_lines(text, 4, 5) == (3, 4)


def test_logchunks_adapter_matches_the_bench() -> None:
    data = EVALS / "logchunks"
    ours = evaluate(data, limit=5).figures()
    bench = _bench()
    assert bench.evaluate is evaluate  # one implementation
    theirs = bench.rca_figures(data, limit=5).figures()
    ours.pop("cimedic_s_per_log"), theirs.pop("cimedic_s_per_log")
    assert ours == theirs
    assert ours["logs"] == 5 and ours["category_n"] == 5
    assert ours["category_strict"] == pytest.approx(0.8) and ours["category_lenient"] == 1.0

    out = CliRunner().invoke(_app(), ["eval", "--dataset", "logchunks", str(data), "--limit", "5"])
    assert out.exit_code == 0, out.output
    assert (
        f"excerpt_hit={ours['excerpt_hit']:.3f} top_evidence={ours['top_evidence']:.3f} "
        f"category_strict={ours['category_strict']:.3f} category_lenient={ours['category_lenient']:.3f}"
    ) in out.output


def test_cidiff_groundtruth_parser() -> None:
    truth = parse_groundtruth("E 34-45\nC 46-47\n\n56\nE 60\n")
    assert truth.errors == [(34, 45), (56, 56), (60, 60)]
    assert truth.context == [(46, 47)]
    with pytest.raises(InputError, match="groundtruth: line 2: expected 'E a-b'"):
        parse_groundtruth("E 1-2\nX 3\n")
    with pytest.raises(InputError, match="line 1: bad range 5-2"):
        parse_groundtruth("E 5-2\n")


def test_cidiff_ranges_follow_universal_newlines() -> None:
    fail = (EVALS / "cidiff" / "b1" / "fail.log").read_bytes().decode()
    truth = parse_groundtruth((EVALS / "cidiff" / "b1" / "groundtruth").read_text())
    assert truth.errors == [(3, 3)] and truth.context == [(4, 4)]
    assert to_newline_ranges(fail, truth.errors) == [(3, 3)]  # \r\n: same numbering
    assert to_newline_ranges("a\rb\rc\nd\n", [(3, 4)]) == [(1, 2)]  # bare \r: fewer \n lines


def test_cidiff_dataset_runs(investigate_offline) -> None:  # type: ignore[no-untyped-def]
    from cimedic.evals.cidiff import evaluate as cidiff_evaluate
    from cimedic.evals.cidiff import figures, flow_investigate

    scores = cidiff_evaluate(EVALS / "cidiff", flow_investigate(offline=True))
    assert [s.id for s in scores] == ["b1", "b2"]
    assert all(s.error is None for s in scores)
    f = figures(scores)
    assert f["breakages"] == 2 and f["excerpt_hit"] == 1.0
