"""list_failed_jobs: failed jobs and steps with log paths the other tools accept."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer

from cimedic.investigate import diagnose
from cimedic.settings import get_settings
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, Workspace
from cimedic.tools.agent.get_log_excerpt import GetLogExcerpt
from cimedic.tools.agent.list_failed_jobs import ListFailedJobs
from tests.conftest import EXAMPLES


def test_zip_lists_the_failed_job_and_step_with_its_log(workspace_of) -> None:  # type: ignore[no-untyped-def]
    ws = workspace_of(EXAMPLES / "gha-pytest-failure.zip")
    out = json.loads(ListFailedJobs(workspace=ws).run())
    assert [j["job"] for j in out["failed_jobs"]] == ["test"]  # lint passed
    test = out["failed_jobs"][0]
    assert test["log"] == "test/4_Run tests.txt"
    assert test["failed_steps"] == [{"name": "Run tests", "number": 4, "log": "test/4_Run tests.txt"}]
    assert len(test["logs"]) == 6 and "why" not in test
    # The path is one the other tools take: line 31 of it is the first assertion error.
    excerpt = json.loads(GetLogExcerpt(workspace=ws).run(job=test["log"], around_line=31, n=0))
    assert "AssertionError" in excerpt["lines"][0]["text"]


def fetched_workspace(server: HTTPServer, dest: Path) -> Workspace:
    """A failed GitHub Actions run fetched through the real provider, diagnosed as investigate_url does."""
    import test_ci_github as github

    github.serve_run(server)
    material = github.make_provider(server).fetch(github.make_ref(server), dest)
    settings = get_settings()
    diagnosis = diagnose(material, limits=settings.limits)
    diagnosis.run = material.run.info
    return Workspace(diagnosis, material, settings)


def test_fetched_run_uses_the_platform_job_status(httpserver: HTTPServer, tmp_path: Path) -> None:
    out = json.loads(ListFailedJobs(workspace=fetched_workspace(httpserver, tmp_path / "run")).run())
    (job,) = out["failed_jobs"]
    assert (job["job"], job["status"], job["runner"]) == ("test (3.12)", "failure", "GitHub Actions 17")
    # GitHub gives one log per job: the failed step has none of its own, the job's log holds its lines.
    assert job["failed_steps"] == [{"name": "Run tests", "number": 5, "log": "test _3.12_.log"}]
    assert job["log"] == "test _3.12_.log"


def test_a_plain_log_is_blamed_through_the_diagnosis(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(ListFailedJobs(workspace=workspace_of(EXAMPLES / "gha-timeout.log")).run())
    (job,) = out["failed_jobs"]
    assert (job["job"], job["log"], job["status"]) == ("gha-timeout.log", "gha-timeout.log", "unknown")
    assert job["why"] == "its log holds the diagnosis evidence"


def test_material_without_jobs_says_so(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(ListFailedJobs(workspace=workspace_of(EXAMPLES / "pytest-junit" / "report.xml")).run())
    assert out["failed_jobs"] == [] and out["logs"] == []
    assert "no job is marked failed" in out["note"]


def test_a_failed_matrix_is_cut_to_whole_jobs(httpserver: HTTPServer, tmp_path: Path) -> None:
    ws = fetched_workspace(httpserver, tmp_path / "run")
    assert ws.diagnosis.run is not None
    job = ws.diagnosis.run.jobs[1]
    matrix = [job.model_copy(update={"name": f"test (3.{n})"}) for n in range(200)]
    ws.diagnosis.run = ws.diagnosis.run.model_copy(update={"jobs": matrix})
    text = ListFailedJobs(workspace=ws).run()
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)  # whole JSON, not cut by the base
    assert out["jobs_omitted"] == 200 - len(out["failed_jobs"]) > 0
    assert out["failed_jobs"][0]["job"] == "test (3.0)"
