"""The quarantine list (format, add, counts, release, errors, exports) and the Quarantine action.

The action runs against an in-memory ChangeRequester double (like Drain3's in-memory persistence
doubles): it serves the default branch's files, records what is proposed, and can "merge" it. Later
runs come from a small CI provider double, or from a real run history on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cimedic.heal import quarantine as q
from cimedic.heal.actions.quarantine import Quarantine, passes_to_release, slug, target_test
from cimedic.heal.actions.quarantine_verify import LaterRun, judge
from cimedic.heal.base import HealContext, Outcome, Verdict
from cimedic.heal.quarantine_cli import main as cli_main
from cimedic.heal.quarantine_names import RUN_MARK, SKIP_MARK, Result, junit_id, same_test
from cimedic.models import (
    Action,
    ActionKind,
    Category,
    Cause,
    ChangeVerdict,
    Diagnosis,
    Evidence,
    FailedTest,
    Fingerprint,
    Platform,
    RunInfo,
    Source,
    SourceKind,
    Status,
    TestResult,
    TestStatus,
)
from cimedic.settings import get_settings
from cimedic.store.history import HistoryStore
from cimedic.tools.ci.base import RunFilter, RunRef, RunSummary

SAMPLE = """\
# Our quarantined tests: ask #ci-health before adding one by hand.
version: 1
tests:
  - test: tests/test_db.py::test_pool   # INFRA-12: the pool fixture races
    reason: flaky since the pg16 upgrade
    added: 2025-01-02
    mode: run
    evidence:
      run: https://github.com/acme/app/actions/runs/7
      issue: INFRA-12
    passes_to_release: 3
    consecutive_passes: 1
