from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# azure-devops caches route metadata under ~/.azure-devops as soon as it is imported; tests keep
# theirs in a scratch folder (set before any test module imports the SDK).
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="azure-devops-cache-"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own CIMEDIC_HOME and no user config, so nothing leaks between tests."""
    for key in list(os.environ):
        # Platform tokens the settings also accept must not reach a test server either.
        if key.startswith("CIMEDIC_") or key in ("GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "AZURE_DEVOPS_EXT_PAT"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CIMEDIC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    from cimedic.settings import get_settings

    get_settings.cache_clear()
