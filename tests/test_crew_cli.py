"""`cimedic investigate --llm/--offline` and `cimedic chat`, run as a user runs them: a subprocess
with a clean environment and its own $HOME, talking to a local replaying LLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cimedic.evals.replay_llm import ReplayLLM, call, say
from tests.conftest import EXAMPLES
from tests.test_crew_flow import PERL, TIMEOUT_LINE, _log, _plan, _rca

pytestmark = pytest.mark.skipif(not PERL.exists(), reason="LogChunks data not present")


@pytest.fixture
def replay() -> Iterator[ReplayLLM]:
    with ReplayLLM() as server:
        yield server


def _cli(home: Path, replay: ReplayLLM, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Only what a user would have: none of the telemetry switches the test session sets for itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWAI_", "OTEL_", "LITELLM_", "CIMEDIC_"))}
    env |= {
        "HOME": str(home),
        "CIMEDIC_HOME": str(home / "cimedic"),
        "CIMEDIC_LLM_MODEL": "openai/gpt-4o-mini",
        "CIMEDIC_LLM_BASE_URL": replay.base_url,
        "CIMEDIC_LLM_API_KEY": "sk-test-0000",
    }
    return subprocess.run(
        [sys.executable, "-m", "cimedic", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=home,
        input=stdin,
    )


def test_investigate_with_a_model_phones_nowhere_and_keeps_home_clean(replay: ReplayLLM, tmp_path: Path) -> None:
    replay.script("rca", call("search_log", pattern="Connect timeout"), say(_rca()))
    replay.script("plan", say(_plan()))
    replay.script("report", say("t/https.t timed out connecting over HTTPS; retry the run."))
    home = tmp_path / "home"
    home.mkdir()
    proc = _cli(home, replay, "investigate", "--json", str(_log(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["route"], data["backend"], data["evidence"][0]["line"]) == ("crew", "llm", TIMEOUT_LINE)
    assert data["llm"]["requests"] == 4 and data["llm"]["cost_usd"] > 0
    # No version check, no telemetry, no kickoff store named after the working directory in $HOME:
    # CrewAI's files go under CIMEDIC_HOME.
    assert not (home / ".cache" / "crewai").exists()
    assert not (home / ".local" / "share" / home.name).exists()
    assert (home / "cimedic" / "crewai").is_dir()


def test_offline_flag_skips_a_configured_model(replay: ReplayLLM, tmp_path: Path) -> None:
    proc = _cli(tmp_path, replay, "investigate", "--json", "--offline", str(_log(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["route"], data["backend"], data["llm"]) == ("offline", "offline", None)
    assert replay.requests == []


def test_llm_and_offline_together_is_a_usage_error(replay: ReplayLLM, tmp_path: Path) -> None:
    proc = _cli(
        tmp_path, replay, "investigate", "--offline", "--llm", "openai/gpt-4o", str(EXAMPLES / "oom-killed.log")
    )
    assert proc.returncode == 2 and "choose one of --llm, --offline" in proc.stderr


def test_chat_answers_with_the_model_and_its_tools(replay: ReplayLLM, tmp_path: Path) -> None:
    replay.script(
        "chat",
        call("get_log_excerpt", job="travis-369957693.log", around_line=TIMEOUT_LINE, n=3),
        say(f"The HTTPS test timed out connecting (travis-369957693.log:{TIMEOUT_LINE}); nothing else failed."),
    )
    proc = _cli(tmp_path, replay, "chat", str(_log(tmp_path)), "-q", "Did anything other than https.t fail?")
    assert proc.returncode == 0, proc.stderr
    assert f"travis-369957693.log:{TIMEOUT_LINE}" in proc.stdout
    tool_answer = next(m for m in replay.requests[-1]["messages"] if m["role"] == "tool")["content"]
    assert "Connect timeout" in tool_answer
    assert "Did anything other than https.t fail?" in replay.prompts_text()


def test_chat_offline_answers_from_the_log_itself(replay: ReplayLLM, tmp_path: Path) -> None:
    proc = _cli(tmp_path, replay, "chat", "--offline", str(_log(tmp_path)), stdin="Which https connection timed out?\n")
    assert proc.returncode == 0, proc.stderr
    assert "Offline answer (no LLM)" in proc.stdout
    assert f"travis-369957693.log:{TIMEOUT_LINE}" in proc.stdout
    assert replay.requests == []
