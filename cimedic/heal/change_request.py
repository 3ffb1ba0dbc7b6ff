"""``ChangeRequester`` over a local git checkout whose ``origin`` is the run's repository.

The checkout's working tree, index, HEAD and branches stay as the user left them (only its
remote-tracking refs move, as any fetch or push moves them). A change is committed in a temporary
``git worktree`` on top of ``origin/<default>`` (removed afterwards, also on error), pushed to
cimedic's own branch, and the PR/MR is opened through ``reviews`` unless one is already open for
that branch. git runs with explicit arguments, no shell, no prompts, no hooks and no signing: the
commit is a machine edit, and a hook or a pinentry waiting for input would hang or alter it.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cimedic.errors import InputError
from cimedic.heal.base import Outcome
from cimedic.heal.reviews import Review, Reviews, reviews_for
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.tools.changes.git import GitError

if TYPE_CHECKING:
    from cimedic.tools.ci.base import RunRef

AUTHOR = ("cimedic", "cimedic@localhost")
GIT_TIMEOUT_S = 300.0


@runtime_checkable
class ListsFiles(Protocol):
    """A requester that can also list a folder of the default branch (to find a workflow by its name)."""

    def files(self, folder: str) -> list[str]: ...


@runtime_checkable
class Refreshes(Protocol):
    """A requester whose reads are cached (one fetch serves a plan's reads) and can be made fresh."""

    def refresh(self) -> None: ...


@runtime_checkable
class TracksReviews(Protocol):
    """A requester that can say what became of a PR/MR it opened (for ``verify``)."""

    def review(self, number: int) -> Review: ...


def unified_diff(path: str, old: str | None, new: str) -> str:
    before = (old or "").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            before, new.splitlines(keepends=True), "/dev/null" if old is None else f"a/{path}", f"b/{path}"
        )
    )


def _safe(path: str) -> str:
    # Paths come from a plan; one that leaves the worktree must never be written.
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or pure.parts[:1] == (".git",):
        raise InputError(path, "not a path inside the repository")
    return pure.as_posix()


