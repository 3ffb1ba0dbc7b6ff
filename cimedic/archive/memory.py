"""An in-process archive: the same behaviour as the others, kept in a dict (a double for tests)."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
from collections.abc import Iterator
from typing import BinaryIO, cast

from cimedic.archive.base import (
    COMPRESS_LEVEL,
    ArchivedLog,
    ArchiveError,
    ArchiveKey,
    LogInput,
    Prefix,
    check_prefix,
    open_input,
    read_chunks,
)


class InMemoryArchive:
    """Compressed logs in memory; for tests of code that archives, not for real logs."""

    def __init__(self) -> None:
        self._logs: dict[ArchiveKey, tuple[bytes, ArchivedLog]] = {}

    def put(self, key: ArchiveKey, source: LogInput) -> ArchivedLog:
        subject = f"memory:{key}"
        buf = io.BytesIO()
        sha, size = hashlib.sha256(), 0
        with (
            open_input(source, subject) as src,
            gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=COMPRESS_LEVEL) as gz,
        ):
            for chunk in read_chunks(src, subject):
                sha.update(chunk)
                size += len(chunk)
                gz.write(chunk)
        # Stored only once complete, so a failing source leaves the previous log in place.
        stored = ArchivedLog(key, subject, size, buf.tell(), sha.hexdigest())
        self._logs[key] = (buf.getvalue(), stored)
        return stored

    def open(self, key: ArchiveKey) -> BinaryIO:
        return cast(BinaryIO, gzip.GzipFile(fileobj=io.BytesIO(self._get(key)[0]), mode="rb"))

    def info(self, key: ArchiveKey) -> ArchivedLog:
        return self._get(key)[1]

    def exists(self, key: ArchiveKey) -> bool:
        return key in self._logs

    def delete(self, key: ArchiveKey) -> None:
        self._logs.pop(key, None)

    def list(self, prefix: Prefix = ()) -> Iterator[ArchiveKey]:
        check_prefix(prefix)
        found: builtins.list[ArchiveKey] = [k for k in self._logs if k.parts()[: len(prefix)] == tuple(prefix)]
        yield from sorted(found)

    def _get(self, key: ArchiveKey) -> tuple[bytes, ArchivedLog]:
        try:
            return self._logs[key]
        except KeyError:
            raise ArchiveError(str(key), "not in the archive (memory)") from None