"""
CONN = SAMPLE.replace("test_pool", "test_conn")  # another test than the action's
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the list


def test_round_trip_keeps_comments_and_layout() -> None:
    qlist = q.parse(SAMPLE)
    assert q.dump(qlist) == SAMPLE  # read and written back untouched, byte for byte
    q.add(qlist, "tests.test_api.test_upload", "times out on slow runners", added=date(2025, 3, 1))
    text = q.dump(qlist)
    assert text.startswith(SAMPLE.splitlines()[0])
    assert "# INFRA-12: the pool fixture races" in text
    assert "issue: INFRA-12" in text  # a key a person added to the evidence survives too
    again = q.parse(text)
    assert [e.test for e in again.entries] == ["tests/test_db.py::test_pool", "tests.test_api.test_upload"]
    assert again.entries[1].added == date(2025, 3, 1) and again.entries[1].mode == "skip"


def test_an_absent_or_empty_list_is_empty_and_grows_in_block_style(tmp_path: Path) -> None:
    qlist = q.load(tmp_path / "none.yaml")
    assert qlist.entries == []
    q.add(qlist, "TestFoo", "flaky", added=date(2025, 3, 1))
    q.save(qlist, tmp_path / ".cimedic" / "quarantine.yaml")
    text = (tmp_path / ".cimedic" / "quarantine.yaml").read_text()
    assert "tests:\n  - test: TestFoo\n" in text and text.startswith("# Tests quarantined by cimedic")
    assert q.load(tmp_path / ".cimedic" / "quarantine.yaml").entries[0].test == "TestFoo"


def test_add_is_idempotent_and_updates_the_reason() -> None:
    qlist = q.parse(SAMPLE)
    first = q.dump(q.parse(SAMPLE))
    entry = q.add(qlist, "tests/test_db.py::test_pool", "flaky since the pg16 upgrade", added=date(2025, 3, 1))
    assert q.dump(qlist) == first  # same test, same reason: nothing changes
    assert entry.added == date(2025, 1, 2)
    # The JUnit form names the same test: still one entry, reason updated, evidence merged.
    q.add(
        qlist, "tests.test_db.test_pool", "still flaky", added=date(2025, 3, 1), evidence=q.Evidence(fingerprint="f1")
    )
    q.add(
        qlist, "tests.test_db.test_pool", "still flaky", added=date(2025, 3, 1), evidence=q.Evidence(fingerprint="f1")
    )
    assert len(qlist.entries) == 1
    only = qlist.entries[0]
    assert only.reason == "still flaky" and only.evidence.fingerprint == "f1"
    assert only.evidence.run == "https://github.com/acme/app/actions/runs/7" and only.consecutive_passes == 1


def test_consecutive_passes_release_and_a_failure_resets() -> None:
    qlist = q.parse(SAMPLE)  # passes_to_release 3, one pass already
    test = "tests/test_db.py::test_pool"
    assert q.record(qlist, [Result("tests.test_db.test_pool", "passed")]) == {test: 2}
    # A run-mode failure reaches JUnit as <skipped type="pytest.xfail"> with cimedic's reason: a failure.
    assert q.record(qlist, [Result(test, "skipped", f"{RUN_MARK}: flaky")]) == {test: 0}
    assert q.record(qlist, [Result(test, "skipped", "needs docker")]) == {}  # did not run: no change
    assert q.record(qlist, [Result("tests/test_other.py::test_x", "failed")]) == {}
    for expected in (1, 2):
        assert q.record(qlist, [Result(test, "passed")]) == {test: expected}
        assert q.release(qlist) == []
    # Parameters of one test in one run count once; any failure among them would reset.
    q.record(qlist, [Result(test + "[a]", "passed"), Result(test + "[b]", "passed")])
    assert [e.test for e in q.release(qlist)] == [test]
    assert qlist.entries == [] and "# Our quarantined tests" in q.dump(qlist)
    assert q.parse(q.dump(qlist)).entries == []


BAD = [
    ("version: 2\ntests: []\n", "version: Input should be 1"),
    (SAMPLE.replace("mode: run", "mode: sometimes"), "tests[0].mode: Input should be 'skip' or 'run'"),
    (SAMPLE.replace("passes_to_release", "passes_to_relase"), "tests[0].passes_to_relase: Extra inputs"),
    (SAMPLE.replace("added: 2025-01-02", "added: someday"), "tests[0].added:"),
    (SAMPLE.replace("passes_to_release: 3", "passes_to_release: 0"), "tests[0].passes_to_release:"),
    (SAMPLE + SAMPLE.split("tests:\n")[1], "tests: test 'tests/test_db.py::test_pool' is listed twice"),
    ("version: 1\ntests: [\n", "not valid YAML (line 3)"),
    ("- just\n- a list\n", "not a mapping"),
]


@pytest.mark.parametrize(("text", "said"), BAD)
def test_a_bad_list_is_one_line_naming_the_file_and_the_problem(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text(text)
    with pytest.raises(q.QuarantineError) as caught:
        q.load(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and said in message


def test_names() -> None:
    assert junit_id("tests/unit/test_a.py::TestB::test_c[x-1]") == "tests.unit.test_a.TestB.test_c[x-1]"
    assert same_test("tests/test_a.py::test_c", "tests.test_a.test_c[2]")
    assert same_test("test_c", "tests/test_a.py::test_c") and not same_test("test_c", "tests/test_a.py::test_cc")
    assert not same_test("tests/test_a.py::test_c", "tests/test_b.py::test_c")


def test_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qlist = q.empty()
    for test in ("com.acme.CartTest.addsItem(String)[1]", "github.com/acme/app/pkg.TestDial/ipv6.only", "x.py::t"):
        q.add(qlist, test, "flaky", added=date(2025, 3, 1))
    q.save(qlist, tmp_path / "q.yaml")
    assert cli_main(["export", "--format", "surefire", "--file", str(tmp_path / "q.yaml")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1:] == [
        "com.acme.CartTest#addsItem",
        "# left out (no Java class.method): github.com/acme/app/pkg.TestDial/ipv6.only",
        "# left out (no Java class.method): x.py::t",
    ]
    assert "cannot name 'x.py::t'" in err
    target = tmp_path / "out" / "skip.txt"
    assert cli_main(["export", "--format", "go", "--file", str(tmp_path / "q.yaml"), "-o", str(target)]) == 0
    assert target.read_text() == "^TestDial$/^ipv6\\.only$\n"
    (tmp_path / "bad.yaml").write_text("version: 3\n")
    assert cli_main(["export", "--format", "go", "--file", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml: version: Input should be 1" in capsys.readouterr().err


def test_record_command_counts_one_runs_junit_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text(SAMPLE)  # 1 of 3 passes so far
    report = tmp_path / "report.xml"
    case = '<testcase classname="tests.test_db" name="test_pool" time="0.1"/>'
    report.write_text(f'<testsuites><testsuite name="pytest" tests="1">{case}</testsuite></testsuites>')
    assert cli_main(["record", str(report), "--file", str(path)]) == 0
    assert "tests/test_db.py::test_pool: 2 of 3 passes in a row" in capsys.readouterr().out
    assert cli_main(["record", str(report), "--file", str(path), "--release"]) == 0
    assert "released after 3 passes in a row" in capsys.readouterr().out
    assert q.load(path).entries == [] and path.read_text().startswith("# Our quarantined tests")


# ---------------------------------------------------------------- the action


class MemoryChanges:
    """An in-memory ChangeRequester: the default branch's files, the proposals made, and a merge."""

    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = dict(files or {})
        self.proposals: list[dict[str, Any]] = []

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def propose(self, files: dict[str, str], *, branch: str, title: str, body: str, dry_run: bool) -> Outcome:
        self.proposals.append({"files": dict(files), "branch": branch, "title": title, "body": body, "dry": dry_run})
        if dry_run:
            return Outcome(done=False, detail=f"would open {branch}", data={"branch": branch})
        data = {"branch": branch, "base": "main", "number": len(self.proposals)}
        return Outcome(done=True, detail=f"opened #{len(self.proposals)}", data=data)

    def merge(self) -> None:
        self.files.update(self.proposals[-1]["files"])


