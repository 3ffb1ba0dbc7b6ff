"""Investigating a run on a CI platform: parse its URL, fetch it through the platform's provider
into a scratch folder, then diagnose it exactly like local material."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cimedic.investigate import baseline_index, diagnose_with_signals
from cimedic.models import Diagnosis, RunInfo
from cimedic.recall import fingerprint_history
from cimedic.settings import Settings, get_settings
from cimedic.tools.ci.providers import provider_for
from cimedic.tools.ci.urls import parse_run_url


def is_url(target: str) -> bool:
    return "://" in target


def remote_run_key(info: RunInfo, base_url: str) -> str:
    """One run (and attempt) on one server: investigating it again does not count it twice."""
    return f"{info.platform}:{base_url}:{info.project}:{info.id}:{info.attempt or 1}"[:400]


def investigate_url(
    url: str,
    *,
    baseline: Path | None = None,
    full_logs: bool = False,
    record: bool = True,
    settings: Settings | None = None,
) -> Diagnosis:
    """Fetch the run at ``url`` (failed jobs' logs, test reports, metadata) and diagnose it."""
    settings = settings or get_settings()
    limits = settings.limits
    started = time.perf_counter()
    ref = parse_run_url(url, settings)
    provider = provider_for(ref.platform, ref.base_url, settings)
    settings.downloads_dir.mkdir(parents=True, exist_ok=True)
    # Logs stream to disk under CIMEDIC_HOME (not /tmp, often a small tmpfs) and go when we are done.
    with tempfile.TemporaryDirectory(prefix=f"{ref.platform}-", dir=settings.downloads_dir) as scratch:
        fetched = time.perf_counter()
        material = provider.fetch(ref, Path(scratch), full_logs=full_logs)
        # The report names the run as the user named it; the platform's own URL is in `run.url`.
        material.run.source = material.run.source.model_copy(update={"path": url})
        fetch_ms = int((time.perf_counter() - fetched) * 1000)
        base_index = baseline_index(baseline, limits) if baseline else None
        diag, _ = diagnose_with_signals(material, limits=limits, baseline=base_index, started=started)
        info = material.run.info
        if settings.archive_logs and info is not None and material.logs:
            from cimedic.archive.keep import archive_run

            _, archive_warnings = archive_run(settings, info, material.logs)
            diag.warnings.extend(archive_warnings)
    if record and info is not None:
        from cimedic.history.remember import remember

        history = fingerprint_history(settings, diag, remote_run_key(info, ref.base_url), diag.warnings)
        # The history store keeps the diagnosis with its fingerprint counts, so those go in first.
        diag = diag.model_copy(update={"fingerprint": history})
        diag.change_cause = remember(settings, info, material.run.test_results, diag, diag.warnings)
    diag.run = info
    diag.timings_ms["fetch"] = fetch_ms
    diag.timings_ms["total"] = int((time.perf_counter() - started) * 1000)
    return diag
