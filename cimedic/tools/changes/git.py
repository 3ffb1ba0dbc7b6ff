"""What ``git`` says about a change, read through its machine formats (``-z``, ``--raw``, ``-U0``).

Only plumbing-stable output is parsed, with every option that user or repository configuration
could change pinned on the command line (prefixes, rename detection, quoting, external diff
drivers, text conversion), because the checkout under analysis may belong to anyone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cimedic.errors import InputError

GIT_BASE = ("git", "-c", "core.quotepath=off", "-c", "core.fsmonitor=false", "--literal-pathspecs")
# No external diff programs, text converters or colour; renames found the same way everywhere.
DIFF_OPTS = ("--no-ext-diff", "--no-textconv", "--no-color", "-M", "--src-prefix=a/", "--dst-prefix=b/")
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class GitError(InputError):
    """git refused: names the repository and says what to do, in one line."""


@dataclass
class FileDiff:
    """One changed file from ``git diff --raw --numstat``."""

    path: str
    old_path: str | None
    status: str  # A, M, D, R, C, T (git's letters)
    new_blob: str | None
    new_mode: str
    added: int = 0
    deleted: int = 0
    binary: bool = False


@dataclass
class Hunks:
    """Lines of the new version a diff touches: ranges of added/changed lines and deletion points."""

    ranges: list[tuple[int, int]] = field(default_factory=list)  # inclusive, new-side line numbers
    deletions: list[int] = field(default_factory=list)  # lines were removed after this new-side line


class Git:
    def __init__(self, repo: Path, *, timeout_s: float = 120.0) -> None:
        self.repo = Path(repo)
        self.timeout_s = timeout_s

    def run(self, *args: str, stdin: bytes | None = None, ok: Iterable[int] = (0,)) -> tuple[int, bytes]:
        cmd = [*GIT_BASE, "-C", str(self.repo), *args]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=self.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise GitError("git", "not installed (cimedic reads changes with the git command)") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(str(self.repo), f"git {args[0]} took longer than {self.timeout_s:g} s") from exc
        if done.returncode not in ok:
            raise GitError(str(self.repo), _problem(done.stderr.decode("utf-8", "replace"), args))
        return done.returncode, done.stdout

    def out(self, *args: str) -> str:
        return self.run(*args)[1].decode("utf-8", "surrogateescape").strip()

    def commit(self, rev: str) -> str:
        if rev.startswith("-"):
            raise GitError(rev, "a revision cannot start with '-'")
        code, out = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", ok=(0, 1))
        if code != 0:
            hint = ""
            if self.out("rev-parse", "--is-shallow-repository") == "true":
                hint = (
                    f" (this clone is shallow: fetch it, e.g. git fetch --deepen=200 origin, or git fetch origin {rev})"
                )
            raise GitError(str(self.repo), f"unknown revision {rev}{hint}")
        return out.decode().strip()

    def merge_base(self, base: str, head: str) -> str | None:
        code, out = self.run("merge-base", base, head, ok=(0, 1))
        return out.decode().strip() if code == 0 else None

    def is_shallow(self) -> bool:
        return self.out("rev-parse", "--is-shallow-repository") == "true"

    def authors(self, base: str, head: str) -> list[str]:
        """Author e-mail of each commit ``head`` adds to ``base``, newest first."""
        text = self.out("log", "--no-mailmap", "--format=%ae", f"{base}..{head}", "--")
        return [line for line in text.splitlines() if line]

    def files(self, base: str, head: str) -> list[FileDiff]:
        _, out = self.run("diff", *DIFF_OPTS, "--raw", "--numstat", "-z", "--abbrev=40", base, head, "--")
        return parse_raw_numstat(out)

    def hunks(self, base: str, head: str, paths: list[str]) -> dict[str, Hunks]:
        if not paths:
            return {}
        _, out = self.run("diff", *DIFF_OPTS, "-U0", base, head, "--", *paths)
        return parse_hunks(out.splitlines())

    def blob_sizes(self, shas: list[str]) -> dict[str, int]:
        """Size in bytes of each blob that exists (``git cat-file --batch-check``)."""
        if not shas:
            return {}
        _, out = self.run("cat-file", "--batch-check", stdin="".join(f"{s}\n" for s in shas).encode())
        sizes = {}
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "blob":
                sizes[parts[0]] = int(parts[2])
        return sizes

    def blobs(self, shas: list[str]) -> Iterator[tuple[str, bytes]]:
        """(sha, content) of each blob, through one ``git cat-file --batch``."""
        if not shas:
            return
        _, out = self.run("cat-file", "--batch", stdin="".join(f"{s}\n" for s in shas).encode())
        pos = 0
        for _ in shas:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            if len(header) != 3:  # "<sha> missing"
                pos = header_end + 1
                continue
            size = int(header[2])
            start = header_end + 1
            yield header[0].decode(), out[start : start + size]
            pos = start + size + 1


def parse_raw_numstat(out: bytes) -> list[FileDiff]:
    """Records of ``git diff --raw --numstat -z``: raw entries first, then numstat entries, same order."""
    tokens = out.split(b"\0")
    files: list[FileDiff] = []
    i = 0
    while i < len(tokens) and tokens[i].startswith(b":"):
        meta = tokens[i][1:].decode().split()
        status = meta[4][:1]
        if status in ("R", "C"):
            old, new = _path(tokens[i + 1]), _path(tokens[i + 2])
            i += 3
        else:
            old, new = None, _path(tokens[i + 1])
            i += 2
        blob = None if status == "D" or set(meta[3]) == {"0"} else meta[3]
        files.append(FileDiff(new, old, status, blob, meta[1]))
    for entry in files:
        if i >= len(tokens) or not tokens[i]:
            break
        added, deleted, path = tokens[i].split(b"\t", 2)
        i += 3 if path == b"" else 1  # renames: the two paths follow as separate fields
        entry.binary = added == b"-"
        entry.added = 0 if entry.binary else int(added)
        entry.deleted = 0 if entry.binary else int(deleted)
    return files


def parse_hunks(lines: Iterable[bytes]) -> dict[str, Hunks]:
    """New-side lines each file's ``-U0`` hunks touch; content lines are skipped by count, never parsed."""
    result: dict[str, Hunks] = {}
    current: Hunks | None = None
    old_left = new_left = 0
    in_header = False
    for line in lines:
        if old_left or new_left:
            if line.startswith(b"-"):
                old_left -= 1
            elif line.startswith(b"+"):
                new_left -= 1
            continue  # "\ No newline at end of file" counts as neither
        if line.startswith(b"diff --git "):
            current, in_header = None, True
        elif in_header and line.startswith(b"+++ "):
            # git ends the name with a tab when it holds spaces (for patch(1)); names with tabs are quoted.
            target = line[4:].removesuffix(b"\t")
            current = None if target == b"/dev/null" else result.setdefault(_unquote(target)[2:], Hunks())
        elif (match := _HUNK.match(line)) is not None:
            in_header = False
            old_count = 1 if match.group(2) is None else int(match.group(2))
            start, count = int(match.group(3)), 1 if match.group(4) is None else int(match.group(4))
            old_left, new_left = old_count, count
            if current is not None:
                if count:
                    current.ranges.append((start, start + count - 1))
                else:
                    current.deletions.append(start)
    return result


def _path(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _unquote(raw: bytes) -> str:
    """A path as git prints it in patch headers: C-quoted when it holds special characters."""
    if not (raw.startswith(b'"') and raw.endswith(b'"')):
        return _path(raw)
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == 92 and i + 1 < len(body):  # backslash
            nxt = chr(body[i + 1])
            if nxt in "01234567":
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, body[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return _path(bytes(out))


def _problem(stderr: str, args: tuple[str, ...]) -> str:
    text = " ".join(stderr.split())
    if "not a git repository" in text:
        return "not a git repository"
    if "dubious ownership" in text:
        return "git refuses a repository owned by another user (git config --global --add safe.directory <path>)"
    return f"git {args[0]} failed: {text[:200] or 'no message'}"
