"""Versioned model artifacts: every trained model is kept with its metrics and data window, one
version per kind is the champion that investigations use, and a promotion can be rolled back.

Layout under ``$CIMEDIC_HOME/models``::

    <kind>/<version>/<artifact file>   the artifact, never modified once written
    <kind>/<version>/meta.json         ModelVersion: metrics, data window, parameters, sha256
    <kind>/promotions.jsonl            append-only: which version became champion, when, why

The champion is the last line of ``promotions.jsonl``, so promote and rollback are one appended
line each (under a file lock) and the history of what served when is never lost.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, Field

from cimedic.errors import InputError

KINDS = ("classifier", "predictor", "anomaly")


class ModelVersion(BaseModel):
    kind: str
    version: str
    created_at: datetime
    file: str = Field(description="artifact file name inside the version folder")
    sha256: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_window: dict[str, Any] = Field(default_factory=dict, description="first/last example time, row count")
    params: dict[str, Any] = Field(default_factory=dict)


class Promotion(BaseModel):
    version: str
    at: datetime
    action: str = Field(description="promote | rollback")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise InputError(kind, f"unknown model kind; one of {', '.join(KINDS)}")
        return self.root / kind

    def _lock(self, kind: str) -> FileLock:
        folder = self._kind_dir(kind)
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / ".lock"), timeout=30)

    def register(
        self,
        kind: str,
        artifact: Path,
        *,
        metrics: dict[str, Any] | None = None,
        data_window: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        promote: bool = False,
    ) -> ModelVersion:
        """Copy ``artifact`` in as a new version (named by time and content hash)."""
        if not artifact.is_file():
            raise InputError(str(artifact), "no such model artifact")
        digest = _sha256(artifact)
        now = datetime.now(UTC)
        version = f"{now:%Y%m%dT%H%M%SZ}-{digest[:8]}"
        meta = ModelVersion(
            kind=kind,
            version=version,
            created_at=now,
            file=artifact.name,
            sha256=digest,
            metrics=metrics or {},
            data_window=data_window or {},
            params=params or {},
        )
        with self._lock(kind):
            target = self._kind_dir(kind) / version
            if target.exists():  # the same artifact registered twice in one second
                return self.get(kind, version)
            # Built in a scratch folder and renamed: a killed register leaves no half version.
            scratch = Path(tempfile.mkdtemp(prefix=".new-", dir=self._kind_dir(kind)))
            try:
                shutil.copyfile(artifact, scratch / artifact.name)
                (scratch / "meta.json").write_text(meta.model_dump_json(indent=2), encoding="utf-8")
                os.chmod(scratch, 0o755)
                os.replace(scratch, target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            if promote:
                self._append(kind, Promotion(version=version, at=now, action="promote"))
        return meta

    def get(self, kind: str, version: str) -> ModelVersion:
        meta = self._kind_dir(kind) / version / "meta.json"
        if not meta.is_file():
            raise InputError(f"{kind} {version}", "no such model version; see `cimedic models list`")
        return ModelVersion.model_validate_json(meta.read_text(encoding="utf-8"))

    def versions(self, kind: str | None = None) -> list[ModelVersion]:
        """Newest first."""
        found: list[ModelVersion] = []
        for k in [kind] if kind else list(KINDS):
            folder = self._kind_dir(k)
            if folder.is_dir():
                found += [self.get(k, d.name) for d in folder.iterdir() if (d / "meta.json").is_file()]
        return sorted(found, key=lambda m: m.created_at, reverse=True)

    def promotions(self, kind: str) -> list[Promotion]:
        log = self._kind_dir(kind) / "promotions.jsonl"
        if not log.is_file():
            return []
        return [Promotion.model_validate_json(line) for line in log.read_text(encoding="utf-8").splitlines() if line]

    def champion(self, kind: str) -> ModelVersion | None:
        history = self.promotions(kind)
        return self.get(kind, history[-1].version) if history else None

    def champion_path(self, kind: str) -> Path | None:
        champ = self.champion(kind)
        return self._kind_dir(kind) / champ.version / champ.file if champ else None

    def _append(self, kind: str, promotion: Promotion) -> None:
        with open(self._kind_dir(kind) / "promotions.jsonl", "a", encoding="utf-8") as fh:
            fh.write(promotion.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def promote(self, kind: str, version: str) -> ModelVersion:
        meta = self.get(kind, version)
        with self._lock(kind):
            self._append(kind, Promotion(version=version, at=datetime.now(UTC), action="promote"))
        return meta

    def rollback(self, kind: str) -> ModelVersion:
        """Make the champion before the current one champion again."""
        with self._lock(kind):
            history = self.promotions(kind)
            if not history:
                raise InputError(kind, "no promoted model to roll back from")
            current = history[-1].version
            earlier = [p.version for p in history if p.version != current]
            if not earlier:
                raise InputError(kind, f"{current} is the only model ever promoted; nothing to roll back to")
            previous = earlier[-1]
            self._append(kind, Promotion(version=previous, at=datetime.now(UTC), action="rollback"))
        return self.get(kind, previous)
