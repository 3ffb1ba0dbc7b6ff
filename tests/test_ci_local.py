"""Local material behind the CI provider Protocol, and `cimedic runs list` over a folder of saved runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.models import Platform
from cimedic.settings import Limits
from cimedic.tools.ci.base import CIProvider, RunFilter
from cimedic.tools.ci.guard import ProviderError
from cimedic.tools.ci.local import LocalProvider, local_ref
from cimedic.tools.ci.providers import provider_for
from cimedic.tools.ci.urls import parse_project

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


@pytest.fixture
def saved_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    for age, name in enumerate(["jenkins-gcc-compile-error", "gitlab-pip-dependency.log"]):
        target = folder / name
        if (EXAMPLES / name).is_dir():
            shutil.copytree(EXAMPLES / name, target)
        else:
            shutil.copy(EXAMPLES / name, target)
        stamp = 1_700_000_000 - age * 3600
        os.utime(target, (stamp, stamp))
    return folder


def test_local_material_reads_like_a_fetched_run(tmp_path: Path, saved_runs: Path) -> None:
    provider: CIProvider = LocalProvider(Limits())
    ref = local_ref(saved_runs / "jenkins-gcc-compile-error")
    material = provider.fetch(ref, tmp_path / "unused")
    assert material.logs
    info = provider.run(ref)
    assert (info.platform, info.name) == (Platform.GENERIC, "jenkins-gcc-compile-error")
    listed = list(provider.runs(str(saved_runs), RunFilter(limit=10)))
    assert [r.number for r in listed] == ["jenkins-gcc-compile-error", "gitlab-pip-dependency.log"]
    assert [r.number for r in provider.runs(str(saved_runs), RunFilter(limit=1))] == ["jenkins-gcc-compile-error"]


def test_local_runs_cannot_be_acted_on(saved_runs: Path) -> None:
    provider = LocalProvider(Limits())
    with pytest.raises(ProviderError, match="local material is not a CI run"):
        provider.rerun_failed(local_ref(saved_runs / "jenkins-gcc-compile-error"))


def test_a_folder_is_a_project_for_runs_list(saved_runs: Path) -> None:
    from cimedic.settings import get_settings

    platform, base, _ = parse_project(str(saved_runs), get_settings())
    assert platform is Platform.GENERIC
    assert isinstance(provider_for(platform, base, get_settings()), LocalProvider)
    result = runner.invoke(app, ["runs", "list", str(saved_runs), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [Path(r["id"]).name for r in rows] == ["jenkins-gcc-compile-error", "gitlab-pip-dependency.log"]
    table = runner.invoke(app, ["runs", "list", str(saved_runs), "--since", "2020-01-01"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "gitlab-pip-dependency.log" in table.output


def test_runs_list_refuses_bad_since_and_unknown_projects(saved_runs: Path) -> None:
    bad = runner.invoke(app, ["runs", "list", str(saved_runs), "--since", "last tuesday"])
    assert bad.exit_code != 0
    assert "neither a span like 7d" in str(bad.exception)
    unknown = runner.invoke(app, ["runs", "list", "justaname"])
    assert unknown.exit_code != 0
    assert "expected OWNER/REPO" in str(unknown.exception)


def test_local_test_results_read_the_reports_passes_included(tmp_path: Path) -> None:
    run = tmp_path / "pytest-junit"
    shutil.copytree(EXAMPLES / "pytest-junit", run)
    results = LocalProvider(Limits()).test_results(local_ref(run))
    by_status: dict[str, int] = {}
    for result in results:
        by_status[result.status] = by_status.get(result.status, 0) + 1
    assert by_status == {"passed": 6, "failed": 2}
    assert {r.report_path for r in results} == {"report.xml"}


def test_local_material_has_no_deployments(saved_runs: Path) -> None:
    provider: CIProvider = LocalProvider(Limits())
    assert list(provider.deployments(str(saved_runs))) == []
