"""search_incidents over a real incident memory: three example failures learned through the store's own
API with the real MiniLM embeddings (built once per module), then searched with real log lines."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cimedic.investigate import analyse_path
from cimedic.memory.embed import MiniLMEmbedder
from cimedic.memory.store import Incident, IncidentStore
from cimedic.models import Category
from cimedic.recall import failure_text
from cimedic.settings import Settings, get_settings
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.search_incidents import EMPTY, MAX_LIMIT, SearchIncidents
from cimedic.tools.logs.normalize import clean_line
from tests.conftest import EXAMPLES

pytest_plugins = ["memory_fixtures"]

LEARNED = [
    (EXAMPLES / "azure-npm-e404.log", Category.DEPENDENCY, "scoped package never published", "publish design-tokens"),
    (EXAMPLES / "gha-pytest-failure.zip", Category.TEST, "discount threshold off by one", "use >= in bulk_discount"),
    (EXAMPLES / "oom-killed.log", Category.RESOURCE, "index build keeps every shard in memory", "stream the shards"),
]


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory, minilm: MiniLMEmbedder) -> tuple[Path, dict[str, str]]:
    """The incident folder (journal and index) after learning each example, and each incident's id by category."""
    home = tmp_path_factory.mktemp("memory-home")
    ids: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIMEDIC_HOME", str(home))
        get_settings.cache_clear()
        store = IncidentStore(get_settings(), lambda _settings: minilm)
        for path, category, cause, fix in LEARNED:
            diag, _ = analyse_path(path)  # what `cimedic learn` stores, without recording a fingerprint
            incident = Incident(
                category=category,
                cause=cause,
                fix=fix,
                title=diag.summary,
                excerpt=failure_text(diag),
                source=path.name,
            )
            ids[category.value] = store.add(incident).id
    get_settings.cache_clear()
    return store.dir, ids


@pytest.fixture
def ids(memory: tuple[Path, dict[str, str]], home_with_onnx: Settings) -> dict[str, str]:
    """A copy of the memory in this test's home (the embedder finds the session's ONNX export there)."""
    shutil.copytree(memory[0], home_with_onnx.incidents_dir)
    return memory[1]


def search(workspace_of, **kwargs: object) -> Any:  # type: ignore[no-untyped-def]
    answer = SearchIncidents(workspace=workspace_of(EXAMPLES / "azure-npm-e404.log")).run(**kwargs)
    assert len(answer) <= OUTPUT_MAX_CHARS
    return json.loads(answer)


def test_real_log_lines_find_their_past_incident_first(ids: dict[str, str], workspace_of) -> None:  # type: ignore[no-untyped-def]
    npm_line = clean_line((EXAMPLES / "azure-npm-e404.log").read_text(encoding="utf-8").split("\n")[16])
    assert npm_line.startswith("npm ERR! 404")
    found = search(workspace_of, text=npm_line)["incidents"]
    assert [hit["id"] for hit in found][:1] == [ids["dependency"]]
    assert (found[0]["category"], found[0]["cause"], found[0]["fix"]) == (
        "dependency",
        "scoped package never published",
        "publish design-tokens",
    )
    assert found[0]["score"] > max(hit["score"] for hit in found[1:]) + 0.1
    with zipfile.ZipFile(EXAMPLES / "gha-pytest-failure.zip") as zf:
        assertion = zf.read("test/4_Run tests.txt").decode("utf-8").split("\n")[30]
    pytest_hits = search(workspace_of, text=clean_line(assertion), limit=1)["incidents"]
    assert [hit["id"] for hit in pytest_hits] == [ids["test"]]


@pytest.mark.usefixtures("ids")
def test_a_large_limit_is_capped(workspace_of) -> None:  # type: ignore[no-untyped-def]
    out = search(workspace_of, text="Killed", limit=500)
    assert out["note"] == f"limit capped at {MAX_LIMIT}"
    assert len(out["incidents"]) == len(LEARNED)  # all there are
    scores = [hit["score"] for hit in out["incidents"]]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


def test_an_empty_memory_says_so(workspace_of) -> None:  # type: ignore[no-untyped-def]
    assert search(workspace_of, text="npm ERR! 404") == {"incidents": [], "note": EMPTY}


@pytest.mark.usefixtures("ids")
def test_a_broken_index_and_bad_text_are_error_answers(workspace_of) -> None:  # type: ignore[no-untyped-def]
    blank = search(workspace_of, text="")
    assert blank["input"] == "search_incidents" and "validation" in blank["error"]
    shutil.rmtree(get_settings().incidents_dir / "chroma")
    broken = search(workspace_of, text="npm ERR! 404")
    assert broken["input"] == "search_incidents"
    assert "missing/unreadable" in broken["error"] and "cimedic incidents reindex" in broken["error"]
