"""Pull requests (GitHub) and merge requests (GitLab) for a branch cimedic pushed: the request that
would open one, the open one for a branch, opening one, and one's state later.

Both ride on the run's provider (``provider_for``): its SDK client and its ``Guard``, so the token,
the API root, retries and the wording of a refused request are the provider's, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from cimedic.models import Platform

if TYPE_CHECKING:
    from github.PullRequest import PullRequest

    from cimedic.tools.ci.base import CIProvider
    from cimedic.tools.ci.github import GitHubProvider
    from cimedic.tools.ci.gitlab import GitLabProvider


@dataclass(frozen=True)
class Review:
    """A PR or MR as the platform reports it."""

    number: int  # GitHub's PR number, GitLab's MR iid
    url: str
    state: str  # "open", "merged" or "closed" (closed without merging)
    branch: str
    base: str
    merged_at: datetime | None = None


class Reviews(Protocol):
    platform: Platform
    project: str

    def request(self, branch: str, base: str, title: str, body: str) -> dict[str, Any]:
        """Method, endpoint and payload of the create call, for a dry run and the audit."""
        ...

    def find_open(self, branch: str, base: str) -> Review | None: ...

    def open(self, branch: str, base: str, title: str, body: str) -> Review: ...

    def get(self, number: int) -> Review: ...


def reviews_for(provider: CIProvider, project: str) -> Reviews:
    """The PR/MR API of the run's platform, on the provider's own client (built by ``provider_for``)."""
    from cimedic.tools.ci.github import GitHubProvider
    from cimedic.tools.ci.gitlab import GitLabProvider

    if isinstance(provider, GitHubProvider):
        return GitHubPulls(provider, project)
    if isinstance(provider, GitLabProvider):
        return GitLabMergeRequests(provider, project)
    raise ValueError(f"cimedic opens pull requests on GitHub and merge requests on GitLab, not on {provider.platform}")


class GitHubPulls:
    platform = Platform.GITHUB_ACTIONS

    def __init__(self, provider: GitHubProvider, project: str) -> None:
        self.provider = provider
        self.project = project
        self.repo = provider.gh.get_repo(project)  # lazy: no request

    @staticmethod
    def _review(pr: PullRequest) -> Review:
        # merged_at is in list and single answers alike (`merged` is only in the single one).
        state = "merged" if pr.merged_at is not None else str(pr.state)
        return Review(pr.number, pr.html_url, state, pr.head.ref, pr.base.ref, pr.merged_at)

    def request(self, branch: str, base: str, title: str, body: str) -> dict[str, Any]:
        payload = {"base": base, "head": branch, "title": title, "body": body}
        return {"method": "POST", "endpoint": f"/repos/{self.project}/pulls", "payload": payload}

    def find_open(self, branch: str, base: str) -> Review | None:
        # `head` must be "owner:branch": cimedic pushes to the repository itself, never to a fork.
        owner = self.project.split("/", 1)[0]
        listing = self.repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)
        found = self.provider.guard.call(self.project, lambda: [self._review(p) for p in listing.get_page(0)])
        return found[0] if found else None

    def open(self, branch: str, base: str, title: str, body: str) -> Review:
        def send() -> Review:
            return self._review(self.repo.create_pull(base=base, head=branch, title=title, body=body))

        return self.provider.guard.call(self.project, send, write=True)

    def get(self, number: int) -> Review:
        return self.provider.guard.call(self.project, lambda: self._review(self.repo.get_pull(number)))


class GitLabMergeRequests:
    platform = Platform.GITLAB

    def __init__(self, provider: GitLabProvider, project: str) -> None:
        self.provider = provider
        self.project = project
        self.requests = provider.gl.projects.get(project, lazy=True).mergerequests  # lazy: no request

    @staticmethod
    def _review(mr: dict[str, Any]) -> Review:
        state = {"opened": "open", "merged": "merged"}.get(str(mr.get("state")), "closed")
        merged = mr.get("merged_at")
        when = datetime.fromisoformat(merged.replace("Z", "+00:00")) if isinstance(merged, str) else None
        return Review(int(mr["iid"]), str(mr.get("web_url")), state, mr["source_branch"], mr["target_branch"], when)

    def request(self, branch: str, base: str, title: str, body: str) -> dict[str, Any]:
        endpoint = urlsplit(self.provider.gl.api_url).path + self.requests.path
        return {"method": "POST", "endpoint": endpoint, "payload": self._payload(branch, base, title, body)}

    @staticmethod
    def _payload(branch: str, base: str, title: str, body: str) -> dict[str, Any]:
        # remove_source_branch: the branch is cimedic's own, of no use once merged.
        return {
            "source_branch": branch,
            "target_branch": base,
            "title": title,
            "description": body,
            "remove_source_branch": True,
        }

    def find_open(self, branch: str, base: str) -> Review | None:
        from cimedic.tools.ci.gitlab_session import SDK

        def read() -> list[Review]:
            found = self.requests.list(state="opened", source_branch=branch, target_branch=base, get_all=False, **SDK)
            return [self._review(mr.asdict()) for mr in found]

        found = self.provider.guard.call(self.project, read)
        return found[0] if found else None

    def open(self, branch: str, base: str, title: str, body: str) -> Review:
        from cimedic.tools.ci.gitlab_session import SDK

        payload = self._payload(branch, base, title, body)
        return self.provider.guard.call(
            self.project, lambda: self._review(self.requests.create(payload, **SDK).asdict()), write=True
        )

    def get(self, number: int) -> Review:
        from cimedic.tools.ci.gitlab_session import SDK

        return self.provider.guard.call(self.project, lambda: self._review(self.requests.get(number, **SDK).asdict()))