class Review:
    def __init__(self, state: str, merged_at: datetime | None) -> None:
        self.state, self.merged_at, self.base, self.url = state, merged_at, "main", "https://example/pr/1"


class ReviewingChanges(MemoryChanges):
    def __init__(self, review: Review) -> None:
        super().__init__()
        self._review = review

    def review(self, number: int) -> Review:
        return self._review


class Runs:
    """A CI provider double: finished runs (newest first, as platforms list them) and their tests."""

    platform = Platform.GITHUB_ACTIONS

    def __init__(self, runs: list[tuple[str, Status, list[TestResult]]]) -> None:
        self._runs = runs
        self.read: list[str] = []

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        for i, (run_id, status, _) in enumerate(self._runs):
            started = NOW + timedelta(hours=len(self._runs) - i)
            yield RunSummary(platform=self.platform, project=project, id=run_id, name="CI", status=status,
                             branch="main", event="push", started_at=started)  # fmt: skip

    def test_results(self, ref: RunRef) -> list[TestResult]:
        self.read.append(ref.run_id)
        return next(tests for run_id, _, tests in self._runs if run_id == ref.run_id)


POOL = TestResult(name="test_pool", classname="tests.test_db", status=TestStatus.PASSED)
SKIPPED = POOL.model_copy(update={"status": TestStatus.SKIPPED, "message": f"{SKIP_MARK}: flaky"})
FAILED = POOL.model_copy(update={"status": TestStatus.FAILED, "message": "AssertionError"})
OTHER = TestResult(name="test_other", classname="tests.test_db", status=TestStatus.PASSED)


def _diag() -> Diagnosis:
    run = RunInfo(platform=Platform.GITHUB_ACTIONS, id="41", project="acme/app", name="CI", branch="main",
                  url="https://github.com/acme/app/actions/runs/41", status=Status.FAILURE)  # fmt: skip
    return Diagnosis(
        source=Source(kind=SourceKind.GITHUB_ACTIONS, path="https://github.com/acme/app/actions/runs/41"),
        category=Category.TEST,
        confidence=0.9,
        summary="test_pool failed",
        excerpt=None,
        evidence=[Evidence(path="report.xml", line=3, text="tests.test_db.test_pool: pool closed", why=_WHY)],
        failed_tests=[FailedTest(name="test_pool", message="pool closed\nat line 3")],
        fingerprint=Fingerprint(id="fp-pool"),
        run=run,
        change_cause=ChangeVerdict(
            probabilities={Cause.FLAKY: 0.8123, Cause.CHANGE: 0.1877}, likely=Cause.FLAKY, p_change=0.1877
        ),
    )


