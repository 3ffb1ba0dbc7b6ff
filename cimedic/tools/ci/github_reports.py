"""Test reports of a GitHub Actions run.

GitHub has no test-report API: workflows upload their JUnit XML as artifacts. So the artifacts whose
names say they hold test results are downloaded (streamed to disk by the provider), and only their
``.xml`` members are extracted, with the same path and zip-bomb checks as local archives, then
parsed like local reports. Artifacts are written by the workflow, i.e. by anyone who can push.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cimedic.errors import InputError
from cimedic.models import TestResult
from cimedic.settings import Limits
from cimedic.tools.ci.download import Stored, safe_name, stream_to_file
from cimedic.tools.ci.guard import Guard
from cimedic.tools.ingest.junit import SNIFF_BYTES, looks_like_junit, parse_junit_file

REPORTS_DIR = "test-reports"
CHUNK = 64 * 1024
# Names people give the artifact of `actions/upload-artifact` that carries JUnit XML.
_REPORT_ARTIFACT = re.compile(
    r"junit|xunit|nunit|surefire|failsafe|pytest|jest|test[-_. ]?(?:results?|reports?)", re.IGNORECASE
)
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ReportArtifact:
    """What the artifacts listing says of one artifact (read inside the guarded page request)."""

    id: int
    name: str
    expired: bool
    download_url: str


def is_report_artifact(name: str) -> bool:
    return _REPORT_ARTIFACT.search(name) is not None


def _problem(info: zipfile.ZipInfo, limits: Limits) -> str | None:
    posix = PurePosixPath(info.filename.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or _DRIVE.match(info.filename):
        return "unsafe path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.file_size > limits.junit_max_bytes:
        return f"{info.file_size} bytes, over limits.junit_max_bytes"
    if (
        info.compress_size
        and info.file_size / info.compress_size > limits.archive_max_ratio
        and info.file_size > 10 * 1024 * 1024
    ):
        return f"compression ratio {info.file_size // info.compress_size}:1 looks like a zip bomb"
    return None


def _copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, max_bytes: int) -> int | None:
    """Extract one member in chunks; None (and nothing left on disk) when it outgrows ``max_bytes``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with zf.open(info) as src, open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                break
            out.write(chunk)
    if size > max_bytes:
        target.unlink(missing_ok=True)
        return None
    return size


def extract_reports(archive: Path, into: Path, limits: Limits) -> tuple[list[Path], list[str]]:
    """The ``.xml`` members of ``archive`` written under ``into``; unsafe or oversized ones skipped."""
    label = archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        return [], [f"{label}: not a readable zip archive ({exc})"]
    files: list[Path] = []
    warnings: list[str] = []
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.archive_max_members:
            return [], [f"{label}: {len(infos)} members, more than limits.archive_max_members"]
        total = 0
        for info in infos:
            if info.is_dir() or not info.filename.lower().endswith(".xml"):
                continue
            problem = _problem(info, limits)
            if problem is None and total + info.file_size > limits.archive_max_bytes:
                problem = "the archive expands beyond limits.archive_max_bytes"
            if problem:
                warnings.append(f"{label}: member {info.filename!r} skipped ({problem})")
                continue
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            target = into.joinpath(*(safe_name(part) for part in parts))
            try:
                size = _copy(zf, info, target, limits.junit_max_bytes)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                target.unlink(missing_ok=True)
                warnings.append(f"{label}: member {info.filename!r} unreadable ({exc})")
                continue
            if size is None:
                warnings.append(f"{label}: member {info.filename!r} skipped (larger than limits.junit_max_bytes)")
                continue
            total += size
            files.append(target)
    return files, warnings


def read_reports(archive: Path, into: Path, root: Path, limits: Limits) -> tuple[list[TestResult], list[str]]:
    """Test results of one downloaded artifact; each result's report_path is relative to ``root``
    (the fetched run's material root), so investigation can point at the report's line."""
    files, warnings = extract_reports(archive, into, limits)
    results: list[TestResult] = []
    for path in files:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        if not looks_like_junit(head):
            # Coverage and lint XML travel in the same artifacts; they are not test reports.
            continue
        report_path = path.relative_to(root).as_posix()
        try:
            results.extend(parse_junit_file(path, report_path, max_bytes=limits.junit_max_bytes))
        except InputError as exc:
            warnings.append(str(exc))
    return results, warnings


def collect_reports(
    guard: Guard,
    subject: str,
    artifacts: Iterable[ReportArtifact],
    chunks: Callable[[ReportArtifact], Iterator[bytes]],
    dest: Path,
    limits: Limits,
    *,
    max_bytes: int,
) -> tuple[list[TestResult], list[str]]:
    """The test results in the report artifacts: each downloaded (one guarded call) to ``dest/.artifacts``,
    its XML extracted under ``dest/test-reports/<artifact>``, the archive removed once read."""
    tests: list[TestResult] = []
    warnings: list[str] = []
    downloads = dest / ".artifacts"
    for artifact in artifacts:
        if not is_report_artifact(artifact.name):
            continue
        if artifact.expired:
            warnings.append(f"artifact {artifact.name!r} has expired; its test reports are gone")
            continue
        archive = downloads / f"{artifact.id}.zip"

        def download(artifact: ReportArtifact = artifact, archive: Path = archive) -> Stored:
            return stream_to_file(chunks(artifact), archive, max_bytes=max_bytes)

        stored = guard.call(subject, download)
        if stored.truncated:
            warnings.append(f"artifact {artifact.name!r}: larger than ci.log_max_bytes, not read")
        else:
            found, more = read_reports(archive, dest / REPORTS_DIR / safe_name(artifact.name), dest, limits)
            tests.extend(found)
            warnings.extend(more)
        archive.unlink(missing_ok=True)
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return tests, warnings
