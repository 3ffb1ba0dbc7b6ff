"""Features of a code change (a pull request or a commit range) in a local git checkout.

Size (files, lines, commits), spread (languages, renames, binaries), the complexity of the
functions touched, and the author's recent failure rate from run history, as failure prediction
and "is this my change?" read them. The change is what ``head`` adds on top of its merge base
with ``base`` (what a pull request shows), read with ``git`` itself, so no git library is needed.

Totals always cover the whole change; the per-file list and the complexity analysis are capped
(``ChangeLimits``) and say so in ``notes`` when a huge change (a vendored dependency, a
generated file) goes past them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from cimedic.tools.changes.complexity import language_of, touched_complexity
from cimedic.tools.changes.git import FileDiff, Git, GitError

__all__ = ["ChangeFeatures", "ChangeLimits", "FileChange", "GitError", "change_features"]

# A gitlink (submodule) or a symlink has no source to measure.
_NOT_SOURCE_MODES = {"160000", "120000"}


class ChangeLimits(BaseModel):
    """Bounds that keep a huge change cheap: totals stay exact, details are cut (and noted)."""

    files_listed: int = Field(default=1000, ge=0, description="FileChange entries kept")
    files_analysed: int = Field(default=300, ge=0, description="source files measured for complexity")
    file_bytes: int = Field(default=1_000_000, ge=1, description="larger files are not measured")
    total_bytes: int = Field(default=20_000_000, ge=1, description="source read for complexity, at most")
    timeout_s: float = Field(default=120.0, gt=0, description="per git command")


class FileChange(BaseModel):
    path: str
    old_path: str | None = None
    status: str = Field(description="git's letter: A added, M modified, D deleted, R renamed, T type changed")
    lines_added: int = 0
    lines_deleted: int = 0
    binary: bool = False
    language: str | None = None
    functions_touched: int | None = Field(default=None, description="None: not measured")
    complexity_sum: int | None = None
    complexity_max: int | None = None


class ChangeFeatures(BaseModel):
    base: str
    head: str
    base_sha: str
    head_sha: str
    merge_base: str | None = Field(description="None when the two share no history")
    commits: int
    authors: list[str] = Field(default_factory=list, description="author e-mails, most commits first")
    author: str | None = Field(default=None, description="the author of most of the change's commits")
    author_failure_rate: float | None = None
    files_changed: int = 0
    lines_added: int = 0
    lines_deleted: int = 0
    binary_files: int = 0
    renamed_files: int = 0
    languages: dict[str, int] = Field(default_factory=dict, description="changed files per language")
    changed_complexity: float | None = Field(
        default=None, description="sum of cyclomatic complexity of touched functions; None: no source measured"
    )
    complexity_max: int | None = None
    functions_touched: int = 0
    files: list[FileChange] = Field(default_factory=list)
    truncated: bool = Field(default=False, description="files or complexity cover part of the change")
    notes: list[str] = Field(default_factory=list)


def change_features(
    repo: Path,
    base: str,
    head: str,
    *,
    failure_rate: Callable[[str], float | None] | None = None,
    limits: ChangeLimits | None = None,
) -> ChangeFeatures:
    """Features of what ``head`` changes relative to ``base`` in the checkout at ``repo``.

    ``failure_rate`` is the history store's hook: given an author e-mail, their recent failure
    rate (or None when it has too little history to say).
    """
    limits = limits or ChangeLimits()
    git = Git(repo, timeout_s=limits.timeout_s)
    base_sha, head_sha = git.commit(base), git.commit(head)
    notes: list[str] = []
    merge_base = git.merge_base(base_sha, head_sha)
    if merge_base is None:
        if git.is_shallow():
            raise GitError(
                str(repo),
                f"{base} and {head} share no history in this shallow clone; fetch more (git fetch --deepen=200)",
            )
        notes.append(f"{base} and {head} share no history: compared their trees directly")
    since = merge_base or base_sha

    # base..head: the commits head adds, whether or not the two share history.
    emails = git.authors(base_sha, head_sha)
    ranked = Counter(emails)
    # Most commits first; among equals, whoever committed most recently (emails are newest first).
    authors = sorted(ranked, key=lambda e: (-ranked[e], emails.index(e)))
    author = authors[0] if authors else None

    diffs = git.files(since, head_sha)
    features = ChangeFeatures(
        base=base,
        head=head,
        base_sha=base_sha,
        head_sha=head_sha,
        merge_base=merge_base,
        commits=len(emails),
        authors=authors,
        author=author,
        author_failure_rate=failure_rate(author) if failure_rate and author else None,
        files_changed=len(diffs),
        lines_added=sum(d.added for d in diffs),
        lines_deleted=sum(d.deleted for d in diffs),
        binary_files=sum(d.binary for d in diffs),
        renamed_files=sum(d.status == "R" for d in diffs),
        notes=notes,
    )
    languages = {d.path: language_of(d.path) for d in diffs}
    features.languages = dict(Counter(lang or "other" for lang in languages.values()).most_common())
    files = {
        d.path: FileChange(
            path=d.path,
            old_path=d.old_path,
            status=d.status,
            lines_added=d.added,
            lines_deleted=d.deleted,
            binary=d.binary,
            language=languages[d.path],
        )
        for d in diffs
    }
    _measure(git, since, head_sha, diffs, languages, files, features, limits)

    listed = sorted(files.values(), key=lambda f: (-(f.lines_added + f.lines_deleted), f.path))
    if len(listed) > limits.files_listed:
        features.truncated = True
        features.notes.append(f"files lists the {limits.files_listed} most-changed of {len(listed)} files")
    features.files = listed[: limits.files_listed]
    return features


def _measure(
    git: Git,
    base: str,
    head: str,
    diffs: list[FileDiff],
    languages: dict[str, str | None],
    files: dict[str, FileChange],
    features: ChangeFeatures,
    limits: ChangeLimits,
) -> None:
    """Complexity of touched functions over the most-changed source files, within the limits."""
    candidates = [
        d for d in diffs if languages[d.path] and d.new_blob and not d.binary and d.new_mode not in _NOT_SOURCE_MODES
    ]
    # The most-changed files first: if the limits cut, what is left out matters least.
    candidates.sort(key=lambda d: (-(d.added + d.deleted), d.path))
    sizes = git.blob_sizes([d.new_blob for d in candidates[: limits.files_analysed] if d.new_blob])
    chosen: list[FileDiff] = []
    skipped_big = 0
    budget = limits.total_bytes
    for d in candidates[: limits.files_analysed]:
        size = sizes.get(d.new_blob or "", limits.file_bytes + 1)
        if size > limits.file_bytes or size > budget:
            skipped_big += 1
            continue
        budget -= size
        chosen.append(d)
    left_out = len(candidates) - len(chosen)
    if left_out:
        features.truncated = True
        why = []
        if len(candidates) > limits.files_analysed:
            why.append(f"at most {limits.files_analysed} files are measured")
        if skipped_big:
            why.append(f"{skipped_big} over {limits.file_bytes} bytes or the {limits.total_bytes}-byte budget")
        features.notes.append(
            f"complexity covers {len(chosen)} of {len(candidates)} changed source files ({'; '.join(why)})"
        )
    if not chosen:
        return

    pathspecs = sorted({p for d in chosen for p in (d.path, d.old_path) if p})
    hunks = git.hunks(base, head, pathspecs)
    by_blob: dict[str, list[FileDiff]] = {}
    for d in chosen:  # identical files share a blob
        by_blob.setdefault(d.new_blob or "", []).append(d)
    total, peak, count = 0, 0, 0
    for sha, content in git.blobs(list(by_blob)):
        for diff in by_blob[sha]:
            touched = hunks.get(diff.path)
            if touched is None:
                continue
            result = touched_complexity(diff.path, content, touched)
            entry = files[diff.path]
            entry.functions_touched, entry.complexity_sum = result.functions, result.ccn_sum
            entry.complexity_max = result.ccn_max if result.functions else None
            total, count = total + result.ccn_sum, count + result.functions
            peak = max(peak, result.ccn_max)
    features.changed_complexity = float(total)
    features.complexity_max = peak if count else None
    features.functions_touched = count
