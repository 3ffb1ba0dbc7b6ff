"""Streaming logs to disk and turning a fetched run into the same RunMaterial local ingest makes.

Logs are written chunk by chunk to ``<name>.part`` and renamed when complete, so memory stays
bounded whatever the log size and an interrupted download never looks like a whole log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cimedic.models import Job, Platform, Run, RunInfo, Source, SourceKind, Status, TestResult
from cimedic.tools.ci.guard import Guard
from cimedic.tools.ingest.base import LogFile, RunMaterial
from cimedic.tools.ingest.local import LogFileOpener

SOURCE_KINDS = {
    Platform.GITHUB_ACTIONS: SourceKind.GITHUB_ACTIONS,
    Platform.GITLAB: SourceKind.GITLAB,
    Platform.JENKINS: SourceKind.JENKINS,
    Platform.AZURE_DEVOPS: SourceKind.AZURE_DEVOPS,
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class LogSource:
    """One log to fetch: which job/step it belongs to and how to open its byte stream."""

    job: Job
    step: str | None
    chunks: Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class Stored:
    path: Path
    size: int
    truncated: bool


def safe_name(text: str) -> str:
    """A file name from a job or step name; platform names can hold slashes and worse."""
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    return cleaned[:100] or "log"


def stream_to_file(chunks: Iterable[bytes], dest: Path, *, max_bytes: int) -> Stored:
    """Write ``chunks`` to ``dest`` without holding them; stop (truncated) after ``max_bytes``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    size = 0
    truncated = False
    try:
        with open(part, "wb") as fh:
            for chunk in chunks:
                if not chunk:
                    continue
                room = max_bytes - size
                if len(chunk) > room:
                    fh.write(chunk[:room])
                    size += room
                    truncated = True
                    break
                fh.write(chunk)
                size += len(chunk)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return Stored(dest, size, truncated)


def fetch_logs(
    guard: Guard, subject: str, sources: Iterable[LogSource], dest: Path, *, max_bytes: int
) -> tuple[list[LogFile], list[str]]:
    """Stream every log into ``dest``; each download is one guarded call (retried as a whole)."""
    logs: list[LogFile] = []
    warnings: list[str] = []
    used: set[str] = set()
    for source in sources:
        name = safe_name(source.job.name) + (f"/{safe_name(source.step)}" if source.step else "") + ".log"
        while name in used:  # two jobs with the same name (matrix) keep separate files
            name = name[: -len(".log")] + "_.log"
        used.add(name)
        target = dest / name

        def download(source: LogSource = source, target: Path = target) -> Stored:
            return stream_to_file(source.chunks(), target, max_bytes=max_bytes)

        stored = guard.call(subject, download)
        if stored.truncated:
            warnings.append(f"{name}: log cut at {max_bytes} bytes (ci.log_max_bytes)")
        if stored.size == 0:
            warnings.append(f"{name}: empty log")
            continue
        logs.append(
            LogFile(name, LogFileOpener(target, compressed=False), source.job.platform, source.job.name, source.step)
        )
    return logs, warnings


def material(
    info: RunInfo, logs: list[LogFile], tests: list[TestResult], warnings: list[str], root: Path
) -> RunMaterial:
    """The fetched run as investigate sees any run; the source names the platform and the URL."""
    platform = Platform(info.platform)
    jobs: list[Job] = [job.model_copy(update={"platform": platform}) for job in info.jobs]
    failed = Status(info.status) == Status.FAILURE or any(t.status in ("failed", "error") for t in tests)
    run = Run(
        source=Source(kind=SOURCE_KINDS[platform], path=info.url or info.id),
        platform=platform,
        id=info.id,
        url=info.url,
        status=Status.FAILURE if failed else Status(info.status),
        jobs=jobs,
        test_results=tests,
        info=info,
    )
    return RunMaterial(run=run, logs=logs, warnings=warnings, root=root)