_WHY = "failed test in JUnit report"
ACTION = Action(kind=ActionKind.QUARANTINE, target="test_pool", reason="passed and failed on one commit",
                params={"flake_rate": "0.1"})  # fmt: skip


def _ctx(changes: Any, provider: Any = None, dry_run: bool = False) -> HealContext:
    return HealContext(_diag(), get_settings(), dry_run=dry_run, changes=changes, provider=provider)


def test_plan_adds_the_entry_with_evidence_and_shows_the_diff() -> None:
    changes = MemoryChanges({q.PATH: CONN})
    step = Quarantine(now=lambda: NOW).plan(ACTION, _ctx(changes))
    assert step.kind == ActionKind.QUARANTINE and step.request["test"] == "tests.test_db.test_pool"
    assert step.request["branch"] == f"cimedic/quarantine-{slug('tests.test_db.test_pool')}"
    assert step.request["branch"].startswith("cimedic/quarantine-tests-test-db-test-pool-")
    assert step.request["title"] == "Quarantine tests.test_db.test_pool"
    diff = step.request["diff"].splitlines()
    assert "+  - test: tests.test_db.test_pool" in diff
    assert [line for line in diff if line.startswith("-") and not line.startswith("---")] == []  # only additions
    entry = q.parse(step.request["files"][q.PATH]).find("tests.test_db.test_pool")
    assert entry is not None and entry.mode == "skip" and entry.added == date(2025, 3, 1)
    assert entry.passes_to_release == 29  # (1 - 0.1)^29 < 0.05 <= (1 - 0.1)^28
    assert entry.evidence.run == "https://github.com/acme/app/actions/runs/41"
    assert (entry.evidence.fingerprint, entry.evidence.flake_rate, entry.evidence.p_flaky) == ("fp-pool", 0.1, 0.812)
    assert "# INFRA-12: the pool fixture races" in step.request["files"][q.PATH]
    assert changes.proposals == []  # plan only reads


def test_execute_proposes_and_verify_follows_the_runs() -> None:
    changes = MemoryChanges()
    healer = Quarantine(now=lambda: NOW)
    step = healer.plan(ACTION, _ctx(changes))
    outcome = healer.execute(step, _ctx(changes))
    assert outcome.done and outcome.data["proposed_at"] == NOW.isoformat()
    assert changes.proposals[0]["files"] == step.request["files"] and not changes.proposals[0]["dry"]
    verdict, why = healer.verify(step, outcome, _ctx(changes, Runs([])))
    assert verdict == Verdict.PENDING and "not merged" in why
    changes.merge()
    with pytest.raises(ValueError, match="already on"):
        healer.plan(ACTION, _ctx(changes))  # once merged, the same quarantine has nothing left to do
    # Oldest first: 50 predates the merge (the test failed for real), 51-53 show it skipped by the plugin.
    runs = Runs([("53", Status.SUCCESS, [SKIPPED, OTHER]), ("52", Status.SUCCESS, [SKIPPED]),
                 ("51", Status.SUCCESS, [SKIPPED]), ("50", Status.FAILURE, [FAILED])])  # fmt: skip
    assert healer.verify(step, outcome, _ctx(changes, runs)) == (
        Verdict.FIXED,
        "runs 51, 52, 53 passed with tests.test_db.test_pool quarantined",
    )
    failing = Runs([("52", Status.FAILURE, [SKIPPED]), ("51", Status.SUCCESS, [SKIPPED])])
    verdict, why = healer.verify(step, outcome, _ctx(changes, failing))
    assert verdict == Verdict.NOT_FIXED and "run 52 failed with" in why
    few = Runs([("51", Status.SUCCESS, [SKIPPED])])
    assert healer.verify(step, outcome, _ctx(changes, few))[0] == Verdict.PENDING
    # No platform and no run history: honest about not knowing.
    verdict, why = healer.verify(step, outcome, _ctx(changes))
    assert verdict == Verdict.PENDING and "no CI platform" in why


