"""Run and project URLs of the four platforms, hosted and self-hosted, to the right provider inputs."""

from __future__ import annotations

import pytest

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.settings import Settings
from cimedic.tools.ci.urls import parse_project, parse_run_url


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_github_run_and_job_urls(settings: Settings) -> None:
    ref = parse_run_url("https://github.com/psf/requests/actions/runs/9101234567", settings)
    assert (ref.platform, ref.base_url, ref.project, ref.run_id, ref.job_id) == (
        Platform.GITHUB_ACTIONS,
        "https://api.github.com",
        "psf/requests",
        "9101234567",
        None,
    )
    job = parse_run_url("https://github.com/psf/requests/actions/runs/91/job/25012345678?pr=12", settings)
    assert (job.run_id, job.job_id) == ("91", "25012345678")
    attempt = parse_run_url("https://github.com/o/r/actions/runs/91/attempts/2", settings)
    assert attempt.run_id == "91"


def test_github_enterprise_host_comes_from_config() -> None:
    ghe = Settings(github_url="https://github.acme.corp")
    ref = parse_run_url("https://github.acme.corp/platform/api/actions/runs/42", ghe)
    assert ref.base_url == "https://github.acme.corp/api/v3"
    assert ref.project == "platform/api"


def test_gitlab_pipeline_and_job_urls_on_any_host(settings: Settings) -> None:
    ref = parse_run_url("https://gitlab.com/gitlab-org/gitlab-runner/-/pipelines/1234567", settings)
    assert (ref.platform, ref.base_url, ref.project, ref.run_id) == (
        Platform.GITLAB,
        "https://gitlab.com",
        "gitlab-org/gitlab-runner",
        "1234567",
    )
    job = parse_run_url("https://gitlab.example.com/group/sub/proj/-/jobs/987", settings)
    assert (job.base_url, job.project, job.run_id, job.job_id) == (
        "https://gitlab.example.com",
        "group/sub/proj",
        "",
        "987",
    )


def test_gitlab_with_relative_root_uses_the_configured_server() -> None:
    settings = Settings(gitlab_url="https://example.com/gitlab")
    ref = parse_run_url("https://example.com/gitlab/team/app/-/pipelines/5", settings)
    assert (ref.base_url, ref.project) == ("https://example.com/gitlab", "team/app")


def test_jenkins_build_urls_with_folders_prefix_and_branches(settings: Settings) -> None:
    ref = parse_run_url("https://ci.example.com/job/backend/job/api/128/console", settings)
    assert (ref.platform, ref.base_url, ref.project, ref.run_id) == (
        Platform.JENKINS,
        "https://ci.example.com",
        "backend/api",
        "128",
    )
    prefixed = parse_run_url("https://example.com/jenkins/job/app/job/feature%252Flogin/7/", settings)
    assert (prefixed.base_url, prefixed.project, prefixed.run_id) == (
        "https://example.com/jenkins",
        "app/feature%2Flogin",
        "7",
    )
    blue = parse_run_url("https://ci.example.com/blue/organizations/jenkins/app/detail/PR-12/3/pipeline", settings)
    assert (blue.project, blue.run_id) == ("app/PR-12", "3")


def test_azure_devops_hosted_legacy_and_server(settings: Settings) -> None:
    ref = parse_run_url(
        "https://dev.azure.com/contoso/Fabrikam%20Fiber/_build/results?buildId=4321&view=logs&j=12f1", settings
    )
    assert (ref.platform, ref.base_url, ref.project, ref.run_id, ref.job_id) == (
        Platform.AZURE_DEVOPS,
        "https://dev.azure.com/contoso",
        "Fabrikam Fiber",
        "4321",
        "12f1",
    )
    legacy = parse_run_url("https://contoso.visualstudio.com/Web/_build/results?buildId=9", settings)
    assert (legacy.base_url, legacy.project) == ("https://contoso.visualstudio.com", "Web")
    server = Settings(azure_devops_url="https://tfs.acme.corp/tfs")
    onprem = parse_run_url("https://tfs.acme.corp/tfs/DefaultCollection/Web/_build/results?buildId=77", server)
    assert (onprem.base_url, onprem.project, onprem.run_id) == (
        "https://tfs.acme.corp/tfs/DefaultCollection",
        "Web",
        "77",
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://github.com/o/r", "not an http(s) URL"),
        ("https://github.com/o/r/pull/12", "not of a workflow run"),
        ("https://dev.azure.com/org/proj/_build?definitionId=3", "not of a build"),
        ("https://example.com/some/page", "not a CI run URL"),
    ],
)
def test_urls_that_are_not_runs_say_what_a_run_url_looks_like(settings: Settings, url: str, says: str) -> None:
    with pytest.raises(InputError) as err:
        parse_run_url(url, settings)
    assert says in str(err.value)
    assert str(err.value).startswith(url)
    assert "\n" not in str(err.value)


def test_projects_for_runs_list(settings: Settings) -> None:
    assert parse_project("psf/requests", settings) == (
        Platform.GITHUB_ACTIONS,
        "https://api.github.com",
        "psf/requests",
    )
    assert parse_project("https://github.com/psf/requests", settings)[2] == "psf/requests"
    assert parse_project("gitlab:group/app", settings) == (Platform.GITLAB, "https://gitlab.com", "group/app")
    assert parse_project("https://gitlab.example.com/group/app", settings) == (
        Platform.GITLAB,
        "https://gitlab.example.com",
        "group/app",
    )
    assert parse_project("https://ci.example.com/job/backend/job/api/", settings) == (
        Platform.JENKINS,
        "https://ci.example.com",
        "backend/api",
    )
    assert parse_project("azure:contoso/Web", settings) == (
        Platform.AZURE_DEVOPS,
        "https://dev.azure.com/contoso",
        "Web",
    )
    assert parse_project("https://dev.azure.com/contoso/Web", settings)[1:] == ("https://dev.azure.com/contoso", "Web")
    with pytest.raises(InputError, match="CIMEDIC_JENKINS_URL"):
        parse_project("jenkins:backend/api", settings)
    with pytest.raises(InputError, match="expected OWNER/REPO"):
        parse_project("justaname", settings)
