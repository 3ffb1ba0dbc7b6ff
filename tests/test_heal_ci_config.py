"""Raising a timeout in real CI definitions: GitHub Actions workflows, .gitlab-ci.yml, azure-pipelines.yml.

Every edit must leave the file as it was except for the one timeout line (comments, order, quotes,
indentation and block scalars kept), and the result must still parse to the intended value.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cimedic.heal.ci_config import find_timeout, proposed_minutes, set_timeout, workflow_for
from cimedic.heal.durations import format_duration, parse_duration
from cimedic.models import Platform

CI = Path(__file__).parent / "fixtures" / "heal" / "ci"
GH, GL, AZ = Platform.GITHUB_ACTIONS, Platform.GITLAB, Platform.AZURE_DEVOPS


def text(name: str) -> str:
    return (CI / name).read_text()


def changed(old: str, new: str) -> tuple[list[str], list[str]]:
    """The removed and the added lines."""
    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def load(source: str) -> Any:
    return YAML(typ="safe").load(source)


# -- GitHub Actions ----------------------------------------------------------------------------------


def test_a_github_job_timeout_changes_on_its_line_only_and_keeps_its_comment() -> None:
    old = text("github-ci.yml")
    new = set_timeout(old, GH, "test (3.12)", 30)  # a matrix leg, as the run names it

    assert changed(old, new) == (
        ["    timeout-minutes: 20 # raised from 15 in #412"],
        ["    timeout-minutes: 30 # raised from 15 in #412"],
    )
    assert load(new)["jobs"]["test"]["timeout-minutes"] == 30


def test_a_github_step_timeout_keeps_its_quotes_and_the_block_scalar_below() -> None:
    old = text("github-ci.yml")
    setting = find_timeout(old, GH, "test (3.11)", step="Run tests")
    assert (setting.job, setting.minutes, setting.line) == ("test", 10.0, 39)

    new = set_timeout(old, GH, "test (3.11)", 15, step="Run tests")

    assert changed(old, new) == (
        ["        timeout-minutes: '10'  # the suite takes ~6 min"],
        ["        timeout-minutes: '15'  # the suite takes ~6 min"],
    )
    step = load(new)["jobs"]["test"]["steps"][3]
    assert step["timeout-minutes"] == "15"
    assert step["run"] == "pytest -q --junitxml=reports/junit.xml \\\n  --durations=20\n"


def test_a_missing_github_job_timeout_is_one_new_line_after_runs_on() -> None:
    old = text("github-ci.yml")
    assert find_timeout(old, GH, "lint").minutes == 360.0  # GitHub's default applies

    new = set_timeout(old, GH, "lint", 15)

    assert changed(old, new) == ([], ["    timeout-minutes: 15"])
    lines = new.splitlines()
    assert lines[lines.index("    timeout-minutes: 15") - 1] == "    runs-on: ubuntu-latest   # ruff needs no matrix"
    assert list(load(new)["jobs"]["lint"]) == ["runs-on", "timeout-minutes", "steps"]


def test_a_step_without_a_name_is_found_by_the_name_github_gives_it() -> None:
    old = text("github-ci.yml")
    new = set_timeout(old, GH, "lint", 5, step="Run pipx run ruff check .")

    assert changed(old, new) == ([], ["        timeout-minutes: 5"])
    assert load(new)["jobs"]["lint"]["steps"][1] == {"run": "pipx run ruff check .", "timeout-minutes": 5}


def test_an_unknown_job_or_step_is_refused_naming_what_exists() -> None:
    old = text("github-ci.yml")
    with pytest.raises(ValueError, match=r"'build' is not a job of this file; jobs: lint, test, wheel"):
        find_timeout(old, GH, "build")
    with pytest.raises(ValueError, match=r"step 'Run e2e' of job 'test'.*'Run tests'"):
        find_timeout(old, GH, "test", step="Run e2e")


def test_the_workflow_is_found_by_its_name_or_its_file_name() -> None:
    files = {".github/workflows/ci.yml": text("github-ci.yml"), ".github/workflows/release.yml": text("release.yml")}
    assert workflow_for("CI", files) == ".github/workflows/ci.yml"
    assert workflow_for("Release", files) == ".github/workflows/release.yml"
    assert workflow_for("Nightly", files) is None
    unnamed = {".github/workflows/nightly.yaml": "on: schedule\njobs: {}\n"}
    assert workflow_for(".github/workflows/nightly.yaml", unnamed) == ".github/workflows/nightly.yaml"
    assert workflow_for("nightly", unnamed) == ".github/workflows/nightly.yaml"


def test_crlf_files_stay_crlf() -> None:
    old = text("release.yml").replace("\n", "\r\n")
    new = set_timeout(old, GH, "publish", 25)
    assert new == old.replace("timeout-minutes: 15", "timeout-minutes: 25")
    inserted = set_timeout(old.replace("    timeout-minutes: 15\r\n", ""), GH, "publish", 25)
    assert inserted == new
    assert "\n" not in new.replace("\r\n", "")


# -- GitLab CI ---------------------------------------------------------------------------------------


def test_a_gitlab_duration_is_written_back_in_its_own_style() -> None:
    old = text("gitlab-ci.yml")
    # The run shows "test / rspec 2/3": stage prefix and parallel index.
    assert find_timeout(old, GL, "test / rspec 2/3").minutes == 90.0

    new = set_timeout(old, GL, "test / rspec 2/3", 135)

    assert changed(old, new) == (
        ["  timeout: 1h 30m # the slowest shard takes ~70 min"],
        ["  timeout: 2h 15m # the slowest shard takes ~70 min"],
    )
    assert load(new)["rspec"]["timeout"] == "2h 15m"
    assert "<<: *python-job" in new


def test_a_quoted_gitlab_duration_in_words_stays_quoted_and_in_words() -> None:
    old = text("gitlab-ci.yml")
    new = set_timeout(old, GL, "integration", 70)
    assert changed(old, new) == (['  timeout: "45 minutes"'], ['  timeout: "70 minutes"'])


def test_a_gitlab_job_without_timeout_gets_one_after_its_stage() -> None:
    old = text("gitlab-ci.yml")
    assert find_timeout(old, GL, "build / compile").minutes is None  # default: and the project decide

    new = set_timeout(old, GL, "compile", 20)

    assert changed(old, new) == ([], ["  timeout: 20m"])
    assert load(new)["compile"] == {"stage": "build", "timeout": "20m", "script": ["python -m compileall -q src"]}


def test_gitlab_keywords_and_hidden_jobs_are_not_jobs() -> None:
    with pytest.raises(ValueError, match=r"jobs: compile, rspec, integration, deploy$"):
        find_timeout(text("gitlab-ci.yml"), GL, "default")


def test_a_timeout_shared_through_an_anchor_is_left_to_a_person() -> None:
    shared = "x-limits: &limit 20m\nunit:\n  script: make\n  timeout: *limit\n"
    with pytest.raises(ValueError, match="set indirectly"):
        set_timeout(shared, GL, "unit", 30)


@pytest.mark.parametrize(
    ("written", "minutes", "raised"),
    [
        ("1h 30m", 90.0, "2h 15m"),
        ("45 minutes", 45.0, "135 minutes"),
        ("1 hour", 60.0, "2 hours 15 minutes"),
        ("1h0m0s", 60.0, "2h15m"),
        ("30 mins", 30.0, "135 mins"),
        ("3600", 60.0, "8100"),  # GitLab reads a bare number as seconds
    ],
)
def test_gitlab_durations(written: str, minutes: float, raised: str) -> None:
    assert parse_duration(written) == minutes
    assert format_duration(135, written) == raised


def test_a_gitlab_duration_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


# -- Azure Pipelines ---------------------------------------------------------------------------------


def test_an_azure_job_in_a_stage_is_found_by_the_name_the_run_shows() -> None:
    old = text("azure-pipelines.yml")
    # A run with several stages names the job "<stage> / <job display name>".
    new = set_timeout(old, AZ, "Build / Compile the service", 45)

    assert changed(old, new) == (
        ["        timeoutInMinutes: 30 # hosted agents stop at 60"],
        ["        timeoutInMinutes: 45 # hosted agents stop at 60"],
    )
    assert load(new)["stages"][0]["jobs"][0]["timeoutInMinutes"] == 45


def test_an_azure_job_without_timeout_gets_one_at_job_level_not_on_its_step() -> None:
    old = text("azure-pipelines.yml")
    new = set_timeout(old, AZ, "Test / Unit tests", 40)

    assert changed(old, new) == ([], ["        timeoutInMinutes: 40"])
    job = load(new)["stages"][1]["jobs"][0]
    assert job["timeoutInMinutes"] == 40
    assert job["steps"][0]["timeoutInMinutes"] == 20


def test_azure_deployment_jobs_and_stageless_pipelines() -> None:
    staged = text("azure-pipelines.yml")
    assert find_timeout(staged, AZ, "Deploy / Production").minutes == 60.0

    old = text("azure-jobs.yml")
    new = set_timeout(old, AZ, "Linux", 60)
    assert changed(old, new) == (["  timeoutInMinutes: '45'"], ["  timeoutInMinutes: '60'"])
    with pytest.raises(ValueError, match=r"'Mac' is not a job of this file; jobs: Linux, Windows"):
        find_timeout(old, AZ, "Mac")


# -- the new value -----------------------------------------------------------------------------------


def test_the_new_limit_is_half_again_the_need_rounded_up_and_capped() -> None:
    assert proposed_minutes(10, 600, cap=120) == 15
    assert proposed_minutes(20, 23 * 60, cap=120) == 35  # it ran past the limit before being stopped
    assert proposed_minutes(None, 50 * 60, cap=120) == 75
    assert proposed_minutes(100, None, cap=120) == 120
    with pytest.raises(ValueError, match="already 120 min; the cap is 120 min"):
        proposed_minutes(120, None, cap=120)
    with pytest.raises(ValueError, match="neither"):
        proposed_minutes(None, None, cap=120)
