"""One cimedic comment per pull/merge request, updated on every re-run instead of posted again.

The comment is recognised by the hidden marker it starts with (``MARKER``). ``CIProvider.comment``
only posts, so this lists the request's comments and edits the marked one through the same SDK
client and guard as the provider (retries, rate limits and error messages stay the provider's):

- GitHub: ``GET /repos/{o}/{r}/issues/{n}/comments`` (all pages), then ``PATCH
  /repos/{o}/{r}/issues/comments/{id}`` or ``POST /repos/{o}/{r}/issues/{n}/comments``;
- GitLab: ``GET /projects/:id/merge_requests/:iid/notes`` (oldest first, system notes skipped), then
  ``PUT .../notes/:note_id`` or ``POST .../notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cimedic.tools.ci.base import CIProvider
from cimedic.tools.ci.guard import ProviderError

if TYPE_CHECKING:
    from cimedic.tools.ci.github import GitHubProvider
    from cimedic.tools.ci.gitlab import GitLabProvider

MARKER = "<!-- cimedic:report -->"


@dataclass(frozen=True)
class Upserted:
    created: bool  # False: an existing comment was updated
    where: str  # "pull request #482", "merge request !57"
    comment_id: int
    url: str | None = None

    def describe(self) -> str:
        verb = "posted a comment on" if self.created else "updated the comment on"
        return f"{verb} {self.where}" + (f": {self.url}" if self.url else "")


def is_ours(body: object) -> bool:
    # Starts with, not contains: a person's comment quoting the marker is never edited.
    return isinstance(body, str) and body.lstrip().startswith(MARKER)


def upsert(provider: CIProvider, project: str, number: int, body: str) -> Upserted:
    """Update the marked comment on pull/merge request ``number`` of ``project``, or post one."""
    # Imported here: the SDKs load only for the platform in use.
    from cimedic.tools.ci.github import GitHubProvider
    from cimedic.tools.ci.gitlab import GitLabProvider

    if not is_ours(body):
        raise ValueError(f"a report comment starts with {MARKER}")
    if isinstance(provider, GitHubProvider):
        return _github(provider, project, number, body)
    if isinstance(provider, GitLabProvider):
        return _gitlab(provider, project, number, body)
    raise ProviderError(project, f"{provider.platform} has no pull request comments cimedic can keep up to date")


def _github(provider: GitHubProvider, project: str, number: int, body: str) -> Upserted:
    subject = f"{project}#{number}"
    where = f"pull request #{number}"
    # Lazy objects: no request until listed, edited or commented on.
    issue = provider.gh.get_repo(project).get_issue(number)
    # One guarded call walks every page: a retry starts the listing again, which finds the same comment.
    mine = provider.guard.call(subject, lambda: next((c for c in issue.get_comments() if is_ours(c.body)), None))
    if mine is not None:
        provider.guard.call(subject, lambda: mine.edit(body), write=True)
        return Upserted(False, where, int(mine.id), mine.html_url)
    made = provider.guard.call(subject, lambda: issue.create_comment(body), write=True)
    return Upserted(True, where, int(made.id), made.html_url)


def _gitlab(provider: GitLabProvider, project: str, iid: int, body: str) -> Upserted:
    from cimedic.tools.ci.gitlab_session import SDK, pages

    subject = f"{project}!{iid}"
    where = f"merge request !{iid}"
    notes = provider.gl.projects.get(project, lazy=True).mergerequests.get(iid, lazy=True).notes
    listed = pages(provider.guard, subject, lambda: notes.list(iterator=True, order_by="created_at", sort="asc", **SDK))
    mine: dict[str, Any] | None = next((n for n in listed if not n.get("system") and is_ours(n.get("body"))), None)
    if mine is not None:
        note_id = int(mine["id"])
        provider.guard.call(subject, lambda: notes.update(note_id, {"body": body}, **SDK), write=True)
        return Upserted(False, where, note_id)
    made = provider.guard.call(subject, lambda: notes.create({"body": body}, **SDK).asdict(), write=True)
    return Upserted(True, where, int(made["id"]))
