"""Local material (a log, a GitHub Actions logs zip, a folder of logs and JUnit reports) behind the
same Protocol as the platforms, so sweeps and tools treat a folder of saved runs like a CI project.
Saved runs record no deployments: DORA then counts the runs its deploy pattern names (config/dora.yaml)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from cimedic.models import Platform, RunInfo, TestResult
from cimedic.settings import Limits
from cimedic.tools.ci.base import Deployment, RunFilter, RunRef, RunSummary, WriteKind, WriteResult
from cimedic.tools.ci.guard import ProviderError
from cimedic.tools.ingest.base import RunMaterial
from cimedic.tools.ingest.local import ingest_path


def local_ref(path: Path) -> RunRef:
    return RunRef(platform=Platform.GENERIC, base_url="file://", project=str(path.parent), run_id=str(path))


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


class LocalProvider:
    """Runs are paths; a project is a folder whose entries (files or folders) are saved runs."""

    platform = Platform.GENERIC

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def run(self, ref: RunRef) -> RunInfo:
        material = ingest_path(Path(ref.run_id), self.limits)
        path = Path(ref.run_id)
        return RunInfo(
            platform=Platform.GENERIC,
            id=str(path),
            project=str(path.parent),
            name=path.name,
            status=material.run.status,
            finished_at=_mtime(path),
            jobs=material.run.jobs,
        )

    def fetch(self, ref: RunRef, dest: Path, *, full_logs: bool = False) -> RunMaterial:
        # Local logs are already on disk: nothing to copy into dest, and every log is "full".
        return ingest_path(Path(ref.run_id), self.limits)

    def test_results(self, ref: RunRef) -> list[TestResult]:
        # Ingest only sniffs the head of each log to tell logs from JUnit reports; it reads no log through.
        return ingest_path(Path(ref.run_id), self.limits).run.test_results

    def runs(self, project: str, filters: RunFilter) -> Iterator[RunSummary]:
        folder = Path(project)
        if not folder.is_dir():
            raise ProviderError(project, "not a folder of saved runs")
        entries = sorted(
            (p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for count, entry in enumerate(entries):
            if count >= filters.limit:
                return
            finished = _mtime(entry)
            if filters.since and finished < filters.since:
                return
            yield RunSummary(
                platform=Platform.GENERIC, project=project, id=str(entry), number=entry.name, finished_at=finished
            )

    def deployments(self, project: str, since: datetime | None = None, limit: int = 100) -> Iterator[Deployment]:
        return iter(())

    def _refuse(self, kind: WriteKind, target: str) -> NoReturn:
        raise ProviderError(target, f"{kind}: local material is not a CI run; there is nothing to act on")

    def rerun_failed(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._refuse(WriteKind.RERUN_FAILED, ref.run_id)

    def cancel(self, ref: RunRef, *, dry_run: bool = True) -> WriteResult:
        return self._refuse(WriteKind.CANCEL, ref.run_id)

    def trigger(
        self, project: str, ref_name: str, inputs: dict[str, str], *, workflow: str | None = None, dry_run: bool = True
    ) -> WriteResult:
        return self._refuse(WriteKind.TRIGGER, project)

    def comment(self, ref: RunRef, body: str, *, dry_run: bool = True) -> WriteResult:
        return self._refuse(WriteKind.COMMENT, ref.run_id)
