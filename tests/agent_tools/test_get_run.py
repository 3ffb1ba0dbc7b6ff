"""get_run on local material and on a run fetched from (a local server answering like) GitHub."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer

from cimedic.investigate import diagnose
from cimedic.settings import get_settings
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, Workspace
from cimedic.tools.agent.get_run import GetRun
from tests.conftest import EXAMPLES


def fetched_workspace(server: HTTPServer, dest: Path) -> Workspace:
    """A failed GitHub Actions run fetched through the real provider, diagnosed as investigate_url does."""
    import test_ci_github as github

    github.serve_run(server)
    material = github.make_provider(server).fetch(github.make_ref(server), dest)
    settings = get_settings()
    diagnosis = diagnose(material, limits=settings.limits)
    diagnosis.run = material.run.info
    return Workspace(diagnosis, material, settings)


def test_local_zip_gives_jobs_from_ingest_and_the_verdict(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(GetRun(workspace=workspace_of(EXAMPLES / "gha-pytest-failure.zip")).run())
    assert out["source"]["kind"] == "gha-zip"
    assert (out["platform"], out["status"]) == ("github-actions", "failure")
    assert out["jobs"] == [{"name": "lint", "status": "unknown"}, {"name": "test", "status": "failure"}]
    assert out["verdict"]["category"] == "test"
    assert "test / Run tests" in out["verdict"]["summary"]
    assert "project" not in out and "branch" not in out  # local material has no platform metadata


def test_fetched_run_gives_the_platform_metadata(httpserver: HTTPServer, tmp_path: Path) -> None:
    out = json.loads(GetRun(workspace=fetched_workspace(httpserver, tmp_path / "run")).run())
    assert (out["project"], out["id"], out["number"], out["attempt"]) == ("acme/inventory", "8912345678", "1287", 1)
    assert (out["branch"], out["pull_request"], out["actor"], out["event"]) == (
        "fix/reserve-limits",
        "482",
        "mlindqvist",
        "pull_request",
    )
    assert out["commit"] == "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert (out["status"], out["queue_s"], out["duration_s"]) == ("failure", 9.0, 212.0)
    assert out["jobs"][1] == {
        "name": "test (3.12)",
        "status": "failure",
        "runner": "GitHub Actions 17",
        "duration_s": 204.0,
    }
    assert out["verdict"]["category"] == "test" and out["verdict"]["confidence"] > 0.5


def test_a_huge_matrix_is_cut_to_fit_keeping_failed_jobs_and_the_verdict(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    ws = fetched_workspace(httpserver, tmp_path / "run")
    assert ws.diagnosis.run is not None
    job = ws.diagnosis.run.jobs[1]
    statuses = ["success"] * 200 + ["failure"] * 10 + ["success"] * 46
    matrix = [job.model_copy(update={"name": f"test ({n})", "status": s}) for n, s in enumerate(statuses)]
    ws.diagnosis.run = ws.diagnosis.run.model_copy(update={"jobs": matrix})
    text = GetRun(workspace=ws).run()
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)  # whole JSON: the tool fits itself before the base would cut it anywhere
    assert out["verdict"]["category"] == "test"
    assert out["jobs_omitted"] == 256 - len(out["jobs"]) > 0
    assert [j["name"] for j in out["jobs"][:10]] == [f"test ({n})" for n in range(200, 210)]
