"""The pytest plugin end to end: a sample project run by pytest in a subprocess, as a user's CI runs it.

The sample has a flaky test that fails unless SAMPLE_FLAKY_OK=1 (never set here, so it fails every
time) and a passing one. Without a list the run fails; with the flaky test quarantined it passes,
the test skipped (mode skip) or xfailed (mode run) with the list's reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SAMPLE = """\
import os


def test_flaky():
    assert os.environ.get("SAMPLE_FLAKY_OK") == "1", "lost the race"


def test_steady():
    assert 1 + 1 == 2
"""


def _list(test: str, mode: str) -> str:
    return f"""\
# quarantined by hand for this test
version: 1
tests:
  - test: {test}
    reason: loses a race one run in ten
    added: 2025-03-01
    mode: {mode}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")  # the sample's own rootdir, not cimedic's settings
    (root / "test_sample.py").write_text(SAMPLE)
    return root


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "SAMPLE_FLAKY_OK")}
    # Only the plugin under test: no other installed plugin (nor an entry point) changes the outcome.
    env |= {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "cimedic.pytest_quarantine", "-rsxX", "-p", "no:cacheprovider"]
    return subprocess.run([*command, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_without_a_list_the_flaky_test_fails_the_build(project: Path) -> None:
    run = _pytest(project)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "cimedic quarantine" not in run.stdout  # nothing listed, nothing said


def test_mode_skip_skips_it_with_the_reason(project: Path) -> None:
    (project / ".cimedic").mkdir()
    (project / ".cimedic" / "quarantine.yaml").write_text(_list("test_sample.py::test_flaky", "skip"))
    run = _pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED [1] test_sample.py")]
    assert skipped and skipped[0].endswith(": cimedic quarantine (skip): loses a race one run in ten")
    assert "cimedic quarantine (.cimedic/quarantine.yaml): 1 skipped, 0 run as xfail" in run.stdout


@pytest.mark.parametrize("test", ["test_sample.py::test_flaky", "test_sample.test_flaky"])
def test_mode_run_runs_it_as_xfail(project: Path, test: str) -> None:
    # Listed by node id or by the JUnit classname.name a report gave: the same test.
    (project / ".cimedic").mkdir()
    (project / ".cimedic" / "quarantine.yaml").write_text(_list(test, "run"))
    run = _pytest(project, "--junitxml=report.xml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 xfailed" in run.stdout
    assert "XFAIL test_sample.py::test_flaky - cimedic quarantine (run): loses a race one run in ten" in run.stdout
    assert "0 skipped, 1 run as xfail" in run.stdout
    report = (project / "report.xml").read_text()
    assert 'type="pytest.xfail" message="cimedic quarantine (run): loses a race one run in ten"' in report


def test_a_bad_list_stops_the_run_with_one_line(project: Path) -> None:
    bad = project / "elsewhere.yaml"
    bad.write_text(_list("test_sample.py::test_flaky", "sometimes"))
    run = _pytest(project, "--cimedic-quarantine", str(bad))
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {bad}: tests[0].mode: Input should be 'skip' or 'run'" in run.stderr
