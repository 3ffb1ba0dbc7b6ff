"""Fetched runs' logs are archived redacted, and a run URL investigation keeps them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from cimedic.archive import LocalArchive
from cimedic.archive.keep import redacted_copy
from cimedic.settings import get_settings
from cimedic.tools.ingest.base import LogFile
from cimedic.tools.ingest.local import LogFileOpener

TOKEN = "ghp_Zq8x2Lm4Nv6Bc1Df3Gh5Jk7Lp9Qr0St2Uv4W"


def test_redacted_copy_masks_secrets_across_block_boundaries(tmp_path: Path) -> None:
    source = tmp_path / "job.log"
    filler = b"2024-05-01T10:00:01.0000000Z building module " + b"x" * 60 + b"\n"
    source.write_bytes(filler * 20000 + f"export GITHUB_TOKEN={TOKEN}\n".encode() + filler * 10)
    out = tmp_path / "copy.log"
    read = redacted_copy(LogFile("job.log", LogFileOpener(source, compressed=False)), out)
    assert read == source.stat().st_size
    text = out.read_text()
    assert TOKEN not in text and "[REDACTED" in text
    assert text.count("\n") == 20011


def test_investigating_a_run_url_archives_its_failed_logs(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import test_ci_gitlab as gitlab
    from typer.testing import CliRunner

    from cimedic.cli import app

    gitlab.serve_run(httpserver)
    monkeypatch.setenv("CIMEDIC_GITLAB_TOKEN", gitlab.TOKEN)
    get_settings.cache_clear()
    url = httpserver.url_for(f"/{gitlab.PROJECT}/-/pipelines/{gitlab.PIPELINE}")
    result = CliRunner().invoke(app, ["investigate", url, "--json", "--no-record"])
    assert result.exit_code == 0, result.output
    root = get_settings().archive_dir
    kept = sorted(root.rglob("*.log.gz"))
    assert kept, "no log archived"
    archive = LocalArchive(root)
    keys = list(archive.list(("gitlab", gitlab.PROJECT)))
    assert keys and all(k.run_id == str(gitlab.PIPELINE) for k in keys)
    with archive.open(keys[0]) as fh:
        assert b"ERROR: Job failed" in fh.read()
    with gzip.open(kept[0]) as plain:  # plain gzip: readable with zcat
        assert plain.read()
