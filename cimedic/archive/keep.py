"""Keeping a fetched run's logs in the archive, redacted first: the archive is storage, and secrets
are masked before anything is stored. Logs are redacted in line-aligned blocks (the redactor runs
at about 5 MB/s), so logs above ``ARCHIVE_MAX_BYTES`` are left out with a warning rather than
holding up an investigation for minutes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cimedic.archive import ArchiveError, ArchiveKey, archive_for
from cimedic.models import RunInfo
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.tools.ingest.base import LogFile

BLOCK = 1 << 20
ARCHIVE_MAX_BYTES = 256 * 1024**2


def redacted_copy(log: LogFile, dest: Path) -> int:
    """Write ``log`` redacted to ``dest`` block by block; returns the bytes read."""
    read = 0
    carry = b""
    with log.open() as src, open(dest, "wb") as out:
        while block := src.read(BLOCK):
            read += len(block)
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one very long line: hold it until its end (bounded by the size cap)
                carry = data
                continue
            carry = data[cut:]
            out.write(redact(data[:cut].decode("utf-8", "replace")).encode("utf-8"))
            if read > ARCHIVE_MAX_BYTES:
                raise ArchiveError(log.path, f"over {ARCHIVE_MAX_BYTES // 1024**2} MB; not archived")
        if carry:
            out.write(redact(carry.decode("utf-8", "replace")).encode("utf-8"))
    return read


def archive_run(settings: Settings, info: RunInfo, logs: list[LogFile]) -> tuple[int, list[str]]:
    """Archive each log of a fetched run; problems become warnings, never a failed investigation."""
    warnings: list[str] = []
    kept = 0
    try:
        archive = archive_for(
            settings.archive_url,
            settings.archive_dir,
            settings.aws_endpoint_url,
            settings.aws_region,
            retries=settings.ci.retries,
            timeout_s=settings.ci.timeout_s,
        )
    except ArchiveError as exc:
        return 0, [f"logs not archived: {exc}"]
    settings.downloads_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.downloads_dir) as scratch:
        for n, log in enumerate(logs):
            key = ArchiveKey(
                platform=str(info.platform),
                project=info.project,
                run_id=info.id,
                attempt=info.attempt or 1,
                job=log.job or "run",
                name=log.step or Path(log.path).stem,
            )
            copy = Path(scratch) / f"{n}.log"
            try:
                redacted_copy(log, copy)
                archive.put(key, copy)
                kept += 1
            except (ArchiveError, OSError) as exc:
                warnings.append(f"{log.path}: not archived ({exc})")
            finally:
                copy.unlink(missing_ok=True)
    return kept, warnings
