"""The log archive: logs kept past the platforms' retention, on local disk or in S3.

``archive_for`` picks the backend from the ``archive_url`` setting: none for
``$CIMEDIC_HOME/archive``, ``file:///path`` for another folder, ``s3://bucket/prefix`` for S3 or
an S3-compatible store (with ``aws_endpoint_url``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cimedic.archive.base import ArchivedLog, ArchiveError, ArchiveKey, LogArchive, LogInput
from cimedic.archive.local import LocalArchive
from cimedic.archive.memory import InMemoryArchive

__all__ = [
    "ArchiveError",
    "ArchiveKey",
    "ArchivedLog",
    "InMemoryArchive",
    "LocalArchive",
    "LogArchive",
    "LogInput",
    "archive_for",
]


def archive_for(
    url: str | None,
    root: Path,
    endpoint_url: str | None,
    region: str | None,
    *,
    client: Any = None,
    retries: int = 5,
    timeout_s: float = 30.0,
) -> LogArchive:
    """The archive ``url`` names; ``root`` when it names none. ``client`` replaces the S3 client boto3 would make."""
    if not url:
        return LocalArchive(root)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ArchiveError(url, "a file URL must be local (file:///path)")
        return LocalArchive(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ArchiveError(url, "no bucket: use s3://bucket/prefix")
        from cimedic.archive.s3 import S3Archive, s3_client

        if client is None:
            client = s3_client(region, endpoint_url, retries=retries, timeout_s=timeout_s)
        return S3Archive(parts.netloc, unquote(parts.path), client)
    hint = ""
    if parts.scheme == "gs":
        hint = " (Google Cloud Storage: s3:// with aws_endpoint_url https://storage.googleapis.com and HMAC keys)"
    raise ArchiveError(url, f"unsupported archive URL; use s3://bucket/prefix or file:///path{hint}")
