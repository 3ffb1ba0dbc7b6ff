"""What every ingester returns: the run's metadata and openers for its logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cimedic.models import Platform, Run


@dataclass(frozen=True)
class LogFile:
    """One log of a run. ``open`` gives a fresh, already decompressed binary stream each call,
    so analysis can make a second pass (to cut the excerpt) without holding the log in memory."""

    path: str
    open: Callable[[], BinaryIO]
    platform: Platform = Platform.GENERIC
    job: str | None = None
    step: str | None = None


@dataclass
class RunMaterial:
    run: Run
    logs: list[LogFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Where the run's files live when they are not under ``run.source.path`` (fetched runs).
    root: Path | None = None
