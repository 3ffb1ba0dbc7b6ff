"""Local ingest: a log file (plain or gzip), a GitHub Actions run-logs zip, or a folder of logs and
JUnit reports, auto-detected from content rather than file names."""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

from cimedic.errors import InputError
from cimedic.models import Job, Platform, Run, Source, SourceKind, Status, Step, TestResult
from cimedic.settings import Limits
from cimedic.tools.ingest import gha_zip
from cimedic.tools.ingest.base import LogFile, RunMaterial
from cimedic.tools.ingest.junit import looks_like_junit, parse_junit_file
from cimedic.tools.ingest.sniff import (
    EMPTY_ZIP_MAGIC,
    GZIP_MAGIC,
    SNIFF_BYTES,
    ZIP_MAGIC,
    detect_platform,
    looks_binary,
)

DIR_MAX_FILES = 5000
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv"}
_LOG_SUFFIXES = {".log", ".txt", ".out", ".gz", ".trace", ""}


class LogFileOpener:
    """Opens a local log, decompressing gzip on the fly (picklable, unlike a lambda)."""

    def __init__(self, path: Path, compressed: bool) -> None:
        self.path = path
        self.compressed = compressed

    def __call__(self) -> BinaryIO:
        if self.compressed:
            return gzip.open(self.path, "rb")  # type: ignore[return-value]
        return open(self.path, "rb")


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except IsADirectoryError as exc:
        raise InputError(str(path), "is a directory") from exc
    except PermissionError as exc:
        raise InputError(str(path), "permission denied") from exc
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror or exc})") from exc


def _gzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(str(path), f"corrupt gzip data ({exc})") from exc


def _text_log(path: Path, display: str, head: bytes, compressed: bool) -> LogFile:
    if not head.strip():
        raise InputError(str(path), "empty log")
    if looks_binary(head):
        raise InputError(str(path), "binary data, not a text log")
    return LogFile(display, LogFileOpener(path, compressed), detect_platform(head))


def _classify_file(path: Path, display: str) -> tuple[LogFile | None, list[TestResult]]:
    head = _head(path)
    if not head:
        raise InputError(str(path), "empty file")
    if head.startswith(GZIP_MAGIC):
        inner = _gzip_head(path)
        if looks_like_junit(inner):
            raise InputError(str(path), "gzip-compressed JUnit reports are not supported; decompress it")
        return _text_log(path, display, inner, compressed=True), []
    if looks_like_junit(head):
        return None, parse_junit_file(path, display)
    return _text_log(path, display, head, compressed=False), []


def _material(source: Source, logs: list[LogFile], tests: list[TestResult], warnings: list[str]) -> RunMaterial:
    platforms = {log.platform for log in logs} - {Platform.GENERIC}
    platform = platforms.pop() if len(platforms) == 1 else Platform.GENERIC
    jobs: dict[str, Job] = {}
    for log in logs:
        job = jobs.setdefault(log.job or log.path, Job(name=log.job or log.path, platform=log.platform))
        job.steps.append(Step(name=log.step or log.path, log_path=log.path))
    failed = any(t.status in ("failed", "error") for t in tests)
    run = Run(
        source=source,
        platform=platform,
        jobs=list(jobs.values()),
        test_results=tests,
        status=Status.FAILURE if failed else Status.UNKNOWN,
    )
    return RunMaterial(run=run, logs=logs, warnings=warnings)


def ingest_path(path: Path, limits: Limits) -> RunMaterial:
    """Auto-detect and ingest one local path. Raises InputError naming the path."""
    if not path.exists():
        raise InputError(str(path), "no such file or directory")
    if path.is_dir():
        return _ingest_dir(path, limits)
    head = _head(path)
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return gha_zip.ingest_zip(path, limits)
    log, tests = _classify_file(path, path.name)
    kind = SourceKind.JUNIT if log is None else SourceKind.FILE
    return _material(Source(kind=kind, path=str(path)), [log] if log else [], tests, [])


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            found.append(Path(dirpath) / name)
            if len(found) > DIR_MAX_FILES:
                raise InputError(str(root), f"more than {DIR_MAX_FILES} files; point at the run's folder")
    return found


def _ingest_dir(root: Path, limits: Limits) -> RunMaterial:
    logs: list[LogFile] = []
    tests: list[TestResult] = []
    warnings: list[str] = []
    for file in _walk(root):
        display = file.relative_to(root).as_posix()
        try:
            mode = file.lstat().st_mode
            if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
                warnings.append(f"{display}: skipped (not a regular file)")
                continue
            suffix = file.suffix.lower()
            if suffix == ".xml":
                if looks_like_junit(_head(file)):
                    tests.extend(parse_junit_file(file, display, max_bytes=limits.junit_max_bytes))
                continue
            if suffix == ".zip":
                nested = gha_zip.ingest_zip(file, limits, prefix=display + "/")
                logs.extend(nested.logs)
                warnings.extend(nested.warnings)
                continue
            if suffix not in _LOG_SUFFIXES and file.name != "consoleText":
                continue
            if file.stat().st_size == 0:
                continue
            log, file_tests = _classify_file(file, display)
            tests.extend(file_tests)
            if log is not None:
                logs.append(log)
        except InputError as exc:
            # One bad file does not sink the folder; the user is told which and why.
            warnings.append(str(exc))
    if not logs and not tests:
        raise InputError(str(root), "no CI logs or JUnit reports found in this folder")
    return _material(Source(kind=SourceKind.DIR, path=str(root)), logs, tests, warnings)