def test_execute_applies_the_entry_to_a_list_that_moved_since_the_plan() -> None:
    changes = MemoryChanges()
    healer = Quarantine(now=lambda: NOW)
    step = healer.plan(ACTION, _ctx(changes))
    changes.files[q.PATH] = CONN  # another quarantine merged meanwhile
    outcome = healer.execute(step, _ctx(changes))
    written = q.parse(changes.proposals[0]["files"][q.PATH])
    assert [e.test for e in written.entries] == ["tests/test_db.py::test_conn", "tests.test_db.test_pool"]
    assert "changed since the plan" in outcome.detail


def test_dry_run_and_targets() -> None:
    changes = MemoryChanges()
    ctx = _ctx(changes, dry_run=True)
    step = Quarantine(now=lambda: NOW).plan(ACTION.model_copy(update={"params": {"mode": "run"}}), ctx)
    outcome = Quarantine(now=lambda: NOW).execute(step, ctx)
    assert not outcome.done and changes.proposals[0]["dry"] and changes.files == {}
    assert "mode: run" in step.request["files"][q.PATH]
    with pytest.raises(ValueError, match="not one failed test"):
        Quarantine().plan(ACTION.model_copy(update={"target": "test_nothing"}), ctx)
    with pytest.raises(ValueError, match="skip or run"):
        Quarantine().plan(ACTION.model_copy(update={"params": {"mode": "maybe"}}), ctx)
    assert target_test("tests.test_db.test_pool", _diag()) == "tests.test_db.test_pool"
    assert (passes_to_release(None), passes_to_release(0.5), passes_to_release(0.001)) == (20, 5, 100)


def test_verify_knows_merge_and_closing_from_a_requester_that_reads_reviews() -> None:
    healer = Quarantine(now=lambda: NOW)
    closed = ReviewingChanges(Review("closed", None))
    step = healer.plan(ACTION, _ctx(closed))
    outcome = healer.execute(step, _ctx(closed))
    assert healer.verify(step, outcome, _ctx(closed))[0] == Verdict.NOT_FIXED
    merged = ReviewingChanges(Review("merged", NOW + timedelta(hours=1)))
    merged.files[q.PATH] = step.request["files"][q.PATH]
    # With the merge time known, a passing run counts even when its report cannot show the quarantine
    # (a run-mode test that passed), and a real failure after it means the list does not reach the test.
    runs = Runs([("52", Status.SUCCESS, [FAILED]), ("51", Status.SUCCESS, [POOL])])
    verdict, why = healer.verify(step, outcome, _ctx(merged, runs))
    assert verdict == Verdict.NOT_FIXED and "does not reach it" in why


def test_judge_reads_runs_lazily() -> None:
    def runs() -> Iterator[LaterRun]:
        for i in range(3):
            yield LaterRun(str(i), True, [Result("t.test_a", "skipped", f"{SKIP_MARK}: x")])
        raise AssertionError("read past the verdict")

    assert judge(runs(), "t.test_a", merged=False)[0] == Verdict.FIXED
    # Absent from a run that reported tests: an exported exclude file left it out.
    absent = [LaterRun("1", True, [Result("t.other", "passed")]), LaterRun("2", True, None)]
    assert judge(absent, "t.test_a", merged=False, wanted=1)[0] == Verdict.FIXED


def test_verify_from_the_run_history() -> None:
    settings = get_settings()
    store = HistoryStore.open(settings.effective_database_url)
    for n, tests in ((60, [FAILED]), (61, [SKIPPED]), (62, [SKIPPED]), (63, [SKIPPED])):
        info = RunInfo(platform=Platform.GITHUB_ACTIONS, id=str(n), project="acme/app", name="CI", branch="main",
                       status=Status.SUCCESS if n > 60 else Status.FAILURE, started_at=NOW + timedelta(hours=n - 59),
                       finished_at=NOW + timedelta(hours=n - 59, minutes=5))  # fmt: skip
        store.upsert_run(info, tests)
    changes = MemoryChanges()
    healer = Quarantine(now=lambda: NOW)
    step = healer.plan(ACTION, _ctx(changes))
    outcome = healer.execute(step, _ctx(changes))
    changes.merge()
    assert healer.verify(step, outcome, _ctx(changes)) == (
        Verdict.FIXED,
        "runs 61, 62, 63 passed with tests.test_db.test_pool quarantined",
    )
