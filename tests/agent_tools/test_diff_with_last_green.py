"""diff_with_last_green against a real passing log: given with --baseline, or found through the run
history and the log archive (both filled through the project's own APIs)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cimedic.archive.keep import archive_run
from cimedic.investigate import baseline_index
from cimedic.models import Job, RunInfo
from cimedic.store.history import HistoryStore
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.diff_with_last_green import MAX_TEMPLATES, DiffWithLastGreen
from tests.conftest import EXAMPLES

ZIP = EXAMPLES / "gha-pytest-failure.zip"
PROJECT = "demo/shop"
T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)


def lint_job_log(dest: Path) -> Path:
    """The zip's lint job passed: same workflow, runner image, checkout and Python set-up as `test`."""
    with zipfile.ZipFile(ZIP) as zf:
        return Path(zf.extract("0_lint.txt", dest))


def flat(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The new templates of an answer, each with its log's path."""
    return [{"path": group["path"], **t} for group in out["new"] for t in group["templates"]]


def run_info(run_id: str, hours: int, test_status: str, project: str = PROJECT) -> RunInfo:
    return RunInfo(
        platform="github-actions",
        id=run_id,
        project=project,
        attempt=1,
        status=test_status,
        started_at=T0 + timedelta(hours=hours),
        jobs=[Job(name="lint", status="success"), Job(name="test", status=test_status)],
    )


def test_against_a_given_passing_log_only_the_failing_steps_lines_are_new(workspace_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    ws.baseline = baseline_index(lint_job_log(tmp_path), ws.settings.limits)
    text = DiffWithLastGreen(workspace=ws).run(job="test")
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)
    assert out["baseline"] == {"source": "--baseline"}
    new = flat(out)
    assert 0 < len(new) <= MAX_TEMPLATES < out["new_total"] and "more new templates left out" in out["note"]
    # Runner set-up and checkout print the same templates in both jobs; the test step's do not.
    assert {t["path"] for t in new} == {"test/1_Set up job.txt", "test/4_Run tests.txt"}
    assert not any("Current runner version" in t["text"] or "git" in t["text"] for t in new)
    assertion = next(t for t in new if t["line"] == 31)
    assert assertion["path"] == "test/4_Run tests.txt"
    assert assertion["text"] == "E       AssertionError: assert Decimal('0.00') == Decimal('20.00')"
    # Three `E ...` lines of pytest's report share one template: counted once, the template shown.
    assert assertion["count"] == 3 and "<*>" in assertion["template"]
    order = [(t["path"], t["line"]) for t in new]
    assert order == sorted(order)  # first appearance, in log order


def test_a_passing_job_has_nothing_new_against_itself(workspace_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    ws.baseline = baseline_index(lint_job_log(tmp_path), ws.settings.limits)
    out = json.loads(DiffWithLastGreen(workspace=ws).run(job="lint"))
    assert out["lines_compared"] > 100 and (out["new_total"], out["new"]) == (0, [])


def test_local_material_without_baseline_says_none_is_known(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(DiffWithLastGreen(workspace=workspace_of(ZIP)).run(job="test"))
    assert out["baseline"] is None and out["job"] == "test"
    assert "--baseline" in out["note"]


def test_the_newest_archived_green_run_of_the_job_is_the_baseline(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    store = HistoryStore.open(ws.settings.effective_database_url)
    test_logs = [log for log in ws.logs if log.job == "test"]
    passing_steps = [log for log in test_logs if log.step != "Run tests"]
    ws.settings.downloads_dir.mkdir(parents=True)  # archive_run's scratch space, as investigate_url makes it
    # (run, hours after T0, the test job's status, project, what the archive kept of the test job)
    runs = [
        ("100", -5, "success", PROJECT, passing_steps),  # an older green run
        ("200", 0, "success", PROJECT, passing_steps),  # the last green run with logs
        ("250", 1, "success", PROJECT, []),  # greener still, but its logs were never archived
        ("280", 2, "failure", PROJECT, test_logs),  # newer, archived, but failed
        # Another project's job of the same name, green, with a run id ours also has (build numbers collide).
        ("280", 3, "success", "other/repo", test_logs),
        ("300", 4, "failure", PROJECT, test_logs),  # the run under investigation, archived as investigated
    ]
    for run_id, hours, status, project, logs in runs:
        info = run_info(run_id, hours, status, project)
        store.upsert_run(info)
        if logs:
            kept, warnings = archive_run(ws.settings, info, logs)
            assert (kept, warnings) == (len(logs), [])
    ws.diagnosis = ws.diagnosis.model_copy(update={"run": run_info("300", 4, "failure")})

    out = json.loads(DiffWithLastGreen(workspace=ws).run(job="test"))
    assert {k: out["baseline"][k] for k in ("source", "run_id", "attempt", "logs")} == {
        "source": "archive",
        "run_id": "200",
        "attempt": 1,
        "logs": len(passing_steps),
    }
    # Every other step ran in the green run too: only the failing step's templates are new.
    assert [group["path"] for group in out["new"]] == ["test/4_Run tests.txt"]
    assert any(t["line"] == 31 for t in flat(out))


def test_the_run_under_investigation_is_never_its_own_baseline(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    ws.settings.downloads_dir.mkdir(parents=True)
    store = HistoryStore.open(ws.settings.effective_database_url)
    lint_logs = [log for log in ws.logs if log.job == "lint"]
    for info in (run_info("200", 0, "success"), run_info("300", 4, "failure")):  # lint passed in both
        store.upsert_run(info)
        archive_run(ws.settings, info, lint_logs)
    ws.diagnosis = ws.diagnosis.model_copy(update={"run": run_info("300", 4, "failure")})
    out = json.loads(DiffWithLastGreen(workspace=ws).run(job="lint"))
    assert out["baseline"]["run_id"] == "200"


def test_history_without_an_archived_green_run_says_so(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    ws.diagnosis = ws.diagnosis.model_copy(update={"run": run_info("300", 4, "failure")})
    empty = json.loads(DiffWithLastGreen(workspace=ws).run(job="test"))
    assert empty["baseline"] is None
    assert empty["note"] == f"no passing run of job 'test' in {PROJECT} is in the run history"
    HistoryStore.open(ws.settings.effective_database_url).upsert_run(run_info("250", 1, "success"))
    unarchived = json.loads(DiffWithLastGreen(workspace=ws).run(job="test"))
    assert unarchived["baseline"] is None
    assert unarchived["note"] == "1 passing run(s) of job 'test' are known but none has archived logs"


def test_unknown_job_is_an_error_answer(workspace_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(ZIP)
    ws.baseline = baseline_index(lint_job_log(tmp_path), ws.settings.limits)
    out = json.loads(DiffWithLastGreen(workspace=ws).run(job="deploy"))
    assert out["input"] == "diff_with_last_green" and "no log or job named 'deploy'" in out["error"]