class GitChangeRequest:
    """``checkout``'s origin is the repository of ``ref`` (the run); PRs/MRs go through the run's
    provider, built from ``settings`` like every other platform call, unless ``reviews`` is given."""

    def __init__(
        self,
        checkout: Path,
        settings: Settings,
        ref: RunRef | None = None,
        *,
        reviews: Reviews | None = None,
        remote: str = "origin",
        default_branch: str | None = None,
        author: tuple[str, str] = AUTHOR,
    ) -> None:
        self.checkout = Path(checkout)
        self.settings = settings
        self.ref = ref
        self.remote = remote
        self.author = author
        self._reviews = reviews
        self._default = default_branch
        self._fetched = False

    @property
    def reviews(self) -> Reviews:
        if self._reviews is None:
            if self.ref is None:
                raise InputError(str(self.checkout), "opening a PR/MR needs the run's platform: investigate it by URL")
            from cimedic.tools.ci.providers import provider_for

            provider = provider_for(self.ref.platform, self.ref.base_url, self.settings)
            self._reviews = reviews_for(provider, self.ref.project)
        return self._reviews

    # -- git ---------------------------------------------------------------------------------------

    def _git(self, *args: str, cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> tuple[int, bytes]:
        name, email = self.author
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",  # a missing credential fails instead of waiting for a person
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        config = ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "-c", "core.autocrlf=false"]
        config += ["-c", "core.quotepath=off"]  # listings name files as they are
        command = ["git", "--literal-pathspecs", *config, *args]  # paths are names, never glob patterns
        try:
            done = subprocess.run(
                command, cwd=cwd or self.checkout, env=env, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
            )
        except FileNotFoundError as exc:
            raise GitError("git", "not installed, or the checkout does not exist") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]}", f"took longer than {GIT_TIMEOUT_S:g} s") from exc
        if done.returncode not in ok:
            # All of stderr on one line: a push's reason ("remote: ...", "[remote rejected]") precedes its last line.
            said = " ".join(done.stderr.decode(errors="replace").split())[-400:]
            raise GitError(f"git {args[0]}", redact(said or f"exit status {done.returncode}"))
        return done.returncode, done.stdout

    def _out(self, *args: str, cwd: Path | None = None) -> str:
        return self._git(*args, cwd=cwd)[1].decode().strip()

    def default_branch(self) -> str:
        """Configured, else the remote's HEAD (``git ls-remote --symref``)."""
        if self._default is None:
            for line in self._out("ls-remote", "--symref", self.remote, "HEAD").splitlines():
                if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                    self._default = line[len("ref: refs/heads/") : -len("\tHEAD")]
            if self._default is None:
                raise GitError(self.remote, "has no default branch (HEAD); pass default_branch")
        return self._default

    def _fetch(self) -> str:
        """Fetch the default branch; the ref to read it at."""
        base = self.default_branch()
        self._git("fetch", "--no-tags", "--quiet", self.remote, f"+refs/heads/{base}:refs/remotes/{self.remote}/{base}")
        self._fetched = True
        return f"refs/remotes/{self.remote}/{base}"

    def _remote_sha(self, branch: str) -> str | None:
        # ls-remote matches patterns by their tail: keep only the exact ref.
        listed = [line.split("\t") for line in self._out("ls-remote", self.remote, f"refs/heads/{branch}").splitlines()]
        return next((sha for sha, name in listed if name == f"refs/heads/{branch}"), None)

    # -- ChangeRequester ---------------------------------------------------------------------------

    def read(self, path: str) -> str | None:
        ref = f"refs/remotes/{self.remote}/{self.default_branch()}" if self._fetched else self._fetch()
        code, sha = self._git("rev-parse", "--verify", "--quiet", f"{ref}:{_safe(path)}", ok=(0, 1))
        if code != 0:
            return None
        return self._git("cat-file", "blob", sha.decode().strip())[1].decode()

    def files(self, folder: str) -> list[str]:
        ref = f"refs/remotes/{self.remote}/{self.default_branch()}" if self._fetched else self._fetch()
        listed = self._out("ls-tree", "--name-only", ref, f"{_safe(folder).rstrip('/')}/")
        return listed.splitlines()

    def refresh(self) -> None:
        """The next read fetches again (plan's reads share one fetch; execute may come much later)."""
        self._fetched = False

    def review(self, number: int) -> Review:
        return self.reviews.get(number)

    def propose(self, files: dict[str, str], *, branch: str, title: str, body: str, dry_run: bool) -> Outcome:
        self._git("check-ref-format", f"refs/heads/{branch}")
        base_ref = self._fetch()
        base = self.default_branch()
        old = {path: self.read(_safe(path)) for path in files}
        changed = {path: text for path, text in files.items() if old[path] != text}
        diff = "".join(unified_diff(path, old[path], text) for path, text in changed.items())
        request = self.reviews.request(branch, base, title, body)
        data: dict[str, Any] = {"branch": branch, "base": base, "diff": diff, "request": request}
        if not changed:
            # Already on the default branch (the earlier PR was merged): the wanted state, nothing to send.
            return Outcome(done=not dry_run, detail=f"{base} already has this content: nothing to propose", data=data)
        existing = self.reviews.find_open(branch, base)
        if existing is not None:
            data.update(number=existing.number, url=existing.url, state=existing.state)
        if dry_run:
            return Outcome(done=False, detail=f"would push {branch} and open a change request into {base}", data=data)
        pushed = self._commit_and_push(base_ref, changed, branch, title, body)
        review = existing or self.reviews.open(branch, base, title, body)
        data.update(number=review.number, url=review.url, state=review.state, pushed=pushed, created=not existing)
        verb = "updated" if existing and pushed else "kept" if existing else "opened"
        return Outcome(done=True, detail=f"{verb} {review.url}", data=data)

    def _commit_and_push(self, base_ref: str, files: dict[str, str], branch: str, title: str, body: str) -> bool:
        """Commit on a fresh worktree at the default branch; push unless the branch already has that tree.

        Returns whether it pushed. The lease names the branch's tip as just listed (or its absence), so
        a branch someone else moved meanwhile is never overwritten.
        """
        remote_sha = self._remote_sha(branch)
        with tempfile.TemporaryDirectory(prefix="cimedic-change-") as scratch:
            tree = Path(scratch) / "worktree"
            self._git("worktree", "add", "--detach", "--quiet", str(tree), base_ref)
            try:
                for path, text in files.items():
                    target = tree / _safe(path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(text.encode())
                self._git("add", "--", *files, cwd=tree)
                self._git("commit", "--quiet", "--no-verify", "-m", title, "-m", body, cwd=tree)
                if remote_sha is not None:
                    self._git("fetch", "--no-tags", "--quiet", self.remote, remote_sha, cwd=tree)
                    if self._out("rev-parse", "HEAD^{tree}", cwd=tree) == self._out(
                        "rev-parse", f"{remote_sha}^{{tree}}", cwd=tree
                    ):
                        return False
                lease = f"--force-with-lease=refs/heads/{branch}:{remote_sha or ''}"
                self._git("push", "--quiet", "--no-verify", lease, self.remote, f"HEAD:refs/heads/{branch}", cwd=tree)
                return True
            finally:
                self._git("worktree", "remove", "--force", str(tree), ok=(0, 128))
                self._git("worktree", "prune")
