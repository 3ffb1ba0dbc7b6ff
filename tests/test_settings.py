from pathlib import Path

import pytest

from cimedic.settings import Settings


def test_env_prefix_and_nested_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIMEDIC_LLM_MODEL", "ollama/llama3")
    monkeypatch.setenv("CIMEDIC_LIMITS__EXCERPT_MAX_LINES", "30")
    s = Settings()
    assert s.llm_configured
    assert s.limits.excerpt_max_lines == 30


def test_yaml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIMEDIC_HOME")
    (tmp_path / "cimedic.yaml").write_text("home: /srv/cimedic\nlimits:\n  evidence_max: 3\n")
    s = Settings()
    assert s.home == Path("/srv/cimedic")
    assert s.limits.evidence_max == 3
    monkeypatch.setenv("CIMEDIC_HOME", "/elsewhere")
    assert Settings().home == Path("/elsewhere")


def test_no_llm_by_default() -> None:
    assert not Settings().llm_configured
