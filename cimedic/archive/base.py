"""The log archive's Protocol, its keys, and the streaming helpers every backend shares.

A run's logs outlive the run (platforms expire them after weeks), so cimedic can keep them:
gzip-compressed, addressed by (platform, project, run, attempt, job, name), with the SHA-256 and
size of the original bytes beside them. Backends stream in fixed-size chunks and never hold a
whole log in memory, whatever its size.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote

from cimedic.errors import InputError

CHUNK = 1024 * 1024
# gzip level 6 (zlib's default). On LogChunks' 397 Travis logs (90 MB; Brandt et al., MSR 2020) it
# shrinks them 7.3x; level 9 gains 2% for twice the CPU, level 1 saves 2/3 of the CPU but gives 6.0x.
COMPRESS_LEVEL = 6
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
FIELDS = ("platform", "project", "run_id", "attempt", "job", "name")

# What to archive: a file, or an opener giving a fresh stream of the log's bytes on each call
# (``LogFile.open``: already-decompressed, so a local .log.gz is not compressed twice).
LogInput = Path | Callable[[], BinaryIO]
Prefix = tuple[str | int, ...]


class ArchiveError(InputError):
    """An archive operation failed; one line naming the object and the problem."""


@dataclass(frozen=True, order=True)
class ArchiveKey:
    """Where a log belongs. Any text is allowed except empty, ``.``/``..`` and control characters:
    names are percent-encoded into one path segment each, so ``org/repo`` or ``build / test`` stay
    one level and ``../`` cannot climb out of the archive."""

    platform: str
    project: str
    run_id: str
    attempt: int
    job: str
    name: str

    def __post_init__(self) -> None:
        if isinstance(self.attempt, bool) or not isinstance(self.attempt, int) or self.attempt < 0:
            raise ArchiveError(str(self), f"attempt must be a non-negative integer, got {self.attempt!r}")
        for field in ("platform", "project", "run_id", "job", "name"):
            check_part(field, getattr(self, field))

    def parts(self) -> tuple[str | int, ...]:
        return (self.platform, self.project, self.run_id, self.attempt, self.job, self.name)

    def __str__(self) -> str:
        return "/".join(str(p) for p in self.parts())


@dataclass(frozen=True)
class ArchivedLog:
    """One archived log: its key, where it lives, and what the original bytes were."""

    key: ArchiveKey
    uri: str
    size: int = 0
    compressed_size: int = 0
    sha256: str = ""


class LogArchive(Protocol):
    """Where logs are kept. ``open`` streams the original (decompressed) bytes."""

    def put(self, key: ArchiveKey, source: LogInput) -> ArchivedLog: ...

    def open(self, key: ArchiveKey) -> BinaryIO: ...

    def info(self, key: ArchiveKey) -> ArchivedLog: ...

    def exists(self, key: ArchiveKey) -> bool: ...

    def delete(self, key: ArchiveKey) -> None:
        """Remove the log; removing one that is not there is not an error."""

    def list(self, prefix: Prefix = ()) -> Iterator[ArchiveKey]:
        """Keys whose leading fields equal ``prefix`` (e.g. ``("github-actions", "org/repo")``), sorted."""


def check_part(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ArchiveError("archive key", f"{field} must be a non-empty string, got {value!r}")
    if value in (".", ".."):
        raise ArchiveError("archive key", f"{field} {value!r} is refused (path traversal)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ArchiveError("archive key", f"{field} {value!r} contains control characters")
    return value


def encode_part(value: str | int) -> str:
    """One ASCII path segment for ``value``: reversible (``decode_part``), no ``/``, never starting with a dot."""
    raw = str(value).encode("utf-8")
    enc = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    # No hidden files: a leading dot is escaped too (temporary files are the only dot-files).
    return "%2E" + enc[1:] if enc.startswith(".") else enc


def decode_part(segment: str) -> str:
    return unquote(segment, errors="strict")


def check_prefix(prefix: Prefix) -> Prefix:
    """``prefix`` checked like the leading fields of a key (backends encode it their own way)."""
    if len(prefix) > len(FIELDS):
        raise ArchiveError("archive prefix", f"has {len(prefix)} parts, a key has {len(FIELDS)}")
    for field, value in zip(FIELDS, prefix, strict=False):
        if field == "attempt":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ArchiveError("archive prefix", f"attempt must be a non-negative integer, got {value!r}")
        else:
            check_part(field, value)
    return prefix


def key_from_parts(parts: list[str]) -> ArchiveKey | None:
    """The key of decoded path segments, or None when they are not one of ours."""
    if len(parts) != len(FIELDS):
        return None
    try:
        decoded = [decode_part(p) for p in parts]
        return ArchiveKey(decoded[0], decoded[1], decoded[2], int(decoded[3]), decoded[4], decoded[5])
    except (ValueError, ArchiveError):
        return None


def open_input(source: LogInput, subject: str) -> BinaryIO:
    try:
        return open(source, "rb") if isinstance(source, Path) else source()
    except OSError as exc:
        raise ArchiveError(subject, f"cannot read the log ({exc.strerror or exc})") from exc


@dataclass
class Digest:
    sha256: str
    size: int


def digest(source: LogInput, subject: str) -> Digest:
    """SHA-256 and length of the log's bytes, reading it once in chunks."""
    sha = hashlib.sha256()
    size = 0
    with open_input(source, subject) as fh:
        for chunk in read_chunks(fh, subject):
            sha.update(chunk)
            size += len(chunk)
    return Digest(sha.hexdigest(), size)


def read_chunks(fh: BinaryIO, subject: str) -> Iterator[bytes]:
    """Chunks of ``fh``; read failures (disk errors, a truncated .gz behind an opener) become ArchiveError."""
    while True:
        try:
            chunk = fh.read(CHUNK)
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(subject, f"reading the log failed ({exc})") from exc
        if not chunk:
            return
        yield chunk
