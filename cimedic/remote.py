"""Investigating a run on a CI platform: parse its URL, fetch it through the platform's provider
into a scratch folder, then diagnose it exactly like local material."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cimedic.investigate import baseline_index, diagnose_with_signals
from cimedic.models import Diagnosis, RunInfo
from cimedic.recall import fingerprint_history
from cimedic.settings import Settings, get_settings
from cimedic.tools.ci.base import RunRef
from cimedic.tools.ci.providers import provider_for
from cimedic.tools.ci.urls import parse_run_url
from cimedic.tools.ingest.base import RunMaterial


def is_url(target: str) -> bool:
    return "://" in target


def remote_run_key(info: RunInfo, base_url: str) -> str:
    """One run (and attempt) on one server: investigating it again does not count it twice."""
    return f"{info.platform}:{base_url}:{info.project}:{info.id}:{info.attempt or 1}"[:400]


@dataclass
class Fetched:
    """A run fetched from its platform into a scratch folder (the logs live there until it goes)."""

    ref: RunRef
    material: RunMaterial
    fetch_ms: int


def fetch_run(url: str, scratch: Path, *, full_logs: bool, settings: Settings) -> Fetched:
    """Fetch the run at ``url`` (failed jobs' logs, test reports, metadata) into ``scratch``."""
    ref = parse_run_url(url, settings)
    provider = provider_for(ref.platform, ref.base_url, settings)
    fetched = time.perf_counter()
    material = provider.fetch(ref, scratch, full_logs=full_logs)
    # The report names the run as the user named it; the platform's own URL is in `run.url`.
    material.run.source = material.run.source.model_copy(update={"path": url})
    return Fetched(ref, material, int((time.perf_counter() - fetched) * 1000))


def scratch_dir(settings: Settings, url: str) -> tempfile.TemporaryDirectory[str]:
    # Logs stream to disk under CIMEDIC_HOME (not /tmp, often a small tmpfs) and go when we are done.
    settings.downloads_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f"{parse_run_url(url, settings).platform}-", dir=settings.downloads_dir)


def conclude(diag: Diagnosis, fetched: Fetched, *, record: bool, settings: Settings) -> Diagnosis:
    """Archive the logs (still on disk), remember the run and its verdict, attach the run metadata."""
    info = fetched.material.run.info
    if settings.archive_logs and info is not None and fetched.material.logs:
        from cimedic.archive.keep import archive_run

        _, archive_warnings = archive_run(settings, info, fetched.material.logs)
        diag.warnings.extend(archive_warnings)
    if record and info is not None:
        from cimedic.history.remember import remember

        history = fingerprint_history(settings, diag, remote_run_key(info, fetched.ref.base_url), diag.warnings)
        # The history store keeps the diagnosis with its fingerprint counts, so those go in first.
        diag = diag.model_copy(update={"fingerprint": history})
        diag.change_cause = remember(settings, info, fetched.material.run.test_results, diag, diag.warnings)
    diag.run = info
    diag.timings_ms["fetch"] = fetched.fetch_ms
    return diag


def investigate_url(
    url: str,
    *,
    baseline: Path | None = None,
    full_logs: bool = False,
    record: bool = True,
    settings: Settings | None = None,
) -> Diagnosis:
    """The deterministic investigation of a run on a CI platform (the flow adds the crew on top)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    with scratch_dir(settings, url) as scratch:
        fetched = fetch_run(url, Path(scratch), full_logs=full_logs, settings=settings)
        base_index = baseline_index(baseline, settings.limits) if baseline else None
        diag, _ = diagnose_with_signals(fetched.material, limits=settings.limits, baseline=base_index, started=started)
        diag = conclude(diag, fetched, record=record, settings=settings)
    diag.timings_ms["total"] = int((time.perf_counter() - started) * 1000)
    return diag
