"""GitHub Actions run-logs archive: what ``GET /repos/{o}/{r}/actions/runs/{id}/logs`` returns.

Layout: one ``<n>_<job>.txt`` per job at the top (the whole job log) and a folder ``<job>/`` with
one ``<n>_<step>.txt`` per step. Every line starts with an ISO timestamp. Members are read in place
(never extracted), and the archive is checked for zip bombs and unsafe member names first.
"""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cimedic.errors import InputError
from cimedic.models import Job, Platform, Run, Source, SourceKind, Status, Step
from cimedic.settings import Limits
from cimedic.tools.ingest.base import LogFile, RunMaterial
from cimedic.tools.ingest.sniff import SNIFF_BYTES, detect_platform, looks_binary

_NUMBERED = re.compile(r"^(\d+)_(.+?)(?:\.txt)?$")
_FAILED_MARK = re.compile(rb"##\[error\]")


class ZipMemberOpener:
    def __init__(self, archive: Path, member: str) -> None:
        self.archive = archive
        self.member = member

    def __call__(self) -> BinaryIO:
        # The ZipFile may be collected once this returns: the member stream keeps the file open.
        return zipfile.ZipFile(self.archive).open(self.member)  # type: ignore[return-value]


def _unsafe(name: str) -> str | None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or re.match(r"^[A-Za-z]:", name):
        return "unsafe path"
    return None


def _check(zf: zipfile.ZipFile, archive: Path, limits: Limits) -> tuple[list[zipfile.ZipInfo], list[str]]:
    infos = zf.infolist()
    if len(infos) > limits.archive_max_members:
        raise InputError(str(archive), f"{len(infos)} members, more than the limit of {limits.archive_max_members}")
    total = sum(i.file_size for i in infos)
    if total > limits.archive_max_bytes:
        raise InputError(str(archive), f"expands to {total} bytes, over the limit of {limits.archive_max_bytes}")
    keep: list[zipfile.ZipInfo] = []
    warnings: list[str] = []
    for info in infos:
        if info.is_dir():
            continue
        problem = _unsafe(info.filename)
        if problem is None and stat.S_ISLNK(info.external_attr >> 16):
            problem = "symbolic link"
        if (
            problem is None
            and info.compress_size
            and info.file_size / info.compress_size > limits.archive_max_ratio
            and info.file_size > 10 * 1024 * 1024
        ):
            problem = f"compression ratio {info.file_size // info.compress_size}:1 looks like a zip bomb"
        if problem:
            warnings.append(f"{archive.name}: member {info.filename!r} skipped ({problem})")
            continue
        keep.append(info)
    return keep, warnings


def ingest_zip(archive: Path, limits: Limits, prefix: str = "") -> RunMaterial:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(str(archive), f"corrupt zip archive ({exc})") from exc
    with zf:
        members, warnings = _check(zf, archive, limits)
        names = {m.filename for m in members}
        has_step_folders = any("/" in n for n in names)
        jobs: dict[str, Job] = {}
        logs: list[LogFile] = []
        for info in sorted(members, key=lambda i: _sort_key(i.filename)):
            parts = PurePosixPath(info.filename).parts
            if has_step_folders and len(parts) == 1:
                continue  # the whole-job file repeats its step files; steps give finer locations
            try:
                with zf.open(info) as fh:
                    head = fh.read(SNIFF_BYTES)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                warnings.append(f"{archive.name}: member {info.filename!r} unreadable ({exc})")
                continue
            if not head.strip() or looks_binary(head):
                continue
            job_name = _label(parts[0])
            step_name = _label(parts[-1])
            job = jobs.setdefault(job_name, Job(name=job_name, platform=Platform.GITHUB_ACTIONS))
            failed = bool(_FAILED_MARK.search(head))
            job.steps.append(
                Step(
                    name=step_name,
                    number=_number(parts[-1]),
                    log_path=prefix + info.filename,
                    status=Status.FAILURE if failed else Status.UNKNOWN,
                )
            )
            if failed:
                job.status = Status.FAILURE
            platform = detect_platform(head)
            logs.append(
                LogFile(
                    prefix + info.filename,
                    ZipMemberOpener(archive, info.filename),
                    platform if platform is not Platform.GENERIC else Platform.GITHUB_ACTIONS,
                    job=job_name,
                    step=step_name,
                )
            )
    if not logs:
        raise InputError(str(archive), "zip archive holds no readable logs")
    run = Run(
        source=Source(kind=SourceKind.GHA_ZIP, path=str(archive)),
        platform=Platform.GITHUB_ACTIONS,
        jobs=list(jobs.values()),
        status=Status.FAILURE if any(j.status is Status.FAILURE for j in jobs.values()) else Status.UNKNOWN,
    )
    return RunMaterial(run=run, logs=logs, warnings=warnings)


def _label(name: str) -> str:
    m = _NUMBERED.match(name)
    return m.group(2) if m else re.sub(r"\.txt$", "", name)


def _number(name: str) -> int | None:
    m = _NUMBERED.match(name)
    return int(m.group(1)) if m else None


def _sort_key(name: str) -> tuple[str, int, str]:
    parts = PurePosixPath(name).parts
    return (parts[0] if len(parts) > 1 else "", _number(parts[-1]) or 0, name)
