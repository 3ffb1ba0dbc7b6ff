"""The provider for a platform, built from settings. SDKs are imported only when their platform is used,
so `cimedic investigate LOG` never pays for PyGithub, python-gitlab, python-jenkins or azure-devops."""

from __future__ import annotations

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.settings import Settings
from cimedic.tools.ci.base import CIProvider


def provider_for(platform: Platform, base_url: str, settings: Settings) -> CIProvider:
    if platform is Platform.GITHUB_ACTIONS:
        from cimedic.tools.ci.github import GitHubProvider

        return GitHubProvider.from_settings(base_url, settings)
    if platform is Platform.GITLAB:
        from cimedic.tools.ci.gitlab import GitLabProvider

        return GitLabProvider.from_settings(base_url, settings)
    if platform is Platform.JENKINS:
        from cimedic.tools.ci.jenkins import JenkinsProvider

        return JenkinsProvider.from_settings(base_url, settings)
    if platform is Platform.AZURE_DEVOPS:
        from cimedic.tools.ci.azure import AzureDevOpsProvider

        return AzureDevOpsProvider.from_settings(base_url, settings)
    if platform is Platform.GENERIC:
        from cimedic.tools.ci.local import LocalProvider

        return LocalProvider(settings.limits)
    raise InputError(str(platform), "no CI provider for this platform")
